"""The instance supervisor: a state machine over model-server instances, one ``step`` at a time.

::

    Starting ──ready──▶ Ready ──died / failed its liveness probes──▶ Crashed ──backoff──▶ Starting
       │                  │                                             │
       │ never ready      └──────────────── stop ──▶ Stopping ◀── stop ─┘
       ▼                                    (out of the routes, drained, SIGTERM, then killed)
    start_failed: its process group killed; a rolling rollout fails on it, otherwise it is stopped

* an instance that dies after it was ready is started again on a new port,
  after a backoff that grows with each crash in a row (an instance ready for
  ``STABLE_S`` starts its next streak from the shortest); one that cannot be
  started at all is tried again the same way. No instance's failure stops
  the others.
* an instance ended for good has its whole process group killed, so that no
  gunicorn worker outlives its master.
* a ready instance that fails a liveness probe after the gateway gave up on
  a request to it (408 past ``request_timeout_ms``) is restarted at once:
  its worker is held by that request, and only a restart frees it.

It touches the world only through :class:`Runtime` (start a process, probe a
port, signal, read a log, ask the gateway) and reads time from ``clock``:
tests drive it with a fake clock and fake processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ...entities import InstanceState, ProbeSettings, utcnow
from ..processes import ProcessRef
from ..state import InstanceRecord, RolloutPhase, RolloutRecord

log = logging.getLogger("byom.control-plane")

BACKOFF_S = (0.5, 1, 2, 4, 8, 16, 30)
STABLE_S = 60.0  # an instance ready this long starts its next crash streak from the shortest backoff
STOP_GRACE_S = 10.0
START_PROBE_EVERY_S = 0.1
LOG_TAIL_LINES = 40
BIND_RETRIES = 3


def backoff(streak: int) -> float:
    """The wait before the next start after ``streak`` failures in a row (from 1)."""
    return BACKOFF_S[min(streak, len(BACKOFF_S)) - 1]


class Process(Protocol):
    """A started model server (``processes.Child``)."""

    @property
    def ref(self) -> ProcessRef: ...
    @property
    def pid(self) -> int: ...
    def alive(self) -> bool: ...
    def exit_code(self) -> int | None: ...


class Probe(Protocol):
    """A readiness or liveness probe in flight (a ``concurrent.futures.Future[bool]``)."""

    def done(self) -> bool: ...
    def result(self) -> bool: ...


class Runtime(Protocol):
    """What the supervisor does to the world."""

    def start(self, inst: Instance, avoid_ports: set[int]) -> tuple[int, Process]:
        """Start the instance's model server on a free port not in ``avoid_ports``; raise if it cannot."""

    def probe(self, port: int, timeout_s: float) -> Probe: ...

    def kill_group(self, proc: Process) -> None:
        """SIGKILL the process and every process of its group."""

    def terminate(self, proc: Process) -> None:
        """SIGTERM the process (gunicorn drains and stops its workers)."""

    def log_tail(self, inst: Instance) -> str: ...

    def log_line(self, inst: Instance, line: str) -> None:
        """Append a line of byom's own to the instance's log."""

    def drained(self, port: int, since: float) -> bool:
        """True when the gateway, told of the routes after ``since``, has no request in flight on ``port``."""

    def timed_out(self, port: int) -> int | None:
        """How many requests to ``port`` the gateway has answered 408 (given up on) so far; None if it did not say."""


@dataclass
class Instance:
    """A supervised instance: what the state file records, and the supervisor's own bookkeeping."""

    id: str
    endpoint: str
    deployment: str  # lower-cased
    generation: str
    index: int
    port: int = 0
    state: InstanceState = InstanceState.STARTING
    restarts: int = 0
    started_at: str | None = None
    reason: str = ""
    ever_ready: bool = False
    proc: Process | None = field(default=None, repr=False)
    # bookkeeping of this process only
    launched: float = 0.0
    ready_since: float | None = None
    crash_streak: int = 0
    next_start: float = 0.0
    next_probe: float = 0.0
    probe: Probe | None = field(default=None, repr=False)
    liveness_failures: int = 0
    timeouts_seen: int | None = 0  # the gateway's count of 408s on this port when last looked at (None: unknown)
    start_failed: bool = False
    bind_retries: int = 0
    stopping_since: float = 0.0
    drain_until: float = 0.0
    term_sent: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.endpoint, self.deployment)

    def record(self) -> InstanceRecord:
        ref = self.proc.ref if self.proc else None
        return InstanceRecord(
            id=self.id, endpoint=self.endpoint, deployment=self.deployment, generation=self.generation,
            index=self.index, port=self.port, state=self.state, restarts=self.restarts, started_at=self.started_at,
            reason=self.reason, ever_ready=self.ever_ready, pid=ref.pid if ref else None,
            start=ref.start if ref else None,
        )

    @classmethod
    def from_record(cls, record: InstanceRecord) -> Instance:
        return cls(record.id, record.endpoint, record.deployment, record.generation, record.index, port=record.port,
                   state=record.state, restarts=record.restarts, started_at=record.started_at, reason=record.reason,
                   ever_ready=record.ever_ready)


@dataclass
class Note:
    """Something a deployment's document should say while its state stays as it is (empty: nothing)."""

    key: tuple[str, str]
    reason: str


class InstanceSupervisor:
    def __init__(self, runtime: Runtime, clock: Callable[[], float] = time.monotonic,
                 reserved_ports: Callable[[], Iterable[int]] = tuple) -> None:
        self.runtime = runtime
        self.clock = clock
        self.reserved_ports = reserved_ports  # never given to an instance (the gateway's)
        self.instances: list[Instance] = []
        self.dirty = False  # the state file should be written
        self.routes_dirty = False  # the gateway should reload its routes
        self.notes: list[Note] = []  # for steady rollouts: why an instance cannot be started, or that it can again

    # ------------------------------------------------------------ queries

    def of(self, key: tuple[str, str], generation: str | None) -> list[Instance]:
        """A deployment generation's instances that are not being stopped."""
        return [i for i in self.instances
                if i.key == key and i.generation == generation and i.state != InstanceState.STOPPING]

    def serving(self, key: tuple[str, str]) -> list[Instance]:
        return [i for i in self.instances if i.key == key and i.state != InstanceState.STOPPING]

    # ----------------------------------------------------------- adopting

    def adopt(self, record: InstanceRecord, proc: Process | None) -> None:
        """Take over an instance a previous control plane recorded; ``proc`` is its process if it still runs."""
        inst = Instance.from_record(record)
        now = self.clock()
        inst.launched = now
        if proc is not None:
            inst.proc = proc
            log.info("Adopted instance %s (pid %s, port %s, %s)", inst.id, proc.pid, inst.port, inst.state)
            if inst.state == InstanceState.STOPPING:
                inst.stopping_since, inst.drain_until = now, now
        elif inst.state in (InstanceState.READY, InstanceState.CRASHED) or (
                inst.state == InstanceState.STARTING and inst.ever_ready):
            inst.state, inst.next_start = InstanceState.CRASHED, now
            log.info("Instance %s is not running any more: restarting it", inst.id)
        elif inst.state == InstanceState.STOPPING:
            return
        else:  # died while starting, before this control plane could see it
            inst.start_failed = True
            inst.reason = "The instance stopped while the control plane was down."
        self.instances.append(inst)
        self.dirty = self.routes_dirty = True

    # ----------------------------------------------------------- commands

    def add(self, inst: Instance) -> None:
        self.instances.append(inst)
        self.launch(inst)

    def launch(self, inst: Instance) -> None:
        """Start an instance's process; if it cannot start, say why on the instance and its deployment.

        A start that fails here (a missing interpreter or code folder, no free port or file descriptor)
        never reaches the caller: one instance must not stop the tick for every other one.
        """
        try:
            # never the gateway's port either: it keeps one port per home, even while it restarts
            avoid = {i.port for i in self.instances} | {inst.port, *self.reserved_ports()}
            inst.port, inst.proc = self.runtime.start(inst, avoid)
        except Exception as exc:  # whatever it is, it is this instance's failure, not the tick's
            self._launch_failed(inst, exc)
            return
        inst.state, inst.reason, inst.started_at = InstanceState.STARTING, "", utcnow()
        inst.launched = inst.next_probe = self.clock()
        inst.probe, inst.ready_since, inst.liveness_failures = None, None, 0
        log.info("Started %s (pid %d, port %d)", inst.id, inst.proc.pid, inst.port)
        self.dirty = True

    def _launch_failed(self, inst: Instance, exc: Exception) -> None:
        what = "the instance's generation is unknown" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__
        reason = f"Instance {inst.id} could not be started: {what}"
        try:
            self.runtime.log_line(inst, f"=== byom: {reason}")
        except OSError:
            pass
        inst.proc, inst.probe = None, None
        if not inst.ever_ready:
            self._start_failed(inst, reason)  # a rolling rollout fails with this reason (the planner's check)
            return
        self._crashed(inst, self.clock(), reason)  # tried again with backoff, like a crash
        self.notes.append(Note(inst.key, reason))

    def stop(self, inst: Instance, drain_s: float) -> None:
        """Take the instance out of the routes; end it once drained (``drain_s`` at most, if it was routed)."""
        was_routed = inst.state == InstanceState.READY
        inst.state = InstanceState.STOPPING
        now = self.clock()
        inst.stopping_since, inst.drain_until = now, now + (drain_s + 1 if was_routed else 0)
        self.dirty = True
        self.routes_dirty |= was_routed

    # --------------------------------------------------------------- step

    def step_all(self, rollouts: Mapping[tuple[str, str], RolloutRecord]) -> None:
        for inst in list(self.instances):
            self.step(inst, rollouts.get(inst.key))

    def step(self, inst: Instance, rollout: RolloutRecord | None) -> None:
        now = self.clock()
        if inst.state == InstanceState.STOPPING:
            self._step_stopping(inst, now)
            return
        if inst.start_failed:  # a rolling rollout fails on it (the planner's check); otherwise it just goes
            if rollout is None or rollout.phase != RolloutPhase.ROLLING:
                self.stop(inst, 0)
            return
        if inst.state == InstanceState.CRASHED:
            if now >= inst.next_start:
                inst.restarts += 1
                self.launch(inst)
            return
        if inst.proc is None or not inst.proc.alive():
            self._died(inst, now)
            return
        if inst.state == InstanceState.STARTING:
            self._step_starting(inst, now, rollout)
        elif inst.state == InstanceState.READY:
            self._step_ready(inst, now, rollout.liveness if rollout else ProbeSettings())

    def _step_starting(self, inst: Instance, now: float, rollout: RolloutRecord | None) -> None:
        readiness = rollout.readiness if rollout else ProbeSettings()
        if inst.probe is not None and inst.probe.done():
            ok, inst.probe = inst.probe.result(), None
            if ok:
                inst.state, inst.ever_ready, inst.ready_since = InstanceState.READY, True, now
                inst.timeouts_seen = self.runtime.timed_out(inst.port)  # a port may have served an earlier one
                log.info("Instance %s is ready (%.1f s)", inst.id, now - inst.launched)
                self.dirty = self.routes_dirty = True
                if inst.restarts:
                    self.notes.append(Note(inst.key, ""))  # clears a "could not be started" note
                return
        deadline = readiness.initial_delay + readiness.period * readiness.failure_threshold
        if now - inst.launched > deadline:
            self._start_failed(inst, f"Instance {inst.id} did not become ready within {deadline} s.")
        elif inst.probe is None and now >= inst.next_probe:
            inst.next_probe = now + START_PROBE_EVERY_S
            inst.probe = self.runtime.probe(inst.port, float(readiness.timeout))

    def _step_ready(self, inst: Instance, now: float, liveness: ProbeSettings) -> None:
        assert inst.proc is not None  # step() saw it alive
        if inst.probe is not None and inst.probe.done():
            ok, inst.probe = inst.probe.result(), None
            inst.liveness_failures = 0 if ok else inst.liveness_failures + 1
            if not ok and self._holds_a_timed_out_request(inst):
                log.info("Instance %s does not answer and a request to it timed out: restarting it", inst.id)
                self.runtime.kill_group(inst.proc)  # the next step sees it dead: a crash, out of the routes
            elif inst.liveness_failures >= liveness.failure_threshold:
                log.info("Instance %s failed %d liveness probes: restarting it", inst.id, inst.liveness_failures)
                self.runtime.kill_group(inst.proc)  # the next step sees it dead: a crash
        elif inst.probe is None and now >= inst.next_probe and now - inst.launched >= liveness.initial_delay:
            inst.next_probe = now + liveness.period
            inst.probe = self.runtime.probe(inst.port, float(liveness.timeout))

    def _holds_a_timed_out_request(self, inst: Instance) -> bool:
        """The gateway gave up on a request to this instance since it last looked, so a worker may be stuck in it:
        with the probe unanswered too, nothing else will free it (a thread cannot be stopped) but a restart."""
        count = self.runtime.timed_out(inst.port)
        if count is None:
            return False  # the gateway did not answer: nothing known, and the count seen stays
        seen, inst.timeouts_seen = inst.timeouts_seen, count
        if seen is None:
            return False  # the first count known: what came before it cannot be told apart
        if count < seen:
            return count > 0  # a restarted gateway counts from 0 again: each of its 408s came after the last look
        return count > seen

    def _died(self, inst: Instance, now: float) -> None:
        code = inst.proc.exit_code() if inst.proc else None
        if inst.proc is not None:
            self.runtime.kill_group(inst.proc)  # its gunicorn workers, orphaned if the master was killed
        tail = self.runtime.log_tail(inst)
        was_ready = inst.state == InstanceState.READY
        if not was_ready and "Connection in use" in tail and inst.bind_retries < BIND_RETRIES:
            inst.bind_retries += 1  # another program took the port between our check and gunicorn's bind
            self.launch(inst)
            return
        if inst.state == InstanceState.STARTING and not inst.ever_ready:
            how = f"exited with code {code}" if code is not None else "stopped"
            self._start_failed(inst, f"Instance {inst.id} {how} before it was ready. Log tail:\n{tail}")
            return
        self._crashed(inst, now, f"exited with code {code}" if code is not None else "stopped")

    def _crashed(self, inst: Instance, now: float, reason: str) -> None:
        """Start the instance again after a backoff that grows with each crash in a row."""
        was_ready = inst.state == InstanceState.READY
        if inst.ready_since is not None and now - inst.ready_since >= STABLE_S:
            inst.crash_streak = 0
        inst.crash_streak += 1
        delay = backoff(inst.crash_streak)
        inst.state, inst.next_start, inst.probe = InstanceState.CRASHED, now + delay, None
        inst.reason = reason
        log.info("Instance %s %s; restarting in %.1f s", inst.id, reason, delay)
        self.dirty = True
        self.routes_dirty |= was_ready

    def _start_failed(self, inst: Instance, reason: str) -> None:
        """The instance never got ready: end its whole process group (gunicorn master and workers)."""
        inst.start_failed, inst.reason = True, reason
        if inst.proc is not None:
            self.runtime.kill_group(inst.proc)
        log.info("%s", reason.splitlines()[0])
        self.dirty = True

    def _step_stopping(self, inst: Instance, now: float) -> None:
        if inst.proc is None or not inst.proc.alive():
            if inst.proc is not None:
                self.runtime.kill_group(inst.proc)  # workers the master left behind
            self.instances.remove(inst)
            log.info("Instance %s stopped", inst.id)
            self.dirty = True
            return
        if inst.term_sent is None:
            if now >= inst.drain_until or self.runtime.drained(inst.port, inst.stopping_since):
                inst.term_sent = now
                self.runtime.terminate(inst.proc)
        elif now - inst.term_sent > STOP_GRACE_S:
            self.runtime.kill_group(inst.proc)
