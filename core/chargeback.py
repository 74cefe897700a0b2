"""Usage for chargeback: the request facts summed per consumer and deployment (and per hour or day).

Pure functions over :class:`~core.entities.RequestFact`, so the CLI's
``online-endpoint usage`` and the console's Consumers tab show the same rows.
Mirrored copies are left out: the operator sent them, not the consumer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from .entities import ConsumerUsage, RequestFact

ENDPOINT_KEY = ""  # the consumer of a request sent with one of the endpoint's own keys
ENDPOINT_KEY_LABEL = "(endpoint key)"


def consumer_label(consumer: str) -> str:
    """How a report names a row's consumer: its name, or that an endpoint key sent the requests."""
    return consumer or ENDPOINT_KEY_LABEL


def report_row(row: ConsumerUsage) -> dict[str, object]:
    """A row as reports show it: the period first (where there is one), the consumer named, tokens totalled."""
    out: dict[str, object] = {"period": row.period} if row.period else {}
    out.update({"consumer": consumer_label(row.consumer), "deployment": row.deployment, "requests": row.requests,
                "input_tokens": row.input_tokens, "output_tokens": row.output_tokens,
                "total_tokens": row.input_tokens + row.output_tokens, "errors": row.errors})
    return out


def period_start(at: float, period_s: int) -> str:
    """The start of the UTC hour or day ``at`` falls in, ISO-8601."""
    start = int(at // period_s) * period_s
    return datetime.fromtimestamp(start, UTC).isoformat(timespec="seconds")


def usage_rows(facts: Iterable[RequestFact], *, consumer: str | None = None,
               period_s: int | None = None) -> list[ConsumerUsage]:
    """One row per (period,) consumer and deployment, sorted so; only ``consumer``'s where it is given."""
    rows: dict[tuple[str, str, str], ConsumerUsage] = {}
    for fact in facts:
        if fact.mirrored or (consumer is not None and fact.consumer.lower() != consumer.lower()):
            continue
        period = period_start(fact.at, period_s) if period_s else ""
        key = (period, fact.consumer, fact.deployment)
        row = rows.get(key)
        if row is None:
            row = rows[key] = ConsumerUsage(consumer=fact.consumer, deployment=fact.deployment, requests=0,
                                            input_tokens=0, output_tokens=0, errors=0, period=period)
        row.requests += 1
        row.input_tokens += fact.input_tokens
        row.output_tokens += fact.output_tokens
        row.errors += fact.status_code >= 400
    return [rows[k] for k in sorted(rows)]


def totals(rows: Iterable[ConsumerUsage]) -> dict[str, dict[str, int]]:
    """Per consumer: requests, input and output tokens and errors over every deployment and period."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        total = out.setdefault(row.consumer, {"requests": 0, "input_tokens": 0, "output_tokens": 0, "errors": 0})
        total["requests"] += row.requests
        total["input_tokens"] += row.input_tokens
        total["output_tokens"] += row.output_tokens
        total["errors"] += row.errors
    return out
