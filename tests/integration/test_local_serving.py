"""A deployment on the local backend end to end: real model servers behind the real gateway."""

from __future__ import annotations

import re

import pytest
import requests
from byom.core.local.processes import alive, parent_pid
from byom.core.local.workspace import LocalWorkspace

from .helpers import deploy, endpoint_with, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) that listen on a TCP port."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_a_deployment_serves_its_model_through_the_gateway(workspace: LocalWorkspace, tmp_path) -> None:
    endpoint_with(workspace, tmp_path, "chat", ("blue",))
    [instance] = workspace.get_deployment("chat", "blue").instances
    assert instance.state == "Ready" and instance.pid and instance.port
    assert listening_addresses(instance.port) == {"0100007F"}  # 127.0.0.1 only

    workspace.set_traffic("chat", {"blue": 100})
    endpoint = workspace.get_endpoint("chat")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/endpoints/chat/score", endpoint.scoring_uri)
    key = workspace.get_keys("chat").primary_key
    answer = requests.post(endpoint.scoring_uri, json={"x": 1}, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["greeting"] == "hello"  # init() read it from AZUREML_MODEL_DIR
    assert body["label"] == "blue"  # the deployment's environment variables reach the server
    assert body["echo"] == {"x": 1}
    assert parent_pid(body["pid"]) == instance.pid  # a gunicorn worker of that instance answered
    assert answer.headers["azureml-model-deployment"] == "blue"
    assert GUID.match(answer.headers["x-request-id"])
    gateway_port = int(endpoint.scoring_uri.split(":")[2].split("/")[0])
    assert listening_addresses(gateway_port) == {"0100007F"}

    swagger = requests.get(endpoint.swagger_uri, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert swagger.status_code == 200 and ("swagger" in swagger.json() or "openapi" in swagger.json())

    # a new workspace object (a later CLI call, a console restart) finds the deployment still serving
    again = LocalWorkspace(workspace.home)
    result = again.invoke("chat", {"y": 2})
    assert result.status_code == 200 and result.deployment == "blue" and GUID.match(result.request_id)
    assert [i.pid for i in again.get_deployment("chat", "blue").instances] == [instance.pid]
    again.close()

    assert "init has completed" in workspace.get_deployment_logs("chat", "blue", lines=100)
    assert "Model echo:1" in workspace.get_deployment_logs("chat", "blue", container="storage-initializer")
    [metrics] = [m for m in workspace.get_metrics("chat") if not m.mirrored]
    assert (metrics.deployment, metrics.requests, metrics.errors) == ("blue", 2, 0)

    # CPU and memory are read from the instance's processes (the model server and its gunicorn worker).
    [usage] = workspace.get_resource_usage("chat")
    assert (usage.deployment, usage.instances) == ("blue", 1)
    assert usage.memory_bytes > 20 * 2**20, "a python server with its worker holds more than 20 MiB"
    again_usage = wait_until(lambda: [u for u in workspace.get_resource_usage("chat") if u.cpu_percent is not None],
                             30, "a second reading, which gives a CPU rate")
    assert again_usage[-1].cpu_percent >= 0


def test_scaling_adds_and_removes_instances(workspace: LocalWorkspace, tmp_path) -> None:
    endpoint_with(workspace, tmp_path, "chat", ("blue",))
    workspace.set_traffic("chat", {"blue": 100})
    scaled = workspace.scale_deployment("chat", "blue", 2)
    assert scaled.provisioning_state == "Succeeded", scaled.state_reason
    instances = workspace.get_deployment("chat", "blue").instances
    assert [i.state for i in instances] == ["Ready", "Ready"] and len({i.port for i in instances}) == 2

    served_by = {parent_pid(workspace.invoke("chat", {"i": i}).json()["pid"]) for i in range(6)}
    assert served_by == {i.pid for i in instances}  # round robin reaches both

    assert workspace.scale_deployment("chat", "blue", 1).provisioning_state == "Succeeded"
    [kept] = workspace.get_deployment("chat", "blue").instances
    [removed] = [i for i in instances if i.pid != kept.pid]
    wait_until(lambda: not alive(removed.pid, None), 20, "the removed instance to exit")


def test_update_replaces_the_instances_and_delete_stops_them(workspace: LocalWorkspace, tmp_path) -> None:
    model = endpoint_with(workspace, tmp_path, "chat", ("blue",))
    workspace.set_traffic("chat", {"blue": 100})
    [before] = workspace.get_deployment("chat", "blue").instances
    updated = deploy(workspace, "chat", "blue", model, environment_variables={"ECHO_LABEL": "blue-v2"})
    assert updated.provisioning_state == "Succeeded", updated.state_reason
    [after] = workspace.get_deployment("chat", "blue").instances
    assert after.pid != before.pid
    assert workspace.invoke("chat", {}).json()["label"] == "blue-v2"
    wait_until(lambda: not alive(before.pid, None), 20, "the old generation to exit")
    for label in ("blue-v3", "blue-v4", "blue-v5"):
        updated = deploy(workspace, "chat", "blue", model, environment_variables={"ECHO_LABEL": label})
        assert updated.provisioning_state == "Succeeded"
        # once an update says Succeeded, no request reaches the generation it replaced
        assert {workspace.invoke("chat", {}).json()["label"] for _ in range(5)} == {label}

    workspace.set_traffic("chat", {"blue": 0})
    workspace.delete_deployment("chat", "blue")
    assert not alive(after.pid, None)
    assert workspace.invoke("chat", {}).status_code == 404
    workspace.delete_endpoint("chat")
    assert workspace.list_endpoints() == []
