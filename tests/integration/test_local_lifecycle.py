"""byom local stop|start: an operator ends every process of a home and brings its deployments back."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from byom.cli.main import main
from byom.core.local.processes import home_processes

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
