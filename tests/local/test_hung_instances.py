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
    supervisor.step(inst, plan)


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



def test_a_gateway_that_did_not_answer_is_no_new_timeout() -> None:
    runtime, clock = FakeRuntime(), Clock()
    supervisor = InstanceSupervisor(runtime, clock)
    plan = rollout(liveness=AZURE_LIVENESS)
    runtime.timeouts[9000] = 2  # two 408s before this instance was ready: not its business
    inst = ready(supervisor, clock, plan)
    runtime.healthy = False
    runtime.gateway_answers = False  # busy or restarting: it does not say how many
    probe_once(supervisor, clock, inst, plan)
    runtime.gateway_answers = True  # and says the same count as before
    for _ in range(3):
        probe_once(supervisor, clock, inst, plan)
    assert runtime.killed == [] and inst.state == InstanceState.READY, "no 408 since the count seen at ready"


def test_an_instance_made_ready_while_the_gateway_was_silent_takes_its_first_count_as_the_start() -> None:
    runtime, clock = FakeRuntime(gateway_answers=False), Clock()
    supervisor = InstanceSupervisor(runtime, clock)
    plan = rollout(liveness=AZURE_LIVENESS)
    runtime.timeouts[9000] = 3
    inst = ready(supervisor, clock, plan)
    hung = inst.proc
    assert hung is not None
    runtime.gateway_answers, runtime.healthy = True, False
    probe_once(supervisor, clock, inst, plan)
    assert runtime.killed == [], "three 408s of which none is known to be this instance's"
    runtime.timeouts[9000] = 4
    probe_once(supervisor, clock, inst, plan)
    assert runtime.killed == [hung.pid], "one after the count was known"


def test_a_timeout_after_a_gateway_restart_counts_though_below_the_old_count() -> None:
    runtime, clock = FakeRuntime(), Clock()
    supervisor = InstanceSupervisor(runtime, clock)
    plan = rollout(liveness=AZURE_LIVENESS)
    runtime.timeouts[9000] = 5  # from an instance that had this port before
    inst = ready(supervisor, clock, plan)
    hung = inst.proc
    assert hung is not None
    runtime.timeouts[9000] = 1  # the gateway restarted, counting from 0, and gave up on a request to this instance
    runtime.healthy = False
    probe_once(supervisor, clock, inst, plan)
    assert runtime.killed == [hung.pid], "restarted at the first unanswered probe, not after five more 408s"


def test_a_restarted_gateway_with_no_timeout_restarts_nothing_and_its_zero_is_the_new_start() -> None:
    runtime, clock = FakeRuntime(), Clock()
    supervisor = InstanceSupervisor(runtime, clock)
    plan = rollout(liveness=AZURE_LIVENESS)
    runtime.timeouts[9000] = 5
    inst = ready(supervisor, clock, plan)
    hung = inst.proc
    assert hung is not None
    runtime.timeouts[9000] = 0
    runtime.healthy = False
    probe_once(supervisor, clock, inst, plan)
    assert runtime.killed == [] and inst.timeouts_seen == 0
    runtime.timeouts[9000] = 1
    probe_once(supervisor, clock, inst, plan)
    assert runtime.killed == [hung.pid]
