"""console.views.traffic: the Traffic tab's rollout lines, steps, confirmation and past rollouts."""

from byom.console.views import traffic
from byom.core.entities import AuditRecord, RolloutBreach, RolloutStep, TrafficRollout


def rollout(**changes) -> TrafficRollout:
    base = TrafficRollout(id="r1", endpoint="demo", target="green", steps=[10, 50, 100], step_seconds=30,
                          max_error_rate=0.05, max_p95_ms=None, min_requests=5, actor="ada",
                          started_at="2026-12-04T10:00:00+00:00", before={"blue": 100},
                          applied={"blue": 50, "green": 50},
                          history=[RolloutStep(10, 1.0, 31.0, 9, 0, 0.0, 12.0), RolloutStep(50, 31.0, None, 4, 1)])
    return base.replace(**changes)


def test_a_running_rollout_says_its_step_split_and_an_abort_asked():
    assert traffic.rollout_line(rollout()) == ("Rollout r1 to green: step 2 of 3 (50 %), split blue 50 · green 50; "
                                               "started by ada at 2026-12-04 10:00:00")
    assert traffic.rollout_line(rollout(abort_requested="bob")).endswith(
        "Abort asked by bob: the split goes back to blue 100")
    assert "starting (3 steps: 10,50,100 %)" in traffic.rollout_line(rollout(history=[]))
    assert traffic.rollout_line(rollout(state="RolledBack", reason="rolled back: x")) == \
        "Rollout r1 to green: RolledBack, rolled back: x"


def test_steps_say_which_was_healthy_which_is_checked_and_which_breached():
    rows = traffic.steps_table(rollout()).to_dict("records")
    assert [(r["Step"], r["Share %"], r["Check"], r["Requests"]) for r in rows] == [
        ("1 of 3", 10, "healthy", 9), ("2 of 3", 50, "checking", 4)]
    ended = rollout(breach=RolloutBreach("error_rate", 0.25, 0.05, 50),
                    history=[*rollout().history[:1], RolloutStep(50, 31.0, 61.0, 4, 1, 0.25)])
    assert traffic.steps_table(ended).to_dict("records")[1]["Check"] == "breach: error_rate"


def test_the_abort_confirmation_names_what_changes():
    assert traffic.abort_question(rollout()) == (
        "Abort rollout r1 of demo? The live split goes back from blue 50 · green 50 to blue 100, as before the "
        "rollout: green goes from 50 % to 0 %.")


def test_past_rollouts_are_the_ended_ones_of_this_endpoint_only():
    def record(target: str, state: str, rid: str, action: str = "endpoint.rollout") -> AuditRecord:
        return AuditRecord(at="2026-12-04T11:00:00+00:00", actor="cp", action=action, target=target,
                           after={"rollout": rid, "state": state, "target": "green", "steps": [10, 100],
                                  "reason": f"why {rid}"})

    records = [record("endpoint/demo", "Succeeded", "a"), record("endpoint/demo", "Running", "b"),
               record("endpoint/demo2", "Aborted", "c"), record("endpoint/demo", "Aborted", "d", "endpoint.traffic")]
    rows = traffic.past_rollouts(records, "demo").to_dict("records")
    assert rows == [{"Ended": "2026-12-04 11:00:00", "Rollout": "a", "To": "green", "Steps": "10,100",
                     "Outcome": "Succeeded", "Reason": "why a"}]
