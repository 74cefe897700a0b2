"""Start the Azure ML inference server on an entry script, bound to loopback, for benchmarks and tests.

``azmlinfsrv`` always binds 0.0.0.0, so this runs gunicorn on the server's own
WSGI app (``azureml_inference_server_http.server.entry:app``) with the
environment variables azmlinfsrv would set, bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCORING_DIR = REPO / "scoring"
APP = "azureml_inference_server_http.server.entry:app"


class ServerDied(RuntimeError):
    pass


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen
    log_path: Path

    @property
    def score_url(self) -> str:
        return self.url + "/score"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: bytes | str | dict, *, timeout: float = 120, headers: dict | None = None) -> tuple[int, dict]:
    """POST and return (status, JSON body); errors are returned, not raised."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, {"raw": raw.decode(errors="replace")}


def wait_ready(server: Server, timeout: float) -> None:
    """Poll GET / until it answers; fail at once, with the log tail, when the process has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerDied(f"The inference server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"The inference server did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # The process group was created for this server alone (start_new_session).
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@contextlib.contextmanager
def inference_server(
    entry_script: str,
    model_dir: str | os.PathLike[str],
    log_path: str | os.PathLike[str],
    *,
    threads: int = 16,
    env: dict[str, str] | None = None,
    ready_timeout: float = 180,
) -> Iterator[Server]:
    """Serve ``entry_script`` (relative to scoring/) with one gunicorn worker of ``threads`` threads."""
    port = free_port()
    log_path = Path(log_path)
    full_env = {
        **os.environ,
        "AML_APP_ROOT": str(SCORING_DIR),
        "AZUREML_ENTRY_SCRIPT": entry_script,
        "AZUREML_MODEL_DIR": str(Path(model_dir).resolve()),
        **(env or {}),
    }
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"127.0.0.1:{port}",
        "--workers", "1",
        "--threads", str(threads),
        "--timeout", "300",
        APP,
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=SCORING_DIR, start_new_session=True
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_ready(server, ready_timeout)
        yield server
    finally:
        stop(process)
