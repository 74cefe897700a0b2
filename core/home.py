"""Workspace homes: where a home is, and the rule that what byom keeps there is private.

A home holds keys (in its database), prompts and answers (in request facts
and logs): byom creates it 0700 and its databases and logs 0600, whatever the
umask says, so that another user of the machine reads none of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def default_home() -> Path:
    """``BYOM_HOME``, else ``~/.byom``."""
    return Path(os.environ.get("BYOM_HOME") or Path.home() / ".byom").expanduser()


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) if it is missing; a folder created here is 0700."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # another process made it first
            pass
        else:
            os.chmod(path, PRIVATE_DIR)  # mkdir's mode is subject to the umask
    return path


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE)


def open_private(path: Path, mode: str = "ab") -> IO[Any]:
    """``open(path, mode)``, a file created here being 0600 (its folder is made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, mode, opener=_private_opener)  # noqa: SIM115 - the caller closes it


def touch_private(path: Path) -> Path:
    """Create ``path`` empty and 0600 if it is missing (before a database opens it: SQLite gives its
    -wal and -shm files the mode of the database file).

    An existing file is never opened: SQLite's locks are POSIX locks, which closing *any* descriptor
    of the file drops for the whole process, and another process would then reset the write-ahead
    log under this process's open connections (writes lost, "disk I/O error").
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return path
    os.close(fd)  # new here: no connection of this process holds a lock on it
    return path
