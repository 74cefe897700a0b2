"""Where two token-rank deployments' predictions differ, token by token (a version diff).

Both deployments analyse the same texts; at each position of each text the
report compares their next-token predictions:

* **top-1 agreement**: both predict the same most likely token;
* **KL divergence** KL(A ‖ B) of the two next-token distributions, over the
  tokens that both top-k lists hold plus one bucket for the rest of the
  vocabulary. Merging tokens into one bucket never raises a KL divergence, so
  this is a lower bound of the full one: 0 when the distributions are the same;
* **log-rank change**: ln(1 + rank under B) − ln(1 + rank under A) of the
  token the text actually has (positive: B finds the text less likely).

Positions line up only when both deployments tokenize the text alike; when
they do not, the comparison is refused rather than made meaningless.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .entities import TASK_TOKEN_RANKS
from .errors import BackendError, InvalidInput
from .workspace import Workspace

TOP_K = 20  # the most alternatives a token-rank script returns per position
TEXTS_PER_REQUEST = 16  # well under the scripts' BYOM_MAX_TEXTS (32)
MOVED_SHOWN = 5
MAX_TEXTS = 1000


@dataclass(frozen=True)
class MovedToken:
    """A position whose token's rank changed most between the two deployments."""

    position: int
    token: str
    rank_a: int
    rank_b: int
    log_rank_change: float


@dataclass(frozen=True)
class TextDiff:
    text: int  # index in the prompt set
    tokens: int
    top1_agreement: float
    mean_kl: float
    mean_log_rank_change: float
    max_log_rank_change: float  # the largest change in either direction, as an absolute value
    moved: list[MovedToken] = field(default_factory=list)


@dataclass(frozen=True)
class VersionDiff:
    endpoint: str
    deployment_a: str
    deployment_b: str
    model_a: str
    model_b: str
    texts: list[TextDiff]
    tokens: int
    top1_agreement: float
    mean_kl: float
    mean_log_rank_change: float
    max_log_rank_change: float


def read_prompts(path: str | Path) -> list[str]:
    """A prompt set from a file (:func:`parse_prompts`, its form by the file's suffix)."""
    file = Path(path)
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"Prompt file {str(file)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Prompt file {str(file)!r} cannot be read as UTF-8 text: {exc}.") from None
    return parse_prompts(raw, file.suffix, f"Prompt file {str(file)!r}")


def parse_prompts(raw: str, suffix: str = "", source: str = "The prompt set") -> list[str]:
    """A prompt set: a ``.json`` list of strings, ``.jsonl`` lines (a string or ``{"text": ...}`` each),
    or plain text with one prompt per non-empty line. ``source`` names it in the refusals."""
    try:
        if suffix == ".json":
            items: list[Any] = json.loads(raw)
            if not isinstance(items, list):
                raise InvalidInput(f"{source} must hold a JSON list of strings.")
        elif suffix == ".jsonl":
            items = [json.loads(line) for line in raw.splitlines() if line.strip()]
        else:
            items = [line for line in raw.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source} is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    texts: list[str] = []
    for i, item in enumerate(items):
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"Prompt {i + 1} of {source[:1].lower() + source[1:]} is not a non-empty string.")
        texts.append(text)
    if not texts:
        raise InvalidInput(f"{source} holds no prompt.")
    if len(texts) > MAX_TEXTS:
        raise InvalidInput(f"{source} holds {len(texts)} prompts; at most {MAX_TEXTS} at once.")
    return texts


def _distribution(entry: Mapping[str, Any]) -> dict[int, float]:
    """What one position's answer says of the next-token distribution: its top-k and the actual token."""
    known = {int(alt["token_id"]): float(alt["prob"]) for alt in entry.get("top_k") or []}
    known.setdefault(int(entry["token_id"]), float(entry["prob"]))
    return known


def bucketed_kl(p: Mapping[int, float], q: Mapping[int, float]) -> float:
    """KL(p ‖ q) over the tokens both know, the rest of each distribution in one bucket."""
    shared = p.keys() & q.keys()
    kl = 0.0
    for token in shared:
        if p[token] > 0:
            kl += p[token] * math.log(p[token] / max(q[token], 1e-30))
    rest_p = max(0.0, 1.0 - sum(p[t] for t in shared))
    rest_q = max(0.0, 1.0 - sum(q[t] for t in shared))
    if rest_p > 1e-12:
        kl += rest_p * math.log(rest_p / max(rest_q, 1e-30))
    return max(kl, 0.0)  # rounding in the probabilities may leave a tiny negative


def diff_text(index: int, a: Mapping[str, Any], b: Mapping[str, Any]) -> TextDiff:
    """Compare two token-rank answers for the same text (``{"token_ranks": [...]}`` each)."""
    rows_a, rows_b = a["token_ranks"], b["token_ranks"]
    if [r["token_id"] for r in rows_a] != [r["token_id"] for r in rows_b]:
        raise InvalidInput(f"Text {index + 1} is tokenized differently by the two deployments: their positions "
                           "do not line up, so their predictions cannot be compared token by token.")
    agree, kls, changes = 0, [], []
    for ra, rb in zip(rows_a, rows_b, strict=True):
        top_a, top_b = ra.get("top_k") or [], rb.get("top_k") or []
        if top_a and top_b and top_a[0]["token_id"] == top_b[0]["token_id"]:
            agree += 1
        kls.append(bucketed_kl(_distribution(ra), _distribution(rb)))
        changes.append(math.log1p(int(rb["rank"])) - math.log1p(int(ra["rank"])))
    n = len(rows_a)
    order = sorted(range(n), key=lambda i: abs(changes[i]), reverse=True)
    moved = [MovedToken(i, rows_a[i]["token"], int(rows_a[i]["rank"]), int(rows_b[i]["rank"]), round(changes[i], 4))
             for i in order[:MOVED_SHOWN] if changes[i] != 0]
    return TextDiff(
        text=index, tokens=n,
        top1_agreement=agree / n if n else 1.0,
        mean_kl=sum(kls) / n if n else 0.0,
        mean_log_rank_change=sum(changes) / n if n else 0.0,
        max_log_rank_change=max((abs(c) for c in changes), default=0.0),
        moved=moved,
    )


def summarize(endpoint: str, a: str, b: str, model_a: str, model_b: str, texts: Sequence[TextDiff]) -> VersionDiff:
    """The texts' figures and the whole set's, each text weighted by its tokens."""
    tokens = sum(t.tokens for t in texts)

    def weighted(figure: str, empty: float) -> float:
        return sum(getattr(t, figure) * t.tokens for t in texts) / tokens if tokens else empty

    return VersionDiff(
        endpoint=endpoint, deployment_a=a, deployment_b=b, model_a=model_a, model_b=model_b, texts=list(texts),
        tokens=tokens,
        top1_agreement=weighted("top1_agreement", 1.0),
        mean_kl=weighted("mean_kl", 0.0),
        mean_log_rank_change=weighted("mean_log_rank_change", 0.0),
        max_log_rank_change=max((t.max_log_rank_change for t in texts), default=0.0),
    )


@dataclass(frozen=True)
class Comparison:
    """A version diff and the two deployments' answers it was made from (one per text, ``{"token_ranks": ...}``),
    for what draws them token by token (the Token ranks page's diff heatmaps)."""

    report: VersionDiff
    answers_a: list[dict[str, Any]]
    answers_b: list[dict[str, Any]]


def rank_texts(ws: Workspace, endpoint: str, deployment: str, texts: Sequence[str],
               timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """One deployment's token-rank answer for each text, several texts a request."""
    results: list[dict[str, Any]] = []
    for start in range(0, len(texts), TEXTS_PER_REQUEST):
        chunk = list(texts[start:start + TEXTS_PER_REQUEST])
        answer = ws.invoke(endpoint, {"texts": chunk, "top_k": TOP_K}, deployment=deployment, timeout_s=timeout_s)
        if answer.status_code != 200:
            raise BackendError(f"Deployment {deployment!r} answered {answer.status_code} to texts "
                               f"{start + 1}–{start + len(chunk)}: {answer.body[:300]}")
        try:
            results.extend(answer.json()["results"])
        except (ValueError, KeyError, TypeError):
            raise BackendError(f"Deployment {deployment!r} answered texts {start + 1}–{start + len(chunk)} without "
                               f"a 'results' list: {answer.body[:300]}") from None
    return results


def run_comparison(ws: Workspace, endpoint: str, a: str, b: str, texts: Sequence[str],
                   timeout_s: float = 60.0) -> Comparison:
    """Send ``texts`` to deployments ``a`` and ``b`` of ``endpoint`` (token-rank deployments both, asked at
    once: a comparison takes as long as the slower one) and diff their answers."""
    if a.lower() == b.lower():
        raise InvalidInput(f"Compare two different deployments, not {a!r} with itself.")
    models = []
    for name in (a, b):
        dep = ws.get_deployment(endpoint, name)
        if dep.task != TASK_TOKEN_RANKS:
            raise InvalidInput(f"Deployment {name!r} of endpoint {endpoint!r} generates text; only token-rank "
                               "deployments (scoring script token_ranks.py) can be compared token by token.")
        models.append(dep.model or "")
    with ThreadPoolExecutor(max_workers=2) as pool:
        asked = [pool.submit(rank_texts, ws, endpoint, name, texts, timeout_s) for name in (a, b)]
    answers_a, answers_b = (future.result() for future in asked)
    diffs = [diff_text(i, ra, rb) for i, (ra, rb) in enumerate(zip(answers_a, answers_b, strict=True))]
    return Comparison(summarize(endpoint, a, b, models[0], models[1], diffs), answers_a, answers_b)


def compare_deployments(ws: Workspace, endpoint: str, a: str, b: str, texts: Sequence[str]) -> VersionDiff:
    """The version diff of deployments ``a`` and ``b`` over ``texts`` (:func:`run_comparison`)."""
    return run_comparison(ws, endpoint, a, b, texts).report
