"""A deployment's outcome reaches the database even when writing it fails once or the control plane stops first.

The control plane runs here in-process on a real SQLite file, with no
gateway and no model servers: the rollouts stand as a previous control
plane would have left them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from byom.core.entities import Deployment
from byom.core.local.control_plane.generations import generation_id
from byom.core.local.control_plane.plane import ControlPlane
from byom.core.local.serving_files import ServingFiles
from byom.core.local.state import RolloutPhase, RolloutRecord

KEY = "ep/blue"
TOKEN = "2026-11-23T10:00:00.000+00:00"


@pytest.fixture
def plane(tmp_path: Path):
    files = ServingFiles(tmp_path / "home")
    files.home.mkdir(parents=True)
    plane = ControlPlane(files)
    plane.gateway.supervise = lambda: None  # no gateway process in these tests
    with plane.store.transaction() as txn:  # as an update with --no-wait leaves it
        txn.put("deployment", KEY, 0, {"name": "blue", "endpoint_name": "ep", "model": "m:1",
                                       "updated_at": TOKEN, "provisioning_state": "Updating", "state_reason": ""})
    yield plane
    plane.close()


def recorded(plane: ControlPlane) -> tuple[str, str]:
    with plane.store.transaction() as txn:
        doc = txn.get("deployment", KEY)
    return doc["provisioning_state"], doc["state_reason"]


def test_an_outcome_whose_write_fails_is_written_at_the_next_tick(plane, monkeypatch) -> None:
    rollout = RolloutRecord("ep", "blue", "blue", token=TOKEN, generation="g1", phase=RolloutPhase.ROLLING)
    plane.planner.rollouts[rollout.key] = rollout
    monkeypatch.setattr(plane, "reconcile", lambda: None)
    monkeypatch.setattr(plane.planner, "check",
                        lambda r: plane.planner.finish(r, "Succeeded", "") if r.phase == "rolling" else None)
    write = plane.write_outcome
    attempts = []

    def locked_once(outcome):
        attempts.append(outcome)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("database is locked")
        write(outcome)

    monkeypatch.setattr(plane, "write_outcome", locked_once)
    with pytest.raises(sqlite3.OperationalError):
        plane.tick()  # main() logs this and ticks again
    assert recorded(plane) == ("Updating", "")
    plane.tick()
    assert recorded(plane) == ("Succeeded", "")
    assert len(attempts) == 2 and plane.planner.outcomes == []


@pytest.mark.parametrize(("phase", "reason", "expected"), [
    ("steady", "", ("Succeeded", "")),
    ("failed", "init() raised ValueError", ("Failed", "init() raised ValueError")),
])
def test_an_outcome_lost_in_a_restart_is_recorded_by_the_next_control_plane(plane, monkeypatch, phase, reason,
                                                                            expected) -> None:
    # the state file said the rollout had ended; the control plane stopped before the database heard of it
    dep = Deployment(name="blue", endpoint_name="ep", model="m:1", updated_at=TOKEN, provisioning_state="Updating")
    ended = RolloutRecord("ep", "blue", "blue", token=TOKEN, generation=generation_id(dep), phase=phase,
                          reason=reason)
    plane.planner.rollouts[ended.key] = ended
    monkeypatch.setattr(plane.desired, "load", lambda: {ended.key: (dep, None)})
    plane.tick()
    assert recorded(plane) == expected
    assert ended.phase == phase, "what runs is left as it is"
    plane._last_load = 0.0  # the next reload finds the outcome recorded: nothing more to write
    plane.tick()
    assert [r.after["provisioning_state"] for r in plane.store.list_audit() if r.action == "deployment.state"] \
        == [expected[0]]


def test_an_update_that_could_not_start_is_tried_again_not_called_done(plane, monkeypatch) -> None:
    serving = RolloutRecord("ep", "blue", "blue", token="2026-11-23T09:00:00.000+00:00", generation="g0",
                            phase=RolloutPhase.STEADY)
    plane.planner.rollouts[serving.key] = serving
    dep = Deployment(name="blue", endpoint_name="ep", model="m:1", updated_at=TOKEN, provisioning_state="Updating")
    monkeypatch.setattr(plane.desired, "load", lambda: {serving.key: (dep, None)})
    tries = []

    def locked(*args):
        tries.append(args)
        raise sqlite3.OperationalError("database is locked")  # reading the environment's build, say

    monkeypatch.setattr(plane.planner, "prepare", locked)
    for _ in range(2):
        plane._last_load = 0.0
        with pytest.raises(sqlite3.OperationalError):
            plane.tick()
    assert len(tries) == 2, "each reload tries the update again"
    assert recorded(plane) == ("Updating", "") and serving.generation == "g0", "the old generation still serves"
