"""The local control plane: one process per workspace home that makes deployments run.

It reads the desired state (deployment documents) from ``byom.db`` and
reconciles it, once per tick:

* a deployment generation is the deployment as created or updated; each has
  ``instance_count`` model-server instances (``core.local.model_server``).
  A new generation starts next to the old one; the old one is drained and
  stopped once every new instance is ready, so an update drops no request.
  If a new instance dies, never gets ready or cannot be started at all, the
  deployment ends in Failed with the instance's log tail or the reason, and
  the old generation keeps serving.
* an instance that dies after it was ready is restarted with backoff on a
  new port; it leaves the routing table until it is ready again. One that
  cannot be started again stays Crashed (tried with backoff), and its
  deployment's reason says why. No instance's failure stops the tick.
* instances being stopped leave the routing table first, then get SIGTERM
  once the gateway reports no request in flight on them (or their request
  timeout has passed). An instance ended for good (stopped, or never ready)
  has its whole process group killed, so that no gunicorn worker outlives
  its master.
* the gateway process is started and restarted here.

What it runs is written to ``run/serving-state.json`` (read by the gateway
and by ``LocalServing``); a control plane started again reads it back and
adopts the instances that still run instead of starting them twice.
Outcomes (Succeeded/Failed and the reason) are written to the deployment
documents with an audit record, as ``StoreWorkspace`` does.

Killing this process leaves instances and gateway serving.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import signal
import sqlite3
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..entities import AuditRecord, Deployment, ProbeSettings, utcnow
from ..home import open_private
from .artifacts import DirectoryArtifacts
from .log_files import log_max_bytes, log_tail, rotate_if_large
from .model_server import INSTANCE_MARK, EnvironmentBuilding, InstanceSpec, launch, probe, resolve_interpreter
from .processes import (
    HOME_MARKER,
    Child,
    ProcessRef,
    free_port,
    home_processes,
    kill_group,
    parent_pid,
    spawn,
    terminate,
)
from .serving_files import ServingFiles, read_json, start_service, write_json
from .sqlite_store import SqliteStore

log = logging.getLogger("byom.control-plane")

TICK_S = 0.1
RELOAD_EVERY_S = 5.0
ROTATE_EVERY_S = 1.0
BACKOFF_S = (0.5, 1, 2, 4, 8, 16, 30)
STABLE_S = 60.0  # an instance ready this long starts its next crash streak from the shortest backoff
STOP_GRACE_S = 10.0
START_PROBE_EVERY_S = 0.1
LOG_TAIL_LINES = 40
ACTOR = "byom-control-plane"


@dataclass
class Instance:
    id: str
    endpoint: str
    deployment: str  # lower-cased
    generation: str
    index: int
    port: int = 0
    state: str = "Starting"  # Starting | Ready | Crashed | Stopping
    restarts: int = 0
    started_at: str | None = None
    reason: str = ""
    ever_ready: bool = False
    proc: Child | None = field(default=None, repr=False)
    # bookkeeping of this process only
    launched: float = 0.0
    ready_since: float | None = None
    crash_streak: int = 0
    next_start: float = 0.0
    next_probe: float = 0.0
    probe: Future[bool] | None = field(default=None, repr=False)
    liveness_failures: int = 0
    start_failed: bool = False
    bind_retries: int = 0
    stopping_since: float = 0.0
    drain_until: float = 0.0
    term_sent: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.endpoint, self.deployment)

    def record(self) -> dict[str, Any]:
        ref = self.proc.ref if self.proc else None
        return {
            "id": self.id, "endpoint": self.endpoint, "deployment": self.deployment,
            "generation": self.generation, "index": self.index, "port": self.port, "state": self.state,
            "restarts": self.restarts, "started_at": self.started_at, "reason": self.reason,
            "ever_ready": self.ever_ready, "pid": ref.pid if ref else None, "start": ref.start if ref else None,
        }


@dataclass
class Rollout:
    """What the control plane does for one deployment."""

    endpoint: str
    deployment: str  # lower-cased
    name: str  # as the user spelled it
    token: str = ""  # updated_at of the deployment document being carried out
    generation: str | None = None
    previous: str | None = None  # the generation that serves until the new one is ready
    phase: str = "steady"  # rolling | steady | failed
    reason: str = ""  # why the last rollout failed
    count: int = 1
    request_timeout_s: float = 5.0
    readiness: ProbeSettings = field(default_factory=ProbeSettings)
    liveness: ProbeSettings = field(default_factory=ProbeSettings)

    @property
    def key(self) -> tuple[str, str]:
        return (self.endpoint, self.deployment)

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out["readiness"], out["liveness"] = self.readiness.to_dict(), self.liveness.to_dict()
        return out

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Rollout:
        data = dict(data)
        data["readiness"] = ProbeSettings.from_dict(data.get("readiness") or {})
        data["liveness"] = ProbeSettings.from_dict(data.get("liveness") or {})
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def generation_id(dep: Deployment) -> str:
    fields = [dep.model, dep.environment, dep.code_path, dep.scoring_script, dep.environment_variables, dep.updated_at]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]


class ControlPlane:
    def __init__(self, files: ServingFiles) -> None:
        self.files = files
        self.store = SqliteStore(files.db)
        self.artifacts_root = files.home / "artifacts"
        self.instances: list[Instance] = []
        self.rollouts: dict[tuple[str, str], Rollout] = {}
        self.specs: dict[str, InstanceSpec] = {}
        self.probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self.gateway: Child | None = None
        self.gateway_next_start = 0.0
        self.gateway_crashes = 0
        self._watch = sqlite3.connect(files.db, timeout=30)
        self._data_version: int | None = None
        self._last_load = 0.0
        self._last_rotate = 0.0
        self.log_max_bytes = log_max_bytes()
        self._dirty = False
        self.reconciles = 0
        self._routes_dirty = False
        self._outcomes: list[tuple[Rollout, str, str, str]] = []  # to the database once the gateway knows
        self._last_poke = 0.0

    # ----------------------------------------------------------- state file

    def adopt(self) -> None:
        """Take over what a previous control plane of this home left running."""
        saved = read_json(self.files.state) or {}
        for gen, spec in (saved.get("specs") or {}).items():
            self.specs[gen] = InstanceSpec(**spec)
        for data in saved.get("rollouts") or []:
            rollout = Rollout.from_record(data)
            self.rollouts[rollout.key] = rollout
        now = time.monotonic()
        for data in saved.get("instances") or []:
            inst = Instance(**{k: data[k] for k in ("id", "endpoint", "deployment", "generation", "index", "port",
                                                    "state", "restarts", "started_at", "reason", "ever_ready")})
            inst.launched = now
            ref = ProcessRef(data["pid"], data["start"]) if data.get("pid") else None
            if ref is not None and ref.alive():
                inst.proc = Child(ref)
                log.info("Adopted instance %s (pid %s, port %s, %s)", inst.id, ref.pid, inst.port, inst.state)
                if inst.state == "Stopping":
                    inst.stopping_since, inst.drain_until = now, now
            elif inst.state in ("Ready", "Crashed") or (inst.state == "Starting" and inst.ever_ready):
                inst.state, inst.next_start = "Crashed", now
                log.info("Instance %s is not running any more: restarting it", inst.id)
            elif inst.state == "Stopping":
                continue
            else:  # died while starting, before this control plane could see it
                inst.proc = None
                inst.start_failed = True
                inst.reason = "The instance stopped while the control plane was down."
            self.instances.append(inst)
        self._sweep_orphans()
        self._dirty = self._routes_dirty = True

    def _sweep_orphans(self) -> None:
        """End model servers of this home that no record names (started by a control plane killed at once)."""
        known = {i.proc.pid for i in self.instances if i.proc}
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

    def save(self) -> None:
        live_gens = {i.generation for i in self.instances} | {
            g for r in self.rollouts.values() for g in (r.generation, r.previous) if g
        }
        write_json(self.files.state, {
            "control_plane": {"pid": os.getpid()},
            "updated_at": utcnow(),
            "reconciles": self.reconciles,
            "rollouts": [r.record() for r in self.rollouts.values()],
            "specs": {g: asdict(s) for g, s in self.specs.items() if g in live_gens},
            "instances": [i.record() for i in self.instances],
        })

    # -------------------------------------------------------- desired state

    def _db_changed(self) -> bool:
        version = self._watch.execute("PRAGMA data_version").fetchone()[0]
        changed = version != self._data_version
        self._data_version = version
        return changed

    def load_desired(self) -> dict[tuple[str, str], tuple[Deployment, dict[str, Any] | None]]:
        desired = {}
        with self.store.transaction() as txn:
            for doc in txn.list("deployment"):
                dep = Deployment.from_dict(doc)
                name, _, version = dep.model.rpartition(":")
                model = txn.get("model", name, int(version)) if version.isdigit() else None
                desired[(dep.endpoint_name, dep.name.lower())] = (dep, model)
        return desired

    def reconcile(self) -> None:
        desired = self.load_desired()
        for key, (dep, model) in desired.items():
            rollout = self.rollouts.get(key)
            if rollout is not None and rollout.token == dep.updated_at:
                self._requeue_lost_outcome(rollout, dep)
                continue
            if rollout is None:
                rollout = Rollout(dep.endpoint_name, dep.name.lower(), dep.name)
                self.rollouts[key] = rollout
            rollout.token, rollout.name = dep.updated_at, dep.name
            rollout.request_timeout_s = dep.request_settings.request_timeout_ms / 1000
            rollout.readiness, rollout.liveness = dep.readiness_probe, dep.liveness_probe
            state = dep.provisioning_state
            self._dirty = True
            if state in ("Creating", "Updating") or (state == "Succeeded" and rollout.generation is None):
                try:
                    self.start_generation(rollout, dep, model)
                except BaseException:  # not started (a locked database, a full disk): try again at the next reload
                    rollout.token = None
                    raise
            elif state == "Scaling" and rollout.generation is not None:
                log.info("Scaling %s/%s to %d instance(s)", dep.endpoint_name, dep.name, dep.instance_count)
                rollout.count, rollout.phase = dep.instance_count, "rolling"
                self.adjust_count(rollout)
            elif state == "Scaling":
                self.finish(rollout, "Failed", "The deployment has no running generation to scale: update it to start one.")
            # Succeeded/Failed seen before (a control plane restart): keep supervising what runs
        for key, rollout in list(self.rollouts.items()):
            if key not in desired:
                mine = [i for i in self.instances if i.key == key and i.state != "Stopping"]
                for inst in mine:
                    self.stop(inst, rollout.request_timeout_s)
                if mine:
                    log.info("Deployment %s/%s was deleted: stopping %d instance(s)", *key, len(mine))
                del self.rollouts[key]
                shutil.rmtree(self.files.code / key[0] / key[1], ignore_errors=True)
                self._dirty = True
        # counted in the state file, so that anyone can tell a reconcile has run since they looked
        self.reconciles += 1
        self._dirty = True

    def _requeue_lost_outcome(self, rollout: Rollout, dep: Deployment) -> None:
        """A rollout that ended while the database still says it runs: a control plane stopped (or its
        write failed) between saving the state file and recording the outcome. Record it now, if the
        rollout really carried out this document (its generation, or its instance count)."""
        if rollout.phase == "rolling":
            return
        state = dep.provisioning_state
        if state in ("Creating", "Updating"):
            if rollout.phase == "steady" and rollout.generation != generation_id(dep):
                return
        elif state != "Scaling" or (rollout.phase == "steady" and rollout.count != dep.instance_count):
            return
        if any(queued is rollout for queued, *_ in self._outcomes):
            return
        outcome = "Failed" if rollout.phase == "failed" else "Succeeded"
        log.info("Deployment %s/%s ended (%s) before it was recorded: recording it", rollout.endpoint, rollout.name,
                 outcome)
        self._outcomes.append((rollout, rollout.token, outcome, rollout.reason))

    def start_generation(self, rollout: Rollout, dep: Deployment, model: dict[str, Any] | None) -> None:
        gen = generation_id(dep)
        storage_log = self.files.storage_log(dep.endpoint_name, dep.name)
        storage_log.parent.mkdir(parents=True, exist_ok=True)
        try:
            spec = self.prepare(dep, model, gen, storage_log)
        except EnvironmentBuilding as exc:
            rollout.token = None  # not started: look again at the next reload
            self.note(rollout, dep.updated_at, str(exc))
            return
        except (LookupError, OSError, ValueError) as exc:
            _append(storage_log, f"Failed: {exc}")
            log.info("Deployment %s/%s cannot start: %s", dep.endpoint_name, dep.name, exc)
            self.finish(rollout, "Failed", str(exc))
            return
        self.specs[gen] = spec
        # the generation that serves until the new one is ready; anything else (an unfinished
        # rollout overtaken by this one) stops now
        current = self._generation(rollout, rollout.generation)
        serving = rollout.generation if any(i.ever_ready for i in current) else rollout.previous
        for inst in self.instances:
            if inst.key == rollout.key and inst.state != "Stopping" and inst.generation not in (serving, gen):
                self.stop(inst, rollout.request_timeout_s)
        rollout.previous = serving
        rollout.generation, rollout.phase, rollout.count = gen, "rolling", dep.instance_count
        log.info("Starting generation %s of %s/%s: %d instance(s)", gen, dep.endpoint_name, dep.name, dep.instance_count)
        self.adjust_count(rollout)

    def prepare(self, dep: Deployment, model: dict[str, Any] | None, gen: str, storage_log: Path) -> InstanceSpec:
        interpreter = resolve_interpreter(self.files.home, dep.environment)
        if model is None:
            raise LookupError(f"Model {dep.model} is not registered in this workspace.")
        model_dir = self.mount_model(model)
        _append(storage_log, f"Model {dep.model}: {model_dir}")
        if not dep.code_path or not dep.scoring_script:
            raise ValueError("A local deployment needs code_configuration: a code folder and its scoring_script.")
        source = Path(dep.code_path).expanduser()
        if not (source / dep.scoring_script).is_file():
            raise LookupError(f"Scoring script {dep.scoring_script!r} is not in the code folder {source}.")
        # as on Azure ML: AML_APP_ROOT holds the code folder, AZUREML_ENTRY_SCRIPT is relative to it
        app_root = self.files.code_snapshot(dep.endpoint_name, dep.name, gen)
        folder = source.resolve().name or "code"
        if not app_root.exists():
            staging = app_root.with_name(f".{gen}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(source, staging / folder, ignore=shutil.ignore_patterns("__pycache__", ".git"))
            os.replace(staging, app_root)
        _append(storage_log, f"Code {source} copied to {app_root / folder}")
        return InstanceSpec(
            interpreter=interpreter, model_dir=str(model_dir), app_root=str(app_root),
            entry_script=f"{folder}/{dep.scoring_script}", environment_variables=dict(dep.environment_variables),
        )

    def mount_model(self, model: dict[str, Any]) -> Path:
        """The folder AZUREML_MODEL_DIR names, laid out as Azure ML lays it out.

        A model registered from a folder appears as ``$AZUREML_MODEL_DIR/<folder name>/...``
        (Azure's samples join ``"model/..."`` to it); one registered from a single file
        appears as ``$AZUREML_MODEL_DIR/<file name>``.
        """
        files = DirectoryArtifacts(self.artifacts_root).local_path(model["path"])
        if not files.is_dir():
            raise LookupError(f"The files of model {model['name']}:{model['version']} are missing from {files}.")
        source = Path(model.get("source") or model["name"])
        entries = model.get("files") or []
        if len(entries) == 1 and entries[0]["path"] == source.name:
            return files
        folder = source.stem if source.suffix == ".gguf" else source.name
        mount = self.files.run / "models" / model["name"] / str(model["version"])
        link = mount / (folder or model["name"])
        if not link.is_symlink():
            mount.mkdir(parents=True, exist_ok=True)
            link.symlink_to(files, target_is_directory=True)
        return mount

    def _generation(self, rollout: Rollout, gen: str | None) -> list[Instance]:
        return [i for i in self.instances if i.key == rollout.key and i.generation == gen and i.state != "Stopping"]

    def adjust_count(self, rollout: Rollout) -> None:
        current = sorted(self._generation(rollout, rollout.generation), key=lambda i: i.index)
        for inst in current[rollout.count :]:
            self.stop(inst, rollout.request_timeout_s)
        used = {i.index for i in current}
        index = 0
        for _ in range(rollout.count - len(current)):
            while index in used:
                index += 1
            used.add(index)
            assert rollout.generation is not None
            inst = Instance(f"{rollout.deployment}-{rollout.generation[:6]}-{index}", rollout.endpoint,
                            rollout.deployment, rollout.generation, index)
            self.instances.append(inst)
            self.launch(inst)
        self._dirty = True

    # ------------------------------------------------------------ instances

    def launch(self, inst: Instance) -> None:
        """Start an instance's process; if it cannot start, say why on the instance and its deployment.

        A start that fails here (a missing interpreter or code folder, no free port or file descriptor)
        never reaches the caller: one instance must not stop the tick for every other one.
        """
        logfile = self.files.instance_log(inst.endpoint, inst.deployment, inst.id)
        try:
            spec = self.specs[inst.generation]
            # never the gateway's port either: it keeps one port per home, even while it restarts
            inst.port = free_port(avoid={i.port for i in self.instances} | {inst.port, self.files.gateway_port()})
            _append(logfile, f"=== byom: starting {inst.id} on 127.0.0.1:{inst.port} with {spec.interpreter} "
                             f"(restart {inst.restarts}) at {utcnow()}")
            inst.proc = launch(spec, inst.port, logfile, self.files.home)
        except Exception as exc:  # whatever it is, it is this instance's failure, not the tick's
            self._launch_failed(inst, logfile, exc)
            return
        inst.state, inst.reason, inst.started_at = "Starting", "", utcnow()
        inst.launched = inst.next_probe = time.monotonic()
        inst.probe, inst.ready_since, inst.liveness_failures = None, None, 0
        log.info("Started %s (pid %d, port %d)", inst.id, inst.proc.pid, inst.port)
        self._dirty = True

    def _launch_failed(self, inst: Instance, logfile: Path, exc: Exception) -> None:
        what = "the instance's generation is unknown" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        reason = f"Instance {inst.id} could not be started: {what}"
        try:
            _append(logfile, f"=== byom: {reason}")
        except OSError:
            pass
        inst.proc, inst.probe = None, None
        if not inst.ever_ready:
            self._start_failed(inst, reason)  # a rolling rollout fails with this reason (check_rollout)
            return
        self._crashed(inst, time.monotonic(), reason)  # tried again with backoff, like a crash
        rollout = self.rollouts.get(inst.key)
        if rollout is not None and rollout.phase == "steady" and rollout.token:
            self.note(rollout, rollout.token, reason)

    def stop(self, inst: Instance, drain_s: float) -> None:
        was_routed = inst.state == "Ready"
        inst.state = "Stopping"
        now = time.monotonic()
        inst.stopping_since, inst.drain_until = now, now + (drain_s + 1 if was_routed else 0)
        self._dirty = True
        self._routes_dirty |= was_routed

    def step(self, inst: Instance) -> None:
        now = time.monotonic()
        if inst.state == "Stopping":
            self._step_stopping(inst, now)
            return
        if inst.start_failed:  # a rolling rollout fails on it in check_rollout; otherwise it just goes
            rollout = self.rollouts.get(inst.key)
            if rollout is None or rollout.phase != "rolling":
                self.stop(inst, 0)
            return
        if inst.state == "Crashed":
            if now >= inst.next_start:
                inst.restarts += 1
                self.launch(inst)
            return
        if inst.proc is None or not inst.proc.alive():
            self._died(inst, now)
            return
        rollout = self.rollouts.get(inst.key)
        if inst.state == "Starting":
            readiness = rollout.readiness if rollout else ProbeSettings()
            if inst.probe is not None and inst.probe.done():
                ok, inst.probe = inst.probe.result(), None
                if ok:
                    inst.state, inst.ever_ready, inst.ready_since = "Ready", True, now
                    log.info("Instance %s is ready (%.1f s)", inst.id, now - inst.launched)
                    self._dirty = self._routes_dirty = True
                    if inst.restarts and rollout is not None and rollout.phase == "steady" and rollout.token:
                        self.note(rollout, rollout.token, "")  # clears a "could not be started" note
                    return
            deadline = readiness.initial_delay + readiness.period * readiness.failure_threshold
            if now - inst.launched > deadline:
                self._start_failed(inst, f"Instance {inst.id} did not become ready within {deadline} s.")
            elif inst.probe is None and now >= inst.next_probe:
                inst.next_probe = now + START_PROBE_EVERY_S
                inst.probe = self.probes.submit(probe, inst.port, float(readiness.timeout))
        elif inst.state == "Ready":
            liveness = rollout.liveness if rollout else ProbeSettings()
            if inst.probe is not None and inst.probe.done():
                ok, inst.probe = inst.probe.result(), None
                inst.liveness_failures = 0 if ok else inst.liveness_failures + 1
                if inst.liveness_failures >= liveness.failure_threshold:
                    log.info("Instance %s failed %d liveness probes: restarting it", inst.id, inst.liveness_failures)
                    kill_group(inst.proc.ref)
            elif inst.probe is None and now >= inst.next_probe and now - inst.launched >= liveness.initial_delay:
                inst.next_probe = now + liveness.period
                inst.probe = self.probes.submit(probe, inst.port, float(liveness.timeout))

    def _died(self, inst: Instance, now: float) -> None:
        code = inst.proc.exit_code() if inst.proc else None
        if inst.proc is not None:
            kill_group(inst.proc.ref)  # its gunicorn workers, orphaned if the master was killed
        logfile = self.files.instance_log(inst.endpoint, inst.deployment, inst.id)
        tail = log_tail(logfile, LOG_TAIL_LINES)
        was_ready = inst.state == "Ready"
        if not was_ready and "Connection in use" in tail and inst.bind_retries < 3:
            inst.bind_retries += 1  # another program took the port between our check and gunicorn's bind
            self.launch(inst)
            return
        if inst.state == "Starting" and not inst.ever_ready:
            how = f"exited with code {code}" if code is not None else "stopped"
            self._start_failed(inst, f"Instance {inst.id} {how} before it was ready. Log tail:\n{tail}")
            return
        self._crashed(inst, now, f"exited with code {code}" if code is not None else "stopped")

    def _crashed(self, inst: Instance, now: float, reason: str) -> None:
        """Start the instance again after a backoff that grows with each crash in a row."""
        was_ready = inst.state == "Ready"
        if inst.ready_since is not None and now - inst.ready_since >= STABLE_S:
            inst.crash_streak = 0
        inst.crash_streak += 1
        delay = BACKOFF_S[min(inst.crash_streak, len(BACKOFF_S)) - 1]
        inst.state, inst.next_start, inst.probe = "Crashed", now + delay, None
        inst.reason = reason
        log.info("Instance %s %s; restarting in %.1f s", inst.id, reason, delay)
        self._dirty = True
        self._routes_dirty |= was_ready

    def _start_failed(self, inst: Instance, reason: str) -> None:
        """The instance never got ready: end its whole process group (gunicorn master and workers)."""
        inst.start_failed, inst.reason = True, reason
        if inst.proc is not None:
            kill_group(inst.proc.ref)
        log.info("%s", reason.splitlines()[0])
        self._dirty = True

    def _step_stopping(self, inst: Instance, now: float) -> None:
        if inst.proc is None or not inst.proc.alive():
            if inst.proc is not None:
                kill_group(inst.proc.ref)  # workers the master left behind
            self.instances.remove(inst)
            log.info("Instance %s stopped", inst.id)
            self._dirty = True
            return
        if inst.term_sent is None:
            drained = now >= inst.drain_until or (
                self._last_poke > inst.stopping_since and self._gateway_in_flight(inst.port) == 0
            )
            if drained:
                inst.term_sent = now
                _kill(inst.proc, signal.SIGTERM)
        elif now - inst.term_sent > STOP_GRACE_S:
            kill_group(inst.proc.ref)

    # -------------------------------------------------------------- rollouts

    def check_rollout(self, rollout: Rollout) -> None:
        if rollout.phase != "rolling":
            return
        current = self._generation(rollout, rollout.generation)
        failed = [i for i in current if i.start_failed]
        if failed:
            for inst in current:
                if not inst.ever_ready:
                    self.stop(inst, 0)
            if not any(i.ever_ready for i in current):
                rollout.generation, rollout.previous = rollout.previous, None
            self.finish(rollout, "Failed", failed[0].reason)
            return
        ready = [i for i in current if i.state == "Ready"]
        if len(ready) >= rollout.count:
            if rollout.previous:
                for inst in self._generation(rollout, rollout.previous):
                    self.stop(inst, rollout.request_timeout_s)
                rollout.previous = None
            self.finish(rollout, "Succeeded", "")

    def note(self, rollout: Rollout, token: str, reason: str) -> None:
        """Say what a deployment waits for, leaving its state as it is."""
        key = f"{rollout.endpoint}/{rollout.deployment}"
        with self.store.transaction() as txn:
            doc = txn.get("deployment", key)
            if doc is None or doc.get("updated_at") != token or doc.get("state_reason") == reason:
                return
            doc["state_reason"] = reason
            txn.put("deployment", key, 0, doc)

    def finish(self, rollout: Rollout, state: str, reason: str) -> None:
        """End a rollout. Its outcome reaches the database at the end of the tick, after the state file
        and the gateway's routes: whoever reads Succeeded there can call the new version at once."""
        rollout.phase = "failed" if state == "Failed" else "steady"
        rollout.reason = reason
        self._dirty = self._routes_dirty = True
        log.info("Deployment %s/%s: %s %s", rollout.endpoint, rollout.name, state, reason.splitlines()[0] if reason else "")
        self._outcomes.append((rollout, rollout.token, state, reason))

    def _record_outcome(self, rollout: Rollout, token: str, state: str, reason: str) -> None:
        key = f"{rollout.endpoint}/{rollout.deployment}"
        with self.store.transaction() as txn:
            doc = txn.get("deployment", key)
            if doc is None or doc.get("updated_at") != token:
                return  # deleted, or changed again since: the newer change decides
            if (doc.get("provisioning_state"), doc.get("state_reason")) == (state, reason):
                return
            doc["provisioning_state"], doc["state_reason"] = state, reason
            txn.put("deployment", key, 0, doc)
            txn.audit(AuditRecord(at=utcnow(), actor=ACTOR, action="deployment.state",
                                  target=f"deployment/{rollout.endpoint}/{doc['name']}",
                                  after={"provisioning_state": state, "reason": reason[-500:]}))

    # --------------------------------------------------------------- gateway

    def supervise_gateway(self) -> None:
        if self.gateway is not None and self.gateway.alive():
            return
        now = time.monotonic()
        if self.gateway is not None:
            self.gateway = None
            self.gateway_crashes += 1
            self.gateway_next_start = now + BACKOFF_S[min(self.gateway_crashes, len(BACKOFF_S)) - 1]
            log.info("The gateway stopped; starting it again in %.1f s", self.gateway_next_start - now)
        if now < self.gateway_next_start:
            return
        record = read_json(self.files.gateway) or {}
        ref = ProcessRef(record.get("pid") or 0, record.get("start"))
        if ref.pid and ref.alive():
            self.gateway = Child(ref)
            return
        env = {**os.environ, HOME_MARKER: str(self.files.home)}
        self.gateway = spawn([sys.executable, "-m", "byom.core.local.gateway", "--home", str(self.files.home)],
                             env=env, log_path=self.files.gateway_log)
        log.info("Started the gateway (pid %d)", self.gateway.pid)

    def _gateway_request(self, method: str, path: str) -> dict[str, Any] | None:
        record = read_json(self.files.gateway)
        if not record:
            return None
        conn = http.client.HTTPConnection("127.0.0.1", record["port"], timeout=2)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return json.loads(response.read()) if response.status == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            conn.close()

    def poke_gateway(self) -> None:
        if self._gateway_request("POST", "/-/reload") is not None:
            self._last_poke = time.monotonic()

    def _gateway_in_flight(self, port: int) -> int | None:
        answer = self._gateway_request("GET", "/-/in-flight")
        return None if answer is None else int(answer.get(str(port), 0))

    # ------------------------------------------------------------------ loop

    def tick(self) -> None:
        now = time.monotonic()
        if self._db_changed() or now - self._last_load >= RELOAD_EVERY_S:
            self._last_load = now
            self.reconcile()
        for inst in list(self.instances):
            self.step(inst)
        for rollout in list(self.rollouts.values()):
            self.check_rollout(rollout)
        self.supervise_gateway()
        if self._dirty:
            self._dirty = False
            self.save()
        if self._routes_dirty:
            self._routes_dirty = False
            self.poke_gateway()
        while self._outcomes:  # each leaves the queue once written: a failed write is tried again next tick
            self._record_outcome(*self._outcomes[0])
            self._outcomes.pop(0)
        if now - self._last_rotate >= ROTATE_EVERY_S:
            self._last_rotate = now
            self.rotate_logs()

    def rotate_logs(self) -> None:
        paths = [self.files.control_plane_log, self.files.gateway_log]
        paths += [self.files.instance_log(i.endpoint, i.deployment, i.id) for i in self.instances]
        for path in paths:
            try:
                rotate_if_large(path, self.log_max_bytes)
            except OSError:
                log.exception("Rotating %s failed", path)

    def close(self) -> None:
        self.probes.shutdown(wait=False, cancel_futures=True)
        self._watch.close()
        self.store.close()


def _kill(child: Child, sig: signal.Signals) -> None:
    try:
        os.kill(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _append(path: Path, line: str) -> None:
    with open_private(path, "a") as fh:
        fh.write(line.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    started = start_service(argv, "python -m byom.core.local.control_plane", "control_plane_lock", "control plane")
    if started is None:
        return 0
    files, _lock = started
    from .processes import start_time

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
            started = time.monotonic()
            try:
                plane.tick()
            except Exception:  # one bad tick (a locked database, a full disk) must not end supervision
                log.exception("Reconciliation failed; trying again")
                time.sleep(1)
            time.sleep(max(0.0, TICK_S - (time.monotonic() - started)))
    finally:
        plane.save()
        plane.close()
        record = read_json(files.control_plane) or {}
        if record.get("pid") == os.getpid():
            files.control_plane.unlink(missing_ok=True)
        log.info("Control plane stopped; instances and gateway keep running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
