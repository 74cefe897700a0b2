"""Where local serving keeps its files inside a workspace home.

::

    <home>/gateway.port                   the gateway's port, chosen once (scoring URIs stay valid)
    <home>/requests.db                    per-request facts for monitoring (bounded)
    <home>/captures.db                    captured request bodies (bounded per capture; never a header)
    <home>/run/control-plane.json         pid of the running control plane
    <home>/run/gateway.json               pid of the running gateway
    <home>/run/serving-state.json         instances and rollouts, written by the control plane only
    <home>/run/admin-token                the gateway's admin token (0600), asked by /-/reload, /-/flush, /-/in-flight
    <home>/run/models/<name>/<version>/   what AZUREML_MODEL_DIR names: a link to the artifacts, laid out as on Azure
    <home>/logs/control-plane.log, gateway.log
    <home>/logs/endpoints/<endpoint>/<deployment>/<instance>.log    one per model-server instance
    <home>/logs/.../<name>.log.1, .2, .3                              rotated logs (see log_files)
    <home>/logs/endpoints/<endpoint>/<deployment>/storage-initializer.log
    <home>/code/<endpoint>/<deployment>/<generation>/              the code folder as deployed

Runtime files are written whole to a temporary name and renamed, so a
reader never sees half a file.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from ..home import make_private_dir
from .artifacts import sweep_left_over
from .processes import free_port


class ServingFiles:
    def __init__(self, home: str | Path) -> None:
        self.home = Path(home).expanduser().resolve()
        self.db = self.home / "byom.db"
        self.requests_db = self.home / "requests.db"
        self.captures_db = self.home / "captures.db"
        self.port_file = self.home / "gateway.port"
        self.run = self.home / "run"
        self.logs = self.home / "logs"
        self.code = self.home / "code"
        self.artifacts = self.home / "artifacts"  # the model store (artifacts.DirectoryArtifacts)
        self.control_plane = self.run / "control-plane.json"
        self.control_plane_lock = self.run / "control-plane.lock"
        self.control_plane_log = self.logs / "control-plane.log"
        self.gateway = self.run / "gateway.json"
        self.gateway_lock = self.run / "gateway.lock"
        self.gateway_log = self.logs / "gateway.log"
        self.state = self.run / "serving-state.json"

    def deployment_logs(self, endpoint: str, deployment: str) -> Path:
        return self.logs / "endpoints" / endpoint / deployment.lower()

    def instance_log(self, endpoint: str, deployment: str, instance_id: str) -> Path:
        return self.deployment_logs(endpoint, deployment) / f"{instance_id}.log"

    def storage_log(self, endpoint: str, deployment: str) -> Path:
        return self.deployment_logs(endpoint, deployment) / "storage-initializer.log"

    def code_snapshot(self, endpoint: str, deployment: str, generation: str) -> Path:
        return self.code / endpoint / deployment.lower() / generation

    def gateway_port(self) -> int:
        """The gateway's port for this home: picked once, then kept so that scoring URIs stay valid."""
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            pass
        make_private_dir(self.home)
        try:
            fd = os.open(self.port_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another process chose first
            return int(self.port_file.read_text().strip())
        port = free_port()
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{port}\n")
        return port


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] | None = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def start_service(argv: list[str] | None, prog: str, lock_name: str, what: str) -> tuple[ServingFiles, IO[str]] | None:
    """How the control plane and the gateway start: read --home, log, take the home's lock for ``what``.

    Returns the files and the lock (held while the file stays open), or None
    when another process already holds it: one of each per home.
    """
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--home", required=True)
    files = ServingFiles(parser.parse_args(argv).home)
    files.run.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname).1s [%(process)d] %(message)s")
    lock = open(getattr(files, lock_name), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        logging.getLogger(prog).info("Another %s serves %s; leaving it to that one.", what, files.home)
        lock.close()
        return None
    try:
        # what a killed registration left (any byom process starting on the home sweeps it)
        sweep_left_over(files.artifacts)
    except OSError:
        logging.getLogger(prog).exception("Sweeping left-over registration folders failed")
    return files, lock
