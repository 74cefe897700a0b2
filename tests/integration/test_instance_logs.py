"""Instance logs stay bounded while a deployment serves, and get-logs reads across their rotations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from byom.core.local.workspace import LocalWorkspace

from .helpers import endpoint_with, shut_down, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MAX_BYTES = 20_000
LINE = "said {:04d} " + "x" * 190  # 200 bytes with its newline


def test_logs_rotate_under_traffic_and_the_tail_spans_rotations(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYOM_LOG_MAX_BYTES", str(MAX_BYTES))  # read by the control plane this test starts
    ws = LocalWorkspace(tmp_path / "home", actor="tester")
    try:
        endpoint_with(ws, tmp_path, "logs", ("blue",))
        ws.set_traffic("logs", {"blue": 100})
        [instance] = ws.get_deployment("logs", "blue").instances
        live = ws.home / "logs" / "endpoints" / "logs" / "blue" / f"{instance.id}.log"
        said = 0
        for _ in range(5):  # 5 × 25 kB: each burst makes the live file too large once
            for _ in range(5):
                answer = ws.invoke("logs", {"say": [LINE.format(said + i) for i in range(25)]})
                assert answer.status_code == 200, answer.body
                said += 25
            wait_until(lambda: live.stat().st_size < MAX_BYTES, 10, "the control plane to rotate the log")

        files = sorted(p.name for p in live.parent.glob(f"{instance.id}.log*"))
        assert files == [f"{instance.id}.log{suffix}" for suffix in ("", ".1", ".2", ".3")]
        assert all(p.stat().st_size < 2 * MAX_BYTES for p in live.parent.glob(f"{instance.id}.log*"))

        tail = ws.get_deployment_logs("logs", "blue", lines=200)
        numbers = [int(n) for n in re.findall(r" said (\d{4}) x", tail)]
        assert len(tail.splitlines()) == 200
        assert numbers[-1] == said - 1 and numbers == list(range(numbers[0], said))  # in order, none missing
        assert len(numbers) > 100  # the live file alone holds far fewer: the tail came from rotated files
        assert '"POST /score HTTP/1.1"' not in tail  # no per-request access log line
    finally:
        shut_down(ws)
