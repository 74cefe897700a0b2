"""Progressive rollouts on a real control plane, gateway and echo model servers (``byom online-endpoint rollout``).

Traffic comes from clients posting to the endpoint's scoring URI while the
rollout runs; steps last a second, so each test takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from byom.cli.main import main
from byom.core import history, traffic_rollout
from byom.core.local.workspace import LocalWorkspace

from .helpers import Load, deploy, endpoint_with, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def blue_and_green(ws: LocalWorkspace, tmp_path: Path, **green: str) -> None:
    """Endpoint ``roll``: blue with all the traffic, and green (its environment variables ``green``)."""
    model = endpoint_with(ws, tmp_path, "roll", ("blue",))
    dep = deploy(ws, "roll", "green", model, environment_variables={"ECHO_LABEL": "green", **green})
    assert dep.provisioning_state == "Succeeded", dep.state_reason
    ws.set_traffic("roll", {"blue": 100})


def byom(ws: LocalWorkspace, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--workspace-dir", str(ws.home)])
    out, err = capsys.readouterr()
    return code, out, err


def under_load(ws: LocalWorkspace) -> Load:
    keys = ws.get_keys("roll")
    return Load(ws.get_endpoint("roll").scoring_uri, keys.primary_key, clients=2)


ROLLOUT = ("online-endpoint", "rollout", "-n", "roll", "--to", "green", "--steps", "10,50,100",
           "--step-seconds", "1", "--min-requests", "3", "--max-error-rate", "0.2")


def test_a_deployment_failing_half_its_requests_is_rolled_back_within_one_step(
        workspace: LocalWorkspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blue_and_green(workspace, tmp_path, ECHO_FAIL_EVERY="2")
    with under_load(workspace):
        code, _, err = byom(workspace, capsys, *ROLLOUT)
    assert code == 1, err
    assert "RolledBack" in err and "error rate of green at the 10 % step" in err, err
    assert {n: p for n, p in workspace.get_endpoint("roll").traffic.items() if p} == {"blue": 100}

    code, out, _ = byom(workspace, capsys, "online-endpoint", "rollout", "status", "-n", "roll")
    record = json.loads(out)
    assert code == 0 and record["state"] == "RolledBack"
    assert len(record["history"]) == 1 and record["history"][0]["percent"] == 10
    assert record["breach"]["metric"] == "error_rate" and record["breach"]["step"] == 10
    assert record["breach"]["value"] > 0.2 and record["breach"]["limit"] == 0.2

    ended = [r for r in workspace.list_audit(target_prefix="endpoint/roll") if r.action == "endpoint.rollout"][0]
    assert ended.after is not None and ended.after["state"] == "RolledBack"
    assert ended.after["breach"]["metric"] == "error_rate"
    latest = history.traffic_history(workspace, "roll")[0]
    assert latest.after == {"blue": 100} and "rolled back: the error rate of green" in latest.note


def test_a_healthy_deployment_completes_to_100(workspace: LocalWorkspace, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    blue_and_green(workspace, tmp_path)
    with under_load(workspace) as load:
        code, out, err = byom(workspace, capsys, *ROLLOUT, "--max-p95-ms", "5000")
    assert code == 0, err
    record = json.loads(out)
    assert record["state"] == "Succeeded"
    assert [s["percent"] for s in record["history"]] == [10, 50, 100]
    assert all(s["requests"] >= 3 and s["errors"] == 0 for s in record["history"])
    assert {n: p for n, p in workspace.get_endpoint("roll").traffic.items() if p} == {"green": 100}
    notes = [c.note for c in history.traffic_history(workspace, "roll")[:3]]
    assert notes == [f"rollout {record['id']}: green to {p} %" for p in (100, 50, 10)]
    assert not load.failures()


def test_no_wait_status_refusal_manual_change_and_abort(workspace: LocalWorkspace, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    blue_and_green(workspace, tmp_path)
    slow = ("online-endpoint", "rollout", "-n", "roll", "--to", "green", "--steps", "20,100",
            "--step-seconds", "600", "--no-wait")
    code, out, err = byom(workspace, capsys, *slow)
    assert code == 0, err
    assert json.loads(out)["state"] == "Running"

    def status() -> dict[str, object]:
        code, out, err = byom(workspace, capsys, "online-endpoint", "rollout", "status", "-n", "roll")
        assert code == 0, err
        found: dict[str, object] = json.loads(out)
        return found

    wait_until(lambda: status()["history"], 30, "the first step set by the control plane")
    assert workspace.get_endpoint("roll").traffic == {"blue": 80, "green": 20}
    code, _, err = byom(workspace, capsys, *slow)
    assert code == 2 and "has a rollout running" in err

    workspace.set_traffic("roll", {"blue": 50, "green": 50})  # by hand, mid-way
    stopped = wait_until(lambda: status()["state"] == "Stopped" and status(), 30, "the rollout to stop")
    assert "changed by hand" in str(stopped["reason"])
    assert workspace.get_endpoint("roll").traffic == {"blue": 50, "green": 50}

    workspace.set_traffic("roll", {"blue": 100})
    code, _, err = byom(workspace, capsys, *slow)
    assert code == 0, err
    wait_until(lambda: status()["history"], 30, "the first step of the second rollout")
    code, out, err = byom(workspace, capsys, "online-endpoint", "rollout", "abort", "-n", "roll")
    assert code == 0, err
    assert json.loads(out)["state"] == "Aborted"
    assert {n: p for n, p in workspace.get_endpoint("roll").traffic.items() if p} == {"blue": 100}


def test_a_control_plane_killed_mid_way_is_started_again_and_finishes_the_rollout(
        workspace: LocalWorkspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blue_and_green(workspace, tmp_path)
    with under_load(workspace):
        code, out, err = byom(workspace, capsys, "online-endpoint", "rollout", "-n", "roll", "--to", "green",
                              "--steps", "10,100", "--step-seconds", "1", "--min-requests", "3", "--no-wait")
        assert code == 0, err
        started = json.loads(out)["id"]
        wait_until(lambda: (r := workspace.backend.traffic_rollout("roll")) is not None and r.history, 30,
                   "the first step")
        killed = workspace.serving.control_plane()
        assert killed is not None
        os.kill(killed.pid, signal.SIGKILL)
        wait_until(lambda: not killed.alive(), 10, "the control plane to be gone")
        code, out, err = byom(workspace, capsys, "online-endpoint", "rollout", "status", "-n", "roll")
        assert code == 0 and json.loads(out)["state"] == "Running", "the record outlives its driver"
        ended = traffic_rollout.wait(workspace, "roll", started, timeout_s=60)  # starts a control plane if none
    assert ended.state == "Succeeded" and [s.percent for s in ended.history] == [10, 100]
    again = workspace.serving.control_plane()
    assert again is not None and again.pid != killed.pid
    assert {n: p for n, p in workspace.get_endpoint("roll").traffic.items() if p} == {"green": 100}


def test_a_slow_deployment_is_rolled_back_on_its_p95_latency(workspace: LocalWorkspace, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    blue_and_green(workspace, tmp_path, ECHO_SLEEP_S="0.3")
    with under_load(workspace):
        code, _, err = byom(workspace, capsys, "online-endpoint", "rollout", "-n", "roll", "--to", "green",
                            "--steps", "50,100", "--step-seconds", "1", "--min-requests", "2", "--max-p95-ms", "200")
    assert code == 1 and "p95 latency (ms) of green at the 50 % step" in err, err
    record = workspace.backend.traffic_rollout("roll")
    assert record is not None and record.breach is not None and record.breach.metric == "p95_ms"
    assert record.breach.value >= 300 and record.breach.limit == 200
    assert {n: p for n, p in workspace.get_endpoint("roll").traffic.items() if p} == {"blue": 100}
