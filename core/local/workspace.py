"""The local backend: everything in one workspace home folder.

``<home>/byom.db`` (SQLite, WAL) holds the registry and desired state;
``<home>/artifacts`` holds model files; ``<home>/envs`` the environments built
from conda specs (:mod:`core.local.builds`). The home is ``BYOM_HOME`` or
``~/.byom`` unless given. It is the store-backed backend in its SQLite
configuration, with model servers behind the local gateway.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BackendError
from ..home import default_home, make_private_dir
from ..serving import Serving
from ..store.backend import StoreBackend
from ..store.sqlite import SqliteStore
from ..workspace import Workspace
from .artifacts import DirectoryArtifacts
from .builds import VenvBuilder
from .serving import LocalServing


def local_backend(home: Path, serving: Serving | None = None) -> StoreBackend:
    """The store-backed backend over the home folder ``home`` (created private if missing)."""
    try:
        make_private_dir(home)
    except OSError as exc:
        raise BackendError(f"Cannot create the workspace home {home}: {exc.strerror}.",
                           hint="Choose a writable folder with --workspace-dir or BYOM_HOME.") from exc
    return StoreBackend(
        SqliteStore(home / "byom.db"),
        DirectoryArtifacts(home / "artifacts"),
        serving if serving is not None else LocalServing(home),
        builder=VenvBuilder(home / "envs"),
        kind="local",
        name=home.name,
        location=str(home),
    )


class LocalWorkspace(Workspace):
    def __init__(self, home: str | Path | None = None, *, actor: str | None = None,
                 serving: Serving | None = None) -> None:
        self.home = Path(home).expanduser() if home else default_home()
        self.store_backend = local_backend(self.home, serving)
        super().__init__(self.store_backend, actor=actor)

    @property
    def serving(self) -> Serving:
        """What runs its deployments (``LocalServing``: the control plane and gateway of this home)."""
        return self.store_backend.serving
