"""The local backend: everything in one workspace home folder.

``<home>/byom.db`` (SQLite, WAL) holds the registry and desired state;
``<home>/artifacts`` holds model files; ``<home>/envs`` the environments built
from conda specs (:mod:`core.local.builds`). The home is ``BYOM_HOME`` or
``~/.byom`` unless given.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendError
from ..home import default_home, make_private_dir
from ..serving import Serving
from ..store_workspace import StoreWorkspace
from .artifacts import DirectoryArtifacts
from .builds import VenvBuilder
from .serving import LocalServing
from .sqlite_store import SqliteStore


class LocalWorkspace(StoreWorkspace):
    kind = "local"

    def __init__(self, home: str | Path | None = None, *, actor: str | None = None, serving: Serving | None = None) -> None:
        self.home = Path(home).expanduser() if home else default_home()
        try:
            make_private_dir(self.home)
        except OSError as exc:
            raise BackendError(f"Cannot create the workspace home {self.home}: {exc.strerror}.",
                               hint="Choose a writable folder with --workspace-dir or BYOM_HOME.") from exc
        super().__init__(
            SqliteStore(self.home / "byom.db"),
            DirectoryArtifacts(self.home / "artifacts"),
            serving if serving is not None else LocalServing(self.home),
            builder=VenvBuilder(self.home / "envs"),
            actor=actor,
            name=self.home.name,
            location=str(self.home),
        )
