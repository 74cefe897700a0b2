"""The gateway's watch over the control plane: a crashed one is started again, a stopped one is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from byom.core.local.gateway.control_plane_watch import HEALTHY_S, ControlPlaneWatch
from byom.core.local.processes import start_time
from byom.core.local.serving_files import ServingFiles, write_json

from .fake_processes import Clock


def gone_pid() -> tuple[int, int]:
    """The pid and start time of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    start = start_time(proc.pid)
    assert start is not None
    proc.communicate(b"", timeout=20)
    return proc.pid, start


def test_a_crashed_control_plane_is_started_again_with_backoff(tmp_path: Path) -> None:
    files, clock, started = ServingFiles(tmp_path / "home"), Clock(), []
    watch = ControlPlaneWatch(files, clock, start=started.append)
    pid, start = gone_pid()
    write_json(files.control_plane, {"pid": pid, "start": start})  # killed: its record names a dead process
    assert watch.check() and len(started) == 1
    assert not watch.check(), "not again before its backoff"
    clock.advance(0.5)
    assert watch.check() and len(started) == 2
    clock.advance(0.5)
    assert not watch.check(), "the backoff grows while it keeps crashing"
    # one that runs for a while starts the next streak from the shortest
    write_json(files.control_plane, {"pid": os.getpid(), "start": start_time(os.getpid())})
    assert not watch.check()
    clock.advance(HEALTHY_S)
    assert not watch.check()
    write_json(files.control_plane, {"pid": pid, "start": start})
    assert watch.check() and len(started) == 3
    clock.advance(0.5)
    assert watch.check() and len(started) == 4


def test_a_control_plane_stopped_as_asked_is_left_stopped(tmp_path: Path) -> None:
    files, clock, started = ServingFiles(tmp_path / "home"), Clock(), []
    watch = ControlPlaneWatch(files, clock, start=started.append)
    for _ in range(5):  # no record: stopped (it removes its record) or never started
        clock.advance(1)
        assert not watch.check()
    write_json(files.control_plane, {"pid": os.getpid(), "start": start_time(os.getpid())})
    assert not watch.check() and started == []
