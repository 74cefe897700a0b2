"""The Token ranks page: which deployments to offer, the request, what each summary's figures read, exports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from byom.core import analysis
from byom.core.entities import Deployment

from .common import TOKEN_RANKS, deployment_task

NOTHING = "nothing"
SOURCES = ["Type or paste", "Upload a text file", "The last Playground answer"]
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
