"""The instance supervisor as the state machine it is: a fake clock, fake processes, no waiting."""

from __future__ import annotations

import pytest
from byom.core.entities import InstanceState, ProbeSettings
from byom.core.local.control_plane.instances import BACKOFF_S, STABLE_S, STOP_GRACE_S, Instance, InstanceSupervisor
from byom.core.local.state import InstanceRecord, RolloutPhase, RolloutRecord

from .fake_processes import Clock, FakeProcess, FakeRuntime

KEY = ("ep", "blue")


def rollout(phase: RolloutPhase = RolloutPhase.ROLLING, **probes: ProbeSettings) -> RolloutRecord:
    quick = ProbeSettings(initial_delay=0, period=1, timeout=1, failure_threshold=3)
    return RolloutRecord("ep", "blue", "blue", token="t1", generation="g1", phase=phase,
                         readiness=probes.get("readiness", quick), liveness=probes.get("liveness", quick))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


@pytest.fixture
def supervisor(runtime: FakeRuntime, clock: Clock) -> InstanceSupervisor:
    return InstanceSupervisor(runtime, clock, reserved_ports=lambda: (9000,))


def started(supervisor: InstanceSupervisor, index: int = 0) -> Instance:
    inst = Instance(f"blue-g1-{index}", "ep", "blue", "g1", index)
    supervisor.add(inst)
    return inst


def ready(supervisor: InstanceSupervisor, clock: Clock, plan: RolloutRecord) -> Instance:
    inst = started(supervisor)
    for _ in range(2):  # one step sends the probe, the next reads its answer
        supervisor.step(inst, plan)
    assert inst.state == InstanceState.READY
    return inst


def test_an_instance_starts_on_a_free_port_and_is_ready_once_its_probe_answers(supervisor, runtime, clock) -> None:
    inst = started(supervisor)
    assert inst.state == InstanceState.STARTING and inst.port == 9001, "never the gateway's port"
    supervisor.dirty = supervisor.routes_dirty = False
    supervisor.step(inst, rollout())
    assert inst.state == InstanceState.STARTING and inst.probe is not None
    clock.advance(0.1)
    supervisor.step(inst, rollout())
    assert inst.state == InstanceState.READY and inst.ever_ready
    assert supervisor.routes_dirty, "the gateway must learn of a ready instance"
    assert inst.record().to_json()["state"] == "Ready" and inst.record().pid == inst.proc.pid


def test_a_ready_instance_that_dies_is_restarted_after_a_growing_backoff(supervisor, runtime, clock) -> None:
    plan = rollout()
    inst = ready(supervisor, clock, plan)
    waits = []
    for _ in range(3):
        inst.proc.exit(1)
        supervisor.step(inst, plan)
        assert inst.state == InstanceState.CRASHED and inst.reason == "exited with code 1"
        waits.append(inst.next_start - clock.now)
        clock.advance(waits[-1] - 0.01)
        supervisor.step(inst, plan)
        assert inst.state == InstanceState.CRASHED, "not before its backoff"
        clock.advance(0.01)
        supervisor.step(inst, plan)
        assert inst.state == InstanceState.STARTING
        supervisor.step(inst, plan)
        supervisor.step(inst, plan)
        assert inst.state == InstanceState.READY
    assert waits == list(BACKOFF_S[:3]) and inst.restarts == 3
    assert supervisor.notes[-1].reason == "", "ready again: the deployment's note is cleared"

    clock.advance(STABLE_S)  # ready long enough: the next crash starts a new streak
    inst.proc.exit(1)
    supervisor.step(inst, plan)
    assert inst.next_start - clock.now == BACKOFF_S[0]


def test_an_instance_that_dies_before_it_is_ready_fails_with_its_log_tail(supervisor, runtime, clock) -> None:
    inst = started(supervisor)
    inst.proc.exit(3)
    supervisor.step(inst, rollout())
    assert inst.start_failed and inst.state == InstanceState.STARTING
    assert inst.reason.startswith("Instance blue-g1-0 exited with code 3 before it was ready. Log tail:\n")
    assert runtime.tail in inst.reason and inst.proc.pid in runtime.killed, "its workers go with it"
    supervisor.step(inst, rollout(RolloutPhase.ROLLING))
    assert inst.state == InstanceState.STARTING, "a rolling rollout fails on it first"
    supervisor.step(inst, rollout(RolloutPhase.STEADY))
    assert inst.state == InstanceState.STOPPING


def test_a_port_taken_between_the_check_and_the_bind_is_tried_again(supervisor, runtime, clock) -> None:
    inst = started(supervisor)
    runtime.tail = "[ERROR] Connection in use: ('127.0.0.1', 9001)"
    inst.proc.exit(1)
    supervisor.step(inst, rollout())
    assert not inst.start_failed and inst.bind_retries == 1 and len(runtime.processes) == 2


def test_an_instance_never_ready_within_its_readiness_window_fails(supervisor, runtime, clock) -> None:
    runtime.healthy = False
    plan = rollout(readiness=ProbeSettings(initial_delay=1, period=1, timeout=1, failure_threshold=2))
    inst = started(supervisor)
    for _ in range(30):
        clock.advance(0.1)
        supervisor.step(inst, plan)
    assert inst.start_failed and inst.reason == "Instance blue-g1-0 did not become ready within 3 s."
    assert runtime.killed == [inst.proc.pid]


def test_an_instance_failing_its_liveness_probes_is_killed_and_restarted(supervisor, runtime, clock) -> None:
    plan = rollout()
    inst = ready(supervisor, clock, plan)
    runtime.healthy = False
    for _ in range(2 * plan.liveness.failure_threshold):
        clock.advance(plan.liveness.period)
        supervisor.step(inst, plan)
    assert runtime.killed == [inst.proc.pid]
    supervisor.step(inst, plan)
    assert inst.state == InstanceState.CRASHED and inst.reason == "stopped"


def test_a_start_that_fails_outright(supervisor, runtime, clock) -> None:
    runtime.start_error = OSError("No file descriptors left")
    inst = started(supervisor)
    assert inst.start_failed and inst.reason == "Instance blue-g1-0 could not be started: No file descriptors left"
    assert runtime.logged == [f"=== byom: {inst.reason}"] and supervisor.notes == []

    runtime.start_error = None
    plan = rollout()
    again = ready(supervisor, clock, plan)
    runtime.start_error = KeyError("g1")
    again.proc.exit(1)
    supervisor.step(again, plan)
    clock.advance(BACKOFF_S[0])
    supervisor.step(again, plan)  # an instance that was ready once is tried again, like a crash
    assert again.state == InstanceState.CRASHED and not again.start_failed
    assert again.reason.endswith("could not be started: the instance's generation is unknown")
    assert supervisor.notes[-1].key == KEY and supervisor.notes[-1].reason == again.reason


def test_stopping_drains_then_terminates_then_kills(supervisor, runtime, clock) -> None:
    plan = rollout()
    inst = ready(supervisor, clock, plan)
    supervisor.routes_dirty = False
    supervisor.stop(inst, drain_s=5)
    assert inst.state == InstanceState.STOPPING and supervisor.routes_dirty, "out of the routes first"
    supervisor.step(inst, plan)
    assert runtime.termed == [], "requests may still be in flight"
    runtime.idle = True
    supervisor.step(inst, plan)
    assert runtime.termed == [inst.proc.pid]
    supervisor.step(inst, plan)
    assert supervisor.instances == [] and runtime.killed == [inst.proc.pid], "its workers go with it"


def test_an_instance_that_ignores_sigterm_is_killed_after_the_grace(supervisor, runtime, clock) -> None:
    runtime.exits_on_term = False
    inst = ready(supervisor, clock, rollout())
    supervisor.stop(inst, drain_s=5)
    clock.advance(6)
    supervisor.step(inst, None)
    assert runtime.termed == [inst.proc.pid] and runtime.killed == []
    clock.advance(STOP_GRACE_S + 0.1)
    supervisor.step(inst, None)
    assert runtime.killed == [inst.proc.pid]


@pytest.mark.parametrize(("state", "ever_ready", "running", "expected"), [
    (InstanceState.READY, True, True, InstanceState.READY),
    (InstanceState.READY, True, False, InstanceState.CRASHED),
    (InstanceState.STARTING, True, False, InstanceState.CRASHED),
    (InstanceState.STARTING, False, False, "start_failed"),
    (InstanceState.STOPPING, True, False, None),
])
def test_adopting_what_a_previous_control_plane_recorded(supervisor, clock, state, ever_ready, running,
                                                        expected) -> None:
    record = InstanceRecord(id="blue-g1-0", endpoint="ep", deployment="blue", generation="g1", index=0, port=9005,
                            state=state, ever_ready=ever_ready, pid=77, start=1)
    supervisor.adopt(InstanceRecord.from_json(record.to_json()), FakeProcess(77) if running else None)
    if expected is None:
        assert supervisor.instances == [], "it was being stopped and is gone"
        return
    [inst] = supervisor.instances
    if expected == "start_failed":
        assert inst.start_failed and "control plane was down" in inst.reason
    else:
        assert inst.state == expected and inst.port == 9005
        assert expected != InstanceState.CRASHED or inst.next_start == clock.now, "restarted at once"
