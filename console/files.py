"""What the console reads and writes on the machine it runs on: uploads, a version's .zip, a code folder's scripts.

Kept out of :mod:`byom.console.views`, whose functions do no I/O.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from byom.core.errors import InvalidInput
from byom.core.workspace import Workspace


def save_uploads(files: Sequence[tuple[str, bytes]], folder: Path) -> Path:
    """Write uploaded files (name, content) into ``folder``; returns what to register.

    One file is registered as that file (a GGUF checkpoint); several as the
    folder holding them (a model folder's config.json, weights, tokenizer).
    A name may carry a path inside the folder the user picked
    (``my-model/config.json``): subfolders are kept, and a top folder every
    file shares is dropped, so the folder registered is the model folder.
    """
    if not files:
        raise InvalidInput("Choose the files to upload first: a GGUF file, or every file of a model folder.")
    parts = []
    for name, _ in files:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise InvalidInput(f"Uploaded file name {name!r} points outside the model folder.")
        parts.append(path.parts)
    tops = {p[0] for p in parts}
    if len(tops) == 1 and all(len(p) > 1 for p in parts):
        parts = [p[1:] for p in parts]
    for part, (_, content) in zip(parts, files, strict=True):
        target = folder.joinpath(*part)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if len(files) == 1 and len(parts[0]) == 1:
        return folder / parts[0][0]
    return folder


def model_zip(ws: Workspace, name: str, version: int) -> bytes:
    """A version's files as a .zip, every file checked against its sha256 on the way (``download_model``).

    Stored, not deflated: weights barely compress and deflating them costs seconds per 100 MB.
    Entries sit under ``<name>-<version>/`` so that unzipping gives one folder.
    """
    with tempfile.TemporaryDirectory(prefix="byom-zip-") as scratch:
        folder = ws.download_model(name, version, scratch)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{name}-{version}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


_ENTRY_FUNCTION = r"^(?:async\s+)?def\s+{}\s*\("


def is_folder(path: str) -> bool:
    """Whether a deployment's code is a folder on this machine (on Azure it may be a code asset instead)."""
    return bool(path) and Path(path).expanduser().is_dir()


def scoring_scripts(code_folder: str | Path) -> list[str]:
    """The ``.py`` files of a code folder, as paths inside it: entry scripts first, top-level files first.

    An entry script defines ``init()`` and ``run()`` (Azure ML's contract);
    the other modules follow, since a script may still be chosen by hand.
    """
    folder = Path(code_folder).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"The code folder {str(folder)!r} does not exist.",
                           hint="Enter the folder that holds the scoring script (the repository's scoring/ folder "
                                "holds generate.py and token_ranks.py).")
    entry: list[str] = []
    other: list[str] = []
    for path in sorted(folder.rglob("*.py"), key=lambda p: (len(p.relative_to(folder).parts), p)):
        relative = path.relative_to(folder)
        if any(part.startswith((".", "__pycache__")) for part in relative.parts[:-1]):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        is_entry = all(re.search(_ENTRY_FUNCTION.format(f), text, re.MULTILINE) for f in ("init", "run"))
        (entry if is_entry else other).append(relative.as_posix())
    return entry + other
