"""An instance whose worker a timed-out request holds is restarted at its first unanswered probe, not its 30th."""

from __future__ import annotations

from byom.core.entities import InstanceState, ProbeSettings
from byom.core.local.control_plane.instances import InstanceSupervisor

from .fake_processes import Clock, FakeRuntime
from .test_instance_supervisor import ready, rollout

AZURE_LIVENESS = ProbeSettings(initial_delay=0, period=10, timeout=2, failure_threshold=30)  # Azure ML's default


def probe_once(supervisor: InstanceSupervisor, clock: Clock, inst: object, plan: object) -> None:
    clock.advance(AZURE_LIVENESS.period)
    supervisor.step(inst, plan)  # type: ignore[arg-type] # the test's own instance and rollout
    supervisor.step(inst, plan)  # type: ignore[arg-type]


def test_a_timed_out_request_and_an_unanswered_probe_restart_the_instance() -> None:
    runtime, clock = FakeRuntime(), Clock()
    supervisor = InstanceSupervisor(runtime, clock)
    plan = rollout(liveness=AZURE_LIVENESS)
    inst = ready(supervisor, clock, plan)
    hung = inst.proc
    assert hung is not None
    runtime.timeouts[inst.port] = 1  # the gateway answered 408: the one worker is still in run()
    runtime.healthy = False  # so the probe is not answered either
    probe_once(supervisor, clock, inst, plan)
    assert runtime.killed == [hung.pid], "restarted at the first unanswered probe"
    supervisor.step(inst, plan)
    assert inst.state == InstanceState.CRASHED, "out of the routes, the state file says so"
    clock.advance(1)
    runtime.healthy = True
    for _ in range(3):
        supervisor.step(inst, plan)
    assert inst.state == InstanceState.READY and inst.proc is not hung and inst.restarts == 1


def test_an_unanswered_probe_alone_or_an_old_timeout_restarts_nothing() -> None:
    runtime, clock = FakeRuntime(), Clock()
    supervisor = InstanceSupervisor(runtime, clock)
    plan = rollout(liveness=AZURE_LIVENESS)
    runtime.timeouts[9000] = 4  # from an instance that had this port before
    inst = ready(supervisor, clock, plan)
    assert inst.port == 9000
    runtime.healthy = False
    for _ in range(5):
        probe_once(supervisor, clock, inst, plan)
    assert runtime.killed == [] and inst.state == InstanceState.READY, "a slow probe is the liveness rule's"
