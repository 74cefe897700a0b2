"""Per-deployment figures computed from the request facts an endpoint records."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from .entities import DeploymentMetrics, MetricsPoint, RequestFact


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
    """Counts, error counts and latency p50/p95/p99 per deployment, overall and per bucket."""
    start = now - window_s
    by_deployment: dict[tuple[str, bool], list[RequestFact]] = defaultdict(list)
    for fact in facts:
        if fact.endpoint == endpoint and fact.at >= start:
            by_deployment[(fact.deployment, fact.mirrored)].append(fact)
    out = []
    for (deployment, mirrored), rows in sorted(by_deployment.items()):
        latencies = sorted(r.latency_ms for r in rows)
        buckets: dict[int, list[RequestFact]] = defaultdict(list)
        for r in rows:
            buckets[int((r.at - start) // bucket_s)].append(r)
        series = []
        for index in sorted(buckets):
            chunk = buckets[index]
            lat = sorted(r.latency_ms for r in chunk)
            series.append(
                MetricsPoint(
                    at=start + index * bucket_s,
                    requests=len(chunk),
                    errors=sum(is_error(r.status_code) for r in chunk),
                    p50_ms=percentile(lat, 50),
                    p95_ms=percentile(lat, 95),
                    p99_ms=percentile(lat, 99),
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
            )
        )
    return out
