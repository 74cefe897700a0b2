"""The artifact seam: where registered model files live.

Registration is two steps so that a version is never visible half-copied:
``stage()`` copies and hashes the source outside any transaction, then
``commit()`` moves the staged copy to its final place inside the
registration's transaction. ``discard()`` drops a staged copy that will not
be committed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .entities import ModelFile, ModelVersion
from .errors import BackendError, InvalidInput
from .progress import Progress

CHUNK = 1 << 20


def iter_source_files(src: Path) -> Iterator[tuple[Path, str]]:
    """(absolute path, relative posix path) of every file under a folder, or the file itself."""
    if src.is_file():
        yield src, src.name
        return
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for fname in sorted(files):
            full = Path(root) / fname
            yield full, full.relative_to(src).as_posix()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


REMOTE_SCHEMES = ("azureml:", "https:", "http:", "wasbs:", "abfss:", "runs:")
"""Paths az ml accepts for files already in the cloud (a datastore, a job's outputs, a URL)."""


def is_remote(path: str | Path) -> bool:
    return str(path).strip().lower().startswith(REMOTE_SCHEMES)


def downloadable(model: ModelVersion) -> bool:
    """Whether a version's files can be brought here: byom listed them when it registered them, or they
    lie in a datastore (azure-ai-ml reads model files from datastores only, not from a job's URI)."""
    return bool(model.files) or "/datastores/" in model.path


def remote_download_hint(*paths: str) -> str:
    """What to run instead of a download; ``paths``: where a version was registered from, and where it is kept."""
    import re

    job = next((m for p in paths if (m := re.match(r"azureml://jobs/([^/]+)/", p, flags=re.IGNORECASE))), None)
    if job:
        return f"Download the job's outputs instead: az ml job download --name {job.group(1)} --all."
    return "Download the files from where they lie (Studio, azcopy or az storage blob download-batch)."


def refuse_asset_reference(path: str | Path) -> None:
    """``azureml:name:1`` names a registered asset, not files: az ml takes it for a local path and fails."""
    text = str(path).strip()
    if text.lower().startswith("azureml:") and not text.lower().startswith("azureml://"):
        raise InvalidInput(f"{text!r} names a registered model, not files to register.",
                           hint="To register its files again, download them first (byom model download) "
                                "and pass the folder.")


def check_source(path: str | Path) -> Path:
    """The local folder or file a registration copies from; a remote path is refused with what to do.

    Backends that declare ``Capability.REMOTE_MODEL_PATHS`` handle remote paths before calling this.
    """
    refuse_asset_reference(path)
    if is_remote(path):
        raise InvalidInput(f"{str(path).strip()!r} is in remote storage, and this workspace registers files "
                           "from this machine.",
                           hint="Download them first (for a job's outputs: az ml job download) and pass the folder, "
                                "or register them in an Azure ML workspace, which takes such paths.")
    src = Path(path).expanduser()
    if not str(path).strip():
        raise InvalidInput("No model path given: pass --path to a folder or a file.")
    if not src.exists():
        raise InvalidInput(f"Model path {str(src)!r} does not exist: pass an existing folder or file.")
    if src.is_dir() and not any(p.is_file() for p in src.rglob("*")):
        raise InvalidInput(f"Model folder {str(src)!r} holds no files: put the model's files in it first.")
    return src


@dataclass
class Staged:
    files: list[ModelFile]
    handle: Any  # backend-specific: a temp folder, a dict of bytes
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class ArtifactStore(ABC):
    @abstractmethod
    def stage(self, src: Path, progress: Progress) -> Staged: ...

    @abstractmethod
    def commit(self, staged: Staged, name: str, version: int) -> str:
        """Put a staged copy in its final place; returns the version's artifact path."""

    @abstractmethod
    def discard(self, staged: Staged) -> None: ...

    @abstractmethod
    def export(self, path: str, files: list[ModelFile], dest: Path) -> None:
        """Copy a version's files into ``dest`` and verify each sha256."""

    @abstractmethod
    def delete(self, path: str) -> None: ...

    def scratch(self) -> AbstractContextManager[Path]:
        """A folder for a registration's work files (a package built first), removed after."""
        return temporary_folder()


@contextmanager
def temporary_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="byom-package-") as folder:
        yield Path(folder)


class MemoryArtifacts(ArtifactStore):
    """Keeps file bytes in memory (for the in-memory workspace)."""

    def __init__(self) -> None:
        self._blobs: dict[str, dict[str, bytes]] = {}

    def stage(self, src: Path, progress: Progress) -> Staged:
        blobs: dict[str, bytes] = {}
        files = []
        for full, rel in iter_source_files(src):
            data = full.read_bytes()
            blobs[rel] = data
            files.append(ModelFile(rel, len(data), hashlib.sha256(data).hexdigest()))
        progress(f"Copied {len(files)} file(s)", 1.0)
        return Staged(files, blobs)

    def commit(self, staged: Staged, name: str, version: int) -> str:
        path = f"memory://models/{name}/{version}"
        self._blobs[path] = staged.handle
        return path

    def discard(self, staged: Staged) -> None:
        pass

    def export(self, path: str, files: list[ModelFile], dest: Path) -> None:
        blobs = self._blobs.get(path)
        if blobs is None:
            raise BackendError(f"The artifacts of {path} are missing from the store.")
        for f in files:
            target = dest / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blobs[f.path])
            if hashlib.sha256(blobs[f.path]).hexdigest() != f.sha256:
                raise BackendError(f"{f.path} does not match its recorded sha256: the stored copy is damaged.")

    def delete(self, path: str) -> None:
        self._blobs.pop(path, None)


def copy_verified(src_root: Path, files: list[ModelFile], dest: Path) -> None:
    """Copy files from a stored version into dest, checking each sha256."""
    for f in files:
        source = src_root / f.path
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        if sha256_file(target) != f.sha256:
            raise BackendError(
                f"{f.path} does not match its recorded sha256: the stored copy is damaged.",
                hint="Register the model again from its source.",
            )
