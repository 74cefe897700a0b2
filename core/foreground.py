"""Running a child in the foreground: what the process is asked to do, its child does too.

A front end that serves through a child (``byom console`` runs Streamlit)
forwards SIGTERM, SIGINT and SIGHUP to it and exits once the child has ended,
as gunicorn and uvicorn do for their workers. A child that outlives the grace
period after a forwarded signal is killed, so a stop never leaves the port
taken.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
GRACE_S = 8.0


def run_in_foreground(argv: Sequence[str], env: Mapping[str, str] | None = None, grace_s: float = GRACE_S) -> int:
    """Run ``argv`` until it exits; its exit code (0 for a clean stop when asked, 128 + N when signal N killed it)."""
    child = subprocess.Popen(list(argv), env=dict(env) if env is not None else None)
    asked: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        asked.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while True:
            try:
                code = child.wait(timeout=grace_s if asked else None)
                break
            except subprocess.TimeoutExpired:  # asked to stop, and still running past the grace period
                child.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # an exception of our own: never leave the child behind
            child.kill()
            child.wait()
    return 128 - code if code < 0 else code
