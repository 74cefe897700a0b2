"""byom local stop|start: an operator ends every process of a home and brings its deployments back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.cli import main
from core.local.processes import home_processes

from .helpers import endpoint_with, model_servers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def cli(capsys, home: Path, *argv: str) -> dict:
    assert main([*argv, "--workspace-dir", str(home)]) == 0
    return json.loads(capsys.readouterr().out)


def test_stop_ends_every_process_and_start_brings_deployments_back(workspace, tmp_path: Path, capsys) -> None:
    endpoint_with(workspace, tmp_path, "life", ("blue",))
    workspace.set_traffic("life", {"blue": 100})
    assert workspace.invoke("life", {"n": 1}).status_code == 200
    home = workspace.home

    status = cli(capsys, home, "local", "stop")
    assert status["running"] is False and status["gateway_pid"] is None
    assert home_processes(home) == []

    status = cli(capsys, home, "local", "start")
    assert status["running"] is True and status["gateway_pid"]
    # the control plane restarts the deployment from the desired state: no command names it
    deadline = time.monotonic() + 60
    answer = workspace.invoke("life", {"n": 2})
    while answer.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = workspace.invoke("life", {"n": 2})
    assert answer.status_code == 200 and answer.deployment == "blue"
    assert len(model_servers(home)) == 1
