"""The routing rules (the gateway's table, the in-memory fake's answers) and the gateway's metrics, no processes."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from byom.core.entities import Deployment, Endpoint, EndpointKeys, InstanceState, ModelSpec, RequestSettings
from byom.core.errors import InvalidInput
from byom.core.local.gateway.metrics import GatewayMetrics
from byom.core.local.state import InstanceRecord
from byom.core.memory import InMemoryWorkspace
from byom.core.routing import build_routes

ENDPOINT = Endpoint(name="chat", traffic={"blue": 90, "green": 10, "red": 0}, mirror_traffic={"red": 20})
KEYS = {"chat": EndpointKeys(primary_key="p-key", secondary_key="s-key")}


def deployment(name: str, count: int = 1, concurrency: int = 1, timeout_ms: int = 5000) -> Deployment:
    return Deployment(name=name, endpoint_name="chat", model=f"m-{name}:1", instance_count=count,
                      request_settings=RequestSettings(request_timeout_ms=timeout_ms,
                                                       max_concurrent_requests_per_instance=concurrency))


def instance(dep: str, index: int, state: InstanceState = InstanceState.READY) -> InstanceRecord:
    return InstanceRecord(id=f"{dep}-{index}", endpoint="chat", deployment=dep, generation="g1", index=index,
                          state=state, port=9000 + index)


def routes() -> dict:
    deployments = [deployment("Blue", count=2, concurrency=3, timeout_ms=1500), deployment("green"), deployment("red")]
    instances = [instance("blue", 0), instance("blue", 1, InstanceState.STARTING),
                 instance("green", 2, InstanceState.CRASHED)]
    return build_routes([ENDPOINT], KEYS, deployments, instances)


def test_only_ready_instances_are_routed_and_limits_follow_the_settings() -> None:
    blue = routes()["chat"].deployments["blue"]
    assert blue.name == "Blue" and [u.port for u in blue.upstreams] == [9000]
    assert blue.max_in_flight == 2 * 3 * 2 and blue.timeout_s == 1.5
    assert routes()["chat"].deployments["green"].upstreams == ()


def test_keys_either_one_bearer_only() -> None:
    route = routes()["chat"]
    assert route.authorized("Bearer p-key") and route.authorized("bearer s-key")
    for header in (None, "", "p-key", "Basic p-key", "Bearer", "Bearer p-key2", "Bearer P-KEY"):
        assert not route.authorized(header), header
    keyless = build_routes([ENDPOINT], {}, [], [])["chat"]
    assert not keyless.authorized("Bearer ") and not keyless.authorized("Bearer None")


def test_weighted_choice_ignores_zero_weights_and_mirror_follows_its_percentage() -> None:
    route = routes()["chat"]
    rng = random.Random(7)
    chosen = Counter(route.choose(rng).key for _ in range(5000))
    assert set(chosen) == {"blue", "green"} and 350 <= chosen["green"] <= 650
    mirrored = sum(route.mirror_to(rng) is not None for _ in range(5000))
    assert 850 <= mirrored <= 1150
    assert route.target(" GREEN ").key == "green" and route.target("purple") is None


def test_no_traffic_routes_nowhere() -> None:
    route = build_routes([Endpoint(name="chat")], KEYS, [deployment("blue")], [])["chat"]
    assert route.choose(random.Random(1)) is None and route.mirror_to(random.Random(1)) is None


def test_metrics_render_counts_buckets_and_escapes_labels() -> None:
    metrics = GatewayMetrics()
    metrics.observe('a"b', "blue", "m:1", 200, 0.003)
    metrics.observe('a"b', "blue", "m:1", 200, 0.2)
    text = metrics.render()
    labels = 'endpoint="a\\"b",deployment="blue",model_version="m:1",status="200",mirrored="false"'
    assert f"byom_requests_total{{{labels}}} 2" in text
    assert f'byom_request_duration_seconds_bucket{{{labels},le="0.005"}} 1' in text
    assert f'byom_request_duration_seconds_bucket{{{labels},le="+Inf"}} 2' in text


def test_the_in_memory_fake_checks_keys_as_the_gateway_does(tmp_path: Path) -> None:
    """It used to accept only ``Bearer <key>`` spelled exactly; the gateway (and Azure) take any case of the scheme."""
    ws = InMemoryWorkspace(actor="tester", seed=1)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pkl").write_bytes(b"weights")
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "m")))
    ws.create_or_update_endpoint(Endpoint(name="chat"))
    ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="chat", model="m:1"))
    ws.set_traffic("chat", {"blue": 100})
    key = ws.get_keys("chat").secondary_key
    for header in (f"bearer {key}", f"Bearer  {key} ", f"BEARER {key}"):
        assert ws.invoke("chat", {"prompt": "hi"}, headers={"Authorization": header}).status_code == 200, header
    for header in (key, f"Basic {key}", f"Bearer {key.upper()}x", "Bearer "):
        assert ws.invoke("chat", {"prompt": "hi"}, headers={"Authorization": header}).status_code == 401, header
    targeted = ws.invoke("chat", {"prompt": "hi"}, headers={"azureml-model-deployment": " BLUE "})
    assert targeted.status_code == 200 and targeted.deployment == "blue"


def test_a_local_endpoint_sends_every_request_to_its_one_deployment_without_a_key() -> None:
    """az ml's --local endpoint: no traffic rule and no key, whatever its stored traffic says."""
    local = Endpoint(name="chat", local=True)
    route = build_routes([local], KEYS, [deployment("Blue")], [instance("blue", 0)])["chat"]
    assert route.authorized(None) and route.authorized("Bearer anything")
    assert route.choose(random.Random(0)) is not None and route.choose(random.Random(0)).name == "Blue"
    assert route.mirror_to(random.Random(0)) is None
    keyed = build_routes([Endpoint(name="chat")], KEYS, [deployment("Blue")], [instance("blue", 0)])["chat"]
    assert not keyed.authorized(None) and keyed.choose(random.Random(0)) is None


def test_a_local_endpoint_holds_one_deployment_and_takes_no_traffic_split(tmp_path: Path) -> None:
    ws = InMemoryWorkspace()
    (tmp_path / "m.pkl").write_bytes(b"m")
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "m.pkl")))
    ws.create_endpoint(Endpoint(name="solo", local=True))
    ws.create_deployment(Deployment(name="blue", endpoint_name="solo", model="m:1"))
    answered = ws.invoke("solo", {"data": [1]})
    assert answered.ok and answered.deployment == "blue"  # no traffic was set
    with pytest.raises(InvalidInput, match="single deployment"):
        ws.create_deployment(Deployment(name="green", endpoint_name="solo", model="m:1"))
    with pytest.raises(InvalidInput, match="no traffic split"):
        ws.set_traffic("solo", {"blue": 100})
    assert ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="solo", model="m:1",
                                                     description="again")).description == "again"
    assert [d.name for d in ws.list_deployments("solo")] == ["blue"]
