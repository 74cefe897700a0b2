"""Per-deployment figures computed from the request facts an endpoint records."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from .entities import DeploymentMetrics, MetricsPoint, RequestFact
from .metrics_series import bucket_index, bucket_starts


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def is_error(status_code: int) -> bool:
    return status_code >= 400


def summarize(
    facts: Iterable[RequestFact], endpoint: str, window_s: int, bucket_s: int, now: float
) -> list[DeploymentMetrics]:
    """Counts, error counts, latency p50/p95/p99 and tokens per deployment, overall and per bucket.

    The buckets are aligned to the clock and every one of the window is in
    each series (see ``metrics_series``): an empty bucket has zero requests and
    tokens and no latency. The window is the buckets' span, so totals and
    series agree. Time to first token and per output token are percentiles of
    the facts that have them (streamed answers); None where a bucket had none.
    """
    starts = bucket_starts(now, window_s, bucket_s)
    first = starts[0]
    by_deployment: dict[tuple[str, bool], list[RequestFact]] = defaultdict(list)
    for fact in facts:
        if fact.endpoint == endpoint and first <= fact.at <= now:
            by_deployment[(fact.deployment, fact.mirrored)].append(fact)
    out = []
    for (deployment, mirrored), rows in sorted(by_deployment.items()):
        latencies = sorted(r.latency_ms for r in rows)
        buckets: list[list[RequestFact]] = [[] for _ in starts]
        for r in rows:
            index = bucket_index(r.at, first, bucket_s, len(starts))
            if index is not None:
                buckets[index].append(r)
        series = []
        for at, chunk in zip(starts, buckets, strict=True):
            lat = sorted(r.latency_ms for r in chunk)
            ttft = sorted(r.ttft_ms for r in chunk if r.ttft_ms is not None)
            tpot = sorted(r.tpot_ms for r in chunk if r.tpot_ms is not None)
            series.append(
                MetricsPoint(
                    at=at,
                    requests=len(chunk),
                    errors=sum(is_error(r.status_code) for r in chunk),
                    p50_ms=percentile(lat, 50),
                    p95_ms=percentile(lat, 95),
                    p99_ms=percentile(lat, 99),
                    status_codes=dict(sorted(Counter(str(r.status_code) for r in chunk).items())),
                    input_tokens=sum(r.input_tokens for r in chunk),
                    output_tokens=sum(r.output_tokens for r in chunk),
                    ttft_p50_ms=percentile(ttft, 50),
                    ttft_p95_ms=percentile(ttft, 95),
                    ttft_p99_ms=percentile(ttft, 99),
                    tpot_p50_ms=percentile(tpot, 50),
                    tpot_p95_ms=percentile(tpot, 95),
                    tpot_p99_ms=percentile(tpot, 99),
                )
            )
        out.append(
            DeploymentMetrics(
                endpoint=endpoint,
                deployment=deployment,
                window_s=window_s,
                requests=len(rows),
                errors=sum(is_error(r.status_code) for r in rows),
                p50_ms=percentile(latencies, 50),
                p95_ms=percentile(latencies, 95),
                p99_ms=percentile(latencies, 99),
                mirrored=mirrored,
                series=series,
                input_tokens=sum(r.input_tokens for r in rows),
                output_tokens=sum(r.output_tokens for r in rows),
            )
        )
    return out
