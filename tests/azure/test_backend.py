"""What the Azure backend sends and says, beyond the shared contract (over the replay)."""

import json
import time
from pathlib import Path

import pytest
from byom.cli.main import main
from byom.core.entities import BuildState, Deployment, Endpoint, EnvironmentSpec, ModelSpec
from byom.core.errors import AlreadyExists, BackendError, ByomError, InvalidInput, NotFound, Unsupported

from tests.azure_replay.sdk import bind_blob_clients, replay_workspace
from tests.azure_replay.service import LOCATION, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeAzureML
from tests.azure_replay.wire import Call, replay_transport
from tests.contract.contract import make_model_dir
from tests.waiting import wait_until

ASSETS = Path(__file__).parent.parent / "contract" / "assets"


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


def status_reads(service: FakeAzureML) -> int:
    return len(service.sent("GET", r"/mfeOperationsStatus/"))


def wait_for_status_reads(service: FakeAzureML, more_than: int) -> None:
    """Until azure-core's poller thread has read an operation's status a few more times."""
    wait_until(lambda: status_reads(service) > more_than + 2, 10,
               "the SDK's poller thread to read the operation's status again", every_s=0.005)


def test_no_wait_returns_while_azure_is_still_creating(endpoint, service, capsys) -> None:
    service.hold = True
    before = status_reads(service)
    capsys.readouterr()
    started = endpoint.create_or_update_deployment(deployment("blue"), wait=False)
    assert started.provisioning_state == "Creating"
    # the SDK keeps polling on its own thread; however often it reads, the operation stays open
    wait_for_status_reads(service, before)
    assert endpoint.get_deployment("ep1", "blue").provisioning_state == "Creating"
    assert capsys.readouterr().out == "", "the SDK's poller thread printed its dots on stdout"
    service.run_pending()
    assert endpoint.get_deployment("ep1", "blue").provisioning_state == "Succeeded"


def report_and_release(service: FakeAzureML, seen: list[str]):
    """A progress callback that lets Azure finish once the backend has reported the running operation."""
    def report(message: str, fraction: float | None = None) -> None:
        seen.append(message)
        if "InProgress" in message:
            service.run_pending()

    return report


def test_endpoint_changes_report_progress_while_azure_works(endpoint, service) -> None:
    endpoint.create_or_update_deployment(deployment("blue"))
    service.hold = True
    changes = {
        "create endpoint 'ep2'":
            lambda report: endpoint.create_or_update_endpoint(Endpoint(name="ep2"), progress=report),
        "set the traffic of endpoint 'ep1'": lambda report: endpoint.set_traffic("ep1", {"blue": 100}, progress=report),
        "regenerate the secondary key of endpoint 'ep1'":
            lambda report: endpoint.regenerate_key("ep1", "secondary", progress=report),
        "delete endpoint 'ep2'": lambda report: endpoint.delete_endpoint("ep2", progress=report),
    }
    for what, change in changes.items():
        seen: list[str] = []
        change(report_and_release(service, seen))
        said = f"{what[0].upper()}{what[1:]}"
        assert any(m.startswith(f"{said}: InProgress") for m in seen), seen
        assert seen[-1] == f"{said}: done", seen
        assert service.pending() == []
    endpoint.set_traffic("ep1", {}, progress=report_and_release(service, []))
    seen = []
    endpoint.delete_deployment("ep1", "blue", progress=report_and_release(service, seen))
    assert any(m.startswith("Delete deployment 'blue' of endpoint 'ep1': InProgress") for m in seen), seen


def test_no_wait_leaves_endpoint_changes_to_azure(endpoint, service) -> None:
    endpoint.create_or_update_deployment(deployment("blue"))
    endpoint.create_or_update_endpoint(Endpoint(name="ep2"))
    keys = endpoint.get_keys("ep1")
    service.hold = True
    seen: list[str] = []
    created = endpoint.create_or_update_endpoint(Endpoint(name="ep3"), wait=False,
                                                 progress=lambda m, f=None: seen.append(m))
    assert created.provisioning_state == "Creating"
    assert seen[-1] == "Create endpoint 'ep3': accepted; Azure ML goes on with it"
    assert endpoint.regenerate_key("ep1", "primary", wait=False) == keys, "not in effect until Azure is done"
    assert endpoint.set_traffic("ep1", {"blue": 100}, wait=False).provisioning_state == "Updating"
    endpoint.delete_endpoint("ep2", wait=False)
    assert endpoint.get_endpoint("ep2").provisioning_state == "Deleting"
    assert len(service.pending()) == 4
    service.run_pending()
    assert endpoint.get_keys("ep1").primary_key != keys.primary_key
    assert endpoint.get_endpoint("ep1").provisioning_state == "Succeeded"
    assert endpoint.get_endpoint("ep3").provisioning_state == "Succeeded"
    with pytest.raises(NotFound):
        endpoint.get_endpoint("ep2")
    endpoint.set_traffic("ep1", {}, progress=report_and_release(service, []))
    endpoint.delete_deployment("ep1", "blue", wait=False)
    assert endpoint.get_deployment("ep1", "blue").provisioning_state == "Deleting"
    service.run_pending()
    assert endpoint.list_deployments("ep1") == []
    actions = [r.action for r in endpoint.list_audit()]
    assert actions[:2] == ["deployment.delete", "endpoint.traffic"] and "endpoint.delete" in actions


def test_a_failed_deployment_says_why_and_is_audited(endpoint, service) -> None:
    service.fail_next_deployment = "ImageBuildFailure: pip could not resolve torch==9.9"
    service.hold = True  # until the backend has reported the running operation: a fast poller can beat it
    progress: list[str] = []
    result = endpoint.create_or_update_deployment(deployment("blue"), progress=report_and_release(service, progress))
    assert result.provisioning_state == "Failed"
    assert "ImageBuildFailure" in result.state_reason
    assert any("InProgress" in m for m in progress), progress
    state = endpoint.list_audit(target_prefix="deployment/ep1/blue")[0]
    assert state.action == "deployment.state" and state.after["provisioning_state"] == "Failed"


NAME_TAKEN = ("There is already an endpoint with this name, Endpoint name needs to be unique within a region. "
              "Try some other name.")
CORE_QUOTA = ("Operation could not be completed as it results in exceeding approved standardDSv2Family Cores quota. "
              "Additional details - Deployment Model: Resource Manager, Location: westeurope, Current Limit: 10, "
              "Current Usage: 8, Additional Required: 4, (Minimum) New Limit Required: 12. Submit a request for "
              "Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView "
              "by specifying parameters listed in the 'Details' section for deployment to succeed.")


def test_a_name_taken_in_the_region_says_to_pick_another(ws, service) -> None:
    service.fail_next("PUT", r"/onlineEndpoints/chat$", 400, "UserError", NAME_TAKEN)
    with pytest.raises(AlreadyExists) as raised:
        ws.create_or_update_endpoint(Endpoint(name="chat"))
    assert "unique within a region" in raised.value.message
    assert "unique per Azure region" in raised.value.hint and "pick another name" in raised.value.hint


def test_a_version_clash_is_not_called_a_name_taken_in_the_region(ws, service, tmp_path) -> None:
    src = make_model_dir(tmp_path / "m")
    service.fail_next("PUT", r"/models/clf/versions/1$", 409, "UserError",
                      "Model clf:1 already exists and its modelUri cannot change: assets are immutable.")
    with pytest.raises(AlreadyExists) as raised:
        ws.create_model(ModelSpec(name="clf", path=str(src)))
    assert "region" not in raised.value.hint and "--version" in raised.value.hint


def test_a_quota_refused_as_a_conflict_still_says_to_request_quota(endpoint, service) -> None:
    service.fail_next("PUT", r"/deployments/blue$", 409, "OperationNotAllowed", CORE_QUOTA)
    with pytest.raises(BackendError) as raised:
        endpoint.create_or_update_deployment(deployment("blue"))
    assert "not enough quota" in raised.value.message and "Request more quota" in raised.value.hint


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


def test_changing_an_archived_model_never_shows_it_in_lists(ws, service, tmp_path) -> None:
    ws.create_model(ModelSpec(name="m", path=str(make_model_dir(tmp_path / "m"))))
    ws.create_model(ModelSpec(name="m", path=str(make_model_dir(tmp_path / "m"))))
    ws.archive_model("m", 2)
    archived_at = len(service.calls)
    ws.update_model("m", 2, description="kept for the audit")
    ws.promote_model("m", 2, "staging", approver="lee")
    puts = [c for c in service.calls[archived_at:] if c.method == "PUT" and "/models/m/versions/2" in c.path]
    assert puts and all(json.loads(c.body)["properties"]["isArchived"] is True for c in puts), \
        "a PUT with isArchived false shows the version in lists until it is archived again"
    assert ws.get_model("m", "latest").version == 1
    shown = ws.get_model("m", 2)
    assert shown.archived and shown.description == "kept for the audit" and shown.stage == "staging"


def test_stage_and_hashes_live_in_model_metadata(ws, service, tmp_path) -> None:
    ws.create_model(ModelSpec(name="m", path=str(make_model_dir(tmp_path / "m")), tags={"team": "nlp"}))
    ws.promote_model("m", 1, "staging", approver="lee", note="ok")
    put = json.loads(service.sent("PUT", r"/models/m/versions/1$")[-1].body)["properties"]
    assert put["tags"]["byom.stage"] == "staging" and put["tags"]["team"] == "nlp"
    assert json.loads(put["tags"]["byom.stage_history"])[0]["approver"] == "lee"
    assert len(json.loads(put["properties"]["byom.files"])) == 2
    shown = ws.get_model("m", 1)
    assert shown.tags == {"team": "nlp"} and shown.stage == "staging"


JOB_OUTPUT = "azureml://jobs/train-42/outputs/artifacts/paths/model/"


def test_a_datastore_path_is_registered_and_downloads_as_stored(ws, service, tmp_path) -> None:
    service.storage.put("models/clf/model.pkl", b"pickled")
    service.storage.put("models/clf/sub/vocab.txt", b"a\nb\n")
    model = ws.create_model(ModelSpec(name="clf", path="azureml://datastores/workspaceblobstore/paths/models/clf/"))
    assert model.path.endswith(f"/workspaces/{WORKSPACE}/datastores/workspaceblobstore/paths/models/clf/") \
        and model.path.startswith("azureml://subscriptions/"), "the SDK writes the datastore path out in full"
    out = ws.download_model("clf", 1, tmp_path / "dl")
    assert (out / "model.pkl").read_bytes() == b"pickled" and (out / "sub" / "vocab.txt").read_bytes() == b"a\nb\n"


def test_a_model_registered_by_az_ml_downloads_whole(ws, service, tmp_path) -> None:
    from azure.ai.ml.entities import Model

    ws.ml.models.create_or_update(Model(name="outside", version="1", path=str(make_model_dir(tmp_path / "m"))))
    shown = ws.get_model("outside")
    assert (shown.files, shown.source) == ([], ""), "byom recorded nothing for it"
    out = ws.download_model("outside", 1, tmp_path / "dl")
    assert (out / "model.pkl").read_bytes() == b"weights" and (out / "sub" / "vocab.txt").read_text() == "a\nb\n"


def test_remote_paths_that_cannot_be_registered_say_why(ws, service) -> None:
    with pytest.raises(InvalidInput, match="converts a GGUF file on this machine"):
        ws.create_model(ModelSpec(name="g", path="azureml://datastores/workspaceblobstore/paths/m.gguf", package=True))
    with pytest.raises(InvalidInput, match="Azure ML registry"):
        ws.create_model(ModelSpec(name="r", path="azureml://registries/azureml/models/phi/versions/1"))
    with pytest.raises(InvalidInput, match="names a registered model, not files"):
        ws.create_model(ModelSpec(name="again", path="azureml:clf:1"))
    with pytest.raises(InvalidInput, match="points at no uploaded files"):
        ws.create_model(ModelSpec(name="empty", path="azureml://jobs/never-ran/outputs/artifacts/paths/model/"))
    assert ws.list_models() == []


def test_a_docker_context_that_cannot_build_is_refused_before_anything_is_sent(ws, service, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    cases = [
        (EnvironmentSpec(name="e", build_context=str(tmp_path / "missing")), "is not a folder"),
        (EnvironmentSpec(name="e", build_context=str(tmp_path / "empty")), "has no Dockerfile"),
        (EnvironmentSpec(name="e", build_context=str(tmp_path), image="python:3.11"), "leave out the image"),
        (EnvironmentSpec(name="e", build_context=str(tmp_path), dockerfile_path="/etc/Dockerfile"), "relative"),
        (EnvironmentSpec(name="e", build_context=str(tmp_path), dockerfile_path="../Dockerfile"), "inside it"),
        (EnvironmentSpec(name="e", dockerfile_path="Dockerfile"), "pass the context too"),
        (EnvironmentSpec(name="e", build_context=""), "needs a conda file, an image"),
    ]
    sent = len(service.calls)
    for spec, message in cases:
        with pytest.raises(InvalidInput, match=message):
            ws.create_environment(spec)
    assert [c for c in service.calls[sent:] if c.method != "GET"] == []


def test_progress_dots_of_the_sdk_do_not_reach_stdout(endpoint, capsys) -> None:
    capsys.readouterr()
    endpoint.create_or_update_deployment(deployment("blue"))
    assert capsys.readouterr().out == ""


def test_what_azure_cannot_show_is_said_with_where_to_look(endpoint) -> None:
    with pytest.raises(Unsupported) as metrics:
        endpoint.get_metrics("ep1")
    assert "Azure Monitor" in metrics.value.message and "ml.azure.com" in metrics.value.hint
    with pytest.raises(Unsupported) as usage:
        endpoint.get_resource_usage("ep1")
    assert "CPU and memory" in usage.value.message and "ml.azure.com" in usage.value.hint
    build = endpoint.get_environment_build("local-python")
    assert build.state == "Succeeded"
    endpoint.create_environment(EnvironmentSpec(name="env", conda_file="dependencies:\n  - python=3.11\n"))
    remote = endpoint.get_environment_build("env")
    assert remote.state == "Unknown" and remote.state in list(BuildState), "a declared build state"
    assert "does not report build status" in remote.message and "ml.azure.com" in remote.message
    assert endpoint.info().capabilities == [
        "deployments", "docker-builds", "endpoints", "environments", "mlflow-no-code", "models", "registry-assets",
        "remote-model-paths"]


def test_audit_defaults_to_a_file_per_workspace_under_the_byom_home(service, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))
    ws = replay_workspace(service, monkeypatch, None)
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
    wrong_version = client.send_request(
        HttpRequest("PUT", base + "?api-version=2099-01-01", headers=headers, json=body))
    assert wrong_version.status_code == 400
    ghost = {**body, "properties": {"authMode": "Key", "traffic": {"ghost": 100}}}
    bad_traffic = client.send_request(
        HttpRequest("PUT", base + "?api-version=2022-02-01-preview", headers=headers, json=ghost))
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


# ------------------------------------------------------------- the CLI on Azure


def test_cli_no_wait_returns_while_azure_works_and_progress_goes_to_stderr(cli, service, capsys) -> None:
    service.hold = True
    before = status_reads(service)
    assert main(["online-endpoint", "create", "-n", "ep9", "--no-wait", *cli]) == 0
    wait_for_status_reads(service, before)  # the SDK's poller thread goes on: it must print nothing on stdout
    out, err = capsys.readouterr()
    assert json.loads(out)["provisioning_state"] == "Creating"
    assert "accepted; Azure ML goes on with it" in err
    service.run_pending()
    for verb in (["regenerate-keys", "--key-type", "secondary"], ["delete", "--yes"]):
        before = status_reads(service)
        assert main(["online-endpoint", *verb, "-n", "ep9", "--no-wait", *cli]) == 0
        wait_for_status_reads(service, before)
        out, err = capsys.readouterr()
        assert "accepted" in err and out == ""
        assert len(service.pending()) == 1
        service.run_pending()
    assert main(["online-endpoint", "show", "-n", "ep9", *cli]) == 2


def test_cli_waits_by_default_and_says_how_it_goes(cli, service, capsys) -> None:
    assert main(["online-endpoint", "create", "-n", "ep9", *cli]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["provisioning_state"] == "Succeeded"
    assert "Create endpoint 'ep9': done" in err
    assert main(["online-endpoint", "create", "-n", "ep8", "-o", "none", *cli]) == 0
    assert capsys.readouterr().err == ""


def test_cli_registers_a_jobs_outputs_from_a_model_yml_as_az_ml_does(cli, service, capsys, tmp_path) -> None:
    service.storage.put("ExperimentRun/dcid.train-42/model/model.pkl", b"trained")
    model_yml = tmp_path / "model.yml"
    model_yml.write_text(f"$schema: https://azuremlschemas.azureedge.net/latest/model.schema.json\n"
                         f"name: trained\npath: {JOB_OUTPUT}\ntype: custom_model\n")
    assert main(["model", "create", "-f", str(model_yml), *cli]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["name"], shown["version"], shown["source"]) == ("trained", "1", JOB_OUTPUT)
    assert main(["model", "download", "-n", "trained", "-v", "1", "--download-path", str(tmp_path / "dl"), *cli]) == 2
    assert "az ml job download --name train-42" in capsys.readouterr().err


def test_cli_creates_an_environment_from_a_build_context_as_az_ml_does(cli, service, capsys, tmp_path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    assert main(["environment", "create", "-n", "docker", "--build-context", str(tmp_path / "ctx"), *cli]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["build_context"].endswith("/ctx/") and "/LocalUpload/" in shown["build_context"], "uploaded"
    assert shown["image"] is None
    env_yml = tmp_path / "env.yml"
    env_yml.write_text("name: docker\nbuild:\n  path: ctx\n  dockerfile_path: Dockerfile\n")
    assert main(["environment", "create", "-f", str(env_yml), *cli]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "2"


def test_cli_no_wait_help_says_what_each_backend_does(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["online-endpoint", "create", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "creation is immediate" not in help_text
    assert "Azure ML workspace goes on with it" in help_text and "local workspace" in help_text


def test_cli_names_a_workspace_that_does_not_exist(cli, service, capsys) -> None:
    wrong = [*cli[:-1], "no-such-ws"]
    assert main(["model", "show", "-n", "clf", "-v", "1", *wrong]) == 2
    err = capsys.readouterr().err
    assert "There is no Azure ML workspace 'no-such-ws' in resource group 'test-rg'" in err
    assert "Check the subscription, resource group and workspace name" in err
    assert main(["online-endpoint", "list", "-g", "no-such-rg", *cli[:2], *cli[-2:]]) == 2
    assert "Check the subscription, resource group and workspace name" in capsys.readouterr().err


def test_cli_reads_the_workspace_only_when_something_is_not_found(cli, service, capsys) -> None:
    workspace_reads = r"/workspaces/my-aml-workspace$"
    assert main(["online-endpoint", "list", *cli]) == 0
    assert service.sent("GET", workspace_reads) == [], "a command that finds what it asks for pays no extra call"
    assert main(["online-endpoint", "show", "-n", "nope", *cli]) == 2
    assert "No endpoint named 'nope'" in capsys.readouterr().err, "the workspace exists: the endpoint does not"
    assert len(service.sent("GET", workspace_reads)) == 1


def test_cli_selects_azure_from_the_three_environment_variables(cli, service, monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", RESOURCE_GROUP)
    monkeypatch.setenv("AZUREML_WORKSPACE_NAME", WORKSPACE)
    service.endpoints.clear()
    assert main(["online-endpoint", "create", "-n", "on-azure"]) == 0
    assert "on-azure" in service.endpoints
    capsys.readouterr()
    assert main(["online-endpoint", "list", "--query", "[].name", "--workspace-dir", str(tmp_path / "local")]) == 0
    assert json.loads(capsys.readouterr().out) == [], "an explicit --workspace-dir still wins"


def test_the_three_environment_variables_name_a_workspace_when_all_are_set(tmp_path) -> None:
    from byom.core.targets import AzureTarget, resolve_target

    env = {"AZURE_SUBSCRIPTION_ID": "sub", "AZURE_RESOURCE_GROUP": "rg", "AZUREML_WORKSPACE_NAME": "ws"}
    assert resolve_target(environ=env) == AzureTarget("sub", "rg", "ws")
    assert resolve_target(environ={k: v for k, v in env.items() if k != "AZURE_RESOURCE_GROUP"}) is None
    assert resolve_target(workspace_name="other", environ=env) == AzureTarget("sub", "rg", "other")
    config = tmp_path / "config.json"
    config.write_text("{}")
    assert resolve_target(config=str(config), environ=env) == AzureTarget(config_path=config), "a flag wins"
    assert resolve_target(environ={**env, "BYOM_AZURE_CONFIG": str(config)}) == AzureTarget(config_path=config)


def _token_with(claims: dict) -> str:
    import base64

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(("claims", "actor"), [
    ({"upn": "ada@contoso.com", "oid": "1111"}, "ada@contoso.com"),
    ({"appid": "2222-app", "oid": "3333"}, "app:2222-app"),
    ({"nothing": "useful"}, None),
])
def test_the_audit_log_names_who_is_signed_in_to_azure(service, tmp_path, monkeypatch, claims, actor) -> None:
    from azure.core.credentials import AccessToken
    from byom.core.actor import default_actor
    from byom.core.azure.connect import connect
    from byom.core.azure.workspace import AzureWorkspace
    from byom.core.targets import AzureTarget

    class SignedIn:
        def get_token(self, *scopes, **kwargs):
            return AccessToken(_token_with(claims), int(time.time()) + 3600)

    monkeypatch.delenv("BYOM_ACTOR", raising=False)
    transport = replay_transport(service)
    bind_blob_clients(monkeypatch, transport)
    ml = connect(AzureTarget(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE), credential=SignedIn(), transport=transport)
    ws = AzureWorkspace(ml, audit_home=tmp_path / "audit", transport=transport)
    try:
        ws.create_or_update_endpoint(Endpoint(name="ep1"))
        assert [r.actor for r in ws.list_audit()] == [actor or default_actor()]
    finally:
        ws.close()

    monkeypatch.setenv("BYOM_ACTOR", "release-bot")
    ws = AzureWorkspace(ml, audit_home=tmp_path / "audit2", transport=transport)
    try:
        ws.create_or_update_endpoint(Endpoint(name="ep2"))
        assert [r.actor for r in ws.list_audit()] == ["release-bot"]
    finally:
        ws.close()


def test_cli_workspace_show_and_ids_are_azure_s_own(cli, service, capsys) -> None:
    """``byom workspace show`` reads the workspace (one GET, nothing changed); ids are the service's ARM ids."""
    sent = len(service.calls)
    assert main(["workspace", "show", *cli]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["container_registry"].endswith("/providers/Microsoft.ContainerRegistry/registries/replayacr")
    assert (shown["name"], shown["location"], shown["kind"]) == (WORKSPACE, LOCATION, "azure")
    workspace_id = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                    f"Microsoft.MachineLearningServices/workspaces/{WORKSPACE}")
    assert shown["id"].lower() == workspace_id.lower()
    assert [c.method for c in service.calls[sent:] if "/workspaces/" in c.path and c.path.endswith(WORKSPACE)] == [
        "GET"]
    assert [c for c in service.calls[sent:] if c.method != "GET"] == []
    assert main(["online-endpoint", "create", "-n", "ids-ep", *cli]) == 0
    endpoint = json.loads(capsys.readouterr().out)
    assert endpoint["id"] == f"{workspace_id}/onlineEndpoints/ids-ep"
    assert endpoint["identity"]["type"] == "system_assigned", "Azure's own identity, read back"


CURATED_URI = "azureml://registries/azureml/environments/sklearn-1.5/versions/52"


def test_a_registry_environment_is_sent_as_named_and_read_back_whole(endpoint, service) -> None:
    blue = endpoint.create_or_update_deployment(deployment("blue", environment=CURATED_URI))
    assert blue.environment == CURATED_URI
    put = json.loads(service.sent("PUT", r"/onlineEndpoints/ep1/deployments/blue$")[-1].body)
    assert put["properties"]["environmentId"] == CURATED_URI  # no workspace copy, no azureml: prefix
    assert [e.name for e in endpoint.list_environments()] == ["local-python"]
    # an update of another field keeps the registry's environment
    endpoint.scale_deployment("ep1", "blue", 2)
    again = endpoint.create_or_update_deployment(endpoint.get_deployment("ep1", "blue").replace(instance_count=1))
    assert again.environment == CURATED_URI
    put = json.loads(service.sent("PUT", r"/onlineEndpoints/ep1/deployments/blue$")[-1].body)
    assert put["properties"]["environmentId"] == CURATED_URI


MLFLOW_MODEL = Path(__file__).parent.parent / "integration" / "assets" / "mlflow_model"


def test_an_mlflow_model_deploys_on_azure_with_neither_code_nor_environment(ws, service) -> None:
    ws.create_model(ModelSpec(name="mlf", path=str(MLFLOW_MODEL), type="mlflow_model"))
    ws.create_or_update_endpoint(Endpoint(name="ep1"))
    blue = ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="ep1", model="mlf:1"))
    assert blue.provisioning_state == "Succeeded", blue.state_reason
    assert blue.environment == "" and blue.code_path is None
    put = json.loads(service.sent("PUT", r"/onlineEndpoints/ep1/deployments/blue$")[-1].body)["properties"]
    assert "environmentId" not in put and "codeConfiguration" not in put, put  # Azure scores it with its own script
    assert [e.name for e in ws.list_environments()] == ["local-python"], "no environment registered for it"
    # an update of another field keeps it without code
    ws.create_or_update_deployment(ws.get_deployment("ep1", "blue").replace(description="second"))
    put = json.loads(service.sent("PUT", r"/onlineEndpoints/ep1/deployments/blue$")[-1].body)["properties"]
    assert "environmentId" not in put and put["description"] == "second"


def test_a_model_that_is_not_mlflow_needs_code_on_azure_too(endpoint, service) -> None:
    with pytest.raises(ByomError, match="Code configuration is required"):
        endpoint.create_or_update_deployment(Deployment(name="blue", endpoint_name="ep1", model="clf:1"))


def test_consumers_are_absent_on_azure_and_the_cli_names_api_managements_token_limit(endpoint, cli, service,
                                                                                     capsys) -> None:
    assert "consumers" not in endpoint.info().capabilities
    calls = len(service.calls)
    with pytest.raises(Unsupported) as raised:
        endpoint.create_consumer("ep1", "alice", {"tokens_per_minute": 100})
    assert "capability is absent" in raised.value.message and "llm-token-limit" in raised.value.hint
    assert len(service.calls) == calls, "nothing is sent to Azure"
    for argv in (["consumer", "create", "-c", "alice", "--tokens-per-minute", "100"], ["consumer", "list"],
                 ["usage"]):
        assert main(["online-endpoint", *argv, "-n", "ep1", *cli]) == 2
        err = capsys.readouterr().err
        assert "API Management" in err and "token-limit" in err, err


def test_listing_models_costs_one_call_for_the_names_and_one_per_name(ws, service, tmp_path) -> None:
    for name in ("a", "b", "c"):
        ws.create_model(ModelSpec(name=name, path=str(make_model_dir(tmp_path / name))))
    ws.create_model(ModelSpec(name="b", path=str(make_model_dir(tmp_path / "b2"))))
    ws.archive_model("b", 2)
    before = len(service.calls)
    listed = ws.list_models()
    calls = service.calls[before:]
    assert len(calls) == 4 and all(c.method == "GET" for c in calls), [c.path for c in calls]
    assert [m.ref for m in listed] == ["a:1", "b:1", "c:1"], "the latest version not archived of each"
    assert listed == [ws.get_model(m.name, m.version) for m in listed], "as whole as a get"
    assert [m.ref for m in ws.list_models(include_archived=True)] == ["a:1", "b:2", "c:1"]


def test_no_local_path_goes_into_a_cloud_models_properties(ws, service, tmp_path) -> None:
    folder = make_model_dir(tmp_path / "private" / "alice" / "clf")
    model = ws.create_model(ModelSpec(name="clf", path=str(folder)))
    sent = [c.body.decode("utf-8", "replace") for c in service.calls if c.method in ("PUT", "POST")]
    assert sent and not any(str(tmp_path) in body for body in sent), "a path on this machine was sent"
    props = json.loads(service.sent("PUT", r"/models/clf/versions/1$")[-1].body)["properties"]["properties"]
    assert props["byom.source"] == "clf"
    assert model.source == "clf" and ws.get_model("clf", 1).source == "clf"


def test_cli_says_plainly_that_rollouts_are_not_on_azure_yet(cli, service, capsys) -> None:
    assert main(["online-endpoint", "create", "-n", "ep9", *cli]) == 0
    capsys.readouterr()
    sent = len(service.calls)
    for argv in (["--to", "blue", "--steps", "10,100"], ["status"], ["abort"]):
        assert main(["online-endpoint", "rollout", "-n", "ep9", *argv, *cli]) == 2
        err = capsys.readouterr().err
        assert "Progressive rollouts with automatic rollback run on a local workspace only" in err, err
        assert "update --traffic" in err
    assert len(service.calls) == sent, "nothing was sent to Azure"


def test_cli_says_plainly_that_capture_and_replay_are_absent_on_azure(cli, service, capsys) -> None:
    assert main(["online-endpoint", "create", "-n", "ep8", *cli]) == 0
    capsys.readouterr()
    sent = len(service.calls)
    for argv in (["capture", "start", "-n", "ep8"], ["capture", "list", "-n", "ep8"],
                 ["capture", "show", "--capture", "abc"], ["replay", "-n", "ep8", "--capture", "abc", "-d", "blue"]):
        assert main(["online-endpoint", *argv, *cli]) == 2
        err = capsys.readouterr().err
        assert "no request capture or replay" in err and "capability is absent" in err, err
        assert "data_collector" in err
    assert len(service.calls) == sent, "nothing was sent to Azure"
