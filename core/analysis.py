"""Token-rank results → tables and figures for the console (the metrics charts are console/views/monitoring.py).

Pure functions: they take what a deployment answered and give pandas tables, HTML and plotly
figures. Nothing here calls a workspace or Streamlit, so every figure is
tested on its own (tests/test_analysis.py).

Token ranks follow the scoring scripts' definition (DESIGN.md): ``rank`` is
the number of vocabulary entries the model scored strictly higher than the
actual token, so 0 is the model's first choice. Buckets follow GLTR: a token
is in "top 10" when ``rank < 10``, and so on for the adjustable thresholds.
Colours follow GLTR too, with one more tier: the model's first choice
(rank 0) in a saturated green, the rest of the first bucket in a light one.
The coloured text, its legend, the heatmap and its colour bar use the same
tiers, so that a colour means one thing on the whole page and in the exports.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .errors import InvalidInput

DEFAULT_THRESHOLDS: tuple[int, int, int] = (10, 100, 1000)
BUCKET_COLOURS: tuple[str, ...] = ("#b7f0a4", "#fde68a", "#fca5a5", "#d8b4fe")
"""GLTR's green, yellow, red and purple, light enough to read black text on."""
FIRST_CHOICE_COLOUR = "#34c759"
"""Rank 0, the model's first choice: saturated, and still dark text on it (contrast 8:1)."""
TIER_COLOURS: tuple[str, ...] = (FIRST_CHOICE_COLOUR, *BUCKET_COLOURS)
COMPARE_COLOURS: tuple[str, ...] = ("#4c78a8", "#f58518")
"""The first and second deployment in overlaid charts."""
HEATMAP_WIDTH = 90
"""Characters per row of the heatmap: tokens are laid out as text, wrapping whole."""
LOG_RANK_MAX = 5.0  # log10(rank + 1) of 100,000: beyond any vocabulary we serve
LOG_RANK_MIN = -0.5
"""Where the colour bar starts, below rank 0's log10(1) = 0, so that the first-choice band is wide enough to see."""
MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace"

TABLE_COLUMNS = [
    "position", "token", "rank", "ties", "logprob", "prob", "entropy", "start", "end",
    "top_token", "top_prob", "ratio", "log_rank", "bucket", "alternatives", "top_k",
]
"""``top_k`` holds the alternatives as (token, probability) pairs; ``alternatives`` the same as text."""


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


def tier_of(rank: int, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> int:
    """The colour tier: 0 for the first choice (rank 0), else 1 + its bucket."""
    return 0 if rank == 0 else 1 + bucket_of(rank, thresholds)


def legend(thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> list[tuple[str, str]]:
    """(colour, label) of each tier a token can fall in, first choice first."""
    t1 = check_thresholds(thresholds)[0]
    tiers = list(zip(TIER_COLOURS, ["top 1", *bucket_labels(thresholds)], strict=True))
    return tiers if t1 > 1 else [tiers[0], *tiers[2:]]  # "green below rank 1": the first choice alone


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
        pairs = [(str(a["token"]), _number(a.get("prob"))) for a in top_k]
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
                "alternatives": "; ".join(f"{token!r} {prob:.3f}" for token, prob in pairs),
                "top_k": pairs,
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


# ------------------------------------------------------- what a token says


def shown(token: str) -> str:
    """A token as a reader can see it: spaces as ␣, line breaks as ↵, tabs as ⇥."""
    return str(token).replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")


def cell_label(token: str) -> str:
    """A token's label in the heatmap: its text without the spaces around it, or ␣ ↵ ⇥ when it is only those."""
    text = str(token).replace("\n", "↵").replace("\t", "⇥")
    return text.strip(" ") or "␣" * min(3, max(1, len(text)))


def text_bar(prob: float, cells: int = 10) -> str:
    """A probability as a bar of block characters (to an eighth of a cell), padded with light shade."""
    eighths = 0 if _isnan(prob) else round(max(0.0, min(1.0, prob)) * cells * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")
    return bar + "░" * (cells - len(bar))


def _rank_line(row: Mapping[str, Any]) -> str:
    rank, ties = int(row["rank"]), int(row["ties"])
    tied = f", {ties:,} tied" if ties else ""
    return f"rank {rank:,}: the model's first choice{tied}" if rank == 0 else f"rank {rank:,}{tied}"


def _figures_line(row: Mapping[str, Any]) -> str:
    figures = []
    if not _isnan(row["prob"]):
        figures.append(f"p = {row['prob']:.4g}")
    if not _isnan(row["entropy"]):
        figures.append(f"entropy {row['entropy']:.2f} nats")
    return " · ".join(figures)


def _alternatives(row: Mapping[str, Any]) -> list[tuple[str, float, bool]]:
    """The model's top predictions at this position: (token, probability, is it the token the text has)."""
    pairs = row.get("top_k")
    if not isinstance(pairs, list):
        return []
    return [(token, prob, token == row["token"]) for token, prob in pairs]


def hover_html(row: Mapping[str, Any]) -> str:
    """A heatmap cell's hover (plotly's markup): the token, rank, probability, entropy, top predictions as bars."""
    lines = [f"<b>{html.escape(shown(row['token']))}</b>   {_rank_line(row)}"]
    if figures := _figures_line(row):
        lines.append(figures)
    alternatives = _alternatives(row)
    if alternatives:
        lines.append(f"top {len(alternatives)} predictions:")
    for token, prob, actual in alternatives:
        line = f"{text_bar(prob)} {prob:6.1%}  {html.escape(shown(token))}"
        lines.append(f"<b>{line}  ◀ the text</b>" if actual else line)
    return "<br>".join(lines)


def tip_html(row: Mapping[str, Any]) -> str:
    """The box shown when pointing at a token of the coloured text: as :func:`hover_html`, with real bars."""
    parts = [
        f'<span class="byom-tip" role="tooltip"><span class="byom-tip-head"><b>{html.escape(shown(row["token"]))}'
        f"</b> {html.escape(_rank_line(row))}</span>"
    ]
    if figures := _figures_line(row):
        parts.append(f'<span class="byom-tip-line">{html.escape(figures)}</span>')
    alternatives = _alternatives(row)
    if alternatives:
        parts.append(f'<span class="byom-tip-line">top {len(alternatives)} predictions</span>')
    for token, prob, actual in alternatives:
        width = 0.0 if _isnan(prob) else max(0.0, min(100.0, 100 * prob))
        parts.append(
            f'<span class="byom-alt{" byom-actual" if actual else ""}"><span class="byom-alt-token">'
            f'{html.escape(shown(token))}</span><span class="byom-bar"><i style="width:{width:.1f}%"></i></span>'
            f'<span class="byom-alt-p">{prob:.1%}</span></span>'
        )
    parts.append("</span>")
    return "".join(parts)


# -------------------------------------------------------- coloured tokens

TOKENS_CSS = (
    ".byom-tokens{white-space:pre-wrap;line-height:1.9;font-size:0.95rem;position:relative}"
    ".byom-token{color:#111;border-radius:2px;cursor:default}"
    ".byom-token:hover,.byom-token:focus{outline:2px solid #1f2937;outline-offset:0}"
    '.byom-token[data-nl]::before{content:"↵";opacity:.45}'
    ".byom-tip{display:none}"
    ".byom-token:hover+.byom-tip,.byom-token:focus+.byom-tip{display:inline-block;position:absolute;z-index:50;"
    "margin:1.9em 0 0 -3em;width:17rem;white-space:normal;background:#fff;color:#111;border:1px solid #d0d4dc;"
    "border-radius:6px;box-shadow:0 4px 14px rgba(0,0,0,.18);padding:6px 10px;font-size:.8rem;line-height:1.4;"
    "pointer-events:none}"
    ".byom-tip-head,.byom-tip-line{display:block}.byom-tip-line{color:#555}"
    ".byom-alt{display:grid;grid-template-columns:6rem 1fr 3.2rem;gap:6px;align-items:center;font-family:"
    "ui-monospace,Menlo,Consolas,monospace;font-size:.75rem}"
    ".byom-alt-token{overflow:hidden;text-overflow:ellipsis;white-space:pre}.byom-alt-p{text-align:right}"
    ".byom-bar{height:.65rem;background:#eef0f4;border-radius:2px}"
    ".byom-bar i{display:block;height:100%;background:#7c9cbf;border-radius:2px}"
    f".byom-actual{{font-weight:700}}.byom-actual .byom-bar i{{background:{FIRST_CHOICE_COLOUR}}}"
)
"""The coloured text's look and its hover box (plain CSS: Streamlit's st.html keeps a <style> and runs no script)."""


def token_html(
    table: pd.DataFrame, thresholds: Sequence[int] = DEFAULT_THRESHOLDS, text: str | None = None
) -> str:
    """The text with each token's background coloured by its tier and a box of its figures on hover.

    With the original ``text`` and character offsets, the text is shown
    exactly as written (spaces and line breaks between tokens kept);
    otherwise the tokens are joined as the model saw them. The hover box
    follows its token (a sibling, so that a token's text is only its text).
    """
    thresholds = check_thresholds(thresholds)
    offsets_known = len(table) > 0 and table["start"].notna().all() and table["end"].notna().all()
    source = text if text is not None and offsets_known else None
    parts = [f"<style>{TOKENS_CSS}</style>", '<div class="byom-tokens">']
    cursor = 0
    for row in table.to_dict("records"):
        if source is not None:
            start, end = int(row["start"]), int(row["end"])
            if start > cursor:
                parts.append(html.escape(source[cursor:start]))
            piece = source[max(start, cursor):end]
            cursor = max(cursor, end)
        else:
            piece = row["token"]
        rank = int(row["rank"])
        tier = tier_of(rank, thresholds)
        newline = " data-nl" if "\n" in piece else ""
        parts.append(
            f'<span class="byom-token" tabindex="0" data-rank="{rank}" data-bucket="{bucket_of(rank, thresholds)}" '
            f'data-tier="{tier}"{newline} style="background:{TIER_COLOURS[tier]}">{html.escape(piece)}</span>'
            f"{tip_html(row)}"
        )
    if source is not None and cursor < len(source):
        parts.append(html.escape(source[cursor:]))
    parts.append("</div>")
    return "".join(parts)


def legend_html(thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> str:
    chips = [
        f'<span class="byom-chip" style="background:{colour};color:#111;border-radius:3px;padding:2px 8px;'
        f'margin-right:6px">{html.escape(label)}</span>'
        for colour, label in legend(thresholds)
    ]
    hint = ('<span style="color:#666;margin-left:6px">Point at a token for its rank, probability, entropy '
            "and the model's top predictions.</span>")
    return '<div class="byom-legend" style="font-size:0.85rem">' + "".join(chips) + hint + "</div>"


# ----------------------------------------------------------------- heatmaps


def flow_layout(labels: Sequence[str], breaks: Sequence[bool], width: int = HEATMAP_WIDTH) -> list[tuple[int, int]]:
    """(row, column) where each label starts when the labels are set as text ``width`` characters wide.

    A label that does not fit in what is left of a row starts the next one
    (tokens wrap whole); after a label whose token holds a line break, the
    next starts a new row, as in the text.
    """
    places: list[tuple[int, int]] = []
    row = column = 0
    for label, line_break in zip(labels, breaks, strict=True):
        size = min(len(label), width)
        if column and column + size > width:
            row, column = row + 1, 0
        places.append((row, column))
        column += size + 1
        if line_break:
            row, column = row + 1, 0
    return places


def _flow_figure(
    tokens: Sequence[str], hover: Sequence[str], marker: dict[str, Any], title: str, width: int,
    label_colour: str | list[str] = "#111",
) -> go.Figure:
    """Tokens as coloured boxes set as text; ``marker`` colours them (values, colour scale, colour bar)."""
    labels = [cell_label(t) for t in tokens]
    labels = [label if len(label) <= width else label[:width - 1] + "…" for label in labels]
    places = flow_layout(labels, ["\n" in str(t) for t in tokens], width)
    rows = places[-1][0] + 1 if places else 1
    height = max(240, 110 + 26 * rows)
    marker["colorbar"] = {**marker.get("colorbar", {}), "lenmode": "pixels", "len": min(240, height - 110),
                          "y": 1, "yanchor": "top"}
    # The labels are a text trace over the boxes: plotly fits each bar's own text to its bar, a measure per
    # token that made a 2,000-token heatmap redraw several times slower.
    figure = go.Figure([
        go.Bar(
            orientation="h", y=[r for r, _ in places], base=[c for _, c in places],
            x=[len(label) + 0.7 for label in labels], width=0.84, marker={**marker, "line": {"width": 0}},
            customdata=list(hover), hovertemplate="%{customdata}<extra></extra>",
            hoverlabel={"font": {"family": MONO, "size": 12}, "align": "left", "bgcolor": "white"},
        ),
        go.Scatter(
            x=[c + (len(label) + 0.7) / 2 for label, (_, c) in zip(labels, places, strict=True)],
            y=[r for r, _ in places], text=labels, mode="text", hoverinfo="skip",
            textfont={"family": MONO, "size": 12, "color": label_colour},
        ),
    ])
    figure.update_layout(
        title={"text": title}, height=height, margin={"l": 10, "r": 10, "t": 70, "b": 10}, bargap=0,
        plot_bgcolor="white", showlegend=False,
        xaxis={"visible": False, "range": [-0.3, width + 0.5], "fixedrange": True},
        yaxis={"visible": False, "range": [rows - 0.5, -0.5], "fixedrange": True},
    )
    return figure


def tier_bounds(thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> list[float]:
    """Where each tier ends on the colour axis, log10(rank + 1): between rank t - 1 and t, at log10(t + 0.5)."""
    return [math.log10(1.5), *(math.log10(t + 0.5) for t in check_thresholds(thresholds))]


def log_rank_scale(thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> list[list[Any]]:
    """A plotly colour scale over [LOG_RANK_MIN, LOG_RANK_MAX]: one flat band per tier, the legend's colours."""
    span = LOG_RANK_MAX - LOG_RANK_MIN
    stops = [0.0, *(min(1.0, (b - LOG_RANK_MIN) / span) for b in tier_bounds(thresholds)), 1.0]
    scale: list[list[Any]] = []
    for low, high, colour in zip(stops[:-1], stops[1:], TIER_COLOURS, strict=True):
        scale += [[low, colour], [high, colour]]
    return scale


def colour_bar_ticks(thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> tuple[list[float], list[str]]:
    """Ticks on the tiers' bounds labelled as the legend: 1, 10, 100, 1,000 for the default thresholds."""
    values: list[float] = []
    labels: list[str] = []
    for bound, limit in zip(tier_bounds(thresholds), (1, *check_thresholds(thresholds)), strict=True):
        if not labels or labels[-1] != f"{limit:,}":
            values.append(bound)
            labels.append(f"{limit:,}")
    return values, labels


def rank_heatmap(
    table: pd.DataFrame, title: str = "Token ranks", thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
    width: int = HEATMAP_WIDTH,
) -> go.Figure:
    """Tokens set as text, each coloured by its tier (log10(rank + 1) on the colour bar); the rich hover."""
    records = table.to_dict("records")
    tickvals, ticktext = colour_bar_ticks(thresholds)
    marker = {
        "color": [r["log_rank"] for r in records], "colorscale": log_rank_scale(thresholds),
        "cmin": LOG_RANK_MIN, "cmax": LOG_RANK_MAX, "showscale": True,
        "colorbar": {"title": {"text": "rank"}, "tickvals": tickvals, "ticktext": ticktext, "ticks": "outside"},
    }
    return _flow_figure([r["token"] for r in records], [hover_html(r) for r in records], marker, title, width)


# ---------------------------------------------------------------- histograms

_BAR_LABELS: dict[str, Any] = {"textposition": "outside", "textangle": 0, "cliponaxis": False}
"""Counts above their bars, always upright (inside a thin bar plotly turns them: an 8 read as ∞)."""


def _count_axis(top: float, title: str) -> dict[str, Any]:
    """A y axis from 0 with whole-number ticks and room above the tallest bar for its label."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10**4, 10**5, 10**6, 10**9)
                if s * 5 >= top)
    return {"title": {"text": title}, "range": [0, max(top, 1) * 1.2], "dtick": step, "tickformat": ",d"}


def _colour(index: int, count: int, single: Any) -> Any:
    return single if count == 1 else COMPARE_COLOURS[index % len(COMPARE_COLOURS)]


def bucket_histogram(tables: Mapping[str, pd.DataFrame], thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> go.Figure:
    """Tokens per bucket; the deployments' bars side by side when comparing."""
    labels = bucket_labels(thresholds)
    figure = go.Figure()
    top = 0
    for index, (name, table) in enumerate(tables.items()):
        counts = [0] * len(labels)
        for rank in table["rank"]:
            counts[bucket_of(int(rank), thresholds)] += 1
        top = max(top, *counts)
        shares = [100 * c / max(1, len(table)) for c in counts]
        figure.add_trace(go.Bar(
            x=labels, y=counts, name=name, marker_color=_colour(index, len(tables), list(BUCKET_COLOURS)),
            text=[f"{c:,}" for c in counts], customdata=shares, **_BAR_LABELS,
            hovertemplate="%{fullData.name} · %{x}: %{y:,} tokens (%{customdata:.0f} %)<extra></extra>",
        ))
    figure.update_layout(title="Tokens per rank bucket", barmode="group", yaxis=_count_axis(top, "tokens"),
                         **_small(len(tables)))
    return figure


def ratio_histogram(tables: Mapping[str, pd.DataFrame]) -> go.Figure:
    """How far each token's probability is below the model's first choice (1 = it was the first choice)."""
    return _histogram({n: t["ratio"] for n, t in tables.items()}, "p(actual) / p(top)", "p(actual) / p(top)",
                      (0.0, 1.0))


def entropy_histogram(tables: Mapping[str, pd.DataFrame]) -> go.Figure:
    return _histogram({n: t["entropy"] for n, t in tables.items()}, "Entropy of the next-token distribution",
                      "entropy (nats)", None)


def _histogram(
    series: Mapping[str, pd.Series], title: str, axis: str, x_range: tuple[float, float] | None
) -> go.Figure:
    """One histogram per deployment, overlaid on the same bins so that their shapes compare."""
    present = {name: values.dropna() for name, values in series.items()}
    present = {name: values for name, values in present.items() if len(values)}
    figure = go.Figure()
    missing = [name for name in series if name not in present]
    if present:
        low, high = x_range or (min(float(v.min()) for v in present.values()),
                                max(float(v.max()) for v in present.values()))
        high = high if high > low else low + 1.0
        bins = {"start": low, "end": high + (high - low) / 1000, "size": (high - low) / 20}
        for index, (name, values) in enumerate(present.items()):
            figure.add_trace(go.Histogram(
                x=values, xbins=bins, name=name, marker_color=_colour(index, len(present), "#7c9cbf"),
                opacity=0.6 if len(present) > 1 else 1.0,
                hovertemplate="%{fullData.name}: %{y:,} tokens at %{x}<extra></extra>",
            ))
    if missing:
        figure.add_annotation(text=f"Not reported by {', '.join(missing)}" if present else
                              "Not reported by this deployment", showarrow=False, x=0.5, y=0.5,
                              xref="paper", yref="paper")
    figure.update_layout(title=title, xaxis_title=axis, yaxis={"title": {"text": "tokens"}, "rangemode": "tozero"},
                         barmode="overlay", **_small(len(series)))
    return figure


def _small(deployments: int) -> dict[str, Any]:
    return {"height": 300, "margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "showlegend": deployments > 1,
            "legend": {"orientation": "h", "y": -0.25}}


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
    """Perplexity, mean log-rank and share in the first bucket, one bar per deployment, labels upright."""
    names = list(summaries)
    first = next(iter(next(iter(summaries.values())).shares), "top 10") if summaries else "top 10"
    figure = make_subplots(rows=1, cols=3, subplot_titles=("Perplexity", "Mean log-rank", f"Share in {first}"))
    panels: list[list[float | None]] = [
        [s.perplexity for s in summaries.values()],
        [s.mean_log_rank for s in summaries.values()],
        [100 * s.share_top for s in summaries.values()],
    ]
    colours = [_colour(i, len(names), "#7c9cbf") for i in range(len(names))]
    for col, values in enumerate(panels, start=1):
        figure.add_trace(go.Bar(x=names, y=values, marker_color=colours, text=[_fmt(v) for v in values],
                                **_BAR_LABELS), row=1, col=col)
        top = max((v for v in values if v is not None), default=1.0)
        figure.update_yaxes(range=[0, (top or 1.0) * 1.25], row=1, col=col)
    figure.update_yaxes(title_text="%", row=1, col=3, range=[0, 115], tickvals=[0, 25, 50, 75, 100])
    figure.update_layout(**_small(1))
    return figure


def headline(summary: RankSummary, thresholds: Sequence[int] = DEFAULT_THRESHOLDS) -> list[tuple[str, str]]:
    """The figures above a deployment's text, and in its exports: (label, value)."""
    return [
        ("Tokens", f"{summary.tokens:,}"),
        ("Perplexity", f"{summary.perplexity:,.1f}" if summary.perplexity else "n/a"),
        ("Mean log-rank", f"{summary.mean_log_rank:.2f}" if summary.mean_log_rank is not None else "n/a"),
        (f"In {bucket_labels(thresholds)[0]}", f"{100 * summary.share_top:.0f} %"),
    ]


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


def identical(diff: pd.DataFrame, unpaired: int = 0) -> bool:
    """Every token paired and ranked the same by both deployments."""
    return len(diff) > 0 and unpaired == 0 and bool((diff["rank_a"] == diff["rank_b"]).all())


def diff_verdict(diff: pd.DataFrame, label_a: str, label_b: str, unpaired: int = 0) -> str:
    """One sentence on a comparison: identical, or how many tokens each deployment ranks higher."""
    if identical(diff, unpaired):
        return f"Identical: {label_a} and {label_b} give each of the {len(diff):,} tokens the same rank."
    if not len(diff):
        return f"No token of {label_a} pairs with one of {label_b}: their tokenizers split the text differently."
    higher = int((diff["rank_b"] < diff["rank_a"]).sum())
    lower = int((diff["rank_b"] > diff["rank_a"]).sum())
    same = len(diff) - higher - lower
    return (f"{label_b} − {label_a}: {label_b} ranks {higher:,} token(s) higher (more expected) than {label_a}, "
            f"{lower:,} lower, {same:,} the same.")


def _times(delta: float) -> str:
    if delta == 0:
        return "the same rank"
    return f"{10 ** abs(delta):,.1f}× {'lower' if delta > 0 else 'higher'}"


def diff_heatmap(
    diff: pd.DataFrame, label_a: str, label_b: str, width: int = HEATMAP_WIDTH, unpaired: int = 0
) -> go.Figure:
    """The paired tokens set as text, coloured by log10 rank under b minus under a (red: b ranks it lower)."""
    records = diff.to_dict("records")
    hover = [
        f"<b>{html.escape(shown(r['token']))}</b><br>{html.escape(label_a)}: rank {int(r['rank_a']):,}"
        f"<br>{html.escape(label_b)}: rank {int(r['rank_b']):,}<br>{html.escape(label_b)} − {html.escape(label_a)}: "
        f"{r['delta']:+.2f} log10 ({_times(r['delta'])} under {html.escape(label_b)})" for r in records
    ]
    limit = max(1.0, float(diff["delta"].abs().max())) if len(diff) else 1.0
    marker = {
        "color": [r["delta"] for r in records], "colorscale": "RdBu_r", "cmid": 0, "cmin": -limit, "cmax": limit,
        "showscale": True, "colorbar": {"title": {"text": f"Δ log10 rank<br>{label_b} − {label_a}"}},
    }
    a, b = html.escape(label_a), html.escape(label_b)
    if identical(diff, unpaired):
        title = f"{b} − {a}: identical, every token has the same rank"
    else:
        title = (f"{b} − {a}: change in log10 rank<br><sup>red: {b} ranks the token lower (less expected) "
                 f"than {a}; blue: higher; white: the same</sup>")
    # White on the dark ends of the red-blue scale, dark text elsewhere.
    colours = ["#fff" if abs(r["delta"]) > 0.6 * limit else "#111" for r in records]
    return _flow_figure([r["token"] for r in records], hover, marker, title, width, colours)


# ------------------------------------------------------------------ export


@dataclass(frozen=True)
class Provenance:
    """Where an analysis came from: carried by every export (file, chart and page)."""

    endpoint: str
    deployment: str
    model: str  # "name:version", as the deployment names it
    analysed_at: str  # ISO 8601, UTC, to the second ("2026-12-04T13:10:05Z")

    @property
    def model_name(self) -> str:
        return self.model.removeprefix("azureml:").rpartition(":")[0] or self.model

    @property
    def model_version(self) -> str:
        name, colon, version = self.model.removeprefix("azureml:").rpartition(":")
        return version if colon and name else ""

    def when(self) -> str:
        return self.analysed_at.replace("T", " ").removesuffix("Z") + " UTC" if self.analysed_at else "unknown"

    def caption(self) -> str:
        return (f"model {self.model_name} version {self.model_version or '?'} · endpoint {self.endpoint} · "
                f"deployment {self.deployment} · analysed {self.when()}")


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_name(provenances: Sequence[Provenance], extension: str, kind: str = "token-ranks") -> str:
    """``token-ranks-demo-ranks-vs-ranks2-20261204T131005Z.csv``: what, where, whose, when."""
    first = provenances[0]
    stamp = first.analysed_at.replace("-", "").replace(":", "")
    return f"{kind}-{first.endpoint}-{'-vs-'.join(p.deployment for p in provenances)}-{stamp}.{extension}"


def stamp(figure: go.Figure, provenances: Sequence[Provenance]) -> go.Figure:
    """The figure with its provenance as a subtitle (short lines: a chart may be a third of the page wide),
    so that a saved PNG says what it shows."""
    lines = [f"{html.escape(p.deployment)}: {html.escape(p.model_name)} v{html.escape(p.model_version or '?')} · "
             f"endpoint {html.escape(p.endpoint)}" for p in provenances]
    lines.append(f"analysed {provenances[0].when()}" if provenances else "")
    figure.update_layout(title={"subtitle": {"text": "<br>".join(lines), "font": {"size": 11, "color": "#666"}}})
    margin = figure.layout.margin.t or 40
    figure.update_layout(margin={"t": margin + 14 * len(lines)})
    return figure


_PROVENANCE_COLUMNS = ["endpoint", "deployment", "model", "model_version", "analysed_at"]


def to_csv(table: pd.DataFrame, provenance: Provenance | None = None) -> str:
    """The token table as CSV (alternatives as text); with its provenance in the first columns of every row."""
    out = table.drop(columns=["top_k"], errors="ignore")
    if provenance is not None:
        values = [provenance.endpoint, provenance.deployment, provenance.model_name, provenance.model_version,
                  provenance.analysed_at]
        out = pd.concat([pd.DataFrame([values] * len(out), columns=_PROVENANCE_COLUMNS, index=out.index), out],
                        axis=1)
    buffer = io.StringIO()
    out.to_csv(buffer, index=False)
    return buffer.getvalue()


def to_json(
    tables: Mapping[str, pd.DataFrame], thresholds: Sequence[int] = DEFAULT_THRESHOLDS, text: str | None = None,
    provenance: Mapping[str, Provenance] | None = None,
) -> str:
    """Every analysed deployment's tokens (with their top predictions), summary and provenance, as one document."""
    thresholds = check_thresholds(thresholds)
    doc: dict[str, Any] = {"thresholds": list(thresholds), "text": text, "deployments": {}}
    for name, table in tables.items():
        entry: dict[str, Any] = {}
        if provenance and name in provenance:
            p = provenance[name]
            entry.update(endpoint=p.endpoint, deployment=p.deployment, model=p.model_name,
                         model_version=p.model_version, analysed_at=p.analysed_at)
        entry["summary"] = asdict(summarize(table, thresholds))
        entry["token_ranks"] = [
            {k: (None if _isnan(v) else _top_k_json(v) if k == "top_k" else v) for k, v in row.items()}
            for row in table.drop(columns=["alternatives"]).to_dict("records")
        ]
        doc["deployments"][name] = entry
    return json.dumps(doc, indent=2, ensure_ascii=False, default=_jsonable)


def _top_k_json(pairs: Any) -> list[dict[str, Any]]:
    return [{"token": token, "prob": None if _isnan(prob) else prob} for token, prob in pairs or []]


def to_html(
    tables: Mapping[str, pd.DataFrame], thresholds: Sequence[int] = DEFAULT_THRESHOLDS, text: str | None = None,
    provenance: Mapping[str, Provenance] | None = None,
) -> str:
    """A page that opens anywhere, offline: each deployment's coloured text with its hover boxes and figures."""
    sections = []
    for name, table in tables.items():
        figures = " · ".join(f"{label} {value}" for label, value in headline(summarize(table, thresholds), thresholds))
        caption = provenance[name].caption() if provenance and name in provenance else name
        sections.append(f"<section><h2>{html.escape(name)}</h2><p class=\"byom-provenance\">{html.escape(caption)}"
                        f"</p><p>{html.escape(figures)}</p>{token_html(table, thresholds, text)}</section>")
    title = "Token ranks: " + " vs ".join(html.escape(n) for n in tables)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        '<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#111}'
        ".byom-provenance{color:#555;font-size:.85rem}</style></head>"
        f"<body><h1>{title}</h1>{legend_html(thresholds)}{''.join(sections)}</body></html>"
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
