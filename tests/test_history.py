"""core.history: an endpoint's traffic changes from the audit records, and their revert through set_traffic."""

from __future__ import annotations

import pytest
from byom.core import history
from byom.core.entities import AuditRecord, Deployment, Endpoint, ModelSpec
from byom.core.errors import InvalidInput, NotFound
from byom.core.memory import InMemoryWorkspace


@pytest.fixture
def ws(tmp_path) -> InMemoryWorkspace:
    """Endpoint demo with deployments blue (100 %) and green; endpoint demo2 beside it."""
    (tmp_path / "model.pkl").write_bytes(b"\x00")
    ws = InMemoryWorkspace(seed=0)
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "model.pkl")))
    for endpoint in ("demo", "demo2"):
        ws.create_or_update_endpoint(Endpoint(name=endpoint))
        for name in ("blue", "green"):
            ws.create_or_update_deployment(Deployment(name=name, endpoint_name=endpoint, model="m:1"))
        ws.set_traffic(endpoint, {"blue": 100})
    return ws


def test_traffic_changes_are_read_from_traffic_records_only():
    records = [
        AuditRecord(at="2025-01-01T10:00:02Z", actor="ada", action="endpoint.traffic", target="endpoint/demo",
                    before={"traffic": {"blue": 100, "green": 0}, "mirror_traffic": {}},
                    after={"traffic": {"blue": 90, "green": 10}, "mirror_traffic": {}}, id=7),
        AuditRecord(at="2025-01-01T10:00:01Z", actor="ada", action="endpoint.regenerate-key", target="endpoint/demo",
                    after={"key_type": "primary"}, id=6),
        AuditRecord(at="2025-01-01T10:00:00Z", actor="ada", action="endpoint.traffic", target="endpoint/demo2",
                    before={"traffic": {}}, after={"traffic": {"blue": 100}}, id=5),
    ]
    [change, other] = history.traffic_changes(records)
    assert (change.id, change.before, change.after) == (7, {"blue": 100, "green": 0}, {"blue": 90, "green": 10})
    assert (change.mirror_before, change.mirror_after) == ({}, {})
    assert [c.id for c in history.traffic_changes(records, "demo")] == [7], "endpoint/demo2 is another endpoint"


def test_history_is_newest_first_and_its_endpoint_s_own(ws):
    ws.set_traffic("demo", {"blue": 90, "green": 10})
    ws.set_traffic("demo2", {"blue": 50, "green": 50})
    ws.set_traffic("demo", {"blue": 100, "green": 0}, {"green": 20})
    changes = history.traffic_history(ws, "demo")
    assert [(c.after, c.mirror_after) for c in changes] == [
        ({"blue": 100, "green": 0}, {"green": 20}), ({"blue": 90, "green": 10}, {}), ({"blue": 100}, {})]
    assert changes[0].before == {"blue": 90, "green": 10}
    assert all(c.actor and c.at and c.id for c in changes)


def test_revert_sets_the_split_before_the_change_back_and_is_audited(ws):
    ws.set_traffic("demo", {"blue": 90, "green": 10})
    ws.set_traffic("demo", {"blue": 0, "green": 100}, {"blue": 20})
    latest = history.traffic_history(ws, "demo")[0]

    endpoint = history.revert(ws, "demo")
    assert (endpoint.traffic, endpoint.mirror_traffic) == ({"blue": 90, "green": 10}, {})
    assert ws.get_endpoint("demo").traffic == {"blue": 90, "green": 10}
    newest = history.traffic_history(ws, "demo")[0]
    assert newest.id != latest.id and newest.after == {"blue": 90, "green": 10}, "the revert is a change of its own"

    history.revert(ws, "demo", latest.id)  # the same change again, by its id
    assert ws.get_endpoint("demo").traffic == {"blue": 90, "green": 10}
    first = history.traffic_history(ws, "demo")[-1]
    history.revert(ws, "demo", first.id)
    assert ws.get_endpoint("demo").traffic == {}


def test_revert_passes_waiting_and_progress_to_set_traffic(ws, monkeypatch):
    ws.set_traffic("demo", {"blue": 90, "green": 10})
    sent = []
    monkeypatch.setattr(ws, "set_traffic", lambda *args, **kwargs: sent.append((args, kwargs)))

    def report(message: str, fraction: float | None = None) -> None:
        pass

    history.revert(ws, "demo", wait=False, progress=report)
    assert sent == [(("demo", {"blue": 100}, {}), {"wait": False, "progress": report})]


def test_a_revert_to_a_deleted_deployment_s_share_is_refused(ws):
    ws.set_traffic("demo", {"blue": 90, "green": 10})
    ws.set_traffic("demo", {"blue": 100, "green": 0})
    ws.delete_deployment("demo", "green")
    ws.set_traffic("demo", {"blue": 100})
    gave_green_0, gave_green_10 = history.traffic_history(ws, "demo")[1:3]

    planned = history.plan_revert(ws, "demo", gave_green_0.id)
    assert (planned.traffic, planned.refusal) == ({"blue": 90}, "Cannot revert: it gave traffic to green (10 %), "
                                                                 "deleted since.")
    before = len(ws.list_audit())
    with pytest.raises(InvalidInput, match="green \\(10 %\\), deleted since"):
        history.revert(ws, "demo", gave_green_0.id)
    assert len(ws.list_audit()) == before, "nothing is sent"

    history.revert(ws, "demo", gave_green_10.id)  # green had 0 % before it: left out
    assert ws.get_endpoint("demo").traffic == {"blue": 100}


def test_revert_names_what_is_missing(ws):
    with pytest.raises(NotFound, match="No endpoint named 'nowhere'"):
        history.revert(ws, "nowhere")
    with pytest.raises(NotFound, match="has no traffic change 999"):
        history.revert(ws, "demo", 999)
    ws.create_or_update_endpoint(Endpoint(name="fresh"))
    with pytest.raises(NotFound, match="'fresh' has no traffic change to revert"):
        history.revert(ws, "fresh")


def test_split_text_and_largest_shift():
    assert history.split_text({"blue": 90, "green": 10, "red": 0}) == "blue 90 · green 10"
    assert history.split_text({}, {"shadow": 20}) == "no traffic (mirror: shadow 20)"
    assert history.largest_shift({"blue": 100}, {"blue": 40, "green": 60}) == 60
    assert history.largest_shift({"Blue": 50, "green": 50}, {"blue": 50, "green": 50}) == 0
