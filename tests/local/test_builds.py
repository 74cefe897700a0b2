"""Environment builds on the local backend: real virtual environments built by pip.

The slow tests that use ``built`` share one workspace home whose small
environment is built once per run, by two ``byom environment build``
processes racing for it. They only read that build; tests that break or
rebuild one use a home of their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from byom.core.entities import EnvironmentSpec, EnvironmentVersion
from byom.core.environments import build_key, conda_to_pip
from byom.core.errors import BackendError, InvalidInput
from byom.core.local.builds import VenvBuilder, interpreter_for
from byom.core.local.builds.folder import BuildFolder
from byom.core.local.builds.interpreters import Interpreter, choose_interpreter
from byom.core.local.builds.pip import failure_reason
from byom.core.local.workspace import LocalWorkspace

from ..waiting import wait_until

BYOM = [sys.executable, "-m", "byom.cli"]
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
# small: joblib and the model server (which the build adds itself)
SMALL = f"name: small\ndependencies:\n  - python={PY}\n  - pip\n  - joblib=1.5\n"

def byom(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BYOM_HOME": str(home), "BYOM_ACTOR": "ci"}
    return subprocess.run([*BYOM, *args], env=env, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ fast


def test_conda_versions_and_system_libraries_map_to_pypi() -> None:
    assert conda_to_pip("numpy 1.26.*") == ("numpy==1.26.*", None)
    assert conda_to_pip("numpy 1.26.4 py311_0") == ("numpy==1.26.4", None)
    assert conda_to_pip("conda-forge::scikit-learn=1.5") == ("scikit-learn==1.5.*", None)
    assert conda_to_pip("zlib") == (None, None)
    assert conda_to_pip("python 3.11") == (None, "3.11")
    assert conda_to_pip("python>=3.8,<3.12") == (None, ">=3.8,<3.12")
    assert conda_to_pip("py-opencv=4.10") == ("opencv-python==4.10.*", None)
    assert conda_to_pip("python-graphviz") == ("graphviz", None)
    assert conda_to_pip("openblas") == (None, None)


def test_build_key_is_the_resolved_spec() -> None:
    assert build_key("3.11.7", ["joblib"]) == build_key("3.11.7", ["joblib", "azureml-inference-server-http"])
    assert build_key("3.11.7", ["joblib"]) != build_key("3.12.1", ["joblib"])
    assert build_key("3.11.7", ["joblib"]) != build_key("3.11.7", ["joblib==1.5.3"])
    assert build_key("3.11.7", ["numpy == 2.3.1", "joblib"]) == build_key("3.11.7", ["joblib", "numpy==2.3.1"])


def test_python_pin_is_honoured_or_falls_back_to_the_nearest_with_a_warning() -> None:
    own, older, newer = (Interpreter("/own/python", (3, 11, 7)), Interpreter("/x/python3.10", (3, 10, 13)),
                         Interpreter("/x/python3.13", (3, 13, 0)))
    found = [own, older, newer]
    assert choose_interpreter(None, found) == (own, None)
    assert choose_interpreter("3.10", found) == (older, None)
    chosen, warning = choose_interpreter("3.14", found)
    assert chosen == newer and warning is not None
    assert "python 3.14" in warning and "3.13.0" in warning and "3.10.13, 3.11.7, 3.13.0" in warning
    chosen, warning = choose_interpreter("3.8", found)
    assert chosen == older and warning and "3.10.13" in warning
    # a range: byom's own when it is inside, else the newest inside, else byom's own with a warning
    assert choose_interpreter(">=3.8,<3.12", found) == (own, None)
    assert choose_interpreter(">=3.12", found) == (newer, None)
    assert choose_interpreter("<3.11", found) == (older, None)
    chosen, warning = choose_interpreter(">=3.14", found)
    assert chosen == own and warning and "python >=3.14" in warning


def test_a_pin_that_needs_another_python_says_so() -> None:
    lines = [  # pip 26.3 on Python 3.11
        "ERROR: Ignored the following versions that require a different python version: 1.4.2 Requires-Python "
        ">=3.6,<3.9; 1.5.1 Requires-Python >=3.7,<3.11; 1.7 Requires-Python >=3.7,<3.11",
        "ERROR: Could not find a version that satisfies the requirement inference-schema==1.5.1 (from versions: "
        "0.1a0, 1.0.0, 1.4.1, 1.7.1, 1.7.2, 1.8)",
        "ERROR: No matching distribution found for inference-schema==1.5.1",
    ]
    reason = failure_reason(lines, [])
    assert reason.startswith("inference-schema==1.5.1 exists but requires Python >=3.7,<3.11"), reason
    assert "change the pin" not in reason


def test_a_pip_conflict_names_both_pins() -> None:
    lines = [
        "ERROR: Cannot install azureml-inference-server-http==1.5.1 and pydantic==1.10.13 because these package "
        "versions have conflicting dependencies.",
        "",
        "The conflict is caused by:",
        "    The user requested pydantic==1.10.13",
        "    azureml-inference-server-http 1.5.1 depends on pydantic~=2.12.0",
        "",
        "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/",
    ]
    reason = failure_reason(lines, ["azureml-inference-server-http", "pydantic"])
    assert reason.startswith("The pins of azureml-inference-server-http==1.5.1 and pydantic==1.10.13 conflict")
    assert "depends on pydantic~=2.12.0" in reason and "ERROR: ResolutionImpossible" in reason


def test_a_non_yaml_conda_file_is_refused_at_create_time(tmp_path: Path) -> None:
    ws = LocalWorkspace(tmp_path / "home")
    with pytest.raises(InvalidInput, match="conda file is not valid YAML at line"):
        ws.create_environment(EnvironmentSpec(name="broken", conda_file="dependencies:\n  - [python=3.11\n"))
    assert [e.name for e in ws.list_environments()] == ["local-python"]
    assert not (tmp_path / "home" / "envs").exists()


def test_environments_without_a_conda_file_run_in_byoms_interpreter(tmp_path: Path) -> None:
    ws = LocalWorkspace(tmp_path / "home")
    image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
    ws.create_environment(EnvironmentSpec(name="image-only", image=image))
    with pytest.raises(InvalidInput, match="no conda file"):
        ws.build_environment("image-only")
    assert ws.get_environment_build("image-only").state == "NotStarted"
    assert interpreter_for(ws.home, "image-only:1") == Path(sys.executable)
    assert interpreter_for(ws.home, "local-python:1") == Path(sys.executable)


# ------------------------------------------------------------------ slow


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A home where two processes raced to build one spec for two environments.

    Made once per test run: pytest-xdist workers share it through the run's
    temporary folder, the first one to take the lock builds it.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker has its own basetemp inside the run's
        root = root.parent
    home, record = root / "builds-home", root / "builds-home.json"
    with open(root / "builds-home.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            ws = LocalWorkspace(home, actor="ci")
            for name in ("small", "small-twin"):
                ws.create_environment(EnvironmentSpec(name=name, conda_file=SMALL))
            ws.close()
            env = {**os.environ, "BYOM_HOME": str(home), "BYOM_ACTOR": "ci"}
            started = time.monotonic()
            procs = [subprocess.Popen([*BYOM, "environment", "build", "-n", name], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for name in ("small", "small-twin")]
            outputs = [p.communicate(timeout=600) for p in procs]
            record.write_text(json.dumps({"codes": [p.returncode for p in procs], "outputs": outputs,
                                          "seconds": time.monotonic() - started}))
    ws = LocalWorkspace(home, actor="ci")
    yield {"home": home, "ws": ws, **json.loads(record.read_text())}
    ws.close()


@pytest.mark.slow
def test_a_conda_spec_builds_a_virtual_environment(built: dict) -> None:
    assert built["codes"] == [0, 0], built["outputs"]
    print(f"first build (two racing builders): {built['seconds']:.1f} s")
    ws: LocalWorkspace = built["ws"]
    build = ws.get_environment_build("small")
    assert build.state == "Succeeded", build.message
    assert build.started_at and build.ended_at and build.started_at < build.ended_at
    python = Path(build.interpreter or "")
    assert python.is_file() and python != Path(sys.executable)
    # the environment is its own: joblib and the model server are there, byom's packages are not
    probe = subprocess.run(
        [str(python), "-c", "import sys, joblib, azureml_inference_server_http, importlib.util as u;"
                            "print(sys.prefix, joblib.__version__,"
                            " u.find_spec('torch') is None, u.find_spec('core') is None)"],
        capture_output=True, text=True, cwd="/", env={"PATH": os.environ["PATH"]},
    )
    assert probe.returncode == 0, probe.stderr
    prefix, joblib_version, no_torch, no_byom = probe.stdout.split()
    assert Path(prefix) == python.parent.parent and joblib_version.startswith("1.5.")
    assert (no_torch, no_byom) == ("True", "True")
    assert f"joblib=={joblib_version}" in build.packages
    assert any(p.startswith("azureml-inference-server-http==") for p in build.packages)
    assert "Collecting joblib==1.5.*" in build.log and "Succeeded in" in build.log
    drift = {d.package: (d.installed, d.status, d.source) for d in ws.environment_drift("small")}
    assert drift == {"joblib": (joblib_version, "ok", "build")}


@pytest.mark.slow
def test_racing_builders_build_once_and_report_progress(built: dict) -> None:
    ws: LocalWorkspace = built["ws"]
    small, twin = ws.get_environment_build("small"), ws.get_environment_build("small-twin")
    assert small.interpreter == twin.interpreter and small.started_at == twin.started_at
    assert small.log.count("Succeeded in") == 1
    progress = "\n".join(err for _, err in built["outputs"])
    assert "Resolving packages" in progress and "Installing" in progress and "100% Build Succeeded" in progress


@pytest.mark.slow
def test_a_second_build_of_the_same_spec_reuses_the_cache(built: dict) -> None:
    ws: LocalWorkspace = built["ws"]
    first = ws.get_environment_build("small")
    ws.create_environment(EnvironmentSpec(name="small-again", conda_file=SMALL.replace("name: small", "name: again")))
    for name in ("small", "small-again"):
        started = time.monotonic()
        build = ws.build_environment(name)
        seconds = time.monotonic() - started
        print(f"cached build of {name}: {seconds:.2f} s")
        assert seconds < 10, "a cached build is a lookup (a pip install would take a minute)"
        assert build.state == "Succeeded" and build.interpreter == first.interpreter
        assert build.started_at == first.started_at  # nothing was rebuilt
    started = time.monotonic()
    result = byom(built["home"], "environment", "build", "-n", "small-again", "--query", "state")
    assert result.returncode == 0 and json.loads(result.stdout) == "Succeeded"
    print(f"cached build through the CLI: {time.monotonic() - started:.2f} s")


@pytest.mark.slow
def test_an_unmet_python_pin_builds_with_the_nearest_and_warns(built: dict) -> None:
    ws: LocalWorkspace = built["ws"]
    pin = f"{PY}.99"
    ws.create_environment(EnvironmentSpec(name="patch-pin", conda_file=SMALL.replace(f"python={PY}", f"python={pin}")))
    build = ws.build_environment("patch-pin")
    assert build.state == "Succeeded"
    assert f"asks for python {pin}, which is not installed" in build.message
    assert build.log.startswith("WARNING: The spec asks for python")
    shown = byom(built["home"], "environment", "show-build", "-n", "patch-pin", "--query", "message")
    assert f"python {pin}" in json.loads(shown.stdout)


def _python_older_than_byoms_pip() -> Interpreter | None:
    from byom.core.local.builds.interpreters import find_interpreters
    from byom.core.local.builds.worker import host_pip_serves

    older = [i for i in find_interpreters() if not host_pip_serves(i.version_text)]
    return older[0] if older else None


@pytest.mark.slow
def test_an_interpreter_older_than_byoms_pip_builds_with_its_own_pip(tmp_path: Path) -> None:
    # Azure's safe-rollout sample pins python=3.9, which pip 26 no longer installs into with --python.
    older = _python_older_than_byoms_pip()
    if older is None:
        pytest.skip("no interpreter here is older than what byom's pip supports")
    pin = ".".join(map(str, older.version[:2]))
    ws = LocalWorkspace(tmp_path / "home")
    ws.create_environment(EnvironmentSpec(name="older", conda_file=f"dependencies:\n  - python={pin}\n  - pip\n"))
    build = ws.build_environment("older")
    assert build.state == "Succeeded", build.message
    assert f"Python {older.version_text} gets its own pip" in build.log
    probe = subprocess.run([build.interpreter or "", "-c", "import sys, azureml_inference_server_http;"
                            "print(sys.version_info[:2])"], capture_output=True, text=True)
    assert probe.returncode == 0 and probe.stdout.strip() == str(older.version[:2]), probe.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("byom-surely-not-a-package==1.0", "No package named 'byom-surely-not-a-package'"),
        ("joblib==99.0.0", "No version of joblib matches joblib==99.0.0"),
    ],
    ids=["unknown-package", "unknown-version"],
)
def test_a_failing_spec_ends_in_failed_naming_the_package(tmp_path: Path, requirement: str, expected: str) -> None:
    ws = LocalWorkspace(tmp_path / "home")
    conda = f"dependencies:\n  - python={PY}\n  - pip:\n    - six\n    - {requirement}\n"
    ws.create_environment(EnvironmentSpec(name="bad", conda_file=conda))
    build = ws.build_environment("bad")
    assert build.state == "Failed"
    assert build.message.startswith(expected)
    assert f"ERROR: No matching distribution found for {requirement}" in build.message  # pip's last lines
    assert "ERROR: No matching distribution" in build.log and build.packages == []
    assert build.interpreter and not Path(build.interpreter).exists()  # nothing half-built is left to use
    with pytest.raises(BackendError, match=expected):
        interpreter_for(ws.home, "bad:1")
    logs = byom(ws.home, "environment", "logs", "-n", "bad")
    assert f"FAILED: {expected}" in logs.stdout
    again = byom(ws.home, "environment", "build", "-n", "bad")  # a script sees the failure in the exit code
    assert again.returncode == 1 and again.stdout == ""
    assert "failed to build" in again.stderr and expected in again.stderr


@pytest.mark.slow
def test_a_killed_build_is_never_used_and_a_forced_build_starts_afresh(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ws = LocalWorkspace(home)
    # its own spec and home: the shared build stays untouched
    ws.create_environment(EnvironmentSpec(name="killed", conda_file=SMALL + "  - pip:\n    - six\n"))
    env = ws.get_environment("killed")
    folder = VenvBuilder(home / "envs").plan(env).folder
    try:
        result = byom(home, "environment", "build", "-n", "killed", "--no-wait", "--query", "state", timeout=60)
        assert result.returncode == 0 and json.loads(result.stdout) == "Running"  # the CLI is back, the build goes on
        def pip_writing() -> dict | None:  # kill it once pip has started writing into the environment
            state = folder.read_state() or {}
            assert state.get("state") == "Running", f"the build ended before pip wrote anything: {state}"
            return state if state.get("pid") and any(folder.venv.glob("lib/*/site-packages/*")) else None

        state = wait_until(pip_writing, 120, "pip to start writing into the environment")
        os.killpg(state["pid"], signal.SIGKILL)
        _wait_unlocked(folder)

        build = ws.get_environment_build("killed")
        assert build.state == "Failed" and "stopped before it finished" in build.message
        assert folder.venv.exists() and build.packages == []  # half-built, and reported as unusable
        # a deployment asking for it gets a new, complete build rather than the half-built one
        python = interpreter_for(home, env)
        assert python is not None
        rebuilt = ws.get_environment_build("killed")
        assert rebuilt.state == "Succeeded" and rebuilt.started_at > build.started_at
        check = subprocess.run([str(python), "-c", "import six, joblib, azureml_inference_server_http"],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        # forced: a new build starts although this one is complete
        forced = ws.build_environment("killed", force=True, wait=False)
        assert forced.state == "Running" and forced.started_at > rebuilt.started_at
    finally:
        _kill_build(folder)


def _wait_unlocked(folder: BuildFolder, timeout: float = 30) -> None:
    wait_until(lambda: not folder.is_locked(), timeout, f"the build of {folder.path} to let go of its lock")


def _kill_build(folder: BuildFolder) -> None:
    def killed() -> bool:
        if not folder.is_locked():
            return True
        pid = (folder.read_state() or {}).get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        return False

    wait_until(killed, 30, f"the build of {folder.path} to be killed and let go of its lock")


def test_an_environment_version_with_the_same_spec_shares_the_build_folder(tmp_path: Path) -> None:
    builder = VenvBuilder(tmp_path / "envs")
    a = EnvironmentVersion(name="a", version=1, conda_file=SMALL, python=PY, pip_requirements=["joblib==1.5.*"])
    b = a.replace(name="b", version=3)
    c = a.replace(pip_requirements=["joblib==1.5.*", "six"])
    assert builder.plan(a).folder == builder.plan(b).folder != builder.plan(c).folder
    assert builder.status(a).state == "NotStarted"


@pytest.mark.slow
def test_an_old_pin_with_numpy_left_free_builds_an_environment_that_imports(tmp_path: Path) -> None:
    # scikit-learn 1.2.2 was built against NumPy 1.x: beside NumPy 2 its import fails ("numpy.dtype size changed")
    ws = LocalWorkspace(tmp_path / "home")
    conda = "dependencies:\n  - python=3.11\n  - pip\n  - scikit-learn=1.2.2\n"
    ws.create_environment(EnvironmentSpec(name="old-sklearn", conda_file=conda))
    build = ws.build_environment("old-sklearn")
    assert build.state == "Succeeded", build.message
    assert "Note: added numpy<2: scikit-learn==1.2.2 was built against NumPy 1.x" in build.log
    assert "numpy<2" in build.message
    probe = subprocess.run([build.interpreter or "", "-c", "import numpy, sklearn.linear_model;"
                            "print(numpy.__version__, sklearn.__version__)"], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    numpy_version, sklearn_version = probe.stdout.split()
    assert numpy_version.startswith("1.") and sklearn_version == "1.2.2"
