"""Mirror reports: how a mirrored deployment answered the requests its endpoint's primary answered.

The gateway keeps both answers of each mirrored request (:class:`MirroredAnswers`: status, latency, the
sha256 of the body, and the body itself when it is at most ``BODY_KEPT_MAX`` bytes); :func:`reports`
sums them per mirrored deployment. Two 2xx answers are identical when their bodies have one sha256; an
answer that is not 2xx is an error on its side and is neither identical nor differing.

Generation payloads (a JSON object with a string ``"text"``) are compared by their text as well: the
exact-match rate, and the mean position of the first differing token. Answers carry no token ids, so a
token here is a whitespace-separated word of the text; where one text is a prefix of the other, the first
difference is at the shorter one's length. Only answers whose bodies were kept count as generations.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from .answer_pairs import first_difference, generation_text
from .entities import MirroredAnswers, MirrorReport
from .metrics import percentile

BODY_KEPT_MAX = 4096  # bytes of one answer's body kept beside its digest
MAX_PAIRS = 2000  # pairs a workspace home keeps (the oldest go)
MAX_BODY_BYTES = 4 * 1024 * 1024  # bytes of kept bodies a home keeps, both sides together (the oldest go)


@dataclass(frozen=True)
class Answer:
    """One deployment's answer to a request, as the gateway saw it."""

    deployment: str
    status: int
    ms: float
    body: bytes


def answers(at: float, endpoint: str, primary: Answer, mirror: Answer) -> MirroredAnswers:
    """One mirrored request's two answers, each body kept only when small."""
    return MirroredAnswers(
        at=at, endpoint=endpoint, deployment=mirror.deployment, primary=primary.deployment,
        primary_status=primary.status, primary_ms=primary.ms, primary_sha256=digest(primary.body),
        mirror_status=mirror.status, mirror_ms=mirror.ms, mirror_sha256=digest(mirror.body),
        primary_body=kept(primary.body), mirror_body=kept(mirror.body),
    )


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def kept(body: bytes) -> bytes | None:
    return body if len(body) <= BODY_KEPT_MAX else None


def ok(status: int) -> bool:
    return 200 <= status < 300


def reports(pairs: Iterable[MirroredAnswers], endpoint: str) -> list[MirrorReport]:
    """One report per mirrored deployment (names compared lower-cased), sorted by name."""
    by_deployment: dict[str, list[MirroredAnswers]] = defaultdict(list)
    for pair in pairs:
        if pair.endpoint == endpoint:
            by_deployment[pair.deployment.lower()].append(pair)
    return [report(endpoint, group) for _, group in sorted(by_deployment.items())]


def report(endpoint: str, pairs: list[MirroredAnswers]) -> MirrorReport:
    """The figures of one mirrored deployment's pairs (at least one)."""
    both_ok = [p for p in pairs if ok(p.primary_status) and ok(p.mirror_status)]
    identical = sum(1 for p in both_ok if p.primary_sha256 == p.mirror_sha256)
    primary_ms = sorted(p.primary_ms for p in pairs)
    mirror_ms = sorted(p.mirror_ms for p in pairs)
    texts = [(a, b) for p in both_ok if (a := generation_text(p.primary_body)) is not None
             and (b := generation_text(p.mirror_body)) is not None]
    positions = [pos for a, b in texts if (pos := first_difference(a, b)) is not None]
    return MirrorReport(
        endpoint=endpoint, deployment=pairs[-1].deployment, primaries=sorted({p.primary for p in pairs}),
        requests=len(pairs), identical=identical, differing=len(both_ok) - identical,
        primary_errors=sum(1 for p in pairs if not ok(p.primary_status)),
        mirror_errors=sum(1 for p in pairs if not ok(p.mirror_status)),
        primary_p50_ms=percentile(primary_ms, 50), primary_p95_ms=percentile(primary_ms, 95),
        mirror_p50_ms=percentile(mirror_ms, 50), mirror_p95_ms=percentile(mirror_ms, 95),
        generations=len(texts),
        exact_match_rate=(len(texts) - len(positions)) / len(texts) if texts else None,
        mean_first_difference=sum(positions) / len(positions) if positions else None,
    )


def report_row(row: MirrorReport) -> dict[str, object]:
    """A report as the CLI's table and the console show it (latencies rounded to 0.1 ms, rates to 0.001)."""
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "deployment": row.deployment, "primary": ",".join(row.primaries), "requests": row.requests,
        "identical": row.identical, "differing": row.differing,
        "primary_errors": row.primary_errors, "mirror_errors": row.mirror_errors,
        "primary_p50_ms": ms(row.primary_p50_ms), "primary_p95_ms": ms(row.primary_p95_ms),
        "mirror_p50_ms": ms(row.mirror_p50_ms), "mirror_p95_ms": ms(row.mirror_p95_ms),
        "exact_match_rate": None if row.exact_match_rate is None else round(row.exact_match_rate, 3),
        "mean_first_difference": None if row.mean_first_difference is None else round(row.mean_first_difference, 2),
    }
