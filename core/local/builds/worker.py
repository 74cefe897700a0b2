"""The background process that builds one environment: ``python -m byom.core.local.builds.worker FOLDER LOCK_FD``.

Started by :class:`core.local.builds.venv.VenvBuilder` in its own session, so that
it outlives the CLI that asked for it (``--no-wait``) and a Ctrl-C there. It
inherits the build folder's lock, already taken, as ``LOCK_FD`` and hands it
on to pip, so the lock is held until the last process working in the folder
has exited. Its stdout is the build log.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ...entities import BuildState, utcnow
from .folder import BuildFolder
from .pip import PipProgress, failure_reason


class StepFailed(Exception):
    pass


def log(line: str = "") -> None:
    print(line, flush=True)


def _clean_env() -> dict[str, str]:
    # the new environment must not see byom's own import paths
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def host_pip_serves(python_version: str) -> bool:
    """Whether byom's own pip can install into an interpreter of this version (``pip --python``).

    Saves a copy of pip per environment; an older interpreter than the one
    byom's pip supports (its Requires-Python) gets its own pip instead.
    """
    if importlib.util.find_spec("pip") is None:
        return False
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    # an email.message.Message underneath: a missing field reads as None, not KeyError
    requires = metadata.metadata("pip")["Requires-Python"] or ""
    return SpecifierSet(requires).contains(python_version)


def _pip(folder: BuildFolder, host_pip: bool) -> list[str]:
    if host_pip:
        return [sys.executable, "-m", "pip", "--python", str(folder.python)]
    return [str(folder.python), "-m", "pip"]


def _run(cmd: list[str], lock_fd: int) -> tuple[int, str]:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=_clean_env(), pass_fds=(lock_fd,))
    return proc.returncode, proc.stdout


def build(folder: BuildFolder, request: dict[str, Any], lock_fd: int) -> None:
    started = time.time()
    interpreter, requirements = request["interpreter"], request["requirements"]
    log(f"Building environment {request['environment']} (cache key {folder.path.name})")
    log(f"Python {request['python_version']}: {interpreter}")
    if request.get("warning"):
        log(f"WARNING: {request['warning']}")
    log("Requirements:")
    for req in requirements:
        log(f"  {req}")
    for reason in request.get("bounds", []):
        log(f"Note: {reason}")

    def step(text: str, fraction: float) -> None:
        folder.update_state(step=text, fraction=fraction)

    step(f"Creating a virtual environment with Python {request['python_version']}", 0.05)
    if folder.venv.exists():  # left by a failed, killed or forced build
        shutil.rmtree(folder.venv)
    host_pip = host_pip_serves(request["python_version"])
    if not host_pip:
        log(f"Python {request['python_version']} gets its own pip (byom's pip does not install into it)")
    cmd = [interpreter, "-m", "venv", *(["--without-pip"] if host_pip else []), str(folder.venv)]
    log("$ " + " ".join(cmd))
    code, out = _run(cmd, lock_fd)
    log(out.rstrip())
    if code != 0:
        raise StepFailed(f"Creating the virtual environment with {interpreter} failed: {out.strip()[-300:]}")

    folder.requirements.write_text("\n".join(requirements) + "\n")
    cmd = [*_pip(folder, host_pip), "install", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
           "-r", str(folder.requirements)]
    log("$ " + " ".join(cmd))
    step("Resolving packages", 0.1)
    progress = PipProgress()
    lines: list[str] = []
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=_clean_env(), pass_fds=(lock_fd,)) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
            marked = progress.feed(line)
            if marked:
                step(*marked)
    if proc.returncode != 0:
        shutil.rmtree(folder.venv, ignore_errors=True)
        raise StepFailed(failure_reason(lines, progress.collected))

    step("Checking that the model server imports", 0.85)
    code, out = _run([str(folder.python), "-c", "import azureml_inference_server_http"], lock_fd)
    if code != 0:
        shutil.rmtree(folder.venv, ignore_errors=True)
        log(out.rstrip())
        raise StepFailed("azureml-inference-server-http is installed but does not import: "
                         + (out.strip().splitlines() or ["no output"])[-1])

    step("Listing installed packages", 0.9)
    cmd = [*_pip(folder, host_pip), "freeze", "--all"]
    log("$ " + " ".join(cmd))
    code, out = _run(cmd, lock_fd)
    if code != 0:
        raise StepFailed(f"pip freeze failed: {out.strip()[-300:]}")
    packages = [line for line in out.splitlines() if line.strip()]
    folder.freeze.write_text("\n".join(packages) + "\n")
    log(out.rstrip())
    elapsed = time.time() - started
    log(f"Succeeded in {elapsed:.1f} s: {len(packages)} packages.")
    # written last: from here on the environment is used
    folder.update_state(state=BuildState.SUCCEEDED, step="Built", fraction=1.0, ended_at=utcnow(), ended_ts=time.time(),
                        packages=packages, message=request.get("warning") or "")


def main(argv: list[str]) -> int:
    folder, lock_fd = BuildFolder(Path(argv[0])), int(argv[1])
    folder.update_state(pid=os.getpid())
    try:
        build(folder, folder.read_request(), lock_fd)
    except Exception as exc:  # every failure ends in a Failed state with its reason
        reason = str(exc) if isinstance(exc, StepFailed) else f"The build failed: {type(exc).__name__}: {exc}"
        log(f"FAILED: {reason}")
        folder.update_state(state=BuildState.FAILED, step="Failed", ended_at=utcnow(), ended_ts=time.time(),
                            message=reason)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
