"""Faults the local serving must outlast (issue 17), with real control plane, gateway and model servers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from byom.core.entities import ProbeSettings, RequestSettings
from byom.core.local.processes import alive, start_time
from byom.core.local.serving_files import ServingFiles, read_json
from byom.core.local.workspace import LocalWorkspace

from .helpers import Load, endpoint_with, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOMY = RequestSettings(request_timeout_ms=5000, max_concurrent_requests_per_instance=4)


def load_on(ws: LocalWorkspace, endpoint: str, clients: int = 2) -> Load:
    return Load(ws.get_endpoint(endpoint).scoring_uri, ws.get_keys(endpoint).primary_key, clients=clients)


def post(ws: LocalWorkspace, endpoint: str, payload: dict[str, object], timeout_s: float = 30) -> requests.Response:
    return requests.post(ws.get_endpoint(endpoint).scoring_uri, json=payload, timeout=timeout_s,
                         headers={"Authorization": f"Bearer {ws.get_keys(endpoint).primary_key}"})


def test_a_request_past_its_timeout_does_not_hold_a_one_thread_instance(workspace: LocalWorkspace,
                                                                          tmp_path: Path) -> None:
    endpoint_with(workspace, tmp_path, "hung", ("blue",),
                  settings=RequestSettings(request_timeout_ms=1000, max_concurrent_requests_per_instance=1),
                  liveness_probe=ProbeSettings(initial_delay=0, period=1, timeout=1, failure_threshold=30))
    workspace.set_traffic("hung", {"blue": 100})
    [before] = workspace.get_deployment("hung", "blue").instances
    assert post(workspace, "hung", {"sleep": 600}).status_code == 408
    timed_out = time.monotonic()
    # its one worker sleeps on: the next unanswered probe restarts it (30 of them took 30 s, 5 min on Azure's)
    wait_until(lambda: [i for i in workspace.get_deployment("hung", "blue").instances
                        if i.state != "Ready" or i.pid != before.pid], 15, "the held instance to leave Ready")
    back = wait_until(lambda: [i for i in workspace.get_deployment("hung", "blue").instances
                               if i.state == "Ready" and i.pid != before.pid], 30, "the instance to be back")[0]
    assert back.restarts == 1
    answer = post(workspace, "hung", {"after": "restart"})
    assert answer.status_code == 200 and answer.json()["echo"] == {"after": "restart"}
    print(f"\na one-thread instance held by a timed-out request was serving again {time.monotonic() - timed_out:.1f} s "
          "after the 408")


def gateway_record(ws: LocalWorkspace) -> dict[str, Any]:
    return read_json(ServingFiles(ws.home).gateway) or {}


def up_for(pid: int) -> float:
    """Seconds since the process started, from the kernel's start time (0 if it is gone)."""
    start = start_time(pid)
    if start is None:
        return 0.0
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - start / os.sysconf("SC_CLK_TCK")


def test_six_gateway_kills_in_a_row_each_back_within_5_s_and_never_a_404(workspace: LocalWorkspace,
                                                                          tmp_path: Path) -> None:
    endpoint_with(workspace, tmp_path, "six", ("blue",), settings=ROOMY)
    workspace.set_traffic("six", {"blue": 100})
    outages = []
    with load_on(workspace, "six") as load:
        load.wait_answers(10)
        for _ in range(6):
            victim = wait_until(lambda: gateway_record(workspace).get("pid"), 10, "a gateway record")
            wait_until(lambda v=victim: up_for(v) >= 10, 30, "10 s of health for the gateway")  # noqa: B023
            served = load.count()
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()

            def back(v: int = victim, n: int = served, t: float = killed) -> bool:
                record = gateway_record(workspace)
                return record.get("pid") not in (None, v) and load.served_since(n, t)

            wait_until(back, 5, "the gateway to be back and serving")
            outages.append(time.monotonic() - killed)
    print(f"\nsix gateway kills after 10 s of health each: back in {', '.join(f'{s:.2f}' for s in outages)} s")
    not_found = [a for a in load.answers if a.status == 404]
    assert not not_found, not_found[:3]
    assert all(a.status in (200, 0) for a in load.answers), {a.status for a in load.answers}  # 0: refused


def test_a_crashed_control_plane_is_started_again_by_the_gateway(workspace: LocalWorkspace, tmp_path: Path) -> None:
    endpoint_with(workspace, tmp_path, "plane", ("blue",), settings=ROOMY)
    workspace.set_traffic("plane", {"blue": 100})
    files = ServingFiles(workspace.home)
    first = workspace.serving.control_plane()
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    successor = wait_until(lambda: (r := read_json(files.control_plane)) and r["pid"] != first.pid
                           and alive(r["pid"], r["start"]) and r, 10, "the gateway to start a control plane")
    # and the new one keeps the gateway going: a gateway crash now is repaired too
    gateway = gateway_record(workspace)["pid"]
    os.kill(gateway, signal.SIGKILL)
    wait_until(lambda: gateway_record(workspace).get("pid") not in (None, gateway)
               and post(workspace, "plane", {}).status_code == 200, 10, "the gateway to be back")
    assert read_json(files.control_plane)["pid"] == successor["pid"]


def test_the_state_shows_a_dead_instance_while_the_control_plane_cannot_look(workspace: LocalWorkspace,
                                                                             tmp_path: Path) -> None:
    endpoint_with(workspace, tmp_path, "truth", ("blue",), settings=ROOMY)
    [inst] = workspace.get_deployment("truth", "blue").instances
    control_plane = workspace.serving.control_plane()
    assert control_plane is not None and inst.state == "Ready"
    os.kill(control_plane.pid, signal.SIGSTOP)  # alive, so nobody restarts it, but it does nothing
    try:
        os.killpg(inst.pid, signal.SIGKILL)
        wait_until(lambda: not alive(inst.pid, None), 10, "the instance to die")
        [seen] = workspace.get_deployment("truth", "blue").instances
        assert seen.state == "Crashed", "the state file still says Ready; what runs says otherwise"
    finally:
        os.kill(control_plane.pid, signal.SIGCONT)
    wait_until(lambda: [i for i in workspace.get_deployment("truth", "blue").instances
                        if i.state == "Ready" and i.pid != inst.pid], 30, "the instance to be restarted")
