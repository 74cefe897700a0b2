"""The serving-state file: typed records, in the shape earlier versions wrote, key for key."""

from __future__ import annotations

import json
from pathlib import Path

from byom.core.entities import InstanceState
from byom.core.local.state import RolloutPhase, read_state, write_state

PROBE = {"initial_delay": 10, "period": 10, "timeout": 2, "success_threshold": 1, "failure_threshold": 30}
# as the control plane of the previous version wrote it (a rollout not started yet has a null token)
WRITTEN_BEFORE = {
    "control_plane": {"pid": 4242},
    "updated_at": "2026-12-01T10:00:00.000+00:00",
    "reconciles": 17,
    "rollouts": [
        {"endpoint": "ep", "deployment": "blue", "name": "Blue", "token": "2026-12-01T09:59:00.000+00:00",
         "generation": "a1b2c3d4", "previous": None, "phase": "steady", "reason": "", "count": 1,
         "request_timeout_s": 5.0, "readiness": PROBE, "liveness": PROBE},
        {"endpoint": "ep", "deployment": "green", "name": "green", "token": None, "generation": None,
         "previous": None, "phase": "steady", "reason": "", "count": 1, "request_timeout_s": 1.5,
         "readiness": PROBE, "liveness": PROBE},
    ],
    "specs": {"a1b2c3d4": {"interpreter": "/usr/bin/python3", "model_dir": "/h/run/models/m/1",
                           "app_root": "/h/code/ep/blue/a1b2c3d4", "entry_script": "code/score.py",
                           "environment_variables": {"A": "1"}, "worker_count": 1}},
    "instances": [
        {"id": "blue-a1b2c3-0", "endpoint": "ep", "deployment": "blue", "generation": "a1b2c3d4", "index": 0,
         "port": 40001, "state": "Ready", "restarts": 2, "started_at": "2026-12-01T09:59:01.000+00:00",
         "reason": "", "ever_ready": True, "pid": 5151, "start": 123456},
        {"id": "blue-a1b2c3-1", "endpoint": "ep", "deployment": "blue", "generation": "a1b2c3d4", "index": 1,
         "port": 0, "state": "Crashed", "restarts": 0, "started_at": None, "reason": "exited with code 1",
         "ever_ready": True, "pid": None, "start": None},
    ],
}


def test_a_file_written_by_the_previous_version_reads_back_typed_and_writes_the_same_json(tmp_path: Path) -> None:
    path = tmp_path / "serving-state.json"
    path.write_text(json.dumps(WRITTEN_BEFORE))
    state = read_state(path)
    assert state.control_plane_pid == 4242 and state.reconciles == 17
    assert state.rollouts[0].phase is RolloutPhase.STEADY and state.rollouts[1].token is None
    assert state.rollouts[0].readiness.failure_threshold == 30
    assert state.instances[0].state is InstanceState.READY and state.instances[0].state == "Ready"
    assert state.specs["a1b2c3d4"].environment_variables == {"A": "1"}
    assert [i.id for i in state.instances_of("ep", "BLUE")] == ["blue-a1b2c3-0", "blue-a1b2c3-1"]
    assert state.rollout("ep", "Green") is state.rollouts[1]
    write_state(path, state)
    assert json.loads(path.read_text()) == WRITTEN_BEFORE


def test_no_file_or_a_broken_one_is_an_empty_state(tmp_path: Path) -> None:
    assert read_state(tmp_path / "missing.json").instances == []
    (tmp_path / "half.json").write_text('{"instances": [')
    assert read_state(tmp_path / "half.json").rollouts == []
