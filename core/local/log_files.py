"""Log files of the serving processes: bounded by rotation, read from the end across rotations.

A process writes its log through a descriptor opened in append mode that it
keeps for its whole life, so the file cannot be renamed under it. Rotation
therefore copies the file to ``<name>.1`` (after moving ``.1`` to ``.2`` and
so on, the oldest dropped) and truncates it to zero; the writer's next
append lands at the new end. The copy reads to the end of the file, lines
appended while it ran included, and truncates right after: only a line
written in that last instant can be lost.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..home import open_private

MAX_BYTES = 10 * 1024 * 1024
KEEP = 3  # rotated files beside the live one: about (KEEP + 1) × MAX_BYTES per log at most


def log_max_bytes() -> int:
    """How large a log grows before it is rotated: ``$BYOM_LOG_MAX_BYTES``, else 10 MiB."""
    configured = os.environ.get("BYOM_LOG_MAX_BYTES", "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else MAX_BYTES


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotate_if_large(path: Path, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> bool:
    """Rotate ``path`` when it is over ``max_bytes``; True when it was rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for n in range(keep - 1, 0, -1):
        try:
            os.replace(rotated(path, n), rotated(path, n + 1))
        except FileNotFoundError:
            pass
    with open(path, "r+b") as live, open_private(rotated(path, 1), "wb") as copy:
        while chunk := live.read(1024 * 1024):
            copy.write(chunk)
        live.truncate(0)
    return True


def log_tail(path: Path, lines: int, keep: int = KEEP) -> str:
    """The last ``lines`` lines of a log, taken from its rotated files too when the live one has fewer."""
    found: list[str] = []
    for n in range(keep + 1):
        part = path if n == 0 else rotated(path, n)
        wanted = lines - len(found)
        if wanted <= 0:
            break
        text = _tail(part, wanted + 1)  # one more: the first line of a block may be cut by the rotation
        if text is None:
            if n == 0:
                continue
            break
        found = text.splitlines()[-wanted:] + found if text else found
    return "\n".join(found[-lines:]) if lines > 0 else ""


def _tail(path: Path, lines: int) -> str | None:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = min(size, max(4096, lines * 400))
            while True:
                fh.seek(size - block)
                data = fh.read(block)
                if data.count(b"\n") > lines or block == size:
                    break
                block = min(size, block * 2)
    except FileNotFoundError:
        return None
    return data.decode("utf-8", "replace")
