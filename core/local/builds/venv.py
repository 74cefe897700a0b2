"""Local environment builds: a virtual environment per conda spec, cached by the spec's hash.

An environment version with a conda file is built into ``<envs>/<key>/venv``
(see :mod:`core.local.builds.folder` for the folder), where ``key`` hashes
the Python version chosen for it and the PyPI requirements it resolves to
(:func:`core.environments.build_key`): versions with the same resolved spec
share one build. The model server is always among the requirements.

A build runs in a background process (:mod:`core.local.builds.worker`) that
holds the folder's lock, so that two builders of one spec, in one process or
in several, never build into the same folder at once: the second waits for
the first and takes its result. ``build(wait=False)`` returns as soon as the
process has started; ``status`` reads the folder. A forced build rebuilds in
place: model servers running in the old environment should be restarted.

For deployments, :func:`interpreter_for` gives the interpreter to run an
environment's model servers with.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ...builds import EnvironmentBuilder
from ...entities import LOCAL_PYTHON, BuildState, EnvironmentBuild, EnvironmentVersion, utcnow
from ...environments import build_key, with_inference_server
from ...errors import BackendError, ByomError, InvalidInput, NotFound
from ...numpy_abi import numpy_bounds
from ...progress import Progress
from .folder import BuildFolder, write_json
from .interpreters import Interpreter, choose_interpreter, find_interpreters

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
POLL_S = 0.2
INTERRUPTED = ("The build stopped before it finished (its process was killed, or the machine restarted); "
               "nothing of it is used. Build again.")


def _no_progress(message: str, fraction: float | None) -> None:
    pass


@dataclass(frozen=True)
class BuildPlan:
    folder: BuildFolder
    interpreter: Interpreter
    requirements: list[str]  # the spec's, the model server, and the bounds below
    warning: str | None  # the python pin cannot be met
    bounds: list[str]  # what the build added to the spec, each with its reason


class VenvBuilder(EnvironmentBuilder):
    """Builds environments into ``root`` (the workspace home's ``envs`` folder)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------ planning

    def plan(self, env: EnvironmentVersion) -> BuildPlan:
        if not env.conda_file:
            raise InvalidInput(
                f"Environment {env.ref} has no conda file: there is nothing to build locally.",
                hint="Locally it runs in byom's own interpreter, like local-python; "
                     "give it a conda file to pin packages.",
            )
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            interpreter, warning = choose_interpreter(env.python, find_interpreters(self.root / "interpreters.json"))
        except LookupError as exc:
            raise BackendError(str(exc), hint="Install Python 3.9 or later, or name one in BYOM_PYTHONS.") from None
        bounds = numpy_bounds(env.pip_requirements)
        requirements = with_inference_server([*env.pip_requirements, *(b.requirement for b in bounds)])
        key = build_key(interpreter.version_text, requirements)
        return BuildPlan(BuildFolder(self.root / key), interpreter, requirements, warning, [b.reason for b in bounds])

    def build_id(self, env: EnvironmentVersion) -> str:
        return self.plan(env).folder.path.name  # the cache key: the resolved spec

    # -------------------------------------------------------------- status

    def status(self, env: EnvironmentVersion) -> EnvironmentBuild:
        if not env.conda_file:
            return EnvironmentBuild(name=env.name, version=env.version, state=BuildState.NOT_STARTED.value,
                                    message="No conda file: nothing to build; "
                                            "locally it runs in byom's own interpreter.")
        plan = self.plan(env)
        return self._status(env, plan)

    def _status(self, env: EnvironmentVersion, plan: BuildPlan) -> EnvironmentBuild:
        folder = plan.folder
        state = folder.read_state()
        build = EnvironmentBuild(name=env.name, version=env.version,
                                 message="\n".join(m for m in (plan.warning, *plan.bounds) if m))
        if state is None:
            return build
        build.started_at, build.ended_at = state.get("started_at"), state.get("ended_at")
        build.interpreter = str(folder.python)
        build.log = _read_log(folder, plan.warning)
        build.state = state.get("state", BuildState.NOT_STARTED.value)
        if build.state == BuildState.RUNNING:
            if _interrupted(folder, state):
                build.state, build.message = BuildState.FAILED.value, INTERRUPTED
            else:
                build.message = state.get("step") or BuildState.RUNNING.value
        elif build.state == BuildState.FAILED:
            build.message = "\n".join(m for m in (state.get("message"), plan.warning) if m)
        elif build.state == BuildState.SUCCEEDED:
            if not folder.python.exists():
                build.state = BuildState.FAILED.value
                build.message = "The built environment is gone (its folder or its Python was removed). Build again."
            else:
                build.packages = _installed(folder, plan.interpreter)
        return build

    # --------------------------------------------------------------- build

    def build(self, env: EnvironmentVersion, *, force: bool, wait: bool, progress: Progress) -> EnvironmentBuild:
        plan = self.plan(env)
        folder = plan.folder
        if plan.warning:
            progress(f"Warning: {plan.warning}", None)
        if not force and folder.is_complete():
            progress(f"Using the cached build {folder.path.name}", 1.0)
            return self._status(env, plan)
        asked_at = time.time()
        waited = False
        while True:
            lock = folder.try_lock()
            if lock is None:  # another builder holds it
                if not wait:
                    return self._status(env, plan)
                waited = True
                _report(folder, progress, "Waiting for another build of the same spec")
                time.sleep(POLL_S)
                continue
            with lock:
                state = folder.read_state() or {}
                if waited and state.get("ended_ts", 0) >= asked_at:
                    # a build of this spec finished while we waited: its result is ours
                    return self._status(env, plan)
                if not force and folder.is_complete():
                    return self._status(env, plan)
                worker = self._start(env, plan, lock.fileno())
            progress(f"Building in the background (process {worker.pid}); log: {folder.log}", 0.0)
            if not wait:
                return self._status(env, plan)
            while worker.poll() is None:
                _report(folder, progress)
                time.sleep(POLL_S)
            build = self._status(env, plan)
            progress(f"Build {build.state}", 1.0)
            return build

    def _start(self, env: EnvironmentVersion, plan: BuildPlan, lock_fd: int) -> subprocess.Popen[bytes]:
        folder = plan.folder
        write_json(folder.request, {
            "environment": env.ref,
            "interpreter": plan.interpreter.path,
            "python_version": plan.interpreter.version_text,
            "requirements": plan.requirements,
            "warning": plan.warning,
            "bounds": plan.bounds,
        })
        folder.write_state({"state": BuildState.RUNNING, "started_at": utcnow(), "started_ts": time.time(),
                            "step": "Starting", "fraction": 0.0, "environment": env.ref})
        # importable wherever byom runs from, installed or not
        child_env = {**os.environ,
                     "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}
        with open(folder.log, "w") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "byom.core.local.builds.worker", str(folder.path), str(lock_fd)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=folder.path, env=child_env,
                pass_fds=(lock_fd,), start_new_session=True,
            )


def _interrupted(folder: BuildFolder, state: dict[str, Any]) -> bool:
    """Running on file, but nobody holds the lock: the builder died."""
    return state.get("state") == BuildState.RUNNING and not folder.is_locked()


def _report(folder: BuildFolder, progress: Progress, prefix: str | None = None) -> None:
    state = folder.read_state() or {}
    step = state.get("step")
    if step:
        progress(f"{prefix}: {step}" if prefix else step, state.get("fraction"))


def _read_log(folder: BuildFolder, warning: str | None) -> str:
    try:
        text = folder.log.read_text(errors="replace")
    except FileNotFoundError:
        text = ""
    # the build may have been made for another version of the same resolved spec
    if warning and warning not in text:
        text = f"WARNING: {warning}\n{text}"
    return text


def _installed(folder: BuildFolder, interpreter: Interpreter) -> list[str]:
    """What is installed in the environment now, as pip freeze writes it (read from its metadata)."""
    major, minor, _ = interpreter.version
    site = folder.venv / "lib" / f"python{major}.{minor}" / "site-packages"
    seen = {}
    for dist in metadata.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return [seen[k] for k in sorted(seen)]


# ------------------------------------------------------------ for deployments


def interpreter_for(
    home: str | Path, env: EnvironmentVersion | str, *, wait: bool = True, progress: Progress = _no_progress
) -> Path | None:
    """The Python a deployment's model servers run with, for its environment.

    ``env`` is an environment version or a deployment's ``"name:version"``.
    ``local-python`` and environments without a conda file run with byom's
    own interpreter. Otherwise the environment's build is used: started if
    there is none (or the last one was interrupted), waited for with
    ``wait``; without ``wait``, None means "still building, ask again".
    A build that failed raises ``BackendError`` with the build's reason and
    is not retried here: ``byom environment build`` retries.
    """
    home = Path(home)
    if isinstance(env, str):
        env = _environment(home, env)
    if env.built_in or not env.conda_file:
        return Path(sys.executable)
    builder = VenvBuilder(home / "envs")
    plan = builder.plan(env)
    build = builder._status(env, plan)
    if build.state == BuildState.FAILED and build.message != INTERRUPTED:
        raise _build_failed(env, build)
    if build.state != BuildState.SUCCEEDED:
        build = builder.build(env, force=False, wait=wait, progress=progress)
    if build.state == BuildState.SUCCEEDED:
        return Path(build.interpreter or plan.folder.python)
    if build.state == BuildState.FAILED:
        raise _build_failed(env, build)
    return None


def _build_failed(env: EnvironmentVersion, build: EnvironmentBuild) -> BackendError:
    return BackendError(
        f"Environment {env.ref} failed to build: {build.message}",
        hint=f"See 'byom environment logs -n {env.name} -v {env.version}'; fix the conda file in a new version, "
             f"or retry with 'byom environment build -n {env.name} -v {env.version}'.",
    )


def running_build(home: str | Path, ref: str) -> dict[str, Any] | None:
    """The state (step, fraction, ...) of the build a deployment's environment waits for; None when none runs."""
    home = Path(home)
    try:
        env = _environment(home, ref)
        if env.built_in or not env.conda_file:
            return None
        folder = VenvBuilder(home / "envs").plan(env).folder
    except ByomError:
        return None
    state = folder.read_state() or {}
    return state if state.get("state") == BuildState.RUNNING and not _interrupted(folder, state) else None


def _environment(home: Path, ref: str) -> EnvironmentVersion:
    from ..sqlite_store import SqliteStore

    name, _, version = ref.partition(":")
    if name == LOCAL_PYTHON:
        return EnvironmentVersion(name=LOCAL_PYTHON, version=1, built_in=True)
    if not version.isdigit():
        raise InvalidInput(f"Environment reference {ref!r} must be NAME:VERSION.")
    store = SqliteStore(home / "byom.db")
    try:
        with store.transaction() as txn:
            doc = txn.get("environment", name, int(version))
    finally:
        store.close()
    if doc is None:
        raise NotFound(f"Environment {ref} does not exist in {home}.")
    return EnvironmentVersion.from_dict(doc)
