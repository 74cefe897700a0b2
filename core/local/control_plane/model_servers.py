"""The instance supervisor's :class:`~core.local.control.instances.Runtime` over real model-server processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ...entities import utcnow
from ..log_files import log_tail
from ..model_server import InstanceSpec, launch, probe
from ..processes import Child, free_port, kill_group
from ..serving_files import ServingFiles
from .gateway_supervisor import GatewaySupervisor
from .generations import append_line
from .instances import LOG_TAIL_LINES, Instance, Process


class ModelServers:
    def __init__(self, files: ServingFiles, specs: Mapping[str, InstanceSpec], gateway: GatewaySupervisor) -> None:
        self.files = files
        self.specs = specs  # by generation: the planner's, read at each start
        self.gateway = gateway
        self.probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")

    def log_path(self, inst: Instance) -> Path:
        return self.files.instance_log(inst.endpoint, inst.deployment, inst.id)

    def start(self, inst: Instance, avoid_ports: set[int]) -> tuple[int, Child]:
        spec = self.specs[inst.generation]
        port = free_port(avoid=avoid_ports)
        logfile = self.log_path(inst)
        append_line(logfile, f"=== byom: starting {inst.id} on 127.0.0.1:{port} with {spec.interpreter} "
                             f"(restart {inst.restarts}) at {utcnow()}")
        return port, launch(spec, port, logfile, self.files.home)

    def probe(self, port: int, timeout_s: float) -> Future[bool]:
        return self.probes.submit(probe, port, timeout_s)

    def kill_group(self, proc: Process) -> None:
        kill_group(proc.ref)

    def terminate(self, proc: Process) -> None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, inst: Instance) -> str:
        return log_tail(self.log_path(inst), LOG_TAIL_LINES)

    def log_line(self, inst: Instance, line: str) -> None:
        append_line(self.log_path(inst), line)

    def timed_out(self, port: int) -> int | None:
        return self.gateway.timed_out(port)

    def drained(self, port: int, since: float) -> bool:
        return self.gateway.drained(port, since)

    def close(self) -> None:
        self.probes.shutdown(wait=False, cancel_futures=True)
