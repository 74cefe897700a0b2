"""The control plane's gateway supervisor: restarts, and their backoff, with a fake clock and fake processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from byom.core.local.control_plane import gateway_supervisor
from byom.core.local.control_plane.gateway_supervisor import GatewaySupervisor
from byom.core.local.serving_files import ServingFiles

from .fake_processes import Clock, FakeProcess


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[FakeProcess]:
    processes: list[FakeProcess] = []

    def spawn(argv: list[str], *, env: dict[str, str], log_path: Path) -> FakeProcess:
        processes.append(FakeProcess(pid=4000 + len(processes)))
        return processes[-1]

    monkeypatch.setattr(gateway_supervisor, "spawn", spawn)
    return processes


def restart_delay(supervisor: GatewaySupervisor, clock: Clock, started: list[FakeProcess]) -> float:
    """Kill the running gateway; how long until the supervisor starts the next one."""
    count = len(started)
    started[-1].exit(-9)
    waited = 0.0
    for _ in range(1000):
        supervisor.supervise()
        if len(started) > count:
            return waited
        clock.advance(0.1)
        waited += 0.1
    raise AssertionError("the gateway was not started again within 100 s")


def test_a_gateway_healthy_for_a_while_is_restarted_at_once_every_time(
        tmp_path: Path, started: list[FakeProcess]) -> None:
    clock = Clock()
    supervisor = GatewaySupervisor(ServingFiles(tmp_path / "home"), clock)
    supervisor.supervise()
    delays = []
    for _ in range(7):
        clock.advance(gateway_supervisor.HEALTHY_S)
        supervisor.supervise()
        delays.append(restart_delay(supervisor, clock, started))
    assert max(delays) < 1.0, delays  # it was 0.5, 1, 2, 4, 8, 16, 30 s, for good


def test_a_gateway_that_keeps_crashing_at_once_backs_off(tmp_path: Path, started: list[FakeProcess]) -> None:
    clock = Clock()
    supervisor = GatewaySupervisor(ServingFiles(tmp_path / "home"), clock)
    supervisor.supervise()
    delays = [restart_delay(supervisor, clock, started) for _ in range(5)]
    assert delays == sorted(delays) and delays[-1] >= 4.0, delays
