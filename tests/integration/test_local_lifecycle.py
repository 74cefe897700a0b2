"""byom local stop|start: an operator ends every process of a home and brings its deployments back."""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterable
from pathlib import Path

import pytest
from byom.cli.main import main
from byom.core.local import serving as local_serving
from byom.core.local.processes import ProcessRef, alive, home_processes
from byom.core.local.serving_files import read_json
from byom.core.local.workspace import LocalWorkspace

from .helpers import endpoint_with, model_servers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def cli(capsys, home: Path, *argv: str) -> dict:
    assert main([*argv, "--workspace-dir", str(home)]) == 0
    return json.loads(capsys.readouterr().out)


def test_stop_ends_every_process_and_start_brings_deployments_back(workspace, tmp_path: Path, capsys) -> None:
    endpoint_with(workspace, tmp_path, "life", ("blue",))
    workspace.set_traffic("life", {"blue": 100})
    assert workspace.invoke("life", {"n": 1}).status_code == 200
    home = workspace.home
    # what the home keeps (keys, request facts, logs of prompts and answers) is its owner's alone
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    kept = [*home.glob("*.db"), *(home / "run").glob("*.db"), *(home / "logs").rglob("*.log")]
    assert any(p.name == "gateway.log" for p in kept) and any(p.suffix == ".db" for p in kept), kept
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in kept} == {p.name: "0o600" for p in kept}

    status = cli(capsys, home, "local", "stop")
    assert status["running"] is False and status["gateway_pid"] is None
    assert home_processes(home) == []

    status = cli(capsys, home, "local", "start")
    assert status["running"] is True and status["gateway_pid"]
    # the control plane restarts the deployment from the desired state: no command names it
    answer = wait_until(lambda: (a := workspace.invoke("life", {"n": 2})).status_code == 200 and a, 60,
                        "the restarted control plane to serve the deployment again", every_s=0.2)
    assert answer.deployment == "blue"
    assert len(model_servers(home)) == 1


def test_stop_leaves_nothing_when_the_control_plane_must_be_killed(workspace: LocalWorkspace, monkeypatch) -> None:
    serving = workspace.serving
    serving.wait_gateway()
    files = serving.files
    control_plane, gateway = serving.control_plane(), serving.gateway()
    assert control_plane is not None and gateway is not None
    os.kill(control_plane.pid, signal.SIGSTOP)  # it cannot act on the SIGTERM: killed once its grace period is over

    def watch_is_idle() -> bool:
        """The gateway's control-plane watch has nothing to start: no record, or one naming a live process."""
        record = read_json(files.control_plane)
        return not record or alive(record.get("pid"), record.get("start"))

    real_terminate = local_serving.terminate

    def terminate(refs: Iterable[ProcessRef], *, grace_s: float = 10.0) -> None:
        refs = list(refs)
        if any(r.pid == gateway.pid for r in refs):
            # the watch looks every 0.5 s: a stop must not depend on it looking only after the gateway is gone
            wait_until(watch_is_idle, 30, "the gateway's watch to act on what the control plane left")
        real_terminate(refs, grace_s=grace_s)

    monkeypatch.setattr(local_serving, "terminate", terminate)
    serving.shutdown(grace_s=1.0)
    assert not alive(control_plane.pid, control_plane.start)
    assert home_processes(workspace.home) == [], "processes of the home left running after the stop"
    assert "gone without stopping" not in files.gateway_log.read_text(), "the gateway restarted the control plane"
    assert serving.status()["running"] is False
