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
