"""Folders named after the process that made them, so that what a killed process left can be told apart.

A name starts ``<pid>-<start time>-``: the folder is its maker's while that
process (that pid at that start time, so never a later process given the
same pid) runs, and left over once it does not. ``sweep`` removes the left
over ones; a folder of a registration still going on in another process is
never touched.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

from .processes import alive, start_time


def owned_name(prefix: str = "") -> str:
    """A new folder name that says this process made it."""
    pid = os.getpid()
    return f"{prefix}{pid}-{start_time(pid) or 0}-{uuid.uuid4().hex}"


def _owner(name: str, prefix: str) -> tuple[int, int] | None:
    pid, _, rest = name.removeprefix(prefix).partition("-")
    start, _, _ = rest.partition("-")
    if not (name.startswith(prefix) and pid.isdigit() and start.isdigit()):
        return None
    return int(pid), int(start)


def sweep(parent: Path, prefix: str = "", unmarked_older_than_s: float | None = None) -> list[Path]:
    """Remove the folders in ``parent`` whose maker no longer runs (and unmarked ones older than given); return them.

    Entries that vanish meanwhile (another process sweeping too) are skipped.
    """
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except FileNotFoundError:
        return removed
    now = time.time()
    for entry in entries:
        owner = _owner(entry.name, prefix)
        try:
            if owner is not None:
                stale = not alive(owner[0], owner[1] or None)
            else:
                stale = unmarked_older_than_s is not None and now - entry.stat().st_mtime > unmarked_older_than_s
        except FileNotFoundError:
            continue
        if stale:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
