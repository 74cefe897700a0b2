"""The Token ranks page: which deployments to offer, the request, what each summary's figures read, exports."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Any

import pandas as pd
from byom.core import analysis
from byom.core.compare import TextDiff, VersionDiff
from byom.core.entities import Deployment

from .common import TOKEN_RANKS, deployment_task

NOTHING = "nothing"
MODES = ["One text", "Compare two versions over a prompt set"]
SOURCES = ["Type or paste", "Upload a text file", "The last Playground answer"]
PROMPT_SOURCES = ["Paste one text per line", "Upload a prompt file"]
PROMPT_FILE_TYPES = ["txt", "json", "jsonl"]
HEATMAP_TEXTS = 12
"""The diff heatmaps drawn, one per text, of the first texts of a prompt set (the tables hold every text)."""
MOVED_ROWS = 10
SNIPPET_CHARS = 60
TOP_K = 5
TIMEOUT_S = 120
LONG_TEXT_TOKENS = 200
"""A text of more tokens is shown in a box of its own height, scrolled."""


SAMPLES = {
    "Human-written": (
        "My grandmother kept her buttons in a biscuit tin that had long outlived the biscuits. On wet Sundays "
        "she tipped them onto the kitchen oilcloth and let me sort them by whatever rule I fancied that week: "
        "horn against brass, coats against cardigans, the ones with four holes against the stubborn two-holers. "
        "Years later I found the tin in a removal box, still rattling, and could not bring myself to open it."
    ),
    "Model-written": (
        "Artificial intelligence is transforming the way we live and work. By automating routine tasks, it "
        "allows people to focus on more creative and meaningful activities. However, it is important to "
        "consider the ethical implications of this technology. In conclusion, artificial intelligence has "
        "the potential to bring many benefits to society, as long as it is used responsibly."
    ),
}
"""One click each for GLTR's contrast: a person's paragraph reaches far down the ranks, a model's stays on top."""


def results_caption(analysed_text: str, current_text: str, deployments: Sequence[str]) -> str:
    """What the results below are of: the text analysed (and whether the box still holds it) and by whom."""
    changed = "" if analysed_text == current_text else " The text above has changed since: Analyse again to update."
    return f"Results for the {len(analysed_text):,} characters analysed by {' and '.join(deployments)}.{changed}"


def rank_deployments(deployments: Iterable[Deployment]) -> list[str]:
    """The names of the deployments that answer token ranks (core's ``Deployment.task``): the only ones offered."""
    return [d.name for d in deployments if deployment_task(d) == TOKEN_RANKS]


def deployment_labels(deployments: Iterable[Deployment]) -> dict[str, str]:
    """Name → what a picker shows: the deployment and the model version it serves."""
    return {d.name: f"{d.name} · {d.model}" for d in deployments}


def compare_options(names: Sequence[str], primary: str) -> list[str]:
    return [NOTHING, *[n for n in names if n != primary]]


def selected(primary: str, other: str) -> list[str]:
    return [primary] if other == NOTHING else [primary, other]


def rank_request(text: str) -> dict[str, Any]:
    return {"text": text, "top_k": TOP_K}


def provenance(
    endpoint: str, deployments: Iterable[Deployment], analysed: Sequence[str], analysed_at: str
) -> dict[str, analysis.Provenance]:
    """What each analysed deployment served when it was asked: kept beside the results, carried by the exports."""
    models = {d.name: d.model for d in deployments}
    return {name: analysis.Provenance(endpoint, name, models.get(name, ""), analysed_at) for name in analysed}


def chart_config(file_name: str) -> dict[str, Any]:
    """A chart's toolbar: its camera button saves a PNG under a name that says what, whose and when."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": file_name, "scale": 2}}


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The token table as the page lists it (offsets and the raw alternatives left to the exports)."""
    return table.drop(columns=["start", "end", "top_k"])


def unpaired_text(unpaired: int) -> str:
    return f"{unpaired} token(s) could not be paired: the two tokenizers split the text differently."


# ------------------------------------------------------ two versions over a prompt set


def prompt_suffix(file_name: str) -> str:
    """How an uploaded prompt file is read (core.compare.parse_prompts): by its suffix."""
    return PurePath(file_name).suffix.lower()


def snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS - 1] + "…"


def is_identical(diff: VersionDiff | TextDiff) -> bool:
    """Every token ranked the same by both, with the same next-token distributions."""
    return diff.max_log_rank_change == 0 and diff.mean_kl == 0


def direction_text(report: VersionDiff) -> str:
    a, b = report.deployment_a, report.deployment_b
    return (f"{b} − {a} ({report.model_b} against {report.model_a}): a log-rank change is ln(1 + rank) under {b} "
            f"minus under {a}, positive where {b} finds the text less likely; KL is KL({a} ‖ {b}).")


def verdict_text(report: VersionDiff) -> str:
    a, b, count = report.deployment_a, report.deployment_b, len(report.texts)
    if is_identical(report):
        return (f"Identical: {a} and {b} give each of the {report.tokens:,} tokens of the {count} text(s) the same "
                "rank and the same prediction.")
    same = sum(1 for t in report.texts if is_identical(t))
    return (f"{b} − {a}: they differ on {count - same} of {count} text(s); top-1 agreement "
            f"{report.top1_agreement:.1%} over {report.tokens:,} tokens.")


def diff_figures(report: VersionDiff) -> list[tuple[str, str]]:
    """The whole set's figures, as the page's metrics show them."""
    return [("Texts", f"{len(report.texts):,}"), ("Tokens", f"{report.tokens:,}"),
            ("Top-1 agreement", f"{report.top1_agreement:.1%}"), ("Mean KL", f"{report.mean_kl:.4g}"),
            ("Mean log-rank change", f"{report.mean_log_rank_change:+.3f}"),
            ("Max log-rank change", f"{report.max_log_rank_change:.3f}")]


def texts_table(report: VersionDiff, texts: Sequence[str]) -> pd.DataFrame:
    """One row per text: its figures (the CLI's rows), and whether the two are identical on it."""
    return pd.DataFrame([{
        "text": t.text + 1, "starts with": snippet(texts[t.text]), "tokens": t.tokens,
        "top-1 agreement": round(t.top1_agreement, 4), "mean KL": float(f"{t.mean_kl:.4g}"),
        "mean log-rank change": round(t.mean_log_rank_change, 4),
        "max log-rank change": round(t.max_log_rank_change, 4), "identical": is_identical(t),
    } for t in report.texts])


def moved_table(report: VersionDiff, texts: Sequence[str]) -> pd.DataFrame:
    """The positions whose token moved most, over every text, largest change first."""
    moved = sorted(((t.text, m) for t in report.texts for m in t.moved),
                   key=lambda pair: abs(pair[1].log_rank_change), reverse=True)[:MOVED_ROWS]
    a, b = report.deployment_a, report.deployment_b
    return pd.DataFrame([{
        "text": text + 1, "position": m.position, "token": m.token, f"rank under {a}": m.rank_a,
        f"rank under {b}": m.rank_b, "log-rank change": m.log_rank_change,
    } for text, m in moved], columns=["text", "position", "token", f"rank under {a}", f"rank under {b}",
                                      "log-rank change"])


def text_label(diff: TextDiff, texts: Sequence[str]) -> str:
    """A text's heading over its diff heatmap: identical, or how far the two part on it."""
    how = "identical" if is_identical(diff) else (
        f"top-1 agreement {diff.top1_agreement:.0%}, max log-rank change {diff.max_log_rank_change:.2f}")
    return f"Text {diff.text + 1}: {how} · “{snippet(texts[diff.text])}”"


def comparison_json(report: VersionDiff, texts: Sequence[str], compared_at: str) -> str:
    """The comparison as a file: the report (model versions, endpoint, deployments), the texts and the time."""
    return json.dumps({**dataclasses.asdict(report), "compared_at": compared_at, "prompts": list(texts)}, indent=2,
                      ensure_ascii=False)
