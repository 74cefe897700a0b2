"""Progressive traffic rollouts with automatic rollback, on every backend that can drive one.

``start`` moves an endpoint's live traffic to a target deployment step by
step (``--steps 10,50,100``): at each step the target gets that share and the
other deployments the rest, in their proportions before the rollout. After
each step (``step_seconds``, and until ``min_requests`` requests reached the
target, for at most ``MIN_REQUESTS_WAIT_STEPS`` step lengths) the target's
error rate and p95 latency over the step are read from the endpoint's request
facts; a breach sets the split back to what it was before the rollout. Every
split it sets goes through ``Workspace.set_traffic``, so the traffic rules
apply and each change is in the audit log and the traffic history, with a
note that names the rollout (and, for a rollback, the breach); its start and
end are ``endpoint.rollout`` audit records.

The rollout is a record the backend keeps (``Backend.change_traffic_rollout``)
and advances elsewhere: ``advance`` is what the driver (the local control
plane) calls, so a rollout goes on when the CLI that started it is gone, and
a driver started again carries on from the record. A split that is no longer
the one the rollout set (changed by hand), or a target that is gone, stops
it and leaves the split as it is.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .entities import (
    RequestFact,
    RolloutBreach,
    RolloutState,
    RolloutStep,
    TrafficRollout,
    utcnow,
)
from .errors import BackendError, ByomError, InUse, InvalidInput, NotFound
from .history import split_text
from .metrics import is_error, percentile
from .progress import Progress, no_progress
from .workspace import Capability, Workspace

ACTION = "endpoint.rollout"
MIN_REQUESTS_WAIT_STEPS = 10
"""A step waits for ``min_requests`` requests at most this many step lengths; then it fails on them."""
POLL_S = 0.2
GIVE_UP_AFTER_S = 60.0
"""A rollout whose every move failed for this long is ended ``Failed`` instead of being retried forever."""


@dataclass(frozen=True)
class RolloutPlan:
    """What ``byom online-endpoint rollout`` asks for."""

    endpoint: str
    target: str
    steps: tuple[int, ...] = (10, 50, 100)
    step_seconds: float = 60.0
    max_error_rate: float = 0.05
    max_p95_ms: float | None = None
    min_requests: int = 10


class RolloutFailed(BackendError):
    """A rollout ended without reaching its last step (rolled back, aborted or stopped); the reason says why."""


# ---------------------------------------------------------------- pure rules


def parse_steps(text: str) -> tuple[int, ...]:
    """``"10,50,100"`` → ``(10, 50, 100)``."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"--steps is {text!r}: give whole percentages separated by commas, e.g. 10,50,100.") \
            from None


def check_plan(plan: RolloutPlan) -> None:
    """The plan's own numbers: steps rising within 1–100 and ending at 100, positive times and limits."""
    steps = plan.steps
    if not steps or any(not 1 <= s <= 100 for s in steps) or list(steps) != sorted(set(steps)) or steps[-1] != 100:
        raise InvalidInput(f"--steps {','.join(map(str, steps)) or '(none)'}: give rising whole percentages "
                           "from 1 to 100 that end at 100, e.g. 10,50,100.")
    if not 0 < plan.step_seconds <= 86400:
        raise InvalidInput(f"--step-seconds is {plan.step_seconds:g}: give more than 0 and at most 86400.")
    if not 0 <= plan.max_error_rate <= 1:
        raise InvalidInput(f"--max-error-rate is {plan.max_error_rate:g}: give a fraction from 0 to 1 "
                           "(0.05 is 5 % of the target's requests).")
    if plan.max_p95_ms is not None and plan.max_p95_ms <= 0:
        raise InvalidInput(f"--max-p95-ms is {plan.max_p95_ms:g}: give a latency above 0 milliseconds.")
    if plan.min_requests < 1:
        raise InvalidInput(f"--min-requests is {plan.min_requests}: a step is judged on at least one request.")


def live(split: Mapping[str, int]) -> dict[str, int]:
    """The deployments with a share, lower-cased: two splits that route alike compare equal."""
    return {name.lower(): pct for name, pct in split.items() if pct > 0}


def split_at(before: Mapping[str, int], target: str, percent: int) -> dict[str, int]:
    """``target`` at ``percent``; the others share the rest in their proportions in ``before``.

    Whole percentages by largest remainder (ties by name), so the split totals 100.
    """
    others = {n: p for n, p in live(before).items() if n != target}
    rest, total = 100 - percent, sum(others.values())
    exact = {n: rest * p / total for n, p in others.items()} if total else {}
    shares = {n: int(v) for n, v in exact.items()}
    left = rest - sum(shares.values())
    for name in sorted(exact, key=lambda n: (shares[n] - exact[n], n))[:left]:
        shares[name] += 1
    return {**shares, target: percent}


def judge(rollout: TrafficRollout, facts: Sequence[RequestFact], now: float) -> tuple[RolloutStep, RolloutBreach |
                                                                                      None, bool]:
    """The current step's figures, the breach if any, and whether it is over (judged) or still goes on."""
    step = rollout.history[-1]
    rows = [f for f in facts if f.deployment.lower() == rollout.target and not f.mirrored and f.at >= step.started_at]
    errors = sum(is_error(f.status_code) for f in rows)
    latencies = sorted(f.latency_ms for f in rows)
    figures = step.replace(requests=len(rows), errors=errors, error_rate=errors / len(rows) if rows else None,
                           p95_ms=percentile(latencies, 95))
    elapsed = now - step.started_at
    if elapsed < rollout.step_seconds:
        return figures, None, False
    if len(rows) < rollout.min_requests:
        if elapsed < rollout.step_seconds * MIN_REQUESTS_WAIT_STEPS:
            return figures, None, False
        return figures, RolloutBreach("requests", len(rows), rollout.min_requests, step.percent), True
    if figures.error_rate is not None and figures.error_rate > rollout.max_error_rate:
        return figures, RolloutBreach("error_rate", round(figures.error_rate, 4), rollout.max_error_rate,
                                      step.percent), True
    if rollout.max_p95_ms is not None and figures.p95_ms is not None and figures.p95_ms > rollout.max_p95_ms:
        return figures, RolloutBreach("p95_ms", round(figures.p95_ms, 1), rollout.max_p95_ms, step.percent), True
    return figures, None, True


def breach_text(rollout: TrafficRollout, breach: RolloutBreach) -> str:
    what = {"error_rate": "error rate", "p95_ms": "p95 latency (ms)", "requests": "requests"}[breach.metric]
    relation = "below the minimum" if breach.metric == "requests" else "above the limit"
    return (f"the {what} of {rollout.target} at the {breach.step} % step was {breach.value:g}, {relation} "
            f"{breach.limit:g}")


# ------------------------------------------------------ what the CLI calls


def start(ws: Workspace, plan: RolloutPlan) -> TrafficRollout:
    """Check the plan against the endpoint and record the rollout for the backend's driver; Running.

    InUse while another rollout of the endpoint runs.
    """
    if not ws.supports(Capability.TRAFFIC_ROLLOUTS):
        raise ws.backend.rollouts_unsupported()
    check_plan(plan)
    endpoint = ws.get_endpoint(plan.endpoint)

    _refuse_running(ws.backend.traffic_rollout(plan.endpoint))  # before the split is judged: it has moved it
    target = ws.get_deployment(plan.endpoint, plan.target)
    name = target.name.lower()
    if target.provisioning_state != "Succeeded":
        raise InvalidInput(f"Deployment {target.name!r} is {target.provisioning_state}: roll traffic out only to "
                           "a deployment that is Succeeded.")
    if endpoint.local:
        raise InvalidInput(f"Endpoint {plan.endpoint!r} is a local endpoint (--local): it takes no traffic split.")
    if endpoint.mirror_traffic.get(name, 0) > 0:
        raise InvalidInput(f"Deployment {target.name!r} receives mirror traffic, which a deployment with live "
                           "traffic cannot: remove it first (update --mirror-traffic "
                           f'"{name}=0").')
    before = live(endpoint.traffic)
    if not any(n != name for n in before):
        raise InvalidInput(f"No other deployment of {plan.endpoint!r} has live traffic to move from "
                           f"({split_text(endpoint.traffic)}): set the traffic directly with update --traffic.")
    if before.get(name, 0) >= plan.steps[0]:
        raise InvalidInput(f"Deployment {target.name!r} already has {before[name]} %: the first step must give it "
                           "more than that.")
    rollout = TrafficRollout(
        id=uuid.uuid4().hex[:12], endpoint=plan.endpoint, target=name, steps=list(plan.steps),
        step_seconds=plan.step_seconds, max_error_rate=plan.max_error_rate, max_p95_ms=plan.max_p95_ms,
        min_requests=plan.min_requests, actor=ws.actor, started_at=utcnow(), before=dict(endpoint.traffic),
        applied=dict(endpoint.traffic), updated_at=utcnow(),
    )

    def begin(current: TrafficRollout | None) -> TrafficRollout:
        _refuse_running(current)
        return rollout

    ws.backend.change_traffic_rollout(plan.endpoint, begin)
    ws.record_change(ACTION, f"endpoint/{plan.endpoint}", {"traffic": rollout.before}, _summary(rollout))
    ws.backend.drive_traffic_rollouts()
    return rollout


def _refuse_running(current: TrafficRollout | None) -> None:
    if current is not None and current.running:
        raise InUse(f"Endpoint {current.endpoint!r} has a rollout running ({current.id}, to {current.target}, "
                    f"started by {current.actor} at {current.started_at}).",
                    hint="Follow it with 'rollout status' or stop it with 'rollout abort'.")


def status(ws: Workspace, endpoint: str) -> TrafficRollout:
    """The endpoint's latest rollout, running or ended; NotFound where it has had none."""
    if not ws.supports(Capability.TRAFFIC_ROLLOUTS):
        raise ws.backend.rollouts_unsupported()
    found = ws.backend.traffic_rollout(endpoint)
    if found is None:
        ws.get_endpoint(endpoint)
        raise NotFound(f"Endpoint {endpoint!r} has had no rollout.",
                       hint="Start one with 'byom online-endpoint rollout -n ENDPOINT --to DEPLOYMENT'.")
    return found


def abort(ws: Workspace, endpoint: str) -> TrafficRollout:
    """Ask the running rollout to stop and set the split back to what it was before it."""
    status(ws, endpoint)

    def ask(current: TrafficRollout | None) -> TrafficRollout:
        if current is None or not current.running:
            state = current.state if current is not None else "none"
            raise InvalidInput(f"Endpoint {endpoint!r} has no rollout running (the latest is {state}).")
        return current.replace(abort_requested=ws.actor)

    asked = ws.backend.change_traffic_rollout(endpoint, ask)
    ws.backend.drive_traffic_rollouts()
    return asked


def wait(ws: Workspace, endpoint: str, rollout_id: str, *, timeout_s: float | None = None,
         progress: Progress = no_progress) -> TrafficRollout:
    """Follow the rollout until it ends; its record. RolloutFailed (with the reason) unless it Succeeded."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    said = ""
    while True:
        current = ws.backend.traffic_rollout(endpoint)
        if current is None or current.id != rollout_id:
            raise BackendError(f"The rollout {rollout_id} of endpoint {endpoint!r} is no longer recorded.")
        line = _progress_line(current)
        if line != said:
            said = line
            done = sum(1 for s in current.history if s.ended_at is not None)
            progress(line, done / len(current.steps))
        if not current.running:
            if current.state != RolloutState.SUCCEEDED:
                raise RolloutFailed(f"Rollout {current.id} of {endpoint!r} to {current.target}: {current.state}: "
                                    f"{current.reason}")
            return current
        if deadline is not None and time.monotonic() > deadline:
            raise BackendError(f"The rollout {rollout_id} of {endpoint!r} still runs after {timeout_s:g} s.",
                               hint="Follow it with 'rollout status'.")
        ws.backend.drive_traffic_rollouts()  # a driver that died is started again; it carries on from the record
        time.sleep(POLL_S)


def _progress_line(rollout: TrafficRollout) -> str:
    if not rollout.running:
        return f"Rollout {rollout.state}: {rollout.reason}"
    if not rollout.history:
        return f"Rollout {rollout.id}: starting"
    step = rollout.history[-1]
    return f"Rollout {rollout.id}: {rollout.target} at {step.percent} % ({split_text(rollout.applied)})"


# --------------------------------------------------------- what the driver calls


def advance(ws: Workspace, endpoint: str, now: float | None = None) -> TrafficRollout | None:
    """Take the endpoint's running rollout one move further (set a step, judge it, roll back, end); its record.

    Called over and over by the backend's driver: what it does depends only on the record, the endpoint and
    the request facts, so a driver started again carries on.
    """
    rollout = ws.backend.traffic_rollout(endpoint)
    if rollout is None or not rollout.running:
        return rollout
    now = time.time() if now is None else now
    try:
        current = ws.get_endpoint(endpoint)
    except NotFound:
        return _end(ws, rollout, RolloutState.STOPPED, f"endpoint {endpoint!r} was deleted", None)
    if rollout.target not in {d.name.lower() for d in ws.list_deployments(endpoint)}:
        return _end(ws, rollout, RolloutState.STOPPED, f"deployment {rollout.target} was deleted; the split was "
                    "left as it is", None)
    split = live(current.traffic)
    if rollout.pending is not None:  # a driver stopped while setting it: did the split reach the endpoint?
        pending, restoring = rollout.pending, bool(rollout.reason)
        state = RolloutState.ABORTED if rollout.abort_requested and rollout.breach is None else \
            RolloutState.ROLLED_BACK
        if split == live(pending) and restoring:
            return _end(ws, rollout.replace(applied=pending, pending=None), state, rollout.reason, rollout.breach)
        if split == live(pending):
            step = RolloutStep(percent=pending[rollout.target], started_at=now)
            return _save(ws, rollout.replace(applied=pending, pending=None, history=[*rollout.history, step]))
        if split == live(rollout.applied) and restoring:
            return _restore(ws, rollout, state, rollout.reason, rollout.breach)
        if split == live(rollout.applied):
            return _set_step(ws, rollout.replace(pending=None), pending, now)
    if split != live(rollout.applied):
        return _end(ws, rollout, RolloutState.STOPPED,
                    f"the traffic was changed by hand to {split_text(current.traffic)}; the rollout stopped and "
                    "left it as it is", None)
    if rollout.abort_requested:
        return _restore(ws, rollout, RolloutState.ABORTED, f"aborted by {rollout.abort_requested}", None)
    if not rollout.history:
        return _set_step(ws, rollout, split_at(rollout.before, rollout.target, rollout.steps[0]), now)
    facts = ws.backend.request_facts(endpoint, rollout.history[-1].started_at)
    figures, breach, over = judge(rollout, facts, now)
    if not over:
        if figures != rollout.history[-1]:
            rollout = _save(ws, rollout.replace(history=[*rollout.history[:-1], figures]))
        return rollout
    rollout = rollout.replace(history=[*rollout.history[:-1], figures.replace(ended_at=now)])
    if breach is not None:
        return _restore(ws, rollout, RolloutState.ROLLED_BACK, f"rolled back: {breach_text(rollout, breach)}",
                        breach)
    reached = len(rollout.history)
    if reached == len(rollout.steps):
        return _end(ws, rollout, RolloutState.SUCCEEDED,
                    f"{rollout.target} has {rollout.steps[-1]} % after {reached} healthy step(s)", None)
    return _set_step(ws, rollout, split_at(rollout.before, rollout.target, rollout.steps[reached]), now)


def give_up(ws: Workspace, endpoint: str, error: str, failing_s: float) -> TrafficRollout | None:
    """End the running rollout whose moves kept failing (``error`` the last one's); its record.

    The split before it is set back when the endpoint still has a split the rollout set; one changed by
    hand meanwhile is left as it is, as ``advance`` would.
    """
    rollout = ws.backend.traffic_rollout(endpoint)
    if rollout is None or not rollout.running:
        return rollout
    reason = f"its moves kept failing for {failing_s:.0f} s (the last: {error})"
    try:
        split = live(ws.get_endpoint(endpoint).traffic)
    except NotFound:
        return _end(ws, rollout, RolloutState.FAILED, reason, None)
    if split == live(rollout.applied) or (rollout.pending is not None and split == live(rollout.pending)):
        return _restore(ws, rollout, RolloutState.FAILED, f"{reason}; the split before it was set back", None)
    return _end(ws, rollout, RolloutState.FAILED, f"{reason}; the split, changed meanwhile, was left as it is", None)


def _save(ws: Workspace, rollout: TrafficRollout) -> TrafficRollout:
    """Store the driver's view of the rollout, keeping an abort asked meanwhile; refused if it is not ours."""
    def merge(current: TrafficRollout | None) -> TrafficRollout:
        if current is None or current.id != rollout.id:
            raise BackendError(f"The rollout {rollout.id} of {rollout.endpoint!r} is no longer recorded.")
        return rollout.replace(abort_requested=current.abort_requested or rollout.abort_requested,
                               updated_at=utcnow())

    stored: TrafficRollout = ws.backend.change_traffic_rollout(rollout.endpoint, merge)
    return stored


def _set_step(ws: Workspace, rollout: TrafficRollout, split: dict[str, int], now: float) -> TrafficRollout:
    percent = split[rollout.target]
    rollout = _save(ws, rollout.replace(pending=split))
    note = f"rollout {rollout.id}: {rollout.target} to {percent} %"
    ws.set_traffic(rollout.endpoint, split, note=note)
    return _save(ws, rollout.replace(applied=split, pending=None,
                                     history=[*rollout.history, RolloutStep(percent=percent, started_at=now)]))


def _restore(ws: Workspace, rollout: TrafficRollout, state: RolloutState, reason: str,
             breach: RolloutBreach | None) -> TrafficRollout:
    """Set the split back to the one before the rollout, then end it; where that is refused, stop it instead."""
    rollout = _save(ws, rollout.replace(pending=rollout.before, reason=reason, breach=breach))
    existing = {d.name.lower() for d in ws.list_deployments(rollout.endpoint)}
    split = {n: p for n, p in rollout.before.items() if p > 0 or n.lower() in existing}
    try:
        ws.set_traffic(rollout.endpoint, split, note=f"rollout {rollout.id} {reason}")
    except ByomError as exc:
        return _end(ws, rollout.replace(pending=None), RolloutState.STOPPED,
                    f"{reason}, but the split before it could not be restored: {exc.message}", breach)
    return _end(ws, rollout.replace(applied=rollout.before, pending=None), state, reason, breach)


def _end(ws: Workspace, rollout: TrafficRollout, state: RolloutState, reason: str,
         breach: RolloutBreach | None) -> TrafficRollout:
    ended = _save(ws, rollout.replace(state=state, reason=reason, breach=breach, ended_at=utcnow()))
    ws.record_change(ACTION, f"endpoint/{rollout.endpoint}", {"traffic": rollout.before}, _summary(ended))
    return ended


def _summary(rollout: TrafficRollout) -> dict[str, object]:
    return {"rollout": rollout.id, "state": rollout.state, "target": rollout.target, "steps": rollout.steps,
            "traffic": rollout.applied, "reason": rollout.reason,
            "breach": rollout.breach.to_dict() if rollout.breach else None}
