"""The Endpoints page's Traffic tab: the mirror report beside the mirror setting, a live rollout with Abort, and
how past rollouts ended (the in-memory workspace; its serving plays the models and keeps the mirrored answers)."""

from __future__ import annotations

from typing import Any

from byom.console import keys
from byom.core import traffic_rollout
from byom.core.memory import InMemoryWorkspace
from byom.core.serving import FakeServing
from byom.core.traffic_rollout import RolloutPlan

from .apptest_helpers import texts


class DrivenServing(FakeServing):
    """The fake serving, with a rollout driver: the test is the driver (it calls ``traffic_rollout.advance``)."""

    capabilities = (*FakeServing.capabilities, "traffic-rollouts")

    def drive_rollouts(self) -> None:
        pass


class NoMirrorReports(FakeServing):
    capabilities = tuple(c for c in FakeServing.capabilities if c != "mirror-reports")


def mirror_to_ranks(ws: InMemoryWorkspace, requests: int = 30) -> None:
    ws.set_traffic("demo", {"chat": 100, "ranks": 0}, {"ranks": 50})
    for _ in range(requests):
        assert ws.invoke("demo", {"prompt": "hello there"}).status_code == 200


def report_rows(at: Any) -> dict[str, dict[str, Any]]:
    """The mirror report's table on the page, by mirrored deployment."""
    frames = [d.value for d in at.dataframe if "Identical" in d.value.columns]
    assert len(frames) == 1, [list(d.value.columns) for d in at.dataframe]
    return {row["Mirror"]: row for row in frames[0].to_dict("records")}


def test_the_mirror_report_shows_a_mirror_that_answers_differently(open_page, demo):
    mirror_to_ranks(demo)  # the fake model's text names the deployment: the first word differs
    sent = sum(1 for f in demo.backend.request_facts("demo", 0) if f.mirrored)
    at = open_page("endpoints")
    row = report_rows(at)["ranks"]
    assert (row["Primary"], row["Requests"], row["Identical"], row["Differing"]) == ("chat", sent, 0, sent)
    assert (row["Primary errors"], row["Mirror errors"], row["Exact match"], row["First diff (word)"]) == (0, 0, 0, 0)
    assert "split into words" in texts(at.caption)
    at.selectbox(key=keys.MIRROR_REPORT_WINDOW).set_value("15m").run()
    assert report_rows(at)["ranks"]["Requests"] == sent


def test_the_mirror_report_shows_a_mirror_that_answers_the_same(open_page, demo):
    demo.fake_serving.responder = lambda endpoint, deployment, payload: (200, {"text": "the same answer"})
    mirror_to_ranks(demo)
    at = open_page("endpoints")
    row = report_rows(at)["ranks"]
    assert row["Requests"] > 0 and row["Identical"] == row["Requests"] and row["Differing"] == 0
    assert row["Exact match"] == 1.0


def test_no_mirrored_requests_says_how_to_get_some_and_a_workspace_without_reports_says_why(open_page, demo):
    at = open_page("endpoints")
    assert "No mirrored requests in the last 1h" in texts(at.caption)
    demo.serving = NoMirrorReports()
    at = open_page("endpoints")
    assert "discard its answers" in texts(at.info)


def test_a_running_rollout_shows_its_progress_and_is_aborted_after_a_confirmation(open_page, demo):
    demo.serving = DrivenServing(seed=0)
    started = traffic_rollout.start(demo, RolloutPlan("demo", "ranks", steps=(10, 50, 100), step_seconds=60,
                                                      min_requests=1))
    traffic_rollout.advance(demo, "demo")  # the driver sets the first step
    for _ in range(3):
        demo.invoke("demo", {"prompt": "hi"}, deployment="ranks")
    traffic_rollout.advance(demo, "demo")  # and counts what the step saw so far

    at = open_page("endpoints")
    shown = texts(at.info)
    assert f"Rollout {started.id} to ranks: step 1 of 3 (10 %), split chat 90 · ranks 10" in shown
    [step] = next(d.value for d in at.dataframe if "Check" in d.value.columns).to_dict("records")
    assert (step["Step"], step["Share %"], step["Check"], step["Requests"], step["Errors"], step["Error rate"]) == \
        ("1 of 3", 10, "checking", 3, 0, 0.0)
    assert "limits: error rate at most 0.05" in texts(at.caption)

    at.button(key=keys.ROLLOUT_ABORT).click()
    at.run()
    assert (f"Abort rollout {started.id} of demo? The live split goes back from chat 90 · ranks 10 to chat 100, as "
            "before the rollout: ranks goes from 10 % to 0 %.") in texts(at.warning)
    assert demo.backend.traffic_rollout("demo").abort_requested == "", "nothing is asked before the confirmation"
    at.button(key=keys.confirm_button(f"abort-rollout:demo:{started.id}")).click()
    at.run()
    assert "Asked rollout" in texts(at.success) and "goes back to chat 100" in texts(at.success)
    assert at.button(key=keys.ROLLOUT_ABORT).disabled, "asked once: the driver does the rest"

    ended = traffic_rollout.advance(demo, "demo")  # the driver sets the split back
    assert ended is not None and ended.state == "Aborted"
    at = open_page("endpoints")
    assert not [b for b in at.button if b.key == keys.ROLLOUT_ABORT]
    past = next(d.value for d in at.dataframe if "Outcome" in d.value.columns).to_dict("records")
    assert [(p["Rollout"], p["To"], p["Outcome"]) for p in past] == [(started.id, "ranks", "Aborted")]
    assert past[0]["Reason"].startswith("aborted by") and past[0]["Steps"] == "10,50,100"
    assert "No rollout running" in texts(at.caption)
    assert demo.get_endpoint("demo").traffic == {"chat": 100, "ranks": 0}


def test_a_workspace_without_rollouts_says_so(open_page, demo):
    at = open_page("endpoints")
    assert "nothing that drives progressive rollouts" in texts(at.info)
    assert not [b for b in at.button if b.key == keys.ROLLOUT_ABORT]
