"""Answers to the same requests, summed up per side and compared in pairs: what a replay reports.

Pure functions over a narrow input (status, latency, sha256 digest, the body
when small), so that any report comparing two deployments' answers (a replay
against two deployments, the mirror report) can share them. An error is no
HTTP answer at all (status 0) or a 4xx/5xx one; two answers are identical
when their status and digest are. A generation answer is a JSON object with
a ``"text"`` string; two of them are compared by whitespace tokens.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .metrics import percentile

SMALL_BODY = 64 * 1024  # bodies up to this many bytes are kept for the generation comparison


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer
    latency_ms: float
    digest: str  # sha256 (hex) of the body
    body: str | None = None  # kept when small


def answer(status: int, latency_ms: float, body: str | bytes) -> Answer:
    """An answer with its digest; the body kept when it is at most ``SMALL_BODY`` bytes."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    kept = data.decode("utf-8", "replace") if len(data) <= SMALL_BODY else None
    return Answer(status, latency_ms, hashlib.sha256(data).hexdigest(), kept)


def is_error(status: int) -> bool:
    return status == 0 or status >= 400


@dataclass(frozen=True)
class SideSummary:
    requests: int
    status_codes: dict[str, int]  # "0" for requests that got no answer
    errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


def side_summary(answers: Sequence[Answer]) -> SideSummary:
    """Requests, answers per status, errors and latency percentiles of the answers that came."""
    latencies = sorted(a.latency_ms for a in answers if a.status)
    return SideSummary(
        requests=len(answers), status_codes=dict(sorted(Counter(str(a.status) for a in answers).items())),
        errors=sum(is_error(a.status) for a in answers),
        latency_p50_ms=percentile(latencies, 50), latency_p95_ms=percentile(latencies, 95),
    )


@dataclass(frozen=True)
class PairSummary:
    compared: int
    identical: int
    differing: int
    errors_either: int  # pairs where either side is an error
    generation_compared: int  # pairs where both are generation answers
    exact_match_rate: float | None  # of those, the share with the same text
    mean_first_difference: float | None  # of those that differ, the mean position of the first differing token


def generation_text(body: str | bytes | None) -> str | None:
    """The ``"text"`` of a generation answer; None for any other body (or none kept)."""
    if body is None:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    text = data.get("text") if isinstance(data, dict) else None
    return text if isinstance(text, str) else None


def first_difference(a: str, b: str) -> int | None:
    """The position (from 0) of the first whitespace token where two texts differ; None where none does
    (a text that is the other's beginning differs where it ends)."""
    left, right = a.split(), b.split()
    for i, (x, y) in enumerate(zip(left, right, strict=False)):
        if x != y:
            return i
    return None if len(left) == len(right) else min(len(left), len(right))


def identical(a: Answer, b: Answer) -> bool:
    return a.status == b.status and a.digest == b.digest


def pair_summary(pairs: Sequence[tuple[Answer, Answer]]) -> PairSummary:
    """How two sides' answers to the same requests compare."""
    same = sum(identical(a, b) for a, b in pairs)
    generation = [(ta, tb) for a, b in pairs if not is_error(a.status) and not is_error(b.status)
                  and (ta := generation_text(a.body)) is not None and (tb := generation_text(b.body)) is not None]
    positions = [p for ta, tb in generation if (p := first_difference(ta, tb)) is not None]
    return PairSummary(
        compared=len(pairs), identical=same, differing=len(pairs) - same,
        errors_either=sum(is_error(a.status) or is_error(b.status) for a, b in pairs),
        generation_compared=len(generation),
        exact_match_rate=sum(ta == tb for ta, tb in generation) / len(generation) if generation else None,
        mean_first_difference=sum(positions) / len(positions) if positions else None,
    )
