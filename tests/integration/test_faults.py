"""Faults under load: traffic shifts, killed instances, a killed control plane, a failing init().

Load comes from a few client threads posting to the gateway on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from byom.core.entities import Deployment, ProbeSettings, RequestSettings
from byom.core.local.processes import alive, parent_pid
from byom.core.local.workspace import LocalWorkspace

from .helpers import ECHO, FAILING_INIT, Load, deploy, endpoint_with, instance_processes, model_servers, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOMY = RequestSettings(request_timeout_ms=5000, max_concurrent_requests_per_instance=4)


def load_on(ws: LocalWorkspace, endpoint: str, clients: int = 3) -> Load:
    return Load(ws.get_endpoint(endpoint).scoring_uri, ws.get_keys(endpoint).primary_key, clients=clients)


def test_shifting_traffic_under_load_drops_no_request(workspace: LocalWorkspace, tmp_path: Path) -> None:
    endpoint_with(workspace, tmp_path, "shift", ("blue", "green"), settings=ROOMY)
    workspace.set_traffic("shift", {"blue": 100})
    with load_on(workspace, "shift", clients=4) as load:
        load.wait_answers(50)
        workspace.set_traffic("shift", {"blue": 50, "green": 50})
        load.wait_answers(100)
        workspace.set_traffic("shift", {"green": 100})
        moved = time.monotonic()
        load.wait_answers(50)
    assert load.answers and not load.failures(), load.failures()[:3]
    assert {a.deployment for a in load.answers} == {"blue", "green"}
    assert {a.deployment for a in load.answers if a.sent > moved} == {"green"}


def test_a_killed_instance_leaves_routing_at_once_and_comes_back(workspace: LocalWorkspace, tmp_path: Path) -> None:
    endpoint_with(workspace, tmp_path, "kill", ("blue",), settings=ROOMY, instance_count=2)
    workspace.set_traffic("kill", {"blue": 100})
    victim, survivor = workspace.get_deployment("kill", "blue").instances
    with load_on(workspace, "kill") as load:
        load.wait_answers(30)
        os.killpg(victim.pid, signal.SIGKILL)  # the whole instance: gunicorn master and worker
        killed = time.monotonic()
        back = wait_until(
            lambda: [i for i in workspace.get_deployment("kill", "blue").instances
                     if i.id == victim.id and i.state == "Ready" and i.pid != victim.pid],
            30, "the killed instance to be ready again")[0]
        recovered = time.monotonic() - killed
        load.wait_answers(30)
        serving_again = time.monotonic()
        load.wait_answers(30)
    failed = load.failures()
    print(f"\nkill -9 of one of two instances: {len(failed)} of {len(load.answers)} requests failed; "
          f"back in rotation after {recovered:.2f} s")
    assert back.restarts == 1 and back.port != victim.port
    assert len(failed) <= 3, failed  # at most the requests in flight on the killed instance
    assert all(a.status == 502 and a.sent < killed + 0.5 for a in failed), failed
    answered_by = {parent_pid(a.pid) for a in load.answers if a.sent > serving_again and a.pid}
    assert answered_by == {back.pid, survivor.pid}
    assert survivor.pid in [i.pid for i in workspace.get_deployment("kill", "blue").instances]


def test_a_lone_killed_instance_gives_502_or_503_until_it_is_back(workspace: LocalWorkspace, tmp_path: Path) -> None:
    endpoint_with(workspace, tmp_path, "solo", ("blue",))
    workspace.set_traffic("solo", {"blue": 100})
    [instance] = workspace.get_deployment("solo", "blue").instances
    os.killpg(instance.pid, signal.SIGKILL)
    codes = set()

    def served() -> bool:
        codes.add(status := workspace.invoke("solo", {}).status_code)
        return status == 200

    # a restart is seconds, more while the other test worker loads torch
    wait_until(served, 30, "the killed instance to be back and serve", every_s=0.02)
    assert 200 in codes and codes - {200} and codes <= {200, 502, 503}, codes


def test_a_killed_control_plane_leaves_serving_alone_and_a_new_one_adopts(workspace: LocalWorkspace,
                                                                         tmp_path: Path) -> None:
    endpoint_with(workspace, tmp_path, "adopt", ("blue",), settings=ROOMY, instance_count=2)
    workspace.set_traffic("adopt", {"blue": 100})
    pids = sorted(i.pid for i in workspace.get_deployment("adopt", "blue").instances)
    assert model_servers(workspace.home) == pids
    control_plane = workspace.serving.control_plane()
    assert control_plane is not None
    with load_on(workspace, "adopt", clients=2) as load:
        load.wait_answers(20)
        os.kill(control_plane.pid, signal.SIGKILL)
        wait_until(lambda: not control_plane.alive(), 5, "the control plane to die")
        load.wait_answers(50)  # still served: gateway and instances do not depend on it
        successor = workspace.serving.ensure_started()
        assert successor.pid != control_plane.pid
        wait_until(lambda: "Adopted instance" in (workspace.home / "logs" / "control-plane.log").read_text(), 10,
                 "the new control plane to adopt")
        load.wait_answers(20)
    assert not load.failures(), load.failures()[:3]
    assert sorted(i.pid for i in workspace.get_deployment("adopt", "blue").instances) == pids
    # a control plane that wrongly starts duplicates does so when it reconciles: have it reconcile once more
    seen = reconciles(workspace)
    workspace.set_traffic("adopt", {"blue": 100})
    wait_until(lambda: reconciles(workspace) > seen, 15, "the new control plane to reconcile again")
    assert model_servers(workspace.home) == pids

    # the adopted instances are supervised: a crash is noticed and repaired
    os.killpg(pids[0], signal.SIGKILL)
    wait_until(lambda: all(i.state == "Ready" and i.pid not in (pids[0], None)
                         for i in workspace.get_deployment("adopt", "blue").instances if i.pid != pids[1]),
             30, "the adopted instance to be restarted")
    assert len(model_servers(workspace.home)) == 2


def test_an_init_failure_fails_the_deployment_and_spares_the_others(workspace: LocalWorkspace,
                                                                   tmp_path: Path) -> None:
    model = endpoint_with(workspace, tmp_path, "fail", ("blue",), settings=ROOMY)
    workspace.set_traffic("fail", {"blue": 100})
    [blue] = workspace.get_deployment("fail", "blue").instances
    with load_on(workspace, "fail", clients=2) as load:
        broken = deploy(workspace, "fail", "broken", model, code=FAILING_INIT)
        # an update of blue whose init() fails leaves the running generation serving
        failed_update = deploy(workspace, "fail", "blue", model, code=FAILING_INIT)
        load.wait_answers(20)
    assert broken.provisioning_state == "Failed"
    assert "the model file is corrupt" in broken.state_reason and "before it was ready" in broken.state_reason
    assert workspace.get_deployment("fail", "broken").provisioning_state == "Failed"
    assert workspace.get_deployment("fail", "broken").instances == []
    assert "RuntimeError: the model file is corrupt" in workspace.get_deployment_logs("fail", "broken", lines=200)
    assert failed_update.provisioning_state == "Failed"
    assert [i.pid for i in workspace.get_deployment("fail", "blue").instances] == [blue.pid]
    assert not load.failures(), load.failures()[:3]
    states = [r.after["provisioning_state"] for r in workspace.list_audit(target_prefix="deployment/fail/broken")
              if r.action == "deployment.state"]
    assert states == ["Failed"]
    assert workspace.invoke("fail", {}, deployment="broken").status_code == 503
    assert alive(blue.pid, None)


def test_an_instance_that_never_gets_ready_is_ended_with_its_workers(workspace: LocalWorkspace,
                                                                     tmp_path: Path) -> None:
    model = endpoint_with(workspace, tmp_path, "hang", ("blue",))
    code = tmp_path / "hanging"
    code.mkdir()
    (code / "score.py").write_text("import time\n\ndef init():\n    time.sleep(600)\n\n"
                                   "def run(raw_data):\n    return {}\n")
    [blue] = workspace.get_deployment("hang", "blue").instances
    probe = ProbeSettings(initial_delay=1, period=1, timeout=1, failure_threshold=2)
    stuck = deploy(workspace, "hang", "stuck", model, code=code, readiness_probe=probe)
    assert stuck.provisioning_state == "Failed" and "did not become ready within 3 s" in stuck.state_reason
    # the gunicorn worker stuck in init() goes with its master; only blue's master and worker are left
    wait_until(lambda: sorted(instance_processes(workspace.home)) == sorted([blue.pid, *children(blue.pid)]), 10,
             "the stuck instance's processes to end")


def reconciles(workspace: LocalWorkspace) -> int:
    """How many times the home's control plane has reconciled, from its state file."""
    return json.loads(workspace.serving.files.state.read_text()).get("reconciles", 0)


def children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent_pid(int(p.name)) == pid]


def test_an_instance_that_cannot_be_started_stalls_no_other_deployment(workspace: LocalWorkspace,
                                                                      tmp_path: Path) -> None:
    model = endpoint_with(workspace, tmp_path, "stall", ("blue",))
    [blue] = workspace.get_deployment("stall", "blue").instances
    # its code folder gone, blue's instance cannot be started again once it dies (Popen: no such directory)
    shutil.rmtree(workspace.home / "code" / "stall" / "blue")
    os.killpg(blue.pid, signal.SIGKILL)
    wait_until(lambda: [i.state for i in workspace.get_deployment("stall", "blue").instances] == ["Crashed"], 10,
             "blue's instance to be seen dead")
    wait_until(lambda: "could not be started" in workspace.get_deployment("stall", "blue").state_reason, 10,
               "blue's first restart to be tried, and fail")

    # the control plane goes on with everything else: another deployment starts and serves
    workspace.create_or_update_deployment(
        Deployment(name="green", endpoint_name="stall", model=model, code_path=str(ECHO), scoring_script="score.py"),
        wait=False)
    green = wait_until(lambda: (d := workspace.get_deployment("stall", "green")).provisioning_state == "Succeeded"
                     and d, 30, "green to start while blue cannot")
    assert [i.state for i in green.instances] == ["Ready"]
    assert workspace.invoke("stall", {}, deployment="green").status_code == 200
    # and blue's deployment says why its instance is down
    blue_now = workspace.get_deployment("stall", "blue")
    assert blue_now.provisioning_state == "Succeeded" and [i.state for i in blue_now.instances] == ["Crashed"]
    assert "could not be started" in blue_now.state_reason and "No such file or directory" in blue_now.state_reason

    # a deployment whose first instance cannot start fails with the reason
    bad = deploy(workspace, "stall", "nul", model, environment_variables={"ECHO_LABEL": "a\0b"})
    assert bad.provisioning_state == "Failed" and "could not be started" in bad.state_reason, bad.state_reason
