"""``byom console`` in the foreground: a signal to it ends its Streamlit server too (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from byom.core.local.processes import alive, free_port, parent_pid, start_time

from ..waiting import wait_until, wait_until_serving

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent_pid(int(p.name)) == pid]


def port_taken(port: int) -> bool:
    return any(f":{port:04X} " in line and line.split()[3] == "0A"  # 0A: LISTEN
               for line in Path("/proc/net/tcp").read_text().splitlines()[1:])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_byom_console_ends_its_server(sig: signal.Signals, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "console.log"
    env = {**os.environ, "BYOM_HOME": str(tmp_path / "home")}
    with log.open("wb") as out:
        byom = subprocess.Popen([sys.executable, "-m", "byom.cli", "console", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(byom, f"http://127.0.0.1:{port}/_stcore/health", 90, log)
        [server] = wait_until(lambda: children(byom.pid), 10, "byom console's Streamlit child")
        started = start_time(server)
        assert port_taken(port)

        byom.send_signal(sig)
        assert byom.wait(timeout=10) == 0, log.read_text()[-2000:]
        wait_until(lambda: not alive(server, started), 10, f"the Streamlit server (pid {server}) to end")
        assert not port_taken(port), f"port {port} is still taken after byom console ended"
    finally:
        for pid in [*children(byom.pid), byom.pid]:
            if alive(pid, None):
                os.kill(pid, signal.SIGKILL)
        byom.wait(timeout=10)
