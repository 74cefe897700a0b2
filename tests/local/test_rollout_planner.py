"""The rollout planner over the instance supervisor, with fake processes: generations, scaling, outcomes."""

from __future__ import annotations

import pytest
from byom.core.entities import Deployment, InstanceState, ProbeSettings, ProvisioningState
from byom.core.local.control_plane.generations import GenerationFailed, generation_id
from byom.core.local.control_plane.instances import InstanceSupervisor
from byom.core.local.control_plane.rollouts import RolloutPlanner
from byom.core.local.model_server import EnvironmentBuilding, InstanceSpec
from byom.core.local.state import RolloutPhase

from .fake_processes import Clock, FakeRuntime

KEY = ("ep", "blue")
QUICK = ProbeSettings(initial_delay=0, period=1, timeout=1, failure_threshold=3)
SPEC = InstanceSpec(interpreter="python", model_dir="/m", app_root="/a", entry_script="code/score.py")


def dep(stamp: str, state: ProvisioningState = ProvisioningState.CREATING, count: int = 1) -> Deployment:
    return Deployment(name="Blue", endpoint_name="ep", model="m:1", instance_count=count, updated_at=stamp,
                      provisioning_state=state, readiness_probe=QUICK, liveness_probe=QUICK)


class Planned:
    def __init__(self) -> None:
        self.clock = Clock()
        self.runtime = FakeRuntime()
        self.supervisor = InstanceSupervisor(self.runtime, self.clock)
        self.prepare_error: Exception | None = None
        self.notes: list[tuple[str | None, str]] = []
        self.planner = RolloutPlanner(self.supervisor, self.prepare, lambda r, token, reason:
                                      self.notes.append((token, reason)))

    def prepare(self, d: Deployment, model: object, gen: str) -> InstanceSpec:
        if self.prepare_error is not None:
            raise self.prepare_error
        return SPEC

    def tick(self, *desired: Deployment) -> None:
        self.planner.reconcile({(d.endpoint_name, d.name.lower()): (d, {}) for d in desired})
        for _ in range(2):
            self.supervisor.step_all(self.planner.rollouts)
        self.planner.check_all()

    def states(self) -> list[tuple[str, InstanceState]]:
        return [(i.generation, i.state) for i in self.supervisor.instances]

    def outcomes(self) -> list[tuple[str, str]]:
        return [(o.state, o.reason) for o in self.planner.outcomes]


@pytest.fixture
def planned() -> Planned:
    return Planned()


def test_an_update_starts_next_to_the_old_generation_which_stops_once_the_new_one_is_ready(planned) -> None:
    first = dep("2026-01-01T00:00:00.000+00:00", count=2)
    planned.tick(first)
    old = generation_id(first)
    assert planned.states() == [(old, InstanceState.READY)] * 2 and planned.outcomes() == [("Succeeded", "")]

    update = dep("2026-01-01T00:01:00.000+00:00", ProvisioningState.UPDATING, count=2)
    new = generation_id(update)
    planned.planner.reconcile({KEY: (update, {})})
    assert planned.states() == [(old, InstanceState.READY)] * 2 + [(new, InstanceState.STARTING)] * 2
    planned.tick(update)
    assert planned.states() == [(old, InstanceState.STOPPING)] * 2 + [(new, InstanceState.READY)] * 2
    rollout = planned.planner.rollouts[KEY]
    assert (rollout.generation, rollout.previous, rollout.phase) == (new, None, RolloutPhase.STEADY)
    assert set(planned.planner.live_specs()) == {old, new}, "the old generation's spec until it is gone"


def test_a_failed_update_leaves_the_old_generation_serving(planned) -> None:
    first = dep("2026-01-01T00:00:00.000+00:00")
    planned.tick(first)
    update = dep("2026-01-01T00:01:00.000+00:00", ProvisioningState.UPDATING)
    planned.planner.reconcile({KEY: (update, {})})
    planned.supervisor.instances[-1].proc.exit(1)
    planned.supervisor.step_all(planned.planner.rollouts)
    planned.planner.check_all()
    rollout = planned.planner.rollouts[KEY]
    assert rollout.phase == RolloutPhase.FAILED and rollout.generation == generation_id(first)
    assert planned.outcomes()[-1][0] == "Failed" and "before it was ready" in planned.outcomes()[-1][1]
    assert planned.states() == [(generation_id(first), InstanceState.READY),
                                (generation_id(update), InstanceState.STOPPING)]


def test_scaling_changes_the_running_generation_in_place(planned) -> None:
    first = dep("2026-01-01T00:00:00.000+00:00")
    planned.tick(first)
    planned.tick(dep("2026-01-01T00:01:00.000+00:00", ProvisioningState.SCALING, count=3))
    assert planned.states() == [(generation_id(first), InstanceState.READY)] * 3
    planned.tick(dep("2026-01-01T00:02:00.000+00:00", ProvisioningState.SCALING, count=1))
    assert [s for _, s in planned.states()] == [InstanceState.READY] + [InstanceState.STOPPING] * 2
    assert [o[0] for o in planned.outcomes()] == ["Succeeded"] * 3


def test_what_cannot_start_fails_or_waits(planned) -> None:
    planned.prepare_error = GenerationFailed("Model m:1 is not registered in this workspace.")
    planned.tick(dep("2026-01-01T00:00:00.000+00:00"))
    assert planned.outcomes() == [("Failed", "Model m:1 is not registered in this workspace.")]

    planned.prepare_error = EnvironmentBuilding("Environment env:1 is being built (resolving).")
    update = dep("2026-01-01T00:01:00.000+00:00", ProvisioningState.UPDATING)
    planned.tick(update)
    assert planned.notes == [(update.updated_at, "Environment env:1 is being built (resolving).")]
    assert planned.planner.rollouts[KEY].token is None, "looked at again at the next reload"


def test_a_deleted_deployment_has_its_instances_stopped(planned) -> None:
    planned.tick(dep("2026-01-01T00:00:00.000+00:00"))
    assert planned.planner.reconcile({}) == [KEY]
    assert planned.planner.rollouts == {} and [s for _, s in planned.states()] == [InstanceState.STOPPING]
