"""``ControlPlane``: the composition of the control plane's jobs, once per ``tick()``, and its process."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from ...entities import Deployment, utcnow
from ...outcome import record_note, record_outcome
from ..log_files import log_max_bytes, rotate_if_large
from ..model_server import INSTANCE_MARK
from ..processes import Child, ProcessRef, home_processes, parent_pid, start_time, terminate
from ..serving_files import ServingFiles, read_json, start_service, write_json
from ..sqlite_store import SqliteStore
from ..state import RolloutRecord, ServingState, read_state, write_state
from ..workspace import local_backend
from .gateway_supervisor import GatewaySupervisor
from .generations import Generations
from .instances import STOP_GRACE_S, InstanceSupervisor
from .model_servers import ModelServers
from .rollouts import Desired, Outcome, RolloutPlanner
from .traffic_rollouts import TrafficRollouts

log = logging.getLogger("byom.control-plane")

TICK_S = 0.1
RELOAD_EVERY_S = 5.0
ROTATE_EVERY_S = 1.0
ACTOR = "byom-control-plane"


class DesiredState:
    """The deployment documents of ``byom.db``, and whether the database changed since the last look."""

    def __init__(self, store: SqliteStore, db: Path) -> None:
        self.store = store
        self._watch = sqlite3.connect(db, timeout=30)
        self._data_version: int | None = None

    def changed(self) -> bool:
        version = self._watch.execute("PRAGMA data_version").fetchone()[0]
        changed: bool = version != self._data_version
        self._data_version = version
        return changed

    def load(self) -> Desired:
        desired = {}
        with self.store.transaction() as txn:
            for doc in txn.list("deployment"):
                dep = Deployment.from_dict(doc)
                name, _, version = dep.model.rpartition(":")
                model = txn.get("model", name, int(version)) if version.isdigit() else None
                desired[(dep.endpoint_name, dep.name.lower())] = (dep, model)
        return desired

    def close(self) -> None:
        self._watch.close()


class ControlPlane:
    def __init__(self, files: ServingFiles, clock: Callable[[], float] = time.monotonic) -> None:
        self.files = files
        self.clock = clock
        self.store = SqliteStore(files.db)
        self.desired = DesiredState(self.store, files.db)
        self.gateway = GatewaySupervisor(files, clock)
        self.generations = Generations(files)
        self.model_servers = ModelServers(files, {}, self.gateway)  # the planner's specs, below
        self.supervisor = InstanceSupervisor(self.model_servers, clock, reserved_ports=lambda: (files.gateway_port(),))
        self.planner = RolloutPlanner(self.supervisor, self.generations.prepare, self.write_note)
        self.model_servers.specs = self.planner.specs
        self.traffic_rollouts = TrafficRollouts(self.store, lambda: local_backend(files.home))
        self.log_max_bytes = log_max_bytes()
        self.reconciles = 0
        self._dirty = False
        self._last_load = 0.0
        self._last_rotate = 0.0

    # ----------------------------------------------------------- state file

    def adopt(self) -> None:
        """Take over what a previous control plane of this home left running."""
        saved = read_state(self.files.state)
        self.planner.specs.update(saved.specs)
        for rollout in saved.rollouts:
            self.planner.rollouts[rollout.key] = rollout
        for record in saved.instances:
            ref = ProcessRef(record.pid, record.start) if record.pid else None
            self.supervisor.adopt(record, Child(ref) if ref is not None and ref.alive() else None)
        self._sweep_orphans()
        self._dirty = self.supervisor.dirty = self.supervisor.routes_dirty = True

    def _sweep_orphans(self) -> None:
        """End model servers of this home that no record names (started by a control plane killed at once)."""
        known = {i.proc.pid for i in self.supervisor.instances if i.proc}
        gateway = read_json(self.files.gateway) or {}
        known |= {os.getpid(), gateway.get("pid") or 0}
        orphans = []
        for ref in home_processes(self.files.home):
            if ref.pid in known or parent_pid(ref.pid) in known:
                continue
            cmdline = Path(f"/proc/{ref.pid}/cmdline").read_bytes() if Path(f"/proc/{ref.pid}").exists() else b""
            if INSTANCE_MARK in cmdline:
                orphans.append(ref)
        if orphans:
            log.info("Ending %d model server(s) no record names: %s", len(orphans), [r.pid for r in orphans])
            terminate(orphans, grace_s=STOP_GRACE_S)

    def state(self) -> ServingState:
        return ServingState(
            control_plane_pid=os.getpid(), updated_at=utcnow(), reconciles=self.reconciles,
            rollouts=list(self.planner.rollouts.values()), specs=self.planner.live_specs(),
            instances=[i.record() for i in self.supervisor.instances],
        )

    def save(self) -> None:
        write_state(self.files.state, self.state())

    # --------------------------------------------------------- the database

    def reconcile(self) -> None:
        for endpoint, deployment in self.planner.reconcile(self.desired.load()):
            self.generations.forget(endpoint, deployment)
        # counted in the state file, so that anyone can tell a reconcile has run since they looked
        self.reconciles += 1
        self._dirty = True

    def write_note(self, rollout: RolloutRecord, token: str | None, reason: str) -> None:
        """Say what a deployment waits for, leaving its state as it is."""
        with self.store.transaction() as txn:
            record_note(txn, rollout.endpoint, rollout.deployment, token, reason)

    def write_outcome(self, outcome: Outcome) -> None:
        with self.store.transaction() as txn:
            record_outcome(txn, outcome.rollout.endpoint, outcome.rollout.deployment, outcome.token, outcome.state,
                           outcome.reason, ACTOR)

    # ------------------------------------------------------------------ loop

    def tick(self) -> None:
        now = self.clock()
        if self.desired.changed() or now - self._last_load >= RELOAD_EVERY_S:
            self._last_load = now
            self.reconcile()
        self.supervisor.step_all(self.planner.rollouts)
        notes, self.supervisor.notes = self.supervisor.notes, []
        self.planner.take_notes(notes)
        self.planner.check_all()
        self.gateway.supervise()
        self.traffic_rollouts.step()
        if self._dirty or self.planner.dirty or self.supervisor.dirty:
            self._dirty = self.planner.dirty = self.supervisor.dirty = False
            self.save()
        if self.planner.routes_dirty or self.supervisor.routes_dirty:
            self.planner.routes_dirty = self.supervisor.routes_dirty = False
            self.gateway.poke()
        # after the state file and the gateway's routes: whoever reads Succeeded can call the new version at once
        outcomes = self.planner.outcomes
        while outcomes:  # each leaves the queue once written: a failed write is tried again next tick
            self.write_outcome(outcomes[0])
            outcomes.pop(0)
        if now - self._last_rotate >= ROTATE_EVERY_S:
            self._last_rotate = now
            self.rotate_logs()

    def rotate_logs(self) -> None:
        paths = [self.files.control_plane_log, self.files.gateway_log]
        paths += [self.model_servers.log_path(i) for i in self.supervisor.instances]
        for path in paths:
            try:
                rotate_if_large(path, self.log_max_bytes)
            except OSError:
                log.exception("Rotating %s failed", path)

    def close(self) -> None:
        self.traffic_rollouts.close()
        self.model_servers.close()
        self.desired.close()
        self.store.close()


def main(argv: list[str] | None = None) -> int:
    started = start_service(argv, "python -m byom.core.local.control_plane", "control_plane_lock", "control plane")
    if started is None:
        return 0
    files, _lock = started
    write_json(files.control_plane, {"pid": os.getpid(), "start": start_time(os.getpid()), "started_at": utcnow()})
    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    plane = ControlPlane(files)
    log.info("Control plane for %s started", files.home)
    plane.adopt()
    try:
        while not stopping:
            tick_started = time.monotonic()
            try:
                plane.tick()
            except Exception:  # one bad tick (a locked database, a full disk) must not end supervision
                log.exception("Reconciliation failed; trying again")
                time.sleep(1)
            time.sleep(max(0.0, TICK_S - (time.monotonic() - tick_started)))
    finally:
        plane.save()
        plane.close()
        record = read_json(files.control_plane) or {}
        if record.get("pid") == os.getpid():
            files.control_plane.unlink(missing_ok=True)
        log.info("Control plane stopped; instances and gateway keep running")
    return 0
