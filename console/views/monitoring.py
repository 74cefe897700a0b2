"""The Monitoring page: the windows offered and the bucket each is drawn in."""

from __future__ import annotations

WINDOWS = {"Last 15 minutes": (900, 30), "Last hour": (3600, 60), "Last 6 hours": (21600, 600),
           "Last 24 hours": (86400, 1800)}
"""Label → (window, bucket) in seconds."""
DEFAULT_WINDOW = "Last hour"
REFRESH_S = 5


def window_index(label: str = DEFAULT_WINDOW) -> int:
    return list(WINDOWS).index(label)
