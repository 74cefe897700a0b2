"""``LocalServing``: the local backend's :class:`~core.serving.Serving`.

The library process (CLI, console, tests) never runs model servers itself.
It writes desired state to ``byom.db`` (``StoreBackend`` does), makes sure
the home's control plane runs (``core.local.control_plane``, started
detached on demand), and reads back what runs from
``run/serving-state.json``. Requests go through the home's gateway
(``core.local.gateway``) like any client's.

``shutdown()`` ends every process of the home (control plane, gateway,
model servers); the next call that needs serving starts the control plane
again, which brings the deployments back.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import requests

from ..entities import Deployment, InstanceStatus, InvokeResult, MirroredAnswers, RequestFact
from ..errors import BackendError, NotFound
from ..metrics_series import ResourceSample
from ..progress import Progress
from ..serving import DEPLOYMENT_HEADER, EndpointState, Serving
from .builds import running_build
from .captures import CaptureStore
from .gateway import admin_token
from .log_files import log_tail
from .process_stats import InstanceProcess, UsageSampler
from .processes import HOME_MARKER, ProcessRef, alive, home_processes, spawn_detached, terminate
from .request_facts import RequestFactStore
from .serving_files import ServingFiles, read_json

START_TIMEOUT_S = 30.0
REMOVE_TIMEOUT_S = 60.0
BUILD_CHECK_S = 1.0
SWEEPS = 3  # rounds of ending what is left of a home, each until its processes are gone
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _observed(record: dict[str, Any]) -> str:
    """The state file's word for an instance, unless its process is gone (the control plane may not have seen it
    yet, or be down): then Crashed, whatever the file says."""
    if record["state"] in ("Ready", "Starting") and record.get("pid") and not alive(record["pid"], record.get("start")):
        return "Crashed"
    return str(record["state"])


class LocalServing(Serving):
    capabilities = ("deployments", "metrics", "openai-api", "consumers", "traffic-rollouts", "mirror-reports",
                    "captures")

    def __init__(self, home: str | Path) -> None:
        self.files = ServingFiles(home)
        self._captures = CaptureStore(self.files.captures_db)
        self._http = requests.Session()
        self._usage = UsageSampler()

    # ------------------------------------------------------------ processes

    def _record(self, path: Path) -> ProcessRef | None:
        data = read_json(path) or {}
        ref = ProcessRef(data.get("pid") or 0, data.get("start"))
        return ref if ref.pid and ref.alive() else None

    def control_plane(self) -> ProcessRef | None:
        """The running control plane of this home, if any."""
        return self._record(self.files.control_plane)

    def gateway(self) -> ProcessRef | None:
        return self._record(self.files.gateway)

    def ensure_started(self) -> ProcessRef:
        """Start the home's control plane unless it runs; wait until it does."""
        ref = self.control_plane()
        if ref is not None:
            return ref
        self.files.run.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, HOME_MARKER: str(self.files.home),
               "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}
        spawn_detached([sys.executable, "-m", "byom.core.local.control_plane", "--home", str(self.files.home)],
                       env=env, log_path=self.files.control_plane_log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ref = self.control_plane()
            if ref is not None:
                return ref
            time.sleep(0.05)
        raise BackendError(
            f"The control plane of {self.files.home} did not start within {START_TIMEOUT_S:.0f} s. "
            f"Its log ends with:\n{log_tail(self.files.control_plane_log, 20)}"
        )

    def wait_gateway(self, timeout_s: float = START_TIMEOUT_S) -> int:
        """Start serving if needed and wait until the gateway answers; return its port."""
        self.ensure_started()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = read_json(self.files.gateway) or {}
            if self.gateway() is not None and record.get("port"):
                return int(record["port"])
            time.sleep(0.05)
        raise BackendError(
            f"The gateway of {self.files.home} did not start within {timeout_s:.0f} s. "
            f"Its log ends with:\n{log_tail(self.files.gateway_log, 20)}"
        )

    def shutdown(self, grace_s: float = 10.0) -> None:
        """End the control plane, the gateway and every model server of this home."""
        control_plane = self._record(self.files.control_plane)
        # The record goes before the process: the gateway's watch restarts a control plane whose record names a
        # dead pid, and one killed after its grace period leaves its record behind; with no record the watch
        # treats the control plane as stopped on purpose, during the grace period and after.
        self.files.control_plane.unlink(missing_ok=True)
        if control_plane is not None:
            terminate([control_plane], grace_s=grace_s)  # before the gateway, so that it restarts nothing
        refs = [r for r in (self.gateway(),) if r is not None]
        for inst in (read_json(self.files.state) or {}).get("instances") or []:
            if inst.get("pid"):
                refs.append(ProcessRef(inst["pid"], inst.get("start")))
        terminate(refs, grace_s=grace_s)
        # Anything started but never recorded, and anything a process ended here started while it stopped (a
        # control plane started by a watch that read the record just before it went): until none is left.
        for _ in range(SWEEPS):
            left = home_processes(self.files.home)
            if not left:
                break
            terminate(left, grace_s=grace_s)
        for path in (self.files.control_plane, self.files.gateway):
            path.unlink(missing_ok=True)

    # ------------------------------- LocalProcesses: byom local status|start|stop

    def status(self) -> dict[str, Any]:
        control_plane, gateway = self.control_plane(), self.gateway()
        return {
            "home": str(self.files.home),
            "control_plane_pid": control_plane.pid if control_plane else None,
            "gateway_pid": gateway.pid if gateway else None,
            "running": control_plane is not None,
        }

    def start(self) -> None:
        self.wait_gateway()

    def stop(self) -> None:
        self.shutdown()

    def drive_rollouts(self) -> None:
        self.ensure_started()  # its traffic-rollout job advances them

    # ------------------------------------------------------------- the seam

    def scoring_uri(self, endpoint_name: str) -> str:
        return f"http://127.0.0.1:{self.files.gateway_port()}/endpoints/{endpoint_name}/score"

    def _state(self) -> dict[str, Any]:
        return read_json(self.files.state) or {}

    def _instances(self, state: dict[str, Any], endpoint: str, deployment: str) -> list[InstanceStatus]:
        rows = [i for i in state.get("instances") or []
                if i["endpoint"] == endpoint and i["deployment"] == deployment.lower() and i["state"] != "Stopping"]
        return [InstanceStatus(id=i["id"], state=_observed(i), pid=i.get("pid"), port=i.get("port"),
                               restarts=i.get("restarts", 0), started_at=i.get("started_at"))
                for i in sorted(rows, key=lambda i: (i["generation"], i["index"]))]

    def _rollout(self, state: dict[str, Any], endpoint: str, deployment: str) -> dict[str, Any] | None:
        for rollout in state.get("rollouts") or []:
            if rollout["endpoint"] == endpoint and rollout["deployment"] == deployment.lower():
                return dict(rollout)
        return None

    def apply(self, state: EndpointState, deployment: Deployment, progress: Progress, wait: bool) -> Deployment:
        self.ensure_started()
        if not wait:
            return deployment
        probe = deployment.readiness_probe
        window = probe.initial_delay + probe.period * probe.failure_threshold + 60
        deadline = time.monotonic() + window
        reported: dict[str, str] = {}
        build_step, build_checked = None, 0.0
        while time.monotonic() < deadline:
            if not reported and time.monotonic() - build_checked >= BUILD_CHECK_S:
                # The environment may still be building: say how far it is, and give the instances their
                # whole window once it is built (a build takes minutes; readiness is counted from there).
                build_checked = time.monotonic()
                build = running_build(self.files.home, deployment.environment or "")
                if build is not None:
                    deadline = max(deadline, build_checked + window)
                    if build.get("step") != build_step:
                        build_step = build.get("step")
                        progress(f"Environment {deployment.environment}: {build_step}", build.get("fraction"))
            current = self._state()
            for inst in self._instances(current, deployment.endpoint_name, deployment.name):
                if reported.get(inst.id) != inst.state:
                    reported[inst.id] = inst.state
                    ready = sum(1 for s in reported.values() if s == "Ready")
                    progress(f"Instance {inst.id}: {inst.state} (pid {inst.pid}, port {inst.port})",
                             min(ready / deployment.instance_count, 1.0))
            rollout = self._rollout(current, deployment.endpoint_name, deployment.name)
            if rollout is not None and (rollout.get("token") or "") > deployment.updated_at:
                return deployment.replace(state_reason="A later change to this deployment superseded this one.")
            if rollout is not None and rollout.get("token") == deployment.updated_at and rollout["phase"] != "rolling":
                instances = self._instances(current, deployment.endpoint_name, deployment.name)
                # The control plane tells the gateway too, but maybe a moment after this read: the caller's
                # next request must reach the generation this state file names.
                self._tell_gateway("/-/reload")
                if rollout["phase"] == "failed":
                    return deployment.replace(provisioning_state="Failed", state_reason=rollout.get("reason", ""),
                                              instances=instances)
                progress(f"Deployment {deployment.name} is ready", 1.0)
                return deployment.replace(provisioning_state="Succeeded", state_reason="", instances=instances)
            if self.control_plane() is None:
                self.ensure_started()  # it died: a new one adopts what runs and carries on
            time.sleep(0.1)
        raise BackendError(f"Deployment {deployment.name} did not finish in time; its state is still being "
                           "worked on: see 'byom online-deployment show'.")

    def observe(self, deployment: Deployment) -> Deployment:
        state = self._state()
        return deployment.replace(instances=self._instances(state, deployment.endpoint_name, deployment.name))

    def remove(self, endpoint_name: str, deployment_name: str) -> None:
        def remaining() -> bool:
            state = self._state()
            return bool(self._rollout(state, endpoint_name, deployment_name)) or any(
                i["endpoint"] == endpoint_name and i["deployment"] == deployment_name.lower()
                for i in state.get("instances") or []
            )

        if not remaining():
            return
        self.ensure_started()
        deadline = time.monotonic() + REMOVE_TIMEOUT_S
        while remaining():
            if time.monotonic() > deadline:
                raise BackendError(f"The instances of deployment {deployment_name} did not stop within "
                                   f"{REMOVE_TIMEOUT_S:.0f} s; see {self.files.control_plane_log}.")
            time.sleep(0.1)

    def _tell_gateway(self, path: str) -> None:
        record = read_json(self.files.gateway) or {}
        if self.gateway() is None:
            return
        conn = http.client.HTTPConnection("127.0.0.1", int(record["port"]), timeout=10)
        try:
            conn.request("POST", path, headers=admin_token.headers(self.files.run))
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass  # it polls for route changes and flushes facts every second anyway
        finally:
            conn.close()

    def routes_changed(self, state: EndpointState) -> None:
        self._tell_gateway("/-/reload")  # no gateway yet: it reads the routes when it starts

    def invoke(self, state: EndpointState, body: bytes, *, deployment: str | None, headers: dict[str, str],
               timeout_s: float) -> InvokeResult:
        port = self.wait_gateway()
        sent = dict(headers)
        if deployment:
            sent[DEPLOYMENT_HEADER] = deployment
        url = f"http://127.0.0.1:{port}/endpoints/{state.endpoint.name}/score"
        started = time.perf_counter()
        try:
            answer = self._http.post(url, data=body, headers=sent, timeout=timeout_s)
        except requests.RequestException as exc:
            raise BackendError(f"The endpoint {state.endpoint.name} could not be reached at {url}: {exc}.") from exc
        latency = (time.perf_counter() - started) * 1000
        return InvokeResult(
            status_code=answer.status_code, body=answer.text, headers=dict(answer.headers),
            deployment=answer.headers.get(DEPLOYMENT_HEADER), latency_ms=latency,
            request_id=answer.headers.get("x-request-id", ""),
        )

    def invoke_stream(self, state: EndpointState, body: bytes, *, headers: dict[str, str],
                      timeout_s: float) -> Generator[InvokeResult | bytes, None, None]:
        """Through the gateway's ``/score`` as it streams: the head, then each piece as the gateway sends it;
        ``timeout_s`` bounds the wait for the head and for each piece, not the whole answer."""
        port = self.wait_gateway()
        url = f"http://127.0.0.1:{port}/endpoints/{state.endpoint.name}/score"
        started = time.perf_counter()
        try:
            answer = self._http.post(url, data=body, headers=headers, timeout=timeout_s, stream=True)
        except requests.RequestException as exc:
            raise BackendError(f"The endpoint {state.endpoint.name} could not be reached at {url}: {exc}.") from exc
        try:
            streams = answer.headers.get("content-type", "").startswith("text/event-stream")
            yield InvokeResult(
                status_code=answer.status_code, body="" if streams else answer.text, headers=dict(answer.headers),
                deployment=answer.headers.get(DEPLOYMENT_HEADER), latency_ms=(time.perf_counter() - started) * 1000,
                request_id=answer.headers.get("x-request-id", ""),
            )
            if streams:
                try:
                    yield from answer.iter_content(chunk_size=None)
                except requests.RequestException as exc:
                    raise BackendError(f"The stream from endpoint {state.endpoint.name} broke off: {exc}.") from exc
        finally:
            answer.close()  # before its end: the connection closes, and the gateway cancels the generation

    def logs(self, endpoint_name: str, deployment_name: str, lines: int, container: str) -> str:
        folder = self.files.deployment_logs(endpoint_name, deployment_name)
        if container == "storage-initializer":
            path = self.files.storage_log(endpoint_name, deployment_name)
        else:
            candidates = [p for p in folder.glob("*.log") if p.name != "storage-initializer.log"]
            path = max(candidates, key=lambda p: p.stat().st_mtime) if candidates else folder / "missing"
        if not path.exists():
            raise NotFound(f"No {container} logs yet for deployment {deployment_name} of endpoint {endpoint_name}.",
                           hint="Logs appear once the control plane has started the deployment.")
        return log_tail(path, lines)

    def resource_usage(self, endpoint_name: str, since: float) -> list[ResourceSample]:
        instances = [InstanceProcess(i["endpoint"], i["deployment"], int(i["pid"]), i.get("start"))
                     for i in self._state().get("instances") or []
                     if i.get("endpoint") == endpoint_name and i.get("pid") and i.get("state") != "Stopping"]
        self._usage.sample(endpoint_name, instances)
        return self._usage.history(endpoint_name, since)

    def capture_bodies(self) -> CaptureStore:
        self._tell_gateway("/-/flush")
        return self._captures

    def request_facts(self, endpoint_name: str, since: float) -> list[RequestFact]:
        self._tell_gateway("/-/flush")
        store = RequestFactStore(self.files.requests_db)
        try:
            return store.since(endpoint_name, since)
        finally:
            store.close()

    def mirrored_answers(self, endpoint_name: str, since: float) -> list[MirroredAnswers]:
        self._tell_gateway("/-/flush")
        store = RequestFactStore(self.files.requests_db)
        try:
            return store.mirrored(endpoint_name, since)
        finally:
            store.close()

