"""The sidebar's switch to an Azure ML workspace, and the pages on it, over the replayed Azure ML REST API.

The console opens the workspace itself, through ``core.azure.connect``,
as a served console does; the test only hands it a credential that never
signs in and the replay's HTTP transport (``keys.AZURE_CONNECT``), so
azure-ai-ml's real client talks to ``tests.azure_replay``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from byom.console import context, keys
from byom.core.entities import Deployment, Endpoint, EnvironmentSpec, ModelSpec
from streamlit.testing.v1 import AppTest

from tests.azure_replay.sdk import ReplayCredential, bind_blob_clients, replay_workspace
from tests.azure_replay.service import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeAzureML
from tests.azure_replay.wire import replay_transport

from .apptest_helpers import by_label, register, texts
from .conftest import APP

ASSETS = Path(__file__).resolve().parents[1] / "contract" / "assets"
CONDA = "name: scoring\ndependencies:\n  - python=3.11\n  - pip:\n    - numpy==2.3.1\n"


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))  # the local start page, and the Azure audit log
    for name in ("BYOM_AZURE_CONFIG", "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    service = FakeAzureML(seed=1)
    yield service
    context.forget_azure_workspaces()
    assert service.refused == [], "the console sent requests Azure ML refuses"


@pytest.fixture
def filled(service, tmp_path, monkeypatch, model_folder):
    """The Azure workspace holds a model, an environment and an endpoint with one deployment."""
    ws = replay_workspace(service, monkeypatch, tmp_path / "setup-audit", actor="tester")
    ws.create_model(ModelSpec(name="clf", path=str(model_folder)))
    ws.create_environment(EnvironmentSpec(name="scoring", conda_file=CONDA))
    ws.create_or_update_endpoint(Endpoint(name="ep1"))
    ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="ep1", model="clf:1",
                                              code_path=str(ASSETS), scoring_script="echo_score.py"))
    ws.set_traffic("ep1", {"blue": 100})
    ws.close()
    return service


def console(service, monkeypatch, credential=None) -> AppTest:
    """The console on its start page (the local home), able to reach the replay when asked to open Azure."""
    transport = replay_transport(service)
    bind_blob_clients(monkeypatch, transport)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state[keys.AZURE_CONNECT] = {"credential": credential or ReplayCredential(), "transport": transport}
    at.run()
    assert not at.exception, at.exception
    return at


def open_azure(at: AppTest, **fields: str) -> AppTest:
    at.radio(key=keys.SIDEBAR_BACKEND).set_value("Azure ML").run()
    for key, value in fields.items():
        at.text_input(key=key).set_value(value)
    at.button(key=keys.SIDEBAR_OPEN_AZURE).click()
    at.run()
    assert not at.exception, at.exception
    return at


BY_NAME = {keys.SIDEBAR_AZURE_SUBSCRIPTION: SUBSCRIPTION, keys.SIDEBAR_AZURE_RESOURCE_GROUP: RESOURCE_GROUP,
           keys.SIDEBAR_AZURE_WORKSPACE: WORKSPACE}


def test_switch_to_an_azure_workspace_by_name_and_see_the_overview(filled, monkeypatch):
    at = console(filled, monkeypatch)
    assert "local ·" in texts(at.sidebar.caption)

    at = open_azure(at, **BY_NAME)

    assert not at.error
    assert f"azure · {WORKSPACE}" in texts(at.sidebar.caption)
    assert f"azure workspace **{WORKSPACE}**" in texts(at.caption)
    # Environments: scoring, local-python, and byom-local-python (local-python as the deployment made it on Azure).
    assert [m.value for m in at.metric][:4] == ["1", "3", "1", "1"]
    assert "Set up the demo" not in [b.label for b in at.button], "the demo is not deployed to a billed workspace"
    assert "#### ep1" in texts(at.markdown)
    assert "blue 100" in texts(at.markdown)
    assert by_label(at.metric, "Requests / min (5 min)").value == "n/a"
    assert "does not report request rates" in texts(at.caption)


def test_switch_to_an_azure_workspace_from_its_config_json(filled, monkeypatch, tmp_path):
    config = write_config(tmp_path)
    at = open_azure(console(filled, monkeypatch), **{keys.SIDEBAR_AZURE_CONFIG: str(config)})
    assert f"azure · {WORKSPACE}" in texts(at.sidebar.caption)

    at.switch_page("screens/models.py").run()
    assert not at.exception
    assert list(at.dataframe[0].value["name"]) == ["clf"]
    assert at.dataframe[1].value["deployed in"][0] == "ep1/blue"


def test_environments_explain_that_azure_reports_no_builds(filled, monkeypatch):
    at = open_azure(console(filled, monkeypatch), **BY_NAME)
    at.switch_page("screens/environments.py").run()
    at.selectbox(key=keys.ENVIRONMENT).set_value("scoring").run()

    assert not at.exception
    assert not at.error
    explained = texts(at.info)
    assert "Build status is not available on this azure workspace" in explained
    assert "does not report build status" in explained and "ml.azure.com" in explained
    assert "is not visible through azure-ai-ml" in explained  # the drift report
    assert "Build now" not in [b.label for b in at.button]
    assert "numpy==2.3.1" in texts(at.code)


def test_monitoring_explains_that_metrics_are_in_azure_monitor(filled, monkeypatch):
    at = open_azure(console(filled, monkeypatch), **BY_NAME)
    at.switch_page("screens/monitoring.py").run()

    assert not at.exception
    assert not at.error
    assert [s.value for s in at.subheader] == ["Request metrics are not available for this workspace"]
    assert "Azure Monitor, which azure-ai-ml does not read" in texts(at.info)
    assert not at.get("plotly_chart")


def test_consumers_explain_that_azure_has_none_and_name_api_management(filled, monkeypatch):
    at = open_azure(console(filled, monkeypatch), **BY_NAME)
    at.switch_page("screens/consumers.py").run()

    assert not at.exception
    assert not at.error
    assert [s.value for s in at.subheader] == ["Consumers are not available for this workspace"]
    assert "capability is absent" in texts(at.info) and "llm-token-limit" in texts(at.info)
    assert not at.get("plotly_chart")


@pytest.mark.parametrize("page", ["endpoints", "playground", "token_ranks"])
def test_the_other_pages_render_on_azure(filled, monkeypatch, page):
    at = open_azure(console(filled, monkeypatch), **BY_NAME)
    at.switch_page(f"screens/{page}.py").run()
    assert not at.exception
    assert not at.error


def test_a_missing_sign_in_is_explained_and_the_session_stays_local(service, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError

    class NotSignedIn:
        def get_token(self, *scopes, **kwargs):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token from the included "
                                            "credentials. Please run 'az login' to set up an account.")

    at = open_azure(console(service, monkeypatch, credential=NotSignedIn()), **BY_NAME)

    assert "Azure refused the credentials" in texts(at.sidebar.error)
    assert "Sign in with 'az login'" in texts(at.sidebar.info)
    assert "local ·" in texts(at.sidebar.caption)
    assert at.title[0].value == "Overview"


def test_a_workspace_that_does_not_exist_is_explained(service, monkeypatch):
    at = open_azure(console(service, monkeypatch), **{**BY_NAME, keys.SIDEBAR_AZURE_WORKSPACE: "no-such-ws"})
    assert "There is no Azure ML workspace 'no-such-ws' in resource group 'test-rg'" in texts(at.sidebar.error)
    assert "Check the subscription, resource group and workspace name" in texts(at.sidebar.info)
    assert "local ·" in texts(at.sidebar.caption)


def test_missing_names_and_config_files_are_explained(service, monkeypatch, tmp_path):
    at = open_azure(console(service, monkeypatch), **{keys.SIDEBAR_AZURE_WORKSPACE: WORKSPACE})
    assert "needs --subscription, --resource-group as well" in texts(at.sidebar.error)

    at = open_azure(at, **{keys.SIDEBAR_AZURE_WORKSPACE: "", keys.SIDEBAR_AZURE_CONFIG: str(tmp_path / "nope.json")})
    assert "does not exist" in texts(at.sidebar.error)
    assert "Download config.json" in texts(at.sidebar.info)


def write_config(folder: Path) -> Path:
    config = folder / "config.json"
    config.write_text(json.dumps({"subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP,
                                  "workspace_name": WORKSPACE}))
    return config


def test_byom_azure_config_opens_that_workspace_first(filled, monkeypatch, tmp_path):
    monkeypatch.setenv("BYOM_AZURE_CONFIG", str(write_config(tmp_path)))
    at = console(filled, monkeypatch)
    assert at.radio(key=keys.SIDEBAR_BACKEND).value == "Azure ML"
    assert f"azure · {WORKSPACE}" in texts(at.sidebar.caption)
    assert "#### ep1" in texts(at.markdown)


def test_the_three_azure_variables_open_that_workspace_first(filled, monkeypatch):
    for name, value in (("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION), ("AZURE_RESOURCE_GROUP", RESOURCE_GROUP),
                        ("AZUREML_WORKSPACE_NAME", WORKSPACE)):
        monkeypatch.setenv(name, value)
    at = console(filled, monkeypatch)
    assert at.radio(key=keys.SIDEBAR_BACKEND).value == "Azure ML"
    assert f"azure · {WORKSPACE}" in texts(at.sidebar.caption)
    assert "#### ep1" in texts(at.markdown)


def test_a_byom_azure_config_that_does_not_exist_is_explained_and_local_stays_reachable(service, monkeypatch, tmp_path):
    monkeypatch.setenv("BYOM_AZURE_CONFIG", str(tmp_path / "gone.json"))
    at = console(service, monkeypatch)
    assert "does not exist" in texts(at.error)
    assert "Download config.json" in texts(at.info)

    at.radio(key=keys.SIDEBAR_BACKEND).set_value("Local").run()
    at.button(key=keys.SIDEBAR_OPEN_LOCAL).click()
    at.run()
    assert not at.exception and not at.error
    assert "local ·" in texts(at.sidebar.caption)


def test_the_served_console_gets_its_workspace_through_the_environment(tmp_path, monkeypatch):
    from byom.console.launch import console_command

    monkeypatch.setenv("BYOM_AZURE_CONFIG", "/elsewhere/config.json")
    for name, value in (("AZURE_SUBSCRIPTION_ID", "sub"), ("AZURE_RESOURCE_GROUP", "rg"),
                        ("AZUREML_WORKSPACE_NAME", "ws")):
        monkeypatch.setenv(name, value)
    _, env = console_command(tmp_path / "home", 8600)
    assert env["BYOM_HOME"] == str(tmp_path / "home"), "a local home wins"
    assert not {"BYOM_AZURE_CONFIG", "AZURE_SUBSCRIPTION_ID", "AZUREML_WORKSPACE_NAME"} & set(env)
    _, env = console_command(None, 8600, azure_config=tmp_path / "config.json")
    assert env["BYOM_AZURE_CONFIG"] == str(tmp_path / "config.json")


def test_endpoint_changes_on_azure_report_the_operation_as_it_runs(filled, monkeypatch, progress_boxes):
    at = open_azure(console(filled, monkeypatch), **BY_NAME)
    at.switch_page("screens/endpoints.py").run()
    at.text_input(key=keys.ENDPOINT_CREATE_NAME).set_value("ep2")
    at.button(key=keys.ENDPOINT_CREATE_SUBMIT).click()
    at.run()

    assert not at.exception
    assert "Created endpoint ep2. Deploy a model into it next." in texts(at.success)
    (label, messages), = progress_boxes
    assert label == "Creating endpoint ep2"
    assert any(m.startswith("Create endpoint 'ep2': InProgress (") for m in messages), messages  # while Azure works
    assert messages[-1] == "Create endpoint 'ep2': done"


def test_a_jobs_outputs_are_registered_in_place_from_the_models_page(filled, monkeypatch, tmp_path):
    job_output = "azureml://jobs/train-42/outputs/artifacts/paths/model/"
    filled.storage.put("ExperimentRun/dcid.train-42/model/model.pkl", b"trained")
    at = open_azure(console(filled, monkeypatch), **BY_NAME)
    at.switch_page("screens/models.py").run()
    assert "azureml://jobs/" in at.text_input(key=keys.REGISTER_PATH).help, "the form says cloud paths are taken"
    register(at, "trained", job_output)

    assert not at.exception
    assert "Registered trained:1." in texts(at.success)
    versions = at.dataframe[1].value
    assert (versions["size"][0], versions["sha256"][0]) == ("in cloud storage", "not recorded")
    assert f"Registered in place from {job_output}" in texts(at.caption)
    assert not [b for b in at.get("download_button")], "no .zip of files byom never saw"

    at.text_input(key=keys.DOWNLOAD_DEST).set_value(str(tmp_path / "dl"))
    at.button(key=keys.DOWNLOAD).click()
    at.run()
    assert not at.exception
    assert "cannot download" in texts(at.error) and "az ml job download --name train-42" in texts(at.info)


def test_an_environment_is_created_from_a_docker_context_on_azure(filled, monkeypatch, tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    at = open_azure(console(filled, monkeypatch), **BY_NAME)
    at.switch_page("screens/environments.py").run()
    at.text_input(key=keys.ENV_CREATE_NAME).set_value("docker")
    at.text_input(key=keys.ENV_CREATE_BUILD_CONTEXT).set_value(str(tmp_path / "ctx"))
    at.button(key=keys.ENV_CREATE_SUBMIT).click()
    at.run()

    assert not at.exception
    assert "Created environment docker:1." in texts(at.success)
    table = at.dataframe[0].value
    assert list(table.loc[table["name"] == "docker", "image"]) == ["Docker build"]
    assert any("Built from the Docker context" in m and "/ctx/" in m for m in (e.value for e in at.markdown))
