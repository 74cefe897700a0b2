"""The Overview page: whether to offer the demo, each endpoint's request rate, the latest changes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from byom.core.demo import CHAT_DEPLOYMENT, DEMO_ENDPOINT, RANKS_DEPLOYMENT
from byom.core.entities import AuditRecord, Deployment, DeploymentMetrics, Endpoint

from .common import Table, short_time, table

RATE_WINDOW_S = 300
RATE_BUCKET_S = 60
AUDIT_ROWS = 15


def demo_unfinished(endpoints: Iterable[Endpoint], deployments: Iterable[Deployment]) -> bool:
    """Whether the demo endpoint exists without both its deployments running (a set-up that stopped half-way)."""
    if not any(e.name == DEMO_ENDPOINT for e in endpoints):
        return False
    running = {d.name for d in deployments if d.endpoint_name == DEMO_ENDPOINT and d.provisioning_state == "Succeeded"}
    return not {CHAT_DEPLOYMENT, RANKS_DEPLOYMENT} <= running


def requests_per_minute(metrics: Iterable[DeploymentMetrics]) -> float:
    """Live requests per minute over the metrics' window (``RATE_WINDOW_S``); mirrored copies are not counted."""
    return sum(m.requests for m in metrics if not m.mirrored) / (RATE_WINDOW_S / 60)


def rate_text(per_minute: float | None) -> str:
    return "n/a" if per_minute is None else f"{per_minute:.1f}"


def audit_table(records: Sequence[AuditRecord]) -> Table:
    return table(
        [{"when": short_time(r.at), "who": r.actor, "what": r.action, "target": r.target,
          "change": change_text(r.before, r.after, r.action)} for r in records],
        ["when", "who", "what", "target", "change"],
    )


def change_text(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, action: str = "") -> str:
    """The fields that differ, as ``field: old → new``; short enough for one table cell.

    An event with nothing before it is a creation, unless the action says otherwise (a deployment's
    new state, a build, a key regenerated): then what it recorded is shown."""
    if before is None and after is None:
        return ""
    if before is None:
        if action.endswith(".create"):
            return "created"
        return "; ".join(f"{k}: {_short(v)}" for k, v in (after or {}).items() if v not in ("", None))
    if after is None:
        return "deleted"
    parts = []
    for key in after:
        if before.get(key) != after.get(key):
            parts.append(f"{key}: {_short(before.get(key))} → {_short(after.get(key))}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "…"
