"""core.traffic_rollout: the splits of each step, how a step is judged, and the driver's moves over a record.

The moves run on the in-memory workspace with the clock given; the real control plane, gateway and model
servers are in tests/integration/test_traffic_rollout.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from byom.core import history, traffic_rollout
from byom.core.entities import Deployment, Endpoint, ModelSpec, RequestFact, RolloutStep, TrafficRollout
from byom.core.errors import InvalidInput, Unsupported
from byom.core.memory import InMemoryWorkspace
from byom.core.traffic_rollout import RolloutPlan, advance, check_plan, judge, split_at


def test_the_others_keep_their_proportions_and_every_split_totals_100() -> None:
    assert split_at({"blue": 60, "red": 40}, "green", 10) == {"blue": 54, "red": 36, "green": 10}
    assert split_at({"a": 34, "b": 33, "c": 33}, "t", 50) == {"a": 17, "b": 17, "c": 16, "t": 50}
    assert split_at({"Blue": 100, "green": 0}, "green", 100) == {"blue": 0, "green": 100}
    for pct in range(1, 101):
        assert sum(split_at({"a": 50, "b": 25, "c": 25}, "t", pct).values()) == 100


@pytest.mark.parametrize(("changes", "said"), [
    ({"steps": (50, 10, 100)}, "rising whole percentages"),
    ({"steps": (10, 50)}, "end at 100"),
    ({"steps": (0, 100)}, "from 1 to 100"),
    ({"step_seconds": 0}, "--step-seconds"),
    ({"max_error_rate": 2}, "--max-error-rate"),
    ({"max_p95_ms": -1}, "--max-p95-ms"),
    ({"min_requests": 0}, "--min-requests"),
])
def test_a_plan_with_bad_numbers_is_refused_naming_the_flag(changes: dict[str, Any], said: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_plan(RolloutPlan("ep", "green", **changes))
    assert said in refused.value.message


def rollout(**changes: Any) -> TrafficRollout:
    base = TrafficRollout(id="r1", endpoint="demo", target="green", steps=[10, 100], step_seconds=1,
                          max_error_rate=0.1, max_p95_ms=100, min_requests=4, actor="ada", started_at="",
                          before={"blue": 100}, applied={"blue": 90, "green": 10},
                          history=[RolloutStep(percent=10, started_at=1000.0)])
    return base.replace(**changes)


def facts(n: int, status: int = 200, latency: float = 5.0, deployment: str = "Green") -> list[RequestFact]:
    return [RequestFact(1000.5, "demo", deployment, "m:1", status, latency) for _ in range(n)]


def test_a_step_is_judged_once_it_lasted_and_saw_enough_requests() -> None:
    healthy = facts(4) + facts(9, 500, deployment="blue")
    assert judge(rollout(), healthy, 1000.9)[1:] == (None, False), "not over before step_seconds"
    figures, breach, over = judge(rollout(), healthy, 1001.0)
    assert (figures.requests, figures.errors, breach, over) == (4, 0, None, True)
    _, breach, over = judge(rollout(), facts(3) + facts(2, 500), 1001.0)
    assert over and breach is not None and (breach.metric, breach.value, breach.step) == ("error_rate", 0.4, 10)
    _, breach, _ = judge(rollout(), facts(4, latency=250.0), 1001.0)
    assert breach is not None and (breach.metric, breach.value, breach.limit) == ("p95_ms", 250.0, 100)
    assert judge(rollout(), facts(3), 1005.0)[1:] == (None, False), "too few requests: the step waits"
    _, breach, _ = judge(rollout(), facts(3), 1000.0 + traffic_rollout.MIN_REQUESTS_WAIT_STEPS)
    assert breach is not None and (breach.metric, breach.value, breach.limit) == ("requests", 3, 4)
    mirrored = [f.replace(mirrored=True) for f in facts(4)]
    assert judge(rollout(), mirrored, 1001.0)[0].requests == 0, "mirrored copies are not the step's requests"


@pytest.fixture
def ws(tmp_path: Path) -> InMemoryWorkspace:
    """Endpoint demo: blue with all the traffic, green beside it; green fails every second request."""
    answered = {"green": 0}

    def responder(endpoint: str, deployment: str, payload: Any) -> tuple[int, Any]:
        if deployment == "green":
            answered["green"] += 1
            return (500, {"error": "on purpose"}) if answered["green"] % 2 == 0 else (200, {})
        return 200, {}

    (tmp_path / "model.pkl").write_bytes(b"\x00")
    ws = InMemoryWorkspace(seed=0, actor="ada", responder=responder)
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "model.pkl")))
    ws.create_or_update_endpoint(Endpoint(name="demo"))
    for name in ("blue", "green"):
        ws.create_or_update_deployment(Deployment(name=name, endpoint_name="demo", model="m:1"))
    ws.set_traffic("demo", {"blue": 100})
    return ws


def test_a_workspace_without_a_driver_refuses_plainly(ws: InMemoryWorkspace) -> None:
    with pytest.raises(Unsupported) as refused:
        traffic_rollout.start(ws, RolloutPlan("demo", "green"))
    assert "progressive rollouts" in refused.value.message and "update --traffic" in refused.value.hint


def recorded(ws: InMemoryWorkspace) -> TrafficRollout:
    ws.backend.change_traffic_rollout("demo", lambda _: rollout(applied={"blue": 100}, history=[]))
    found = ws.backend.traffic_rollout("demo")
    assert found is not None
    return found


def traffic_records(ws: InMemoryWorkspace) -> int:
    return len(history.traffic_history(ws, "demo"))


def test_a_breach_restores_the_split_and_says_why(ws: InMemoryWorkspace) -> None:
    recorded(ws)
    now = time.time()
    first = advance(ws, "demo", now)
    assert first is not None and first.applied == {"blue": 90, "green": 10} and len(first.history) == 1
    for _ in range(8):
        ws.invoke("demo", {"x": 1}, deployment="green")
    ended = advance(ws, "demo", now + 1.5)
    assert ended is not None and ended.state == "RolledBack" and ended.breach is not None
    assert (ended.breach.metric, ended.breach.value, ended.breach.step) == ("error_rate", 0.5, 10)
    assert ws.get_endpoint("demo").traffic == {"blue": 100}
    note = history.traffic_history(ws, "demo")[0].note
    assert "rolled back: the error rate of green at the 10 % step was 0.5" in note
    assert advance(ws, "demo", now + 3) == ended, "an ended rollout does not move"


def test_a_driver_started_again_finishes_the_split_it_was_setting_once(ws: InMemoryWorkspace) -> None:
    before = traffic_records(ws)
    recorded(ws)
    ws.backend.change_traffic_rollout("demo", lambda r: r.replace(pending={"blue": 90, "green": 10}))
    resumed = advance(ws, "demo", time.time())  # killed before the split was set: it is set now
    assert resumed is not None and resumed.applied == {"blue": 90, "green": 10} and resumed.pending is None
    assert traffic_records(ws) == before + 1

    step = {"blue": 0, "green": 100}
    ws.backend.change_traffic_rollout("demo", lambda r: r.replace(pending=step))
    ws.set_traffic("demo", step, note="rollout r1: green to 100 %")  # killed after the split was set
    resumed = advance(ws, "demo", time.time())
    assert resumed is not None and resumed.applied == step and [s.percent for s in resumed.history] == [10, 100]
    assert traffic_records(ws) == before + 2, "the split it had set is not set twice"


def test_a_split_changed_by_hand_stops_the_rollout_and_stays(ws: InMemoryWorkspace) -> None:
    recorded(ws)
    advance(ws, "demo", time.time())
    ws.set_traffic("demo", {"blue": 70, "green": 30})
    stopped = advance(ws, "demo", time.time())
    assert stopped is not None and stopped.state == "Stopped" and "changed by hand" in stopped.reason
    assert ws.get_endpoint("demo").traffic == {"blue": 70, "green": 30}
    ended = [r for r in ws.list_audit(target_prefix="endpoint/demo") if r.action == "endpoint.rollout"][0]
    assert ended.after is not None and ended.after["state"] == "Stopped"


def test_a_target_deleted_before_its_first_step_stops_the_rollout_with_nothing_set(ws: InMemoryWorkspace) -> None:
    recorded(ws)
    before = traffic_records(ws)
    ws.delete_deployment("demo", "green")
    stopped = advance(ws, "demo", time.time())
    assert stopped is not None and stopped.state == "Stopped" and "green was deleted" in stopped.reason
    assert ws.get_endpoint("demo").traffic == {"blue": 100} and traffic_records(ws) == before


def test_an_abort_restores_the_split_before_the_rollout(ws: InMemoryWorkspace) -> None:
    recorded(ws)
    advance(ws, "demo", time.time())
    ws.backend.change_traffic_rollout("demo", lambda r: r.replace(abort_requested="bob"))
    aborted = advance(ws, "demo", time.time())
    assert aborted is not None and aborted.state == "Aborted" and aborted.reason == "aborted by bob"
    assert ws.get_endpoint("demo").traffic == {"blue": 100}
