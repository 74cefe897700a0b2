"""Consumers' keys in the routing table and their limits' arithmetic, on a clock the test moves; no processes.

The gateway, the model server and the openai client are in tests/integration/test_consumers.py.
"""

from __future__ import annotations

from byom.core import consumer_keys
from byom.core.entities import Endpoint, EndpointKeys, RequestFact
from byom.core.local.gateway.consumer_limits import (
    Admission,
    ConsumerLimits,
    Refusal,
    reservation,
    used_tokens,
)
from byom.core.routing import ConsumerRoute, build_routes

KEY = consumer_keys.new_key()


def carol(**limits: int) -> ConsumerRoute:
    return ConsumerRoute("carol", bytes.fromhex(consumer_keys.key_sha256(KEY)), **limits)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_consumers_key_is_known_by_its_hash_beside_the_endpoints_keys() -> None:
    consumers = {"chat": [carol()]}
    route = build_routes([Endpoint(name="chat")], {"chat": EndpointKeys(primary_key="p", secondary_key="s")}, [],
                         [], consumers)["chat"]
    assert route.caller("Bearer p") == (True, None)
    assert route.caller(f"Bearer {KEY}") == (True, consumers["chat"][0])
    for header in (None, f"Bearer {KEY}x", KEY, f"Basic {KEY}", "Bearer " + consumer_keys.key_sha256(KEY)):
        assert route.caller(header) == (False, None), header
    # a keyless (--local) endpoint lets anyone in, and still knows a consumer by its key: its limits hold
    local = build_routes([Endpoint(name="chat", local=True)], {}, [], [], consumers)["chat"]
    assert local.caller(None) == (True, None) and local.caller(f"Bearer {KEY}")[1] == consumers["chat"][0]


def test_a_reservation_bounds_the_prompt_from_above_and_the_answer_replaces_it() -> None:
    # SmolLM2's template makes 31 tokens of "Hi" and 80 of fifty "é": the bound is above both
    assert reservation({"messages": [{"role": "user", "content": "Hi"}], "max_new_tokens": 10}) >= 31 + 10
    assert reservation({"messages": [{"role": "user", "content": "é" * 50}], "max_new_tokens": 1}) >= 80 + 1
    assert reservation({"prompt": "Hello", "max_new_tokens": 3}) >= 1 + 3
    assert used_tokens(200, (30, 8)) == 38 and used_tokens(200, None) is None  # unknown: the reservation stays
    assert used_tokens(499, None) is None and used_tokens(400, None) == 0


def test_tokens_in_flight_count_and_the_window_slides() -> None:
    clock = Clock()
    limits = ConsumerLimits(clock)
    consumer = carol(tokens_per_minute=100)
    first = limits.admit("chat", consumer, 60)
    second = limits.admit("chat", consumer, 60)  # 60 in flight < 100: let in, and now 120 are counted
    assert isinstance(first, Admission) and isinstance(second, Admission)
    refused = limits.admit("chat", consumer, 60)
    assert isinstance(refused, Refusal) and refused.limit == "tokens"
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"
    assert refused.headers["x-ratelimit-limit-tokens"] == "100"
    assert 59 <= int(refused.headers["Retry-After"]) <= 61
    limits.settle(first, 20)
    limits.settle(second, 20)
    limits.settle(second, 999)  # once only
    again = limits.admit("chat", consumer, 60)
    assert isinstance(again, Admission) and again.headers["x-ratelimit-remaining-tokens"] == str(100 - 40 - 60)
    clock.now += 62
    fresh = limits.admit("chat", consumer, 60)
    assert isinstance(fresh, Admission) and fresh.headers["x-ratelimit-remaining-tokens"] == "40"


def test_requests_and_a_days_tokens_and_what_a_restart_reads_back() -> None:
    clock = Clock()
    limits = ConsumerLimits(clock)
    consumer = carol(requests_per_minute=2, tokens_per_day=1000)
    for _ in range(2):
        assert isinstance(limits.admit("chat", consumer, 1), Admission)
    refused = limits.admit("chat", consumer, 1)
    assert isinstance(refused, Refusal) and refused.limit == "requests"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"

    restarted = ConsumerLimits(clock)
    restarted.restore([RequestFact(clock.now - 3600, "chat", "blue", "m:1", 200, 1.0, consumer="carol",
                                   input_tokens=600, output_tokens=400),
                       RequestFact(clock.now - 3600, "chat", "blue", "m:1", 429, 1.0, consumer="carol")])
    day = restarted.admit("chat", consumer, 1)
    assert isinstance(day, Refusal) and "1000 tokens per day" in day.message
    assert 3600 * 22 < int(day.headers["Retry-After"]) <= 3600 * 23 + 60
    assert isinstance(restarted.admit("chat", carol(), 1), Admission)  # limits removed: let in
