"""Helpers for tests that run real serving processes on loopback."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from byom.core.entities import Deployment, Endpoint, ModelSpec, RequestSettings
from byom.core.local.model_server import INSTANCE_MARK
from byom.core.local.processes import home_processes, parent_pid
from byom.core.local.workspace import LocalWorkspace

from ..waiting import wait_until

ASSETS = Path(__file__).parent / "assets"
ECHO = ASSETS / "echo"
FAILING_INIT = ASSETS / "failing_init"
SCORING = Path(__file__).resolve().parents[2] / "scoring"


def echo_model(ws: LocalWorkspace, folder: Path, greeting: str = "hello") -> str:
    """Register a model folder whose only file is greeting.txt; return its reference.

    The echo script reads it as $AZUREML_MODEL_DIR/model/greeting.txt: name the folder "model".
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "greeting.txt").write_text(greeting)
    return ws.create_model(ModelSpec(name="echo", path=str(folder))).ref


def deploy(ws: LocalWorkspace, endpoint: str, name: str, model: str, *, code: Path = ECHO,
           instance_count: int = 1, settings: RequestSettings | None = None, **kwargs: Any) -> Deployment:
    kwargs.setdefault("environment_variables", {"ECHO_LABEL": name})
    return ws.create_or_update_deployment(
        Deployment(name=name, endpoint_name=endpoint, model=model, code_path=str(code), scoring_script="score.py",
                   instance_count=instance_count, request_settings=settings or RequestSettings(), **kwargs)
    )


def deploy_generation(ws: LocalWorkspace, endpoint: str, name: str, model: str, *, max_new_tokens: int = 64,
                      model_name: str = "tiny", **variables: str) -> Deployment:
    """A Succeeded deployment of scoring/generate.py: one instance, one torch thread, a batch of up to 8 rows
    (20 server threads, so that probes still get one while 16 requests wait), 60 s per request."""
    dep = ws.create_or_update_deployment(Deployment(
        name=name, endpoint_name=endpoint, model=model, code_path=str(SCORING), scoring_script="generate.py",
        instance_count=1,
        request_settings=RequestSettings(request_timeout_ms=60000, max_concurrent_requests_per_instance=8),
        environment_variables={"BYOM_TORCH_THREADS": "1", "BYOM_MAX_NEW_TOKENS": str(max_new_tokens),
                               "BYOM_MODEL_NAME": model_name, "GUNICORN_CMD_ARGS": "--threads 20", **variables}))
    assert dep.provisioning_state == "Succeeded", dep.state_reason
    return dep


def endpoint_with(ws: LocalWorkspace, tmp: Path, endpoint: str, names: tuple[str, ...], **kwargs: Any) -> str:
    """An endpoint with one echo deployment per name, each Succeeded; returns the model reference."""
    model = echo_model(ws, tmp / "model")
    ws.create_or_update_endpoint(Endpoint(name=endpoint))
    for name in names:
        dep = deploy(ws, endpoint, name, model, **kwargs)
        assert dep.provisioning_state == "Succeeded", dep.state_reason
    return model


def instance_processes(home: Path) -> list[int]:
    """Pids of every model-server process of a home, gunicorn masters and workers alike."""
    found = []
    for ref in home_processes(home):
        try:
            if INSTANCE_MARK in Path(f"/proc/{ref.pid}/cmdline").read_bytes():
                found.append(ref.pid)
        except OSError:
            pass
    return found


def model_servers(home: Path) -> list[int]:
    """Pids of the gunicorn masters running for a home (their workers are their children)."""
    found = instance_processes(home)
    return sorted(pid for pid in found if parent_pid(pid) not in found)


def shut_down(ws: LocalWorkspace) -> None:
    """End every process of the workspace's home, and check that none is left."""
    ws.serving.shutdown()
    left = home_processes(ws.home)
    ws.close()
    assert not left, f"processes left running: {left}"


@dataclass
class Answer:
    sent: float  # time.monotonic() when the request left
    at: float  # and when its answer came
    status: int  # 0: no HTTP answer at all
    deployment: str | None
    body: str = ""
    pid: int | None = None  # the model-server worker that answered


@dataclass
class Load:
    """Clients that post to a scoring URI in a loop until stopped, keeping every answer."""

    url: str
    key: str
    clients: int = 4
    payload: dict[str, Any] = field(default_factory=lambda: {"load": True})
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]

    def _client(self) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.key}"}
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                r = session.post(self.url, json=self.payload, headers=headers, timeout=15)
                answer = Answer(sent, time.monotonic(), r.status_code, r.headers.get("azureml-model-deployment"),
                                r.text[:300], r.json().get("pid") if r.status_code == 200 else None)
            except requests.RequestException as exc:
                answer = Answer(sent, time.monotonic(), 0, None, repr(exc))
            with self._lock:
                self.answers.append(answer)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self) -> int:
        with self._lock:
            return len(self.answers)

    def wait_answers(self, n: int, timeout_s: float = 30) -> None:
        start = self.count()
        wait_until(lambda: self.count() >= start + n, timeout_s, f"{n} more answers under load")

    def served_since(self, index: int, after: float) -> bool:
        """Whether an answer past the first ``index`` was a 200 to a request sent after ``after`` (monotonic)."""
        with self._lock:
            return any(a.status == 200 and a.sent > after for a in self.answers[index:])

    def failures(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.status != 200]
