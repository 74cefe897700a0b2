"""``byom online-endpoint compare``: where two token-rank deployments' predictions differ (byom's own).

It prints one row per text and a last row for the whole prompt set (``-o table``
shows the figures; ``-o json`` also the positions that moved most).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from byom.core.compare import compare_deployments, read_prompts
from byom.core.errors import InvalidInput
from byom.core.workspace import Workspace

from .common import verb

FIGURES = ("tokens", "top1_agreement", "mean_kl", "mean_log_rank_change", "max_log_rank_change")


def endpoint_compare(ws: Workspace, args: argparse.Namespace) -> Any:
    names = [n.strip() for n in args.deployments.split(",") if n.strip()]
    if len(names) != 2:
        raise InvalidInput(f"--deployments takes two deployment names, A,B; got {args.deployments!r}.")
    report = compare_deployments(ws, args.name, names[0], names[1], read_prompts(args.prompts))
    rows: list[dict[str, Any]] = [
        {"text": t.text + 1, **{f: _rounded(getattr(t, f)) for f in FIGURES},
         "moved": [dataclasses.asdict(m) for m in t.moved]}
        for t in report.texts
    ]
    rows.append({"text": "all", **{f: _rounded(getattr(report, f)) for f in FIGURES},
                 "deployment_a": report.deployment_a, "model_a": report.model_a,
                 "deployment_b": report.deployment_b, "model_b": report.model_b})
    return rows


def _rounded(value: float | int) -> float | int:
    """Four significant digits: a KL divergence of 3e-6 is not 0."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def register(endpoint_verbs: Any) -> None:
    p = verb(endpoint_verbs, "compare", endpoint_compare,
             "Send a prompt set to two token-rank deployments and say where their predictions differ, token by "
             "token: top-1 agreement, KL divergence (over the top-20 tokens), log-rank change (byom's own).")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--deployments", required=True, metavar="A,B",
                   help="The two deployments; log-rank changes are B's minus A's, KL is KL(A || B).")
    p.add_argument("--prompts", required=True, metavar="FILE",
                   help="One text per line, a .json list of strings, or .jsonl lines.")
