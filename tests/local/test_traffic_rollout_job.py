"""The control plane's traffic-rollout job over a real byom.db: it finds running rollouts and advances them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from byom.core.entities import Deployment, Endpoint, ModelSpec, RolloutState, TrafficRollout
from byom.core.local.control_plane.traffic_rollouts import TrafficRollouts
from byom.core.local.sqlite_store import SqliteStore
from byom.core.local.workspace import LocalWorkspace
from byom.core.serving import FakeServing
from byom.core.traffic_rollout import GIVE_UP_AFTER_S


def rolling_out(tmp_path: Path) -> tuple[LocalWorkspace, SqliteStore]:
    """Endpoint demo with blue at 100 % and a running rollout r1 to green, steps 10 and 100."""
    home = tmp_path / "home"
    ws = LocalWorkspace(home, actor="ada", serving=FakeServing())
    (tmp_path / "model.pkl").write_bytes(b"\x00")
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "model.pkl")))
    ws.create_or_update_endpoint(Endpoint(name="demo"))
    for name in ("blue", "green"):
        ws.create_or_update_deployment(Deployment(name=name, endpoint_name="demo", model="m:1"))
    ws.set_traffic("demo", {"blue": 100})
    record = TrafficRollout(id="r1", endpoint="demo", target="green", steps=[10, 100], step_seconds=60,
                            max_error_rate=0.1, max_p95_ms=None, min_requests=1, actor="ada", started_at="",
                            before={"blue": 100}, applied={"blue": 100})
    ws.backend.change_traffic_rollout("demo", lambda _: record)
    return ws, SqliteStore(home / "byom.db")


def test_the_job_advances_running_rollouts_and_logs_a_repeated_failure_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, store = rolling_out(tmp_path)
    ticks = iter(range(100))
    job = TrafficRollouts(store, lambda: ws.store_backend, clock=lambda: float(next(ticks)))
    job.step()
    assert job.running() == [("demo", "ada")]
    assert ws.get_endpoint("demo").traffic == {"blue": 90, "green": 10}
    assert ws.list_audit(limit=1)[0].actor == "ada", "the step is audited as who started the rollout"

    ws.set_traffic("demo", {"blue": 50, "green": 50})  # by hand: the next move writes the record, which fails

    def refuse(endpoint: str, change: object) -> TrafficRollout:
        raise OSError("disk full")

    monkeypatch.setattr(ws.store_backend, "change_traffic_rollout", refuse)
    with caplog.at_level(logging.ERROR, logger="byom.control-plane"):
        for _ in range(3):
            job.step()
    assert len([r for r in caplog.records if "Advancing the rollout" in r.message]) == 1
    store.close()
    ws.close()


def test_a_rollout_whose_moves_keep_failing_ends_failed_with_the_split_before_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, store = rolling_out(tmp_path)
    now = [0.0]
    job = TrafficRollouts(store, lambda: ws.store_backend, clock=lambda: now[0])
    job.step()
    assert ws.get_endpoint("demo").traffic == {"blue": 90, "green": 10}

    def unreadable(endpoint: str, since: float) -> list[object]:
        raise OSError("the request facts are unreadable")

    monkeypatch.setattr(ws.store_backend, "request_facts", unreadable)
    with caplog.at_level(logging.ERROR, logger="byom.control-plane"):
        for _ in range(int(GIVE_UP_AFTER_S) + 2):  # a check a second, just past the time it gives up
            now[0] += 1.0
            job.step()
            if not job.running():
                break
    assert job.running() == [], f"still running after {now[0]:.0f} s of failing moves"
    ended = ws.backend.traffic_rollout("demo")
    assert ended is not None and ended.state == RolloutState.FAILED
    assert "kept failing" in ended.reason and "the request facts are unreadable" in ended.reason, ended.reason
    assert ws.get_endpoint("demo").traffic == {"blue": 100}, "the split before the rollout is back"
    assert ws.list_audit(limit=1)[0].action == "endpoint.rollout"
    assert len([r for r in caplog.records if "Advancing the rollout" in r.message]) == 1
    store.close()
    ws.close()
