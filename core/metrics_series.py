"""Time buckets for the request metrics, aligned to the clock, and the resource samples of deployments.

Buckets start on whole multiples of the bucket length (a minute bucket at
12:07:00, never at 12:07:23 because a page was opened then), so two
refreshes draw the same requests into the same buckets; every bucket of the
window is present, empty ones holding zero, so a chart never draws a line
across a quiet stretch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def bucket_starts(now: float, window_s: int, bucket_s: int) -> list[float]:
    """The starts of the buckets that cover the last ``window_s`` up to ``now``, oldest first.

    The last bucket is the one ``now`` falls in (still filling); there are
    ``ceil(window_s / bucket_s)`` of them.
    """
    if window_s < 1 or bucket_s < 1:
        raise ValueError("window and bucket must be at least one second")
    last = math.floor(now / bucket_s) * bucket_s
    count = math.ceil(window_s / bucket_s)
    return [float(last - (count - 1 - i) * bucket_s) for i in range(count)]


def bucket_index(at: float, first: float, bucket_s: int, count: int) -> int | None:
    """Which of ``count`` buckets from ``first`` holds ``at``; None outside them."""
    index = math.floor((at - first) / bucket_s)
    return index if 0 <= index < count else None


def status_class(status_code: int) -> str:
    """``2xx``, ``4xx``, ... for a status code: how Azure ML Studio groups its request chart."""
    return f"{status_code // 100}xx"


@dataclass(frozen=True)
class ResourceSample:
    """What a deployment's model-server processes used at one moment (all its instances together)."""

    at: float  # unix seconds
    endpoint: str
    deployment: str
    instances: int  # instances whose processes were read
    cpu_percent: float | None  # of one core, summed over instances; None on the first reading of a process
    memory_bytes: int  # resident set size, summed over instances and their worker processes
