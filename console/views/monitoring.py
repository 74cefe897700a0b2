"""The Monitoring page: the windows offered, and its charts from core's zero-filled, clock-aligned series.

Each deployment keeps one colour on every chart (``colours``), a mirror the
colour of its deployment, dotted. Counts (requests, tokens) start at zero;
latency and token times are drawn only where a bucket had something to
measure (a gap, not a made-up zero), in whole milliseconds (time per output
token to a tenth); the x axis spans the whole window, whatever has traffic.
Token charts leave mirrors out: the gateway counts no tokens for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from byom.core.entities import Deployment, DeploymentMetrics, MetricsPoint
from byom.core.metrics_series import ResourceSample, bucket_starts, status_class

from .common import Table, table

WINDOWS = {"Last 15 minutes": (900, 30), "Last hour": (3600, 60), "Last 6 hours": (21600, 600),
           "Last 24 hours": (86400, 1800)}
"""Label → (window, bucket) in seconds."""
DEFAULT_WINDOW = "Last hour"
REFRESH_S = 5
PERCENTILES = ["p50", "p95", "p99"]
TOKEN_KINDS = ("input", "output")
DEFAULT_PERCENTILE = "p95"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
"""Deployment colours (plotly's, red left out: red is for errors)."""
STATUS_COLOURS = {"2xx": "#2ca02c", "3xx": "#17becf", "4xx": "#ff7f0e", "5xx": "#d62728"}
HEIGHT = 300


def window_index(label: str = DEFAULT_WINDOW) -> int:
    return list(WINDOWS).index(label)


def colours(deployment_names: Iterable[str]) -> dict[str, str]:
    """One colour per deployment, the same on every chart and every refresh (by sorted name)."""
    names = sorted({n.lower() for n in deployment_names})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def with_quiet_deployments(metrics: Sequence[DeploymentMetrics], deployments: Iterable[str], *, endpoint: str,
                           window_s: int, bucket_s: int, now: float) -> list[DeploymentMetrics]:
    """``metrics`` plus an all-zero series for each deployment without requests: quiet is shown as zero."""
    seen = {m.deployment.lower() for m in metrics if not m.mirrored}
    quiet = [DeploymentMetrics(endpoint=endpoint, deployment=name, window_s=window_s,
                               series=[MetricsPoint(at=at, requests=0, errors=0, p50_ms=None, p95_ms=None,
                                                    p99_ms=None) for at in bucket_starts(now, window_s, bucket_s)])
             for name in deployments if name.lower() not in seen]
    return sorted([*metrics, *quiet], key=lambda m: (m.deployment.lower(), m.mirrored))


def _label(m: DeploymentMetrics) -> str:
    return m.deployment + (" (mirror)" if m.mirrored else "")


NO_LATENCY = "–"
"""A latency cell of a deployment without requests: no figure, not a made-up 0 or 'None'."""


def _ms_cell(value: float | None) -> int | str:
    return NO_LATENCY if value is None else round(value)


def metrics_table(metrics: Sequence[DeploymentMetrics]) -> Table:
    """Per deployment over the window: requests, errors, error rate, latency percentiles in whole ms, and the
    input and output tokens."""
    rows = [{"deployment": _label(m), "requests": m.requests, "errors": m.errors,
             "error rate %": round(100 * m.errors / m.requests, 1) if m.requests else 0.0,
             "p50 ms": _ms_cell(m.p50_ms), "p95 ms": _ms_cell(m.p95_ms), "p99 ms": _ms_cell(m.p99_ms),
             "input tokens": m.input_tokens, "output tokens": m.output_tokens}
            for m in metrics]
    return table(rows, ["deployment", "requests", "errors", "error rate %", "p50 ms", "p95 ms", "p99 ms",
                        "input tokens", "output tokens"])


def _times(points: Sequence[MetricsPoint]) -> list[pd.Timestamp]:
    return [pd.Timestamp(p.at, unit="s", tz="UTC") for p in points]


def _x_range(metrics: Sequence[DeploymentMetrics], bucket_s: int) -> list[pd.Timestamp] | None:
    starts = [p.at for m in metrics for p in m.series]
    if not starts:
        return None
    return [pd.Timestamp(min(starts), unit="s", tz="UTC"), pd.Timestamp(max(starts) + bucket_s, unit="s", tz="UTC")]


def _layout(figure: go.Figure, title: str, y_title: str, y_max: float, x_range: Sequence[object] | None) -> go.Figure:
    figure.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"}, height=HEIGHT,
        # Room below for the date plotly writes under the first time tick, and above for the legend.
        margin={"l": 10, "r": 10, "t": 70, "b": 50},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"}, showlegend=True,
        hovermode="x unified",
    )
    figure.update_yaxes(title_text=y_title, range=[0, y_max if y_max > 0 else 1], rangemode="tozero")
    figure.update_xaxes(range=list(x_range) if x_range else None, automargin=True)
    return figure


def _bucket_text(bucket_s: int) -> str:
    return f"{bucket_s // 60} min" if bucket_s % 60 == 0 else f"{bucket_s} s"


def _count_figure(metrics: Sequence[DeploymentMetrics], palette: Mapping[str, str], bucket_s: int, what: str,
                  count: Callable[[MetricsPoint], int]) -> go.Figure:
    """``what`` per bucket, one line per deployment (mirrors dotted), zero where a bucket was quiet."""
    figure = go.Figure()
    peak = 0
    for m in metrics:
        ys = [count(p) for p in m.series]
        peak = max([peak, *ys])
        figure.add_trace(go.Scatter(
            x=_times(m.series), y=ys, name=_label(m), mode="lines",
            line={"color": palette.get(m.deployment.lower()), "dash": "dot" if m.mirrored else "solid"},
            hovertemplate="%{y:,d} " + what + "<extra>%{fullData.name}</extra>"))
    title = what[0].upper() + what[1:]
    return _layout(figure, f"{title} per {_bucket_text(bucket_s)}", what, peak * 1.1, _x_range(metrics, bucket_s))


def requests_figure(metrics: Sequence[DeploymentMetrics], palette: Mapping[str, str], bucket_s: int) -> go.Figure:
    """Requests per bucket, one line per deployment (mirrors dotted), zero where a bucket was quiet."""
    return _count_figure(metrics, palette, bucket_s, "requests", lambda p: p.requests)


def _live(metrics: Sequence[DeploymentMetrics]) -> list[DeploymentMetrics]:
    # the gateway counts no tokens and no token times for mirrored copies: drawn, they would read as zero
    return [m for m in metrics if not m.mirrored]


def tokens_figure(metrics: Sequence[DeploymentMetrics], palette: Mapping[str, str], bucket_s: int,
                  kind: str) -> go.Figure:
    """Input (the prompts) or output tokens per bucket of live requests, one line per deployment, zero where
    quiet: as the answers' usage says."""
    if kind not in TOKEN_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TOKEN_KINDS)}")
    return _count_figure(_live(metrics), palette, bucket_s, f"{kind} tokens",
                         (lambda p: p.input_tokens) if kind == "input" else (lambda p: p.output_tokens))


def status_figure(metrics: Sequence[DeploymentMetrics], bucket_s: int) -> go.Figure:
    """Live requests (mirrors left out) per bucket by status code, stacked: Studio's 'requests by status'."""
    live = [m for m in metrics if not m.mirrored]
    figure = go.Figure()
    codes = sorted({code for m in live for p in m.series for code in p.status_codes})
    totals: list[int] = []
    if live:
        starts = [p.at for p in live[0].series]
        totals = [0] * len(starts)
        for code in codes:
            ys = [sum(m.series[i].status_codes.get(code, 0) for m in live if i < len(m.series))
                  for i in range(len(starts))]
            totals = [t + y for t, y in zip(totals, ys, strict=True)]
            figure.add_trace(go.Bar(x=[pd.Timestamp(a, unit="s", tz="UTC") for a in starts], y=ys, name=code,
                                    marker_color=STATUS_COLOURS.get(status_class(int(code)), "#7f7f7f"),
                                    hovertemplate="%{y:d} × " + code + "<extra></extra>"))
    figure.update_layout(barmode="stack", bargap=0.1)
    return _layout(figure, f"Requests by status code per {_bucket_text(bucket_s)}", "requests",
                   max(totals, default=0) * 1.1, _x_range(live, bucket_s))


def _ms_figure(metrics: Sequence[DeploymentMetrics], palette: Mapping[str, str], bucket_s: int, title: str,
               attr: str, digits: int = 0) -> go.Figure:
    """One line per deployment of the points' ``attr`` in ms (``digits`` after the point); no point where a
    bucket had nothing to measure."""
    figure = go.Figure()
    peak = 0.0
    for m in metrics:
        ys = [None if (v := getattr(p, attr)) is None else round(v, digits or None) for p in m.series]
        peak = max([peak, *[y for y in ys if y is not None]])
        figure.add_trace(go.Scatter(
            x=_times(m.series), y=ys, name=_label(m), mode="lines+markers", connectgaps=False,
            line={"color": palette.get(m.deployment.lower()), "dash": "dot" if m.mirrored else "solid"},
            marker={"size": 4}, hovertemplate=f"%{{y:,.{digits}f}} ms<extra>%{{fullData.name}}</extra>"))
    figure = _layout(figure, title, "ms", max(peak * 1.1, 10 if digits == 0 else 1), _x_range(metrics, bucket_s))
    return figure.update_yaxes(tickformat=f",.{digits}f")


def latency_figure(metrics: Sequence[DeploymentMetrics], palette: Mapping[str, str], percentile: str,
                   bucket_s: int) -> go.Figure:
    """One line per deployment at the chosen percentile, in whole ms; no point where a bucket had no requests."""
    return _ms_figure(metrics, palette, bucket_s, f"Latency {percentile}", f"{percentile}_ms")


def first_token_figure(metrics: Sequence[DeploymentMetrics], palette: Mapping[str, str], percentile: str,
                       bucket_s: int) -> go.Figure:
    """Time to first token of streamed answers, at the chosen percentile per deployment, in whole ms: from a
    request's arrival at the gateway to its first token leaving it; no point where a bucket streamed nothing."""
    return _ms_figure(_live(metrics), palette, bucket_s, f"Time to first token {percentile}",
                      f"ttft_{percentile}_ms")


def per_token_figure(metrics: Sequence[DeploymentMetrics], palette: Mapping[str, str], percentile: str,
                     bucket_s: int) -> go.Figure:
    """Time per output token after the first, of streamed answers, at the chosen percentile per deployment, in
    ms to a tenth (a small model's tokens come a few ms apart)."""
    return _ms_figure(_live(metrics), palette, bucket_s, f"Time per output token {percentile}",
                      f"tpot_{percentile}_ms", digits=1)


def token_times_caption(metrics: Sequence[DeploymentMetrics]) -> str:
    """What the token times are measured on, and whether this window has any."""
    streamed = any(p.ttft_p50_ms is not None for m in metrics for p in m.series)
    measured = ("Time to first token and per output token are measured by the gateway on streamed answers "
                "(OpenAI routes with stream: true); a whole answer has neither.")
    return measured if streamed else measured + " No answer was streamed in this window."


def _ready(deployment: Deployment) -> int:
    """Ready instances; where the backend lists none (Azure ML, the in-memory one), all of a Succeeded one."""
    if deployment.instances:
        return sum(1 for i in deployment.instances if i.state == "Ready")
    return deployment.instance_count if deployment.provisioning_state == "Succeeded" else 0


def instances_figure(deployments: Sequence[Deployment], palette: Mapping[str, str]) -> go.Figure:
    """Each deployment's instances now: ready ones, and the count asked for."""
    names = [d.name for d in deployments]
    ready = [_ready(d) for d in deployments]
    asked = [d.instance_count for d in deployments]
    figure = go.Figure([
        go.Bar(x=names, y=ready, name="ready", marker_color=[palette.get(n.lower()) for n in names],
               text=ready, textposition="auto", hovertemplate="%{y:d} ready<extra>%{x}</extra>"),
        go.Scatter(x=names, y=asked, name="asked for", mode="markers",
                   marker={"symbol": "line-ew-open", "size": 40, "color": "#333"},
                   hovertemplate="%{y:d} asked for<extra>%{x}</extra>"),
    ])
    figure.update_yaxes(dtick=1)
    return _layout(figure, "Instances now", "instances", max([*asked, *ready, 1]) * 1.2, None)


def _usage_figure(samples: Sequence[ResourceSample], palette: Mapping[str, str], title: str, y_title: str,
                  value: str, window: tuple[float, float]) -> go.Figure:
    figure = go.Figure()
    peak = 0.0
    for deployment in sorted({s.deployment for s in samples}):
        rows = [s for s in samples if s.deployment == deployment]
        ys = [s.cpu_percent if value == "cpu" else s.memory_bytes / 2**20 for s in rows]
        peak = max([peak, *[y for y in ys if y is not None]])
        figure.add_trace(go.Scatter(
            x=[pd.Timestamp(s.at, unit="s", tz="UTC") for s in rows], y=ys, name=deployment, mode="lines+markers",
            line={"color": palette.get(deployment.lower())}, marker={"size": 4},
            hovertemplate="%{y:.0f} " + ("%" if value == "cpu" else "MiB") + "<extra>%{fullData.name}</extra>"))
    x_range = [pd.Timestamp(window[0], unit="s", tz="UTC"), pd.Timestamp(window[1], unit="s", tz="UTC")]
    return _layout(figure, title, y_title, peak * 1.1, x_range)


def cpu_figure(samples: Sequence[ResourceSample], palette: Mapping[str, str],
               window: tuple[float, float]) -> go.Figure:
    """CPU of each deployment's model-server processes (100 % = one core), summed over its instances."""
    return _usage_figure(samples, palette, "CPU (100 % = one core)", "%", "cpu", window)


def memory_figure(samples: Sequence[ResourceSample], palette: Mapping[str, str],
                  window: tuple[float, float]) -> go.Figure:
    """Resident memory of each deployment's model-server processes, summed over its instances."""
    return _usage_figure(samples, palette, "Memory (resident)", "MiB", "memory", window)


def usage_caption(samples: Sequence[ResourceSample]) -> str:
    """How the CPU and memory were read (sampled while the page is open)."""
    if not samples:
        return "No model-server process is running for this endpoint."
    return (f"Sampled from the model-server processes while this page is open ({len(samples)} samples); "
            "each instance counts with its worker processes.")
