"""The local artifact store: model files under ``<home>/artifacts``.

A registration copies (and hashes in the same pass) into
``.staging/<pid>-<start>-<random>``, on the same file system as the final
place, so that ``commit()`` is one atomic ``rename`` to
``models/<name>/<version>``; what it packages first goes to
``.scratch/<pid>-<start>-<random>``. A process killed mid-copy leaves only
such folders, which no version points at: the next byom process to start on
the home (library, control plane or gateway) sweeps those whose maker no
longer runs (:mod:`.owned_dirs`); one of a registration still going on in
another process stays. Unmarked staging folders (older byom) go after a day.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..artifacts import CHUNK, ArtifactStore, Staged, copy_verified, iter_source_files
from ..entities import ModelFile
from ..errors import BackendError
from ..progress import Progress
from .owned_dirs import owned_name, sweep

STALE_STAGING_S = 24 * 3600


def sweep_left_over(root: Path) -> list[Path]:
    """Remove the staging and scratch folders of registrations whose process no longer runs."""
    return sweep(root / ".staging", unmarked_older_than_s=STALE_STAGING_S) + sweep(root / ".scratch")


class DirectoryArtifacts(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / ".staging"
        self.staging.mkdir(parents=True, exist_ok=True)
        (self.root / "models").mkdir(exist_ok=True)
        sweep_left_over(self.root)

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        folder = self.root / ".scratch" / owned_name()
        folder.mkdir(parents=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def stage(self, src: Path, progress: Progress) -> Staged:
        sources = list(iter_source_files(src))
        total = sum(p.stat().st_size for p, _ in sources) or 1
        target = self.staging / owned_name()
        target.mkdir()
        done = 0
        files = []
        try:
            for full, rel in sources:
                out = target / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with open(full, "rb") as fin, open(out, "wb") as fout:
                    while chunk := fin.read(CHUNK):
                        digest.update(chunk)
                        fout.write(chunk)
                        done += len(chunk)
                    fout.flush()
                    os.fsync(fout.fileno())
                files.append(ModelFile(rel, out.stat().st_size, digest.hexdigest()))
                progress(f"Copied {rel}", done / total)
        except OSError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise BackendError(f"Copying the model into the workspace failed: {exc}.") from exc
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return Staged(files, target)

    def commit(self, staged: Staged, name: str, version: int) -> str:
        relative = f"models/{name}/{version}"
        final = self.root / relative
        if final.exists():  # left by a registration killed between rename and commit
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged.handle, final)
        staged.extra["committed"] = final
        return relative

    def discard(self, staged: Staged) -> None:
        shutil.rmtree(staged.extra.get("committed", staged.handle), ignore_errors=True)

    def local_path(self, path: str) -> Path:
        """The folder holding a version's files (what AZUREML_MODEL_DIR points at)."""
        return self.root / path

    def export(self, path: str, files: list[ModelFile], dest: Path) -> None:
        source = self.local_path(path)
        if not source.is_dir():
            raise BackendError(f"The artifacts of {path} are missing from {self.root}.")
        copy_verified(source, files, dest)

    def delete(self, path: str) -> None:
        shutil.rmtree(self.local_path(path), ignore_errors=True)
