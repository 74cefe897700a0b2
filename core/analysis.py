"""Token-rank results → tables and figures for the console (the metrics charts are console/views/monitoring.py).

Pure functions: they take what a deployment answered and give pandas tables, HTML and plotly
figures. Nothing here calls a workspace or Streamlit, so every figure is
tested on its own (tests/test_analysis.py).

Token ranks follow the scoring scripts' definition (DESIGN.md): ``rank`` is
the number of vocabulary entries the model scored strictly higher than the
actual token, so 0 is the model's first choice. Buckets follow GLTR: a token
is in "top 10" when ``rank < 10``, and so on for the adjustable thresholds.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .errors import InvalidInput

DEFAULT_THRESHOLDS: tuple[int, int, int] = (10, 100, 1000)
BUCKET_COLOURS: tuple[str, ...] = ("#b7f0a4", "#fde68a", "#fca5a5", "#d8b4fe")
"""GLTR's green, yellow, red and purple, light enough to read black text on."""
HEATMAP_COLUMNS = 16
LOG_RANK_MAX = 5.0  # log10(rank + 1) of 100,000: beyond any vocabulary we serve

TABLE_COLUMNS = [
    "position", "token", "rank", "ties", "logprob", "prob", "entropy", "start", "end",
    "top_token", "top_prob", "ratio", "log_rank", "bucket", "alternatives",
]


# ------------------------------------------------------------- thresholds


def check_thresholds(thresholds: Sequence[int]) -> tuple[int, int, int]:
    """Three whole numbers, each larger than the one before, the first at least 1."""
    values = tuple(thresholds)
    if len(values) != 3 or any(isinstance(t, bool) or not isinstance(t, int) for t in values):
        raise InvalidInput(f"Bucket thresholds must be three whole numbers, got {values!r}.")
    if values[0] < 1 or not values[0] < values[1] < values[2]:
        raise InvalidInput(
            f"Bucket thresholds {values[0]}, {values[1]}, {values[2]} must grow from left to right "
            "(for example 10, 100, 1000)."
        )
    return values


def bucket_labels(thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> list[str]:
    t1, t2, t3 = check_thresholds(thresholds)
    return [f"top {t1:,}", f"top {t2:,}", f"top {t3:,}", f"beyond {t3:,}"]


def bucket_of(rank: int, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> int:
    """0 for rank < t1, 1 for rank < t2, 2 for rank < t3, else 3."""
    for index, limit in enumerate(thresholds):
        if rank < limit:
            return index
    return len(thresholds)


# ------------------------------------------------------------------ table


def token_table(response: Mapping[str, Any], thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """One row per token of a token-rank answer (``{"token_ranks": [...]}``).

    Only ``token`` and ``rank`` are required (the reference shape); fields a
    deployment does not report are NaN. Adds ``top_token``/``top_prob`` (the
    model's first choice), ``ratio`` = p(actual) / p(top), ``log_rank`` =
    log10(rank + 1), the bucket and the alternatives as text.
    """
    thresholds = check_thresholds(thresholds)
    items = response.get("token_ranks") if isinstance(response, Mapping) else None
    if not isinstance(items, list):
        raise InvalidInput(
            "The answer has no 'token_ranks' list: is this a token-rank deployment?",
            hint="Choose a deployment whose scoring script is token_ranks.py.",
        )
    rows = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping) or "token" not in item or "rank" not in item:
            raise InvalidInput(f"Token {position} of the answer has no 'token' and 'rank'.")
        rank = int(item["rank"])
        prob = _number(item.get("prob"))
        logprob = _number(item.get("logprob"))
        if math.isnan(prob) and not math.isnan(logprob):
            prob = math.exp(logprob)
        top_k = [a for a in item.get("top_k") or [] if isinstance(a, Mapping) and "token" in a]
        if rank == 0:
            top_token, top_prob = str(item["token"]), prob
        elif top_k:
            top_token, top_prob = str(top_k[0]["token"]), _number(top_k[0].get("prob"))
        else:
            top_token, top_prob = None, math.nan
        ratio = prob / top_prob if top_prob and not math.isnan(top_prob) else math.nan
        rows.append(
            {
                "position": position,
                "token": str(item["token"]),
                "rank": rank,
                "ties": int(item.get("ties") or 0),
                "logprob": logprob,
                "prob": prob,
                "entropy": _number(item.get("entropy")),
                "start": item.get("start"),
                "end": item.get("end"),
                "top_token": top_token,
                "top_prob": top_prob,
                "ratio": min(ratio, 1.0) if not math.isnan(ratio) else ratio,
                "log_rank": math.log10(rank + 1),
                "bucket": bucket_of(rank, thresholds),
                "alternatives": "; ".join(f"{a['token']!r} {_number(a.get('prob')):.3f}" for a in top_k),
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def rebucket(table: pd.DataFrame, thresholds: Sequence[int]) -> pd.DataFrame:
    """The same table with buckets for other thresholds (no new request needed)."""
    thresholds = check_thresholds(thresholds)
    out = table.copy()
    out["bucket"] = [bucket_of(int(r), thresholds) for r in out["rank"]]
    return out


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ---------------------------------------------------------------- summary


@dataclass
class RankSummary:
    tokens: int
    perplexity: float | None  # exp(-mean log p(actual)); None when log-probabilities are missing
    mean_log_rank: float | None  # mean of ln(rank + 1)
    median_rank: float | None
    mean_entropy: float | None
    shares: dict[str, float]  # bucket label → share of tokens (0..1)

    @property
    def share_top(self) -> float:
        """Share of tokens in the first bucket (top 10 by default)."""
        return next(iter(self.shares.values()), 0.0)


def summarize(table: pd.DataFrame, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> RankSummary:
    labels = bucket_labels(thresholds)
    n = len(table)
    if n == 0:
        return RankSummary(0, None, None, None, None, dict.fromkeys(labels, 0.0))
    buckets = [bucket_of(int(r), thresholds) for r in table["rank"]]
    shares = {label: buckets.count(i) / n for i, label in enumerate(labels)}
    logprob = table["logprob"].dropna()
    entropy = table["entropy"].dropna()
    return RankSummary(
        tokens=n,
        perplexity=float(math.exp(-logprob.mean())) if len(logprob) else None,
        mean_log_rank=float(sum(math.log(int(r) + 1) for r in table["rank"]) / n),
        median_rank=float(table["rank"].median()),
        mean_entropy=float(entropy.mean()) if len(entropy) else None,
        shares=shares,
    )


# -------------------------------------------------------- coloured tokens


def hover_text(row: Mapping[str, Any], separator: str = "\n") -> str:
    """What a reader sees when pointing at a token: rank, probability, entropy, ties, alternatives."""
    ties = f" ({int(row['ties'])} ties)" if row["ties"] else " (no ties)"
    lines = [f"{_visible(row['token'])}", f"rank {int(row['rank']):,}{ties}"]
    figures = []
    if not _isnan(row["prob"]):
        figures.append(f"p = {row['prob']:.4g}")
    if not _isnan(row["entropy"]):
        figures.append(f"entropy {row['entropy']:.2f}")
    if figures:
        lines.append(" · ".join(figures))
    if row["alternatives"]:
        lines.append(f"top: {row['alternatives']}")
    return separator.join(lines)


def token_html(
    table: pd.DataFrame, thresholds: Sequence[int] = DEFAULT_THRESHOLDS, text: str | None = None
) -> str:
    """The text with each token's background coloured by its bucket and its figures on hover.

    With the original ``text`` and character offsets, the text is shown
    exactly as written (spaces and line breaks between tokens kept);
    otherwise the tokens are joined as the model saw them.
    """
    thresholds = check_thresholds(thresholds)
    offsets_known = len(table) > 0 and table["start"].notna().all() and table["end"].notna().all()
    source = text if text is not None and offsets_known else None
    parts = ['<div class="byom-tokens" style="white-space:pre-wrap;line-height:1.9;font-size:0.95rem">']
    cursor = 0
    for row in table.to_dict("records"):
        if source is not None:
            start, end = int(row["start"]), int(row["end"])
            if start > cursor:
                parts.append(html.escape(source[cursor:start]))
            shown = source[max(start, cursor):end]
            cursor = max(cursor, end)
        else:
            shown = row["token"]
        bucket = bucket_of(int(row["rank"]), thresholds)
        parts.append(
            f'<span class="byom-token" data-rank="{int(row["rank"])}" data-bucket="{bucket}" '
            f'style="background:{BUCKET_COLOURS[bucket]};color:#111" '
            f'title="{html.escape(hover_text(row), quote=True)}">{html.escape(shown)}</span>'
        )
    if source is not None and cursor < len(source):
        parts.append(html.escape(source[cursor:]))
    parts.append("</div>")
    return "".join(parts)


def legend_html(thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> str:
    chips = [
        f'<span style="background:{colour};color:#111;border-radius:3px;padding:2px 8px;margin-right:6px">'
        f"{html.escape(label)}</span>"
        for colour, label in zip(BUCKET_COLOURS, bucket_labels(thresholds), strict=True)
    ]
    return '<div class="byom-legend" style="font-size:0.85rem">' + "".join(chips) + "</div>"


# ----------------------------------------------------------------- figures


def _grid(values: Sequence[Any], columns: int, fill: Any) -> list[list[Any]]:
    rows = max(1, math.ceil(len(values) / columns))
    padded = list(values) + [fill] * (rows * columns - len(values))
    return [padded[r * columns:(r + 1) * columns] for r in range(rows)]


def heatmap_layout(n_tokens: int, columns: int = HEATMAP_COLUMNS) -> tuple[int, int]:
    """(rows, columns) of the token grid: tokens fill rows left to right, top to bottom."""
    columns = max(1, columns)
    return max(1, math.ceil(n_tokens / columns)), columns


def _cell_label(token: str) -> str:
    return html.escape(_visible(token).strip() or "␣")


def rank_heatmap(
    table: pd.DataFrame, columns: int = HEATMAP_COLUMNS, title: str = "Token ranks",
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
) -> go.Figure:
    """Tokens in reading order on a grid; colour = log10(rank + 1); hover as on the coloured text."""
    rows, columns = heatmap_layout(len(table), columns)
    records = table.to_dict("records")
    z = _grid([r["log_rank"] for r in records], columns, None)
    labels = _grid([_cell_label(r["token"]) for r in records], columns, "")
    hover = _grid([html.escape(hover_text(r)).replace("\n", "<br>") for r in records], columns, "")
    figure = go.Figure(
        go.Heatmap(
            z=z, text=labels, customdata=hover, texttemplate="%{text}", textfont={"size": 11},
            hovertemplate="%{customdata}<extra></extra>", colorscale=log_rank_scale(thresholds),
            zmin=0, zmax=LOG_RANK_MAX,
            xgap=2, ygap=2,
            colorbar={"title": {"text": "rank"}, "tickvals": [0, 1, 2, 3, 4, 5],
                      "ticktext": ["0", "9", "99", "999", "9,999", "99,999"]},
        )
    )
    figure.update_layout(
        title=title, height=max(260, 90 + 30 * rows), margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"visible": False}, yaxis={"visible": False, "autorange": "reversed"},
    )
    return figure


BUCKET_SHADES: tuple[tuple[str, str], ...] = (
    ("#dcf8d2", "#92dc7e"), ("#fff3b8", "#f4cf4f"), ("#fdd0d0", "#ef8585"), ("#eedcff", "#7c3aed"),
)
"""Each bucket's colour from its lowest to its highest log-rank, in the heatmap."""


def log_rank_scale(thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> list[list[Any]]:
    """A plotly colour scale over log10(rank + 1) in [0, LOG_RANK_MAX] whose steps fall on the thresholds.

    Within a bucket the colour darkens with the rank; across a threshold it
    changes hue, so that the heatmap and the coloured text agree.
    """
    # Rank t - 1 (the last of a bucket) sits at log10(t), rank t at log10(t + 1): step between them.
    bounds = [0.0] + [min(1.0, math.log10(t + 0.5) / LOG_RANK_MAX) for t in check_thresholds(thresholds)] + [1.0]
    scale: list[list[Any]] = []
    for (low, high), (light, dark) in zip(zip(bounds, bounds[1:], strict=False), BUCKET_SHADES, strict=True):
        scale += [[low, light], [high, dark]]
    return scale


def bucket_histogram(table: pd.DataFrame, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> go.Figure:
    labels = bucket_labels(thresholds)
    counts = [0] * 4
    for rank in table["rank"]:
        counts[bucket_of(int(rank), thresholds)] += 1
    figure = go.Figure(go.Bar(x=labels, y=counts, marker_color=list(BUCKET_COLOURS), text=counts,
                              hovertemplate="%{x}: %{y} tokens<extra></extra>"))
    figure.update_layout(title="Tokens per rank bucket", yaxis_title="tokens", **_SMALL)
    return figure


def ratio_histogram(table: pd.DataFrame) -> go.Figure:
    """How far each token's probability is below the model's first choice (1 = it was the first choice)."""
    return _histogram(table["ratio"], "p(actual) / p(top)", "p(actual) / p(top)", (0.0, 1.0))


def entropy_histogram(table: pd.DataFrame) -> go.Figure:
    return _histogram(table["entropy"], "Entropy of the next-token distribution", "entropy", None)


def _histogram(values: pd.Series, title: str, axis: str, x_range: tuple[float, float] | None) -> go.Figure:
    present = values.dropna()
    figure = go.Figure()
    if len(present):
        bins = {"start": x_range[0], "end": x_range[1], "size": (x_range[1] - x_range[0]) / 20} if x_range else None
        figure.add_trace(go.Histogram(x=present, xbins=bins, marker_color="#7c9cbf"))
    else:
        figure.add_annotation(text="Not reported by this deployment", showarrow=False, x=0.5, y=0.5,
                              xref="paper", yref="paper")
    figure.update_layout(title=title, xaxis_title=axis, yaxis_title="tokens", **_SMALL)
    return figure


_SMALL: dict[str, Any] = {"height": 300, "margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "showlegend": False}


def summary_table(summaries: Mapping[str, RankSummary]) -> pd.DataFrame:
    """One row per analysed deployment: the figures a reader compares."""
    rows = []
    for name, s in summaries.items():
        rows.append({
            "deployment": name, "tokens": s.tokens, "perplexity": s.perplexity,
            "mean log-rank": s.mean_log_rank, "median rank": s.median_rank,
            f"share {next(iter(s.shares), 'top')}": s.share_top, "mean entropy": s.mean_entropy,
        })
    return pd.DataFrame(rows)


def summary_figure(summaries: Mapping[str, RankSummary]) -> go.Figure:
    """Perplexity, mean log-rank and share in the first bucket, one bar per deployment."""
    names = list(summaries)
    first = next(iter(next(iter(summaries.values())).shares), "top 10") if summaries else "top 10"
    figure = make_subplots(rows=1, cols=3, subplot_titles=("Perplexity", "Mean log-rank", f"Share in {first}"))
    panels: list[list[float | None]] = [
        [s.perplexity for s in summaries.values()],
        [s.mean_log_rank for s in summaries.values()],
        [100 * s.share_top for s in summaries.values()],
    ]
    for col, values in enumerate(panels, start=1):
        figure.add_trace(go.Bar(x=names, y=values, marker_color="#7c9cbf", text=[_fmt(v) for v in values]),
                         row=1, col=col)
    figure.update_yaxes(title_text="%", row=1, col=3, range=[0, 100])
    figure.update_layout(**_SMALL)
    return figure


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


# -------------------------------------------------------------- comparison


def compare(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Pair the tokens of two analyses of one text; ``delta`` = log-rank of b minus a.

    Tokens are paired by character offsets when both carry them (two
    tokenizers may split a text differently: unpaired tokens are left out),
    otherwise by position where the token text is equal.
    """
    cols = ["token", "rank", "log_rank", "start", "end"]
    left, right = a[cols + ["position"]], b[cols + ["position"]]
    if a["start"].notna().all() and b["start"].notna().all() and len(a) and len(b):
        merged = left.merge(right, on=["start", "end"], suffixes=("_a", "_b"))
        merged = merged.rename(columns={"token_a": "token"}).drop(columns=["token_b"])
    else:
        merged = left.merge(right, on="position", suffixes=("_a", "_b"))
        merged = merged[merged["token_a"] == merged["token_b"]].rename(columns={"token_a": "token"})
        merged = merged.drop(columns=["token_b", "start_b", "end_b"])
        merged = merged.rename(columns={"start_a": "start", "end_a": "end"})
    merged = merged.reset_index(drop=True)
    merged["delta"] = merged["log_rank_b"] - merged["log_rank_a"]
    return merged[["token", "start", "end", "rank_a", "rank_b", "log_rank_a", "log_rank_b", "delta"]]


def diff_heatmap(diff: pd.DataFrame, label_a: str, label_b: str, columns: int = HEATMAP_COLUMNS) -> go.Figure:
    """Tokens on the same grid as ``rank_heatmap``; blue where b ranks the token better, red where worse."""
    rows, columns = heatmap_layout(len(diff), columns)
    records = diff.to_dict("records")
    z = _grid([r["delta"] for r in records], columns, None)
    labels = _grid([_cell_label(r["token"]) for r in records], columns, "")
    hover = _grid(
        [f"{html.escape(_visible(r['token']))}<br>{html.escape(label_a)}: rank {int(r['rank_a']):,}"
         f"<br>{html.escape(label_b)}: rank {int(r['rank_b']):,}<br>Δ log10 = {r['delta']:+.2f}" for r in records],
        columns, "",
    )
    limit = max(1.0, float(diff["delta"].abs().max())) if len(diff) else 1.0
    figure = go.Figure(
        go.Heatmap(
            z=z, text=labels, customdata=hover, texttemplate="%{text}", textfont={"size": 11},
            hovertemplate="%{customdata}<extra></extra>", colorscale="RdBu_r", zmid=0, zmin=-limit, zmax=limit,
            xgap=2, ygap=2, colorbar={"title": {"text": "Δ log rank"}},
        )
    )
    figure.update_layout(
        title=f"{label_b} vs {label_a}: change in log-rank", height=max(260, 90 + 30 * rows),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"visible": False}, yaxis={"visible": False, "autorange": "reversed"},
    )
    return figure


# ------------------------------------------------------------------ export


def to_csv(table: pd.DataFrame) -> str:
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    return buffer.getvalue()


def to_json(
    tables: Mapping[str, pd.DataFrame], thresholds: Sequence[int] = DEFAULT_THRESHOLDS, text: str | None = None
) -> str:
    """Every analysed deployment's tokens and summary, as one JSON document."""
    thresholds = check_thresholds(thresholds)
    doc: dict[str, Any] = {"thresholds": list(thresholds), "text": text, "deployments": {}}
    for name, table in tables.items():
        doc["deployments"][name] = {
            "summary": asdict(summarize(table, thresholds)),
            "token_ranks": [
                {k: (None if _isnan(v) else v) for k, v in row.items()}
                for row in table.drop(columns=["alternatives"]).to_dict("records")
            ],
        }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _visible(token: str) -> str:
    return str(token).replace("\n", "\\n").replace("\t", "\\t")
