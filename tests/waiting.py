"""Waiting for another process or thread: for a condition, never for a length of time.

``wait_until`` polls a condition until it holds, and fails past its deadline
with a message that names what was awaited and the last value seen, so a slow
machine costs time, never a flaky result.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout_s: float, what: str, every_s: float = 0.05) -> T:
    """The first truthy value of ``condition()``; AssertionError naming ``what`` if none comes in ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}; last seen: {value!r}")
        time.sleep(every_s)


def wait_until_serving(proc: subprocess.Popen, url: str, timeout_s: float, log: Path | None = None) -> None:
    """Until ``url`` answers 200, failing at once, with the log's tail, if ``proc`` exits first."""

    def answers() -> bool:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            raise AssertionError(f"{proc.args[:3]} exited with {proc.returncode} before {url} answered:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(answers, timeout_s, f"{url} to answer", every_s=0.2)
