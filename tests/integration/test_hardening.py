"""Faults the local serving must outlast (issue 17), with real control plane, gateway and model servers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from byom.core.entities import ProbeSettings, RequestSettings
from byom.core.local.workspace import LocalWorkspace

from .helpers import endpoint_with, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


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
