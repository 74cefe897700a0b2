"""The rollout planner: turns deployment documents (the desired state) into instances to start and stop.

* a deployment generation (``generations.generation_id``) has
  ``instance_count`` instances. A new generation starts next to the old one;
  the old one is drained and stopped once every new instance is ready, so an
  update drops no request. If a new instance dies, never gets ready or
  cannot be started at all, the deployment ends in Failed with the
  instance's log tail or the reason, and the old generation keeps serving.
* a scale changes the running generation's instance count in place.
* a deleted deployment's instances are stopped.

Each ended rollout queues its outcome (:class:`Outcome`); the control plane
writes it to the database once the state file and the gateway know, so that
whoever reads Succeeded there can call the new version at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...entities import Deployment, InstanceState, ProvisioningState
from ..model_server import EnvironmentBuilding, InstanceSpec
from ..state import RolloutPhase, RolloutRecord
from .generations import GenerationFailed, generation_id
from .instances import Instance, InstanceSupervisor, Note

log = logging.getLogger("byom.control-plane")

Desired = Mapping[tuple[str, str], tuple[Deployment, dict[str, Any] | None]]
"""(endpoint, lower-cased deployment) → the deployment document and its model's document (None: not found)."""


@dataclass
class Outcome:
    rollout: RolloutRecord
    token: str | None  # the change it ends
    state: ProvisioningState
    reason: str


class RolloutPlanner:
    def __init__(self, supervisor: InstanceSupervisor,
                 prepare: Callable[[Deployment, dict[str, Any] | None, str], InstanceSpec],
                 write_note: Callable[[RolloutRecord, str | None, str], None]) -> None:
        self.supervisor = supervisor
        self.prepare = prepare
        self.write_note = write_note
        self.rollouts: dict[tuple[str, str], RolloutRecord] = {}
        self.specs: dict[str, InstanceSpec] = {}  # by generation
        self.outcomes: list[Outcome] = []  # to the database once the gateway knows
        self.dirty = False
        self.routes_dirty = False

    def live_specs(self) -> dict[str, InstanceSpec]:
        """The specs of the generations something still names."""
        live = {i.generation for i in self.supervisor.instances} | {
            g for r in self.rollouts.values() for g in (r.generation, r.previous) if g}
        return {g: s for g, s in self.specs.items() if g in live}

    # ------------------------------------------------------- desired state

    def reconcile(self, desired: Desired) -> list[tuple[str, str]]:
        """Act on every document that changed since it was last seen; return the deployments deleted."""
        for key, (dep, model) in desired.items():
            rollout = self.rollouts.get(key)
            if rollout is not None and rollout.token == dep.updated_at:
                self._requeue_lost_outcome(rollout, dep)
                continue
            if rollout is None:
                rollout = RolloutRecord(dep.endpoint_name, dep.name.lower(), dep.name)
                self.rollouts[key] = rollout
            rollout.token, rollout.name = dep.updated_at, dep.name
            rollout.request_timeout_s = dep.request_settings.request_timeout_ms / 1000
            rollout.readiness, rollout.liveness = dep.readiness_probe, dep.liveness_probe
            state = dep.provisioning_state
            self.dirty = True
            if state in (ProvisioningState.CREATING, ProvisioningState.UPDATING) or (
                    state == ProvisioningState.SUCCEEDED and rollout.generation is None):
                try:
                    self.start_generation(rollout, dep, model)
                except BaseException:  # not started (a locked database, a full disk): try again at the next reload
                    rollout.token = None
                    raise
            elif state == ProvisioningState.SCALING and rollout.generation is not None:
                log.info("Scaling %s/%s to %d instance(s)", dep.endpoint_name, dep.name, dep.instance_count)
                rollout.count, rollout.phase = dep.instance_count, RolloutPhase.ROLLING
                self.adjust_count(rollout)
            elif state == ProvisioningState.SCALING:
                self.finish(rollout, ProvisioningState.FAILED,
                            "The deployment has no running generation to scale: update it to start one.")
            # Succeeded/Failed seen before (a control plane restart): keep supervising what runs
        deleted = []
        for key, rollout in list(self.rollouts.items()):
            if key not in desired:
                mine = self.supervisor.serving(key)
                for inst in mine:
                    self.supervisor.stop(inst, rollout.request_timeout_s)
                if mine:
                    log.info("Deployment %s/%s was deleted: stopping %d instance(s)", *key, len(mine))
                del self.rollouts[key]
                deleted.append(key)
                self.dirty = True
        return deleted

    def _requeue_lost_outcome(self, rollout: RolloutRecord, dep: Deployment) -> None:
        """A rollout that ended while the database still says it runs: a control plane stopped (or its
        write failed) between saving the state file and recording the outcome. Record it now, if the
        rollout really carried out this document (its generation, or its instance count)."""
        if rollout.phase == RolloutPhase.ROLLING:
            return
        state = dep.provisioning_state
        if state in (ProvisioningState.CREATING, ProvisioningState.UPDATING):
            if rollout.phase == RolloutPhase.STEADY and rollout.generation != generation_id(dep):
                return
        elif state != ProvisioningState.SCALING or (
                rollout.phase == RolloutPhase.STEADY and rollout.count != dep.instance_count):
            return
        if any(queued.rollout is rollout for queued in self.outcomes):
            return
        outcome = ProvisioningState.FAILED if rollout.phase == RolloutPhase.FAILED else ProvisioningState.SUCCEEDED
        log.info("Deployment %s/%s ended (%s) before it was recorded: recording it", rollout.endpoint, rollout.name,
                 outcome)
        self.outcomes.append(Outcome(rollout, rollout.token, outcome, rollout.reason))

    def start_generation(self, rollout: RolloutRecord, dep: Deployment, model: dict[str, Any] | None) -> None:
        gen = generation_id(dep)
        try:
            spec = self.prepare(dep, model, gen)
        except EnvironmentBuilding as exc:
            rollout.token = None  # not started: look again at the next reload
            self.write_note(rollout, dep.updated_at, str(exc))
            return
        except GenerationFailed as exc:
            log.info("Deployment %s/%s cannot start: %s", dep.endpoint_name, dep.name, exc)
            self.finish(rollout, ProvisioningState.FAILED, str(exc))
            return
        self.specs[gen] = spec
        # the generation that serves until the new one is ready; anything else (an unfinished
        # rollout overtaken by this one) stops now
        current = self.supervisor.of(rollout.key, rollout.generation)
        serving = rollout.generation if any(i.ever_ready for i in current) else rollout.previous
        for inst in self.supervisor.serving(rollout.key):
            if inst.generation not in (serving, gen):
                self.supervisor.stop(inst, rollout.request_timeout_s)
        rollout.previous = serving
        rollout.generation, rollout.phase, rollout.count = gen, RolloutPhase.ROLLING, dep.instance_count
        log.info("Starting generation %s of %s/%s: %d instance(s)", gen, dep.endpoint_name, dep.name,
                 dep.instance_count)
        self.adjust_count(rollout)

    def adjust_count(self, rollout: RolloutRecord) -> None:
        current = sorted(self.supervisor.of(rollout.key, rollout.generation), key=lambda i: i.index)
        for inst in current[rollout.count :]:
            self.supervisor.stop(inst, rollout.request_timeout_s)
        used = {i.index for i in current}
        index = 0
        for _ in range(rollout.count - len(current)):
            while index in used:
                index += 1
            used.add(index)
            assert rollout.generation is not None
            self.supervisor.add(Instance(f"{rollout.deployment}-{rollout.generation[:6]}-{index}", rollout.endpoint,
                                         rollout.deployment, rollout.generation, index))
        self.dirty = True

    # ------------------------------------------------------------ progress

    def take_notes(self, notes: Iterable[Note]) -> None:
        """Instances' notes reach the document of a deployment that is steady (a rollout reports on its own)."""
        for note in notes:
            rollout = self.rollouts.get(note.key)
            if rollout is not None and rollout.phase == RolloutPhase.STEADY and rollout.token:
                self.write_note(rollout, rollout.token, note.reason)

    def check_all(self) -> None:
        for rollout in list(self.rollouts.values()):
            self.check(rollout)

    def check(self, rollout: RolloutRecord) -> None:
        """End a rolling rollout once its instances are all ready, or one of them failed."""
        if rollout.phase != RolloutPhase.ROLLING:
            return
        current = self.supervisor.of(rollout.key, rollout.generation)
        failed = [i for i in current if i.start_failed]
        if failed:
            for inst in current:
                if not inst.ever_ready:
                    self.supervisor.stop(inst, 0)
            if not any(i.ever_ready for i in current):
                rollout.generation, rollout.previous = rollout.previous, None
            self.finish(rollout, ProvisioningState.FAILED, failed[0].reason)
            return
        ready = [i for i in current if i.state == InstanceState.READY]
        if len(ready) >= rollout.count:
            if rollout.previous:
                for inst in self.supervisor.of(rollout.key, rollout.previous):
                    self.supervisor.stop(inst, rollout.request_timeout_s)
                rollout.previous = None
            self.finish(rollout, ProvisioningState.SUCCEEDED, "")

    def finish(self, rollout: RolloutRecord, state: ProvisioningState, reason: str) -> None:
        """End a rollout; its outcome is queued for the database."""
        rollout.phase = RolloutPhase.FAILED if state == ProvisioningState.FAILED else RolloutPhase.STEADY
        rollout.reason = reason
        self.dirty = self.routes_dirty = True
        log.info("Deployment %s/%s: %s %s", rollout.endpoint, rollout.name, state,
                 reason.splitlines()[0] if reason else "")
        self.outcomes.append(Outcome(rollout, rollout.token, state, reason))
