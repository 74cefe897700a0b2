"""Environments: create versions, see the spec, diff two versions, build, drift."""

from byom.console import keys
from byom.core.builds import FakeBuilder
from byom.core.entities import Deployment, EnvironmentSpec

from .apptest_helpers import texts

CONDA_V1 = "name: scoring\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy==2.3.1\n"
CONDA_V2 = "name: scoring\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy==2.3.2\n    - requests==2.32.3\n"


def create(at, name: str, conda: str):
    at.text_input(key=keys.ENV_CREATE_NAME).set_value(name)
    at.text_area(key=keys.ENV_CREATE_CONDA).set_value(conda)
    at.button(key=keys.ENV_CREATE_SUBMIT).click()
    return at.run()


def test_the_built_in_environment_is_listed(open_page):
    at = open_page("environments")
    table = at.dataframe[0].value
    assert list(table["name"]) == ["local-python"]
    assert "**Ready**" in texts(at.markdown)
    assert keys.ENV_CREATE_BUILD_CONTEXT not in [w.key for w in at.text_input], "no Docker here to build with"


def test_create_two_versions_diff_them_and_build(open_page, workspace, spinners):
    at = create(open_page("environments"), "scoring", CONDA_V1)
    assert spinners == ["Creating environment scoring…"]
    assert "Created environment scoring:1." in texts(at.success)
    at = create(at, "scoring", CONDA_V2)
    assert "Created environment scoring:2." in texts(at.success)

    at.selectbox(key=keys.ENVIRONMENT).set_value("scoring").run()
    assert not at.exception
    assert CONDA_V2.strip() in texts(at.code)
    diff = [c.value for c in at.code if c.language == "diff"]
    assert diff and "-    - numpy==2.3.1" in diff[0] and "+    - requests==2.32.3" in diff[0]
    assert "changed numpy==2.3.1 → numpy==2.3.2" in texts(at.markdown)
    assert "added requests==2.32.3" in texts(at.markdown)

    assert "**Not built yet**" in texts(at.markdown)
    at.button(key=keys.ENV_BUILD).click()
    at.run()
    assert "Build of scoring:2: Ready." in texts(at.success)
    assert "**Ready**" in texts(at.markdown)
    assert "Installed numpy==2.3.2" in texts(at.code)
    drift = at.dataframe[-1].value
    assert set(drift["package"]) == {"numpy", "requests"}


def test_a_refused_spec_is_explained(open_page):
    at = create(open_page("environments"), "broken", "just: text\n")
    assert not at.exception
    assert at.error


def test_usage_is_shown_for_every_version(open_page, demo):
    demo.create_environment(EnvironmentSpec(name="scoring", conda_file=CONDA_V1))
    demo.create_or_update_deployment(Deployment(name="green", endpoint_name="demo", model="smollm2-135m-instruct:1",
                                                environment="scoring:1"))
    demo.create_environment(EnvironmentSpec(name="scoring", conda_file=CONDA_V2))
    at = open_page("environments")
    assert at.dataframe[0].value.set_index("name").loc["scoring", "used by"] == "demo/green"

    at.selectbox(key=keys.ENVIRONMENT).set_value("scoring").run()
    versions = at.dataframe[1].value
    assert list(versions["version"]) == [2, 1]
    assert list(versions["used by"]) == ["", "demo/green"]


def test_archive_hides_a_version_until_restored(open_page, workspace):
    workspace.create_environment(EnvironmentSpec(name="scoring", conda_file=CONDA_V1))
    workspace.create_environment(EnvironmentSpec(name="scoring", conda_file=CONDA_V2))
    at = open_page("environments")
    at.selectbox(key=keys.ENVIRONMENT).set_value("scoring").run()
    assert at.selectbox(key=keys.environment_version("scoring")).value == 2
    at.button(key=keys.ENV_ARCHIVE).click().run()
    assert not at.exception
    assert "Archived scoring:2: turn on 'Show archived' to see it again." in texts(at.success)
    assert workspace.get_environment("scoring").version == 1
    assert at.dataframe[0].value.set_index("name").loc["scoring", "latest"] == 1
    assert list(at.dataframe[1].value["archived"]) == [True, False]

    at.selectbox(key=keys.environment_version("scoring")).set_value(1).run()
    at.button(key=keys.ENV_ARCHIVE).click().run()
    assert list(at.dataframe[0].value["name"]) == ["local-python"]
    at.toggle(key=keys.ENV_SHOW_ARCHIVED).set_value(True).run()
    assert list(at.dataframe[0].value["name"]) == ["local-python", "scoring"]
    at.selectbox(key=keys.ENVIRONMENT).set_value("scoring").run()
    at.button(key=keys.ENV_RESTORE).click().run()
    assert "Restored scoring:2." in texts(at.success)
    assert workspace.get_environment("scoring").version == 2


def test_the_diff_names_a_changed_image(open_page, workspace):
    workspace.create_environment(EnvironmentSpec(name="img", conda_file=CONDA_V1, image="ubuntu:22.04"))
    workspace.create_environment(EnvironmentSpec(name="img", conda_file=CONDA_V1, image="ubuntu:24.04"))
    at = open_page("environments")
    at.selectbox(key=keys.ENVIRONMENT).set_value("img").run()
    assert not at.exception
    assert "image ubuntu:22.04 → ubuntu:24.04" in texts(at.markdown)


PIP_NOISE = ["  Downloading numpy-2.3.2-cp311-cp311-manylinux_2_28_x86_64.whl (16.6 MB)",
             "     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 16.6/16.6 MB 48.1 MB/s eta 0:00:00",
             "Requirement already satisfied: idna<4,>=2.5 in ./venv/lib/python3.11/site-packages (3.10)"]
PIP_ERROR = "ERROR: Could not find a version that satisfies the requirement requests==2.32.3 (from versions: none)"


class PipLikeBuilder(FakeBuilder):
    """The in-memory builder, its log written as pip writes one, ending in pip's error."""

    def build(self, env, *, force, wait, progress):
        build = super().build(env, force=force, wait=wait, progress=progress)
        build.log = "\n".join(["Collecting numpy==2.3.2", *PIP_NOISE, PIP_ERROR, build.log])
        return build


def test_the_build_log_hides_pip_noise_until_asked_and_keeps_errors(open_page, workspace):
    workspace.store_backend.builder = PipLikeBuilder()
    at = create(open_page("environments"), "scoring", CONDA_V2)
    at.selectbox(key=keys.ENVIRONMENT).set_value("scoring").run()
    at.button(key=keys.ENV_BUILD).click()
    at.run()
    assert not at.exception

    def log() -> str:
        (box,) = [c.value for c in at.code if "Collecting numpy==2.3.2" in c.value]
        return box

    lines = log().splitlines()
    assert PIP_ERROR in lines and "Installed numpy==2.3.2" in lines
    assert not set(PIP_NOISE) & set(lines), "pip's progress bars, downloads and 'already satisfied' are hidden"
    assert "3 line(s) of pip progress and downloads hidden" in texts(at.caption)

    at.toggle(key=keys.ENV_LOG_ALL).set_value(True).run()
    assert set(PIP_NOISE) <= set(log().splitlines()), "the toggle shows every line"


def test_drift_says_not_built_yet_instead_of_comparing_with_byom(open_page, workspace):
    at = create(open_page("environments"), "scoring", CONDA_V1)
    at.selectbox(key=keys.ENVIRONMENT).set_value("scoring").run()
    assert "Not built yet. Nothing is installed where it will run" in texts(at.info)
    drift = at.dataframe[-1].value
    assert list(drift.columns) == ["package", "pinned", "status"]
    assert list(drift["status"]) == ["not built yet"]

    at.button(key=keys.ENV_BUILD).click()
    at.run()
    assert "Not built yet" not in texts(at.info)
    drift = at.dataframe[-1].value
    assert (list(drift["installed"]), list(drift["status"]), list(drift["source"])) == (["2.3.1"], ["ok"], ["build"])
