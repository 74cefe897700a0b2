"""Ports for model servers: free now, and never one byom still counts as someone else's."""

from __future__ import annotations

from pathlib import Path

import pytest
from byom.core.local.processes import free_port


def test_a_port_to_avoid_is_never_handed_out() -> None:
    first = free_port()
    assert all(free_port(avoid={first}) != first for _ in range(20))
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    with pytest.raises(OSError, match="No free port on 127.0.0.1 outside the"):
        free_port(avoid=range(low, high + 1))  # every port the kernel would pick
