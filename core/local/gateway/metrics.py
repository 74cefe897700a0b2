"""The gateway's Prometheus metrics, in the text exposition format (version 0.0.4)."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[str, str, str, str, str]  # endpoint, deployment, model_version, status, mirrored
LABEL_NAMES = ("endpoint", "deployment", "model_version", "status", "mirrored")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


class GatewayMetrics:
    def __init__(self) -> None:
        self.requests: dict[Labels, int] = defaultdict(int)
        self.buckets: dict[Labels, list[int]] = {}  # per bucket, not cumulative: one increment per request
        self.sums: dict[Labels, float] = defaultdict(float)
        self.in_flight: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, endpoint: str, deployment: str, model_version: str, status: int, seconds: float,
                mirrored: bool = False) -> None:
        labels = (endpoint, deployment, model_version, str(status), "true" if mirrored else "false")
        self.requests[labels] += 1
        counts = self.buckets.get(labels)
        if counts is None:
            counts = self.buckets[labels] = [0] * (len(BUCKETS_S) + 1)
        counts[bisect_left(BUCKETS_S, seconds)] += 1  # the first bound >= seconds; the last slot: +Inf
        self.sums[labels] += seconds

    def render(self) -> str:
        out = [
            "# HELP byom_requests_total Requests answered by the gateway.",
            "# TYPE byom_requests_total counter",
        ]
        for labels, count in sorted(self.requests.items()):
            out.append(f"byom_requests_total{_labels(LABEL_NAMES, labels)} {count}")
        out += [
            "# HELP byom_request_duration_seconds Time from a request's arrival to its answer.",
            "# TYPE byom_request_duration_seconds histogram",
        ]
        for labels, counts in sorted(self.buckets.items()):
            cumulative = 0
            for bound, count in zip(BUCKETS_S, counts, strict=False):
                cumulative += count
                le = f'le="{bound}"'
                out.append(f"byom_request_duration_seconds_bucket{_labels(LABEL_NAMES, labels, le)} {cumulative}")
            total = self.requests[labels]
            le = 'le="+Inf"'
            out.append(f"byom_request_duration_seconds_bucket{_labels(LABEL_NAMES, labels, le)} {total}")
            out.append(f"byom_request_duration_seconds_sum{_labels(LABEL_NAMES, labels)} {self.sums[labels]:.6f}")
            out.append(f"byom_request_duration_seconds_count{_labels(LABEL_NAMES, labels)} {total}")
        out += [
            "# HELP byom_requests_in_flight Requests sent to a deployment and not answered yet.",
            "# TYPE byom_requests_in_flight gauge",
        ]
        for (endpoint, deployment), count in sorted(self.in_flight.items()):
            out.append(f"byom_requests_in_flight{_labels(('endpoint', 'deployment'), (endpoint, deployment))} {count}")
        return "\n".join(out) + "\n"
