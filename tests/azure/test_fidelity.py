"""The Azure backend changes only what it was asked to: what az ml or Studio set stays set (issue 18)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from byom.cli.main import main
from byom.core.entities import Deployment, Endpoint, EndpointToken, EnvironmentSpec, ModelSpec
from byom.core.errors import InvalidInput

from tests.azure_replay.sdk import ReplayCredential
from tests.azure_replay.service import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeAzureML
from tests.azure_replay.wire import replay_transport
from tests.contract.contract import make_model_dir

IDENTITY = ("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/test-rg/providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/scorer")


def made_by_az_ml(ws) -> None:
    """A private endpoint with a user-assigned identity, created through azure-ai-ml as az ml does."""
    from azure.ai.ml.entities import IdentityConfiguration, ManagedIdentityConfiguration, ManagedOnlineEndpoint

    endpoint = ManagedOnlineEndpoint(
        name="private", auth_mode="key", public_network_access="disabled",
        identity=IdentityConfiguration(type="user_assigned",
                                       user_assigned_identities=[ManagedIdentityConfiguration(resource_id=IDENTITY)]))
    ws.backend.ml.online_endpoints.begin_create_or_update(endpoint).result()


def last_put(service: FakeAzureML, name: str) -> dict:
    return json.loads(service.sent("PUT", rf"/onlineEndpoints/{name}$")[-1].body)


def test_an_update_keeps_a_private_endpoint_private_and_its_identity(ws, service) -> None:
    made_by_az_ml(ws)
    created = last_put(service, "private")
    assert created["properties"]["publicNetworkAccess"].lower() == "disabled"

    ws.create_or_update_endpoint(Endpoint(name="private", description="now described", tags={"team": "ml"}))
    sent = last_put(service, "private")
    assert sent["properties"]["description"] == "now described" and sent["tags"] == {"team": "ml"}
    assert sent["properties"]["publicNetworkAccess"].lower() == "disabled", "byom made a private endpoint public"
    assert sent["identity"]["type"].lower() == "userassigned", sent["identity"]
    assert IDENTITY.lower() in {k.lower() for k in sent["identity"]["userAssignedIdentities"]}

    ws.set_traffic("private", {})
    sent = last_put(service, "private")
    assert sent["properties"]["publicNetworkAccess"].lower() == "disabled"
    assert sent["identity"]["type"].lower() == "userassigned"


ASSETS = Path(__file__).parent.parent / "contract" / "assets"


def deploy_echo(ws, endpoint: str, tmp_path: Path) -> None:
    ws.create_model(ModelSpec(name="clf", path=str(make_model_dir(tmp_path / "m"))))
    dep = ws.create_or_update_deployment(Deployment(
        name="blue", endpoint_name=endpoint, model="clf:1", code_path=str(ASSETS), scoring_script="echo_score.py"))
    assert dep.provisioning_state == "Succeeded", dep.state_reason
    ws.set_traffic(endpoint, {"blue": 100})


def token_endpoint(ws, name: str, auth_mode: str) -> None:
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    endpoint = ManagedOnlineEndpoint(name=name, auth_mode=auth_mode)
    ws.backend.ml.online_endpoints.begin_create_or_update(endpoint).result()


def arm_calls(service: FakeAzureML) -> int:
    return sum(1 for c in service.calls if c.host == "management.azure.com")


@pytest.mark.parametrize("auth_mode", ["aml_token", "aad_token"])
def test_a_token_endpoint_is_invoked_with_its_token_and_shows_it(ws, service, tmp_path, auth_mode) -> None:
    token_endpoint(ws, "tokens", auth_mode)
    deploy_echo(ws, "tokens", tmp_path)
    assert ws.get_endpoint("tokens").auth_mode == auth_mode, "an update through byom kept the auth mode"
    answer = ws.invoke("tokens", {"data": [1]})
    assert answer.status_code == 200, answer.body
    credentials = ws.get_credentials("tokens")
    assert isinstance(credentials, EndpointToken) and credentials.access_token
    with pytest.raises(InvalidInput, match="token"):
        ws.get_keys("tokens")
    sent = service.sent("POST", "/score")[-1]
    assert sent.headers["Authorization"] == f"Bearer {credentials.access_token}" or auth_mode == "aml_token"
    assert service.sent("POST", r"/listKeys") == [], "a token endpoint's keys were asked for"


def test_get_credentials_prints_az_mls_token_shape(cli, service, capsys) -> None:
    from azure.ai.ml.entities import ManagedOnlineEndpoint
    from byom.core.azure.connect import connect
    from byom.core.targets import AzureTarget

    ml = connect(AzureTarget(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE), credential=ReplayCredential(),
                 transport=replay_transport(service))
    ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="tokens", auth_mode="aml_token")).result()
    assert main(["online-endpoint", "get-credentials", "-n", "tokens", *cli]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {"accessToken", "expiryTimeUtc", "refreshAfterTimeUtc", "tokenType"}
    assert shown["accessToken"] in service.tokens["tokens"] and shown["expiryTimeUtc"] > time.time()


def test_invoke_costs_no_management_call_once_it_knows_the_endpoint(ws, service, tmp_path) -> None:
    ws.create_or_update_endpoint(Endpoint(name="cheap"))
    deploy_echo(ws, "cheap", tmp_path)
    assert ws.invoke("cheap", {"data": [1]}).status_code == 200
    before = arm_calls(service)
    for _ in range(5):
        assert ws.invoke("cheap", {"data": [1]}).status_code == 200
    assert arm_calls(service) == before, [f"{c.method} {c.path}" for c in service.calls[-10:]]

    # the primary key regenerated elsewhere (another machine, Studio): one 401, one fresh read, then 200
    service.keys["cheap"]["primaryKey"] = "regenerated-elsewhere"
    answer = ws.invoke("cheap", {"data": [1]})
    assert answer.status_code == 200, answer.body
    assert service.sent("POST", "/score")[-1].headers["Authorization"] == "Bearer regenerated-elsewhere"
    # regenerating through this workspace drops what it knew at once
    ws.regenerate_key("cheap", "primary")
    scored = len(service.sent("POST", "/score"))
    assert ws.invoke("cheap", {"data": [1]}).status_code == 200
    assert len(service.sent("POST", "/score")) == scored + 1, "the new key was used at the first try"


def test_a_deployment_update_keeps_what_it_was_not_given_and_reuses_its_code(ws, service, tmp_path) -> None:
    ws.create_or_update_endpoint(Endpoint(name="keep"))
    deploy_echo(ws, "keep", tmp_path)
    ml = ws.backend.ml
    made = ml.online_deployments.get(name="blue", endpoint_name="keep")
    made.egress_public_network_access = "disabled"
    made.app_insights_enabled = True
    ml.online_deployments.begin_create_or_update(made).result()  # as az ml or studio would set them
    code_before = json.loads(service.sent("PUT", r"/deployments/blue$")[-1].body)["properties"]["codeConfiguration"]
    uploads = len(service.sent("POST", r"/startPendingUpload"))

    current = ws.get_deployment("keep", "blue")
    updated = ws.create_or_update_deployment(current.replace(environment_variables={"DEPLOYMENT_LABEL": "v2"}))
    assert updated.provisioning_state == "Succeeded", updated.state_reason
    sent = json.loads(service.sent("PUT", r"/deployments/blue$")[-1].body)["properties"]
    assert sent["environmentVariables"]["DEPLOYMENT_LABEL"] == "v2"
    assert sent["egressPublicNetworkAccess"].lower() == "disabled", "byom opened a closed egress"
    assert sent["appInsightsEnabled"] is True
    assert sent["codeConfiguration"] == code_before, "the code asset it runs is kept, not re-uploaded"
    assert len(service.sent("POST", r"/startPendingUpload")) == uploads


def test_a_conda_environment_without_the_inference_server_is_warned_of_on_azure(ws, service) -> None:
    bare = "dependencies:\n  - python=3.11\n  - numpy\n"
    served = "dependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - azureml-inference-server-http==1.5.1\n"
    for name, conda in (("bare", bare), ("served", served)):
        seen: list[str] = []
        ws.create_environment(EnvironmentSpec(name=name, conda_file=conda),
                              progress=lambda m, f=None, seen=seen: seen.append(m))
        sent = json.loads(service.sent("PUT", rf"/environments/{name}/versions/1$")[-1].body)["properties"]
        assert yaml.safe_load(sent["condaFile"]) == yaml.safe_load(conda), "registered as given"
        warned = [m for m in seen if m.startswith("Warning") and "azureml-inference-server-http" in m]
        assert bool(warned) == (name == "bare"), seen


def test_the_cli_updates_a_token_endpoint_and_a_deployment_that_runs_a_code_asset(ws, service, cli, tmp_path,
                                                                                    capsys) -> None:
    token_endpoint(ws, "tokens", "aml_token")
    deploy_echo(ws, "tokens", tmp_path)
    code_before = json.loads(service.sent("PUT", r"/deployments/blue$")[-1].body)["properties"]["codeConfiguration"]

    assert main(["online-endpoint", "update", "-n", "tokens", "--set", "description=described", *cli]) == 0, \
        capsys.readouterr().err
    sent = last_put(service, "tokens")
    assert sent["properties"]["authMode"] == "AMLToken" and sent["properties"]["description"] == "described"

    capsys.readouterr()
    assert main(["online-deployment", "update", "-n", "blue", "-e", "tokens", "--set", "instance_count=2",
                 *cli]) == 0, capsys.readouterr().err
    scaled = json.loads(service.sent("PUT", r"/deployments/blue$")[-1].body)
    assert scaled["sku"]["capacity"] == 2
    assert main(["online-deployment", "update", "-n", "blue", "-e", "tokens",
                 "--set", "environment_variables.DEPLOYMENT_LABEL=v3", *cli]) == 0, capsys.readouterr().err
    sent = json.loads(service.sent("PUT", r"/deployments/blue$")[-1].body)["properties"]
    assert sent["environmentVariables"]["DEPLOYMENT_LABEL"] == "v3"
    assert sent["codeConfiguration"] == code_before, "the running code asset is kept"


def test_an_endpoint_file_asking_for_privacy_and_an_identity_gets_both(cli, service, tmp_path, capsys) -> None:
    (tmp_path / "endpoint.yml").write_text(
        "name: private-file\nauth_mode: key\npublic_network_access: disabled\n"
        f"identity:\n  type: user_assigned\n  user_assigned_identities:\n    - resource_id: {IDENTITY}\n")
    assert main(["online-endpoint", "create", "-f", str(tmp_path / "endpoint.yml"), *cli]) == 0, \
        capsys.readouterr().err
    sent = last_put(service, "private-file")
    assert sent["properties"]["publicNetworkAccess"].lower() == "disabled", "a private endpoint was made public"
    assert sent["identity"]["type"].lower() == "userassigned"
    assert IDENTITY.lower() in {k.lower() for k in sent["identity"]["userAssignedIdentities"]}
    shown = json.loads(capsys.readouterr().out)
    assert shown["public_network_access"] == "disabled"
    assert shown["identity"]["type"] == "user_assigned"
