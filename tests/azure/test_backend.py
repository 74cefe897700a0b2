"""What the Azure backend sends and says, beyond the shared contract (over the replay)."""

import json
from pathlib import Path

import pytest

from core.cli import main
from core.entities import Deployment, Endpoint, ModelSpec
from core.errors import BackendError, InvalidInput, Unsupported
from tests.azure_replay.sdk import replay_workspace
from tests.azure_replay.service import FakeAzureML
from tests.azure_replay.wire import Call, replay_transport
from tests.contract.contract import make_model_dir

ASSETS = Path(__file__).parent.parent / "contract" / "assets"


@pytest.fixture
def service():
    service = FakeAzureML(seed=3)
    yield service
    assert service.unrouted == []


@pytest.fixture
def ws(service, tmp_path, monkeypatch):
    workspace = replay_workspace(service, monkeypatch, tmp_path / "audit", actor="tester")
    yield workspace
    workspace.close()


def deployment(name: str, **changes) -> Deployment:
    return Deployment(name=name, endpoint_name="ep1", model="clf:1", code_path=str(ASSETS),
                      scoring_script="echo_score.py", environment_variables={"DEPLOYMENT_LABEL": name}, **changes)


@pytest.fixture
def endpoint(ws, tmp_path):
    ws.create_model(ModelSpec(name="clf", path=str(make_model_dir(tmp_path / "m"))))
    ws.create_or_update_endpoint(Endpoint(name="ep1"))
    return ws


def test_traffic_is_sent_lower_cased_and_a_bad_split_is_never_sent(endpoint, service) -> None:
    endpoint.create_or_update_deployment(deployment("Blue"))
    endpoint.create_or_update_deployment(deployment("green"))
    endpoint.set_traffic("ep1", {"blue": 100}, {"green": 20})
    put = json.loads(service.sent("PUT", r"/onlineEndpoints/ep1$")[-1].body)
    assert put["properties"]["traffic"] == {"blue": 100}, "deployment names are compared lower-cased"
    assert put["properties"]["mirrorTraffic"] == {"green": 20}
    sent_before = len(service.sent("PUT", r"/onlineEndpoints/ep1$"))
    with pytest.raises(InvalidInput):
        endpoint.set_traffic("ep1", {"blue": 60})
    assert len(service.sent("PUT", r"/onlineEndpoints/ep1$")) == sent_before
    assert service.refused == []


def test_no_wait_returns_while_azure_is_still_creating(endpoint, service) -> None:
    started = endpoint.create_or_update_deployment(deployment("blue"), wait=False)
    assert started.provisioning_state == "Creating"
    service.run_pending()
    assert endpoint.get_deployment("ep1", "blue").provisioning_state == "Succeeded"


def test_a_failed_deployment_says_why_and_is_audited(endpoint, service) -> None:
    service.fail_next_deployment = "ImageBuildFailure: pip could not resolve torch==9.9"
    progress: list[str] = []
    result = endpoint.create_or_update_deployment(deployment("blue"), progress=lambda m, f=None: progress.append(m))
    assert result.provisioning_state == "Failed"
    assert "ImageBuildFailure" in result.state_reason
    assert any("InProgress" in m for m in progress), progress
    state = endpoint.list_audit(target_prefix="deployment/ep1/blue")[0]
    assert state.action == "deployment.state" and state.after["provisioning_state"] == "Failed"


def test_quota_errors_name_the_next_step(endpoint, service) -> None:
    service.no_quota_for.add("Standard_NC24ads_A100_v4")
    with pytest.raises(BackendError) as raised:
        endpoint.create_or_update_deployment(deployment("blue", instance_type="Standard_NC24ads_A100_v4"))
    assert "quota" in raised.value.message.lower() and "Quota" in raised.value.hint


def test_invoke_sends_a_fresh_header_set_each_time(endpoint, service) -> None:
    for name in ("blue", "green"):
        endpoint.create_or_update_deployment(deployment(name))
    endpoint.set_traffic("ep1", {"blue": 100})
    targeted = endpoint.invoke("ep1", {"x": 1}, deployment="green")
    untargeted = endpoint.invoke("ep1", {"x": 2})
    assert (targeted.deployment, untargeted.deployment) == ("green", "blue")
    assert untargeted.json() == {"echo": {"x": 2}, "deployment": "blue"}
    scoring = [c for c in service.calls if c.path == "/score"]
    assert scoring[0].headers["azureml-model-deployment"] == "green"
    assert "azureml-model-deployment" not in scoring[1].headers, "the targeted header leaked into a later call"
    assert untargeted.request_id and untargeted.latency_ms > 0


def test_invoke_uses_the_current_key_after_regeneration(endpoint) -> None:
    endpoint.create_or_update_deployment(deployment("blue"))
    endpoint.set_traffic("ep1", {"blue": 100})
    endpoint.regenerate_key("ep1", "primary")
    assert endpoint.invoke("ep1", {"x": 1}).status_code == 200


def test_stage_and_hashes_live_in_model_metadata(ws, service, tmp_path) -> None:
    ws.create_model(ModelSpec(name="m", path=str(make_model_dir(tmp_path / "m")), tags={"team": "nlp"}))
    ws.promote_model("m", 1, "staging", approver="lee", note="ok")
    put = json.loads(service.sent("PUT", r"/models/m/versions/1$")[-1].body)["properties"]
    assert put["tags"]["byom.stage"] == "staging" and put["tags"]["team"] == "nlp"
    assert json.loads(put["tags"]["byom.stage_history"])[0]["approver"] == "lee"
    assert len(json.loads(put["properties"]["byom.files"])) == 2
    shown = ws.get_model("m", 1)
    assert shown.tags == {"team": "nlp"} and shown.stage == "staging"


def test_progress_dots_of_the_sdk_do_not_reach_stdout(endpoint, capsys) -> None:
    capsys.readouterr()
    endpoint.create_or_update_deployment(deployment("blue"))
    assert capsys.readouterr().out == ""


def test_what_azure_cannot_show_is_said_with_where_to_look(endpoint) -> None:
    with pytest.raises(Unsupported) as metrics:
        endpoint.get_metrics("ep1")
    assert "Azure Monitor" in metrics.value.message and "ml.azure.com" in metrics.value.hint
    build = endpoint.get_environment_build("local-python")
    assert build.state == "Succeeded"
    assert endpoint.info().capabilities == ["deployments", "endpoints", "environments", "models"]


def test_audit_defaults_to_a_file_per_workspace_under_the_byom_home(service, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))
    ws = replay_workspace(service, monkeypatch, None)  # type: ignore[arg-type]
    try:
        ws.create_or_update_endpoint(Endpoint(name="ep9"))
        assert [r.action for r in ws.list_audit()] == ["endpoint.create"]
    finally:
        ws.close()
    assert (tmp_path / "home" / "azure" / "my-aml-workspace" / "audit.db").is_file()


def test_the_replay_refuses_what_azure_would(service) -> None:
    transport = replay_transport(service)
    from azure.core import PipelineClient
    from azure.core.rest import HttpRequest

    base = ("https://management.azure.com/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/"
            "test-rg/providers/Microsoft.MachineLearningServices/workspaces/my-aml-workspace/onlineEndpoints/x")
    body = {"location": "westeurope", "properties": {"authMode": "Key", "traffic": {}}}
    client = PipelineClient(base_url="", transport=transport, policies=[])
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    wrong_version = client.send_request(HttpRequest("PUT", base + "?api-version=2099-01-01", headers=headers, json=body))
    assert wrong_version.status_code == 400
    bad_traffic = client.send_request(HttpRequest("PUT", base + "?api-version=2022-02-01-preview", headers=headers,
                                                  json={**body, "properties": {"authMode": "Key", "traffic": {"ghost": 100}}}))
    assert bad_traffic.status_code == 400 and len(service.refused) == 2
    assert isinstance(service.calls[0], Call)


def test_cli_names_what_is_missing_for_an_azure_workspace(capsys, monkeypatch) -> None:
    for var in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME", "BYOM_AZURE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    assert main(["model", "list", "--workspace-name", "ws", "--resource-group", "rg"]) == 2
    assert "--subscription" in capsys.readouterr().err
    assert main(["model", "list", "--workspace-config", "/nonexistent/config.json"]) == 2
    assert "config.json" in capsys.readouterr().err


def test_local_flag_uses_the_local_workspace_even_where_azure_is_named(capsys, monkeypatch, tmp_path) -> None:
    # as az ml's --local does: the endpoint verbs run on this machine, whatever workspace the script names
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BYOM_AZURE_CONFIG", "/nonexistent/config.json")
    azure = ["--subscription", "sub", "-g", "rg", "-w", "ws"]
    assert main(["online-endpoint", "create", "-n", "local-ep", "--local", *azure]) == 0
    capsys.readouterr()
    assert main(["online-endpoint", "list", "--local", "--query", "[].name", *azure]) == 0
    assert json.loads(capsys.readouterr().out) == ["local-ep"]
    assert main(["online-endpoint", "delete", "-n", "local-ep", "--yes", "--local"]) == 0
