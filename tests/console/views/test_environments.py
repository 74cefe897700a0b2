"""console.views.environments: tables, users, the build's icon, drift and the diff of two versions."""

from byom.console.views import environments as view
from byom.core.entities import DiffLine, DriftEntry, EnvironmentDiff, EnvironmentVersion


def test_tables_say_who_uses_each_version():
    v1 = EnvironmentVersion(name="scoring", version=1, conda_file="name: x\n", python="3.11",
                            pip_requirements=["torch==2.13.0"])
    v2 = EnvironmentVersion(name="scoring", version=2, build_context="azureml://datastores/x/paths/ctx")
    usage = {"scoring:1": ["demo/chat"], "scoring:2": ["demo/ranks"], "other:1": ["demo/blue"]}
    table = view.environments_table([v2], usage)
    assert list(table["used by"]) == ["demo/chat, demo/ranks"]
    assert list(table["image"]) == ["Docker build"]
    versions = view.environment_versions_table([v2, v1], usage)
    assert list(versions["used by"]) == ["demo/ranks", "demo/chat"]
    assert list(versions["packages"]) == [0, 1]
    assert view.users_text(usage, v1) == "Used by: demo/chat"
    assert view.users_text({}, v1) == "Used by: no deployment"


def test_build_icons_and_drift_table():
    assert view.build_icon("Succeeded") == ":material/check_circle:"
    assert view.build_icon("NotStarted") == view.NO_BUILD_ICON
    assert view.build_line("NotStarted", "") == f"{view.NO_BUILD_ICON} **Not built yet**"
    assert view.build_line("Running", "pip install numpy_x") == (
        f"{view.BUILD_ICONS['Running']} **Building** pip install numpy\\_x")
    drift = view.drift_table([DriftEntry("numpy", "numpy==2.3.1", "2.3.0", "mismatch")])
    assert list(drift.columns)[:4] == ["package", "pinned", "installed", "status"]
    assert list(drift["status"]) == ["mismatch"]


def test_the_diff_of_two_versions_side_by_side_and_in_words():
    diff = EnvironmentDiff(
        name="scoring", from_version=1, to_version=2,
        conda=[DiffLine(" ", "name: x"), DiffLine("-", "  - numpy==2.3.0"), DiffLine("+", "  - numpy==2.3.1")],
        image=(None, "python:3.11"), added=["requests==2.34.2"], changed=[("numpy", "numpy==2.3.0", "numpy==2.3.1")],
    )
    old, new, unified = view.diff_sides(diff)
    assert old == "name: x\n  - numpy==2.3.0" and new == "name: x\n  - numpy==2.3.1"
    assert unified.splitlines() == [" name: x", "-  - numpy==2.3.0", "+  - numpy==2.3.1"]
    assert view.diff_changes(diff) == ["image (none) → python:3.11", "added requests==2.34.2",
                                       "changed numpy==2.3.0 → numpy==2.3.1"]
    assert view.diff_sides(EnvironmentDiff(name="e", from_version=1, to_version=2))[:2] == ("(empty)", "(empty)")


PIP_LOG = """\
Creating a virtual environment with /usr/bin/python3.11
Collecting numpy==2.3.1
  Downloading numpy-2.3.1-cp311-cp311-manylinux_2_28_x86_64.whl (16.6 MB)
     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 16.6/16.6 MB 48.1 MB/s eta 0:00:00
  Using cached requests-2.32.3-py3-none-any.whl (64 kB)
   |████████████████████████████████| 1.2 MB 3.1 MB/s
Requirement already satisfied: idna<4,>=2.5 in ./venv/lib/python3.11/site-packages (from requests) (3.10)
Requirement already satisfied: error-codes in ./venv (1.0)
ERROR: Could not find a version that satisfies the requirement surely-not==1.0 (from versions: none)
Downloading surely-not failed: connection refused
Installing collected packages: numpy, requests
Successfully installed numpy-2.3.1 requests-2.32.3"""


def test_the_build_log_hides_pip_noise_but_keeps_errors():
    text, hidden = view.build_log_text(PIP_LOG)
    lines = text.splitlines()
    noise = ("Downloading numpy", "Using cached", "Requirement already satisfied: idna")
    assert not any(line.lstrip().startswith(noise) for line in lines)
    assert not any("━━━" in line or "████" in line for line in lines), "progress bars are noise"
    assert "ERROR: Could not find a version that satisfies the requirement surely-not==1.0 (from versions: none)" \
        in lines
    assert "Downloading surely-not failed: connection refused" in lines, "an error line is kept, whatever its start"
    assert lines[0] == "Creating a virtual environment with /usr/bin/python3.11"
    assert "Collecting numpy==2.3.1" in lines and lines[-1] == "Successfully installed numpy-2.3.1 requests-2.32.3"
    assert "Requirement already satisfied: error-codes in ./venv (1.0)" not in lines, "a package's name is no error"
    assert hidden == len(PIP_LOG.splitlines()) - len(lines) == 6
    assert view.build_log_text(PIP_LOG, show_all=True) == (PIP_LOG, 0)


def test_drift_of_a_version_never_built_shows_the_pins_alone():
    drift = [DriftEntry("numpy", "numpy==2.3.1", None, "not built yet", source="not built yet", current="2.3.5")]
    assert view.not_built(drift)
    table = view.drift_table(drift)
    assert list(table.columns) == ["package", "pinned", "status"], "nothing compared with byom's interpreter"
    assert view.not_built_text(drift, can_build=True).startswith("Not built yet. Nothing is installed")
    failed = [DriftEntry("numpy", "numpy==2.3.1", None, "not built yet",
                         source="not built yet (the last build failed)")]
    assert view.not_built_text(failed, can_build=False).startswith("Not built yet: the last build failed.")
    assert not view.not_built([DriftEntry("numpy", "numpy==2.3.1", "2.3.1", "ok", source="build")])
    assert not view.not_built([])
