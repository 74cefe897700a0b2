"""An endpoint's traffic history, read from the Workspace's audit records, and its revert.

Every traffic change (``Workspace.set_traffic``) leaves an ``endpoint.traffic``
audit record with the live and mirror splits before and after it, on every
backend. The history is those records, newest first; reverting a change sends
its earlier splits back through ``Workspace.set_traffic``, so the traffic
rules apply and the revert is itself audited (and can be reverted in turn).
The console's Traffic tab and ``byom online-endpoint traffic-history``/``revert``
both stand on this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .entities import AuditRecord, Endpoint
from .errors import InvalidInput, NotFound
from .workspace import Progress, Workspace, no_progress

TRAFFIC_ACTION = "endpoint.traffic"
HISTORY_RECORDS = 50
"""How many of an endpoint's latest audit records (of any action) the history is read from."""
LARGE_SHIFT = 50
"""A traffic change that moves this many percentage points to or from one deployment asks for confirmation."""


@dataclass(frozen=True)
class TrafficChange:
    """One change of an endpoint's splits: who made it, when, and the splits before and after."""

    id: int | None
    at: str
    actor: str
    before: dict[str, int]
    after: dict[str, int]
    mirror_before: dict[str, int]
    mirror_after: dict[str, int]
    note: str = ""
    """Why, where the change says (a rollout's step or rollback)."""


@dataclass(frozen=True)
class Revert:
    """What reverting a change sends: its earlier live and mirror splits, or why they cannot be sent."""

    endpoint: str
    change: TrafficChange
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]
    refusal: str = ""
    """Why the earlier split cannot be restored; empty when it can."""


def traffic_changes(records: Iterable[AuditRecord], endpoint: str | None = None) -> list[TrafficChange]:
    """The traffic changes among ``records`` (of ``endpoint`` only, when named), in their order.

    Records are matched on the whole target: ``endpoint/demo`` is not ``endpoint/demo2``.
    """
    target = None if endpoint is None else f"endpoint/{endpoint}"
    changes = []
    for r in records:
        if r.action != TRAFFIC_ACTION or not r.before or not r.after or target not in (None, r.target):
            continue
        changes.append(TrafficChange(
            id=r.id, at=r.at, actor=r.actor,
            before=_split(r.before.get("traffic")), after=_split(r.after.get("traffic")),
            mirror_before=_split(r.before.get("mirror_traffic")), mirror_after=_split(r.after.get("mirror_traffic")),
            note=str(r.after.get("note") or ""),
        ))
    return changes


def _split(value: Any) -> dict[str, int]:
    return {str(name): int(pct) for name, pct in (value or {}).items()}


def traffic_history(ws: Workspace, endpoint: str) -> list[TrafficChange]:
    """The endpoint's traffic changes, newest first (from its latest ``HISTORY_RECORDS`` audit records)."""
    return traffic_changes(ws.list_audit(limit=HISTORY_RECORDS, target_prefix=f"endpoint/{endpoint}"), endpoint)


def revert_of(endpoint: str, change: TrafficChange, deployments: Iterable[str]) -> Revert:
    """What reverting ``change`` of ``endpoint`` sends, given the endpoint's deployments now.

    Deployments deleted since then are left out when they had 0 %; one that
    had a share makes the earlier split impossible to restore.
    """
    existing = {d.lower() for d in deployments}
    gone = [f"{n} ({pct} %)" for split in (change.before, change.mirror_before) for n, pct in sorted(split.items())
            if n.lower() not in existing and pct > 0]
    return Revert(
        endpoint, change,
        traffic={n: pct for n, pct in change.before.items() if n.lower() in existing},
        mirror_traffic={n: pct for n, pct in change.mirror_before.items() if n.lower() in existing},
        refusal=f"Cannot revert: it gave traffic to {', '.join(gone)}, deleted since." if gone else "",
    )


def plan_revert(ws: Workspace, endpoint: str, change_id: int | None = None) -> Revert:
    """The revert of change ``change_id`` of the endpoint's history (by default its latest change)."""
    ws.get_endpoint(endpoint)  # NotFound for an endpoint that does not exist (its history may outlive it)
    history = traffic_history(ws, endpoint)
    if not history:
        raise NotFound(f"Endpoint {endpoint!r} has no traffic change to revert.",
                       hint="Its traffic has not changed since it was created.")
    if change_id is None:
        change = history[0]
    else:
        found = [c for c in history if c.id == change_id]
        if not found:
            ids = ", ".join(str(c.id) for c in history)
            raise NotFound(f"Endpoint {endpoint!r} has no traffic change {change_id} in its history.",
                           hint=f"Its traffic changes, newest first: {ids}.")
        change = found[0]
    return revert_of(endpoint, change, [d.name for d in ws.list_deployments(endpoint)])


def check_revert(planned: Revert) -> None:
    """Raise InvalidInput where the earlier split cannot be restored."""
    if planned.refusal:
        raise InvalidInput(planned.refusal, hint="Set the split by hand among the deployments the endpoint has now.")


def apply_revert(ws: Workspace, planned: Revert, *, wait: bool = True, progress: Progress = no_progress) -> Endpoint:
    """Send a planned revert through ``Workspace.set_traffic``: the traffic rules apply and the revert is audited."""
    check_revert(planned)
    return ws.set_traffic(planned.endpoint, planned.traffic, planned.mirror_traffic, wait=wait, progress=progress)


def revert(ws: Workspace, endpoint: str, change_id: int | None = None, *, wait: bool = True,
           progress: Progress = no_progress) -> Endpoint:
    """Set the endpoint's traffic back to what it was before change ``change_id`` (by default its latest change)."""
    return apply_revert(ws, plan_revert(ws, endpoint, change_id), wait=wait, progress=progress)


def split_text(traffic: Mapping[str, int], mirror: Mapping[str, int] | None = None) -> str:
    """``chat 90 · green 10`` (and ``mirror: shadow 10``); ``no traffic`` when nothing is live."""
    live = " · ".join(f"{name} {pct}" for name, pct in sorted(traffic.items()) if pct > 0) or "no traffic"
    shadow = " · ".join(f"{name} {pct}" for name, pct in sorted((mirror or {}).items()) if pct > 0)
    return f"{live} (mirror: {shadow})" if shadow else live


def largest_shift(current: Mapping[str, int], proposed: Mapping[str, int]) -> int:
    """The most percentage points any one deployment gains or loses."""
    names = {n.lower() for n in current} | {n.lower() for n in proposed}
    low_current = {k.lower(): v for k, v in current.items()}
    low_proposed = {k.lower(): v for k, v in proposed.items()}
    return max((abs(low_proposed.get(n, 0) - low_current.get(n, 0)) for n in names), default=0)
