"""The Consumers page: an endpoint's consumers and their limits, and what each used, from core's chargeback rows.

The usage table and its CSV are the rows ``byom online-endpoint usage`` prints (:func:`core.chargeback.report_row`).
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from byom.core.chargeback import consumer_label, report_row, totals
from byom.core.entities import LIMITS, Consumer, ConsumerUsage

from .common import Table, short_time, table

WINDOWS = {"Last hour": "1h", "Last 24 hours": "24h", "Last 7 days": "7d", "Last 30 days": "30d"}
"""Label → the ``--since`` window of ``online-endpoint usage``."""
DEFAULT_WINDOW = "Last 24 hours"
PERIODS = {"Whole window": None, "Per hour": "hour", "Per day": "day"}
USAGE_COLUMNS = ["period", "consumer", "deployment", "requests", "input_tokens", "output_tokens", "total_tokens",
                 "errors"]
HEIGHT = 320


def window_index(label: str = DEFAULT_WINDOW) -> int:
    return list(WINDOWS).index(label)


def limit_text(value: int | None) -> str:
    return f"{value:,}" if value is not None else "no limit"


def consumers_table(consumers: Sequence[Consumer]) -> Table:
    """One row per consumer: its limits (``no limit`` where it has none), who made it and when. Never a key."""
    rows = [{"consumer": c.name, **{name.replace("_", " "): limit_text(getattr(c, name)) for name in LIMITS},
             "created by": c.created_by, "created": short_time(c.created_at)} for c in consumers]
    return table(rows, ["consumer", *(name.replace("_", " ") for name in LIMITS), "created by", "created"])


def limits_given(values: dict[str, int]) -> dict[str, int | None]:
    """The form's numbers as limits: 0 is no limit."""
    return {name: (value or None) for name, value in values.items()}


LIMIT_BOXES = {
    "tokens_per_minute": ("Tokens per minute", 1000, "Input and output tokens, those of requests in flight too; "
                                                   "0: no limit."),
    "requests_per_minute": ("Requests per minute", 10, "0: no limit."),
    "tokens_per_day": ("Tokens per day", 10000, "In the last 24 hours; 0: no limit."),
}
"""A limit's box: its label, step and help."""


def limit_boxes(consumer: Consumer) -> dict[str, int]:
    """What the limit boxes show of a consumer: each limit, 0 where it has none."""
    return {name: value or 0 for name, value in consumer.limits().items()}


def limit_changes(consumer: Consumer, values: dict[str, int]) -> dict[str, int | None]:
    """The limits the boxes change (0: no limit), and only those."""
    return {name: wanted for name, wanted in limits_given(values).items() if wanted != getattr(consumer, name)}


def changes_text(consumer: Consumer, changes: dict[str, int | None]) -> str:
    """``tokens per minute 20,000 → 5,000; tokens per day no limit → 1,000,000``."""
    return "; ".join(f"{name.replace('_', ' ')} {limit_text(getattr(consumer, name))} → {limit_text(value)}"
                     for name, value in changes.items())


def delete_question(consumer: Consumer) -> str:
    return (f"Delete consumer {consumer.name} of {consumer.endpoint_name}? Its key stops working at once: requests "
            "sent with it get 401. What it used stays in the usage below.")


def regenerate_question(consumer: Consumer) -> str:
    return (f"Give consumer {consumer.name} of {consumer.endpoint_name} a new key? Its current key stops working at "
            "once: requests sent with it get 401. Its limits and usage stay.")


def usage_table(rows: Sequence[ConsumerUsage]) -> Table:
    """The report's rows; the period column only where the report has periods."""
    shown = [report_row(r) for r in rows]
    columns = USAGE_COLUMNS if any(r.period for r in rows) else USAGE_COLUMNS[1:]
    return table(shown, columns)


def usage_csv(rows: Sequence[ConsumerUsage]) -> str:
    """The usage table as CSV, every column, for chargeback outside byom."""
    return str(table([report_row(r) for r in rows], USAGE_COLUMNS).to_csv(index=False))


def tokens_figure(rows: Sequence[ConsumerUsage]) -> go.Figure:
    """Input and output tokens per consumer over the window, stacked; the endpoint's own keys as one bar."""
    per = totals(rows)
    names = sorted(per)
    figure = go.Figure()
    for kind in ("input_tokens", "output_tokens"):
        figure.add_trace(go.Bar(x=[consumer_label(n) for n in names], y=[per[n][kind] for n in names],
                                name=kind.replace("_", " "),
                                hovertemplate="%{y:,} tokens<extra>%{fullData.name}</extra>"))
    figure.update_layout(title={"text": "Tokens per consumer", "x": 0, "xanchor": "left"}, barmode="stack",
                         height=HEIGHT, margin={"l": 10, "r": 10, "t": 70, "b": 40},
                         legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
                         yaxis={"title": "tokens", "rangemode": "tozero"})
    return figure
