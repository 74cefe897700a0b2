"""One build's folder in the cache, ``<envs>/<key>/``, and the lock that guards it.

::

    request.json      what to build: interpreter, requirements, the environment that asked
    state.json        state, times, progress step, failure reason (replaced atomically)
    build.log         the full log: byom's steps and pip's output
    requirements.txt  what pip installs
    freeze.txt        ``pip freeze`` of the finished environment
    venv/             the virtual environment
    lock              held (flock) by whoever is building

The environment is built in place rather than renamed into place: a virtual
environment is not relocatable (its scripts' ``#!`` lines name its path).
Instead ``state.json`` saying Succeeded is written last, and only a build
whose state says so is used. A build that dies leaves Running behind with
its lock released, which readers report as Failed (interrupted).
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ...entities import BuildState
from .interpreters import venv_python


@dataclass(frozen=True)
class BuildFolder:
    path: Path

    @property
    def request(self) -> Path:
        return self.path / "request.json"

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def log(self) -> Path:
        return self.path / "build.log"

    @property
    def requirements(self) -> Path:
        return self.path / "requirements.txt"

    @property
    def freeze(self) -> Path:
        return self.path / "freeze.txt"

    @property
    def venv(self) -> Path:
        return self.path / "venv"

    @property
    def python(self) -> Path:
        return venv_python(self.venv)

    def read_request(self) -> dict[str, Any]:
        request: dict[str, Any] = json.loads(self.request.read_text())
        return request

    def read_state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except ValueError:  # written by os.replace, so never torn; but a hand-edited file may be bad
            return None
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        write_json(self.state_file, state)

    def update_state(self, **changes: Any) -> dict[str, Any]:
        state = {**(self.read_state() or {}), **changes}
        self.write_state(state)
        return state

    def is_complete(self) -> bool:
        state = self.read_state()
        return bool(state and state.get("state") == BuildState.SUCCEEDED and self.python.exists())

    def try_lock(self) -> IO[str] | None:
        """The lock file, opened and locked; None while someone else holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / "lock", "a+")  # noqa: SIM115 - the caller owns it
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def is_locked(self) -> bool:
        handle = self.try_lock()
        if handle is None:
            return True
        handle.close()
        return False


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically: a reader sees the old or the new content, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
