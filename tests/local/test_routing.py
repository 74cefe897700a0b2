"""The gateway's routing table and metrics, without processes."""

from __future__ import annotations

import random
from collections import Counter

from byom.core.local.gateway_metrics import GatewayMetrics
from byom.core.local.routing import build_routes

ENDPOINT = {"name": "chat", "traffic": {"blue": 90, "green": 10, "red": 0}, "mirror_traffic": {"red": 20}}
KEYS = {"chat": {"primary_key": "p-key", "secondary_key": "s-key"}}


def deployment(name: str, count: int = 1, concurrency: int = 1, timeout_ms: int = 5000) -> dict:
    return {"name": name, "endpoint_name": "chat", "model": f"m-{name}:1", "instance_count": count,
            "request_settings": {"request_timeout_ms": timeout_ms, "max_concurrent_requests_per_instance": concurrency}}


def instance(dep: str, index: int, state: str = "Ready") -> dict:
    return {"id": f"{dep}-{index}", "endpoint": "chat", "deployment": dep, "state": state, "port": 9000 + index}


def routes() -> dict:
    deployments = [deployment("Blue", count=2, concurrency=3, timeout_ms=1500), deployment("green"), deployment("red")]
    instances = [instance("blue", 0), instance("blue", 1, "Starting"), instance("green", 2, "Crashed")]
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
    route = build_routes([{"name": "chat", "traffic": {}}], KEYS, [deployment("blue")], [])["chat"]
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
