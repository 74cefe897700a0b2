"""The Endpoints page's Traffic tab: the mirror report beside the mirror setting, and the endpoint's rollout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from byom.core.entities import AuditRecord, MirrorReport, RolloutState, TrafficRollout
from byom.core.history import split_text
from byom.core.mirror_report import report_row
from byom.core.traffic_rollout import ACTION

from .common import Table, short_time, table

MIRROR_WINDOWS = ["15m", "1h", "24h", "7d"]
DEFAULT_MIRROR_WINDOW = "1h"
MIRROR_COLUMNS = {  # report_row's keys → the columns the tab shows
    "deployment": "Mirror", "primary": "Primary", "requests": "Requests", "identical": "Identical",
    "differing": "Differing", "primary_errors": "Primary errors", "mirror_errors": "Mirror errors",
    "primary_p50_ms": "Primary p50 ms", "primary_p95_ms": "Primary p95 ms", "mirror_p50_ms": "Mirror p50 ms",
    "mirror_p95_ms": "Mirror p95 ms", "exact_match_rate": "Exact match", "mean_first_difference": "First diff (word)",
}
STEP_COLUMNS = ["Step", "Share %", "Check", "Requests", "Errors", "Error rate", "p95 ms"]
PAST_COLUMNS = ["Ended", "Rollout", "To", "Steps", "Outcome", "Reason"]


def mirror_table(rows: Sequence[MirrorReport]) -> Table:
    """One row per mirrored deployment, as ``byom online-endpoint mirror-report`` gives it."""
    return table([{MIRROR_COLUMNS[k]: v for k, v in report_row(r).items()} for r in rows],
                 list(MIRROR_COLUMNS.values()))


def mirror_caption(rows: Sequence[MirrorReport], window: str) -> str:
    """What the report's figures mean, or why there are none."""
    if not rows:
        return (f"No mirrored requests in the last {window}: set a mirror and send requests to the endpoint "
                "(requests that name a deployment are never mirrored).")
    said = ("Identical: both answers 2xx with one sha256; errors: an answer that was not 2xx, on either side.")
    if any(r.generations for r in rows):
        said += (" Exact match and the first differing word compare generations' text, split into words "
                 "(the answers carry no token ids).")
    return said


def rollout_line(rollout: TrafficRollout) -> str:
    """Where the rollout is: its step, the split it set, who started it; where it ended and why."""
    if rollout.state != RolloutState.RUNNING:
        return f"Rollout {rollout.id} to {rollout.target}: {rollout.state}, {rollout.reason}"
    if not rollout.history:
        step = f"starting ({len(rollout.steps)} steps: {_steps(rollout)} %)"
    else:
        step = (f"step {len(rollout.history)} of {len(rollout.steps)} ({rollout.history[-1].percent} %), "
                f"split {split_text(rollout.applied)}")
    line = f"Rollout {rollout.id} to {rollout.target}: {step}; started by {rollout.actor} at " \
           f"{short_time(rollout.started_at)}"
    if rollout.abort_requested:
        line += f". Abort asked by {rollout.abort_requested}: the split goes back to {split_text(rollout.before)}"
    return line


def limits_text(rollout: TrafficRollout) -> str:
    p95 = f", p95 at most {rollout.max_p95_ms:g} ms" if rollout.max_p95_ms is not None else ""
    return (f"Each step lasts {rollout.step_seconds:g} s and needs {rollout.min_requests} request(s) to "
            f"{rollout.target}; limits: error rate at most {rollout.max_error_rate:g}{p95}.")


def steps_table(rollout: TrafficRollout) -> Table:
    """One row per step begun: its share, whether it was judged (healthy or the breach), and its figures so far."""
    rows = []
    for i, step in enumerate(rollout.history, start=1):
        if step.ended_at is None:
            check = "checking"
        elif rollout.breach is not None and i == len(rollout.history) and step.percent == rollout.breach.step:
            check = f"breach: {rollout.breach.metric}"
        else:
            check = "healthy"
        rows.append({"Step": f"{i} of {len(rollout.steps)}", "Share %": step.percent, "Check": check,
                     "Requests": step.requests, "Errors": step.errors,
                     "Error rate": None if step.error_rate is None else round(step.error_rate, 3),
                     "p95 ms": None if step.p95_ms is None else round(step.p95_ms, 1)})
    return table(rows, STEP_COLUMNS)


def abort_question(rollout: TrafficRollout) -> str:
    """The confirmation, naming what changes: the split now, the one restored, the target's share."""
    now = rollout.applied.get(rollout.target, 0)
    back = rollout.before.get(rollout.target, 0)
    return (f"Abort rollout {rollout.id} of {rollout.endpoint}? The live split goes back from "
            f"{split_text(rollout.applied)} to {split_text(rollout.before)}, as before the rollout: "
            f"{rollout.target} goes from {now} % to {back} %.")


def past_rollouts(records: Iterable[AuditRecord], endpoint: str) -> Table:
    """The endpoint's ended rollouts, newest first, from their ``endpoint.rollout`` audit records."""
    rows = []
    for record in records:
        after = record.after or {}
        if record.action != ACTION or record.target != f"endpoint/{endpoint}" or \
                after.get("state") in (None, RolloutState.RUNNING):
            continue
        rows.append({"Ended": short_time(record.at), "Rollout": after.get("rollout", ""),
                     "To": after.get("target", ""), "Steps": ",".join(str(s) for s in after.get("steps") or []),
                     "Outcome": after["state"], "Reason": after.get("reason", "")})
    return table(rows, PAST_COLUMNS)


def _steps(rollout: TrafficRollout) -> str:
    return ",".join(str(s) for s in rollout.steps)
