"""The gateway supervisor: keeps the home's gateway process running, and talks to it.

The control plane tells the gateway to reload its routes after instances
change, and asks it how many requests are in flight on an instance being
drained.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..gateway import admin_token
from ..processes import HOME_MARKER, Child, ProcessRef, spawn
from ..serving_files import ServingFiles, read_json
from .instances import backoff

log = logging.getLogger("byom.control-plane")

GATEWAY_MODULE = "byom.core.local.gateway"
HEALTHY_S = 10.0  # a gateway up this long starts its next crash streak from the shortest backoff


class GatewaySupervisor:
    def __init__(self, files: ServingFiles, clock: Callable[[], float] = time.monotonic) -> None:
        self.files = files
        self.clock = clock
        self.process: Child | None = None
        self.next_start = 0.0
        self.crashes = 0
        self.up_since = 0.0  # when the running gateway was started or adopted
        self.last_poke = 0.0  # when the gateway last confirmed a reload of its routes

    def supervise(self) -> None:
        """Start the gateway unless it runs (adopting one that does); after a crash, wait a backoff first."""
        if self.process is not None and self.process.alive():
            return
        now = self.clock()
        if self.process is not None:
            self.process = None
            if now - self.up_since >= HEALTHY_S:
                self.crashes = 0
            self.crashes += 1
            self.next_start = now + backoff(self.crashes)
            log.info("The gateway stopped; starting it again in %.1f s", self.next_start - now)
        if now < self.next_start:
            return
        record = read_json(self.files.gateway) or {}
        ref = ProcessRef(record.get("pid") or 0, record.get("start"))
        if ref.pid and ref.alive():
            self.process = Child(ref)
            self.up_since = now
            return
        env = {**os.environ, HOME_MARKER: str(self.files.home)}
        self.process = spawn([sys.executable, "-m", GATEWAY_MODULE, "--home", str(self.files.home)],
                             env=env, log_path=self.files.gateway_log)
        self.up_since = now
        log.info("Started the gateway (pid %d)", self.process.pid)

    def _request(self, method: str, path: str) -> dict[str, Any] | None:
        record = read_json(self.files.gateway)
        if not record:
            return None
        conn = http.client.HTTPConnection("127.0.0.1", record["port"], timeout=2)
        try:
            conn.request(method, path, headers=admin_token.headers(self.files.run))
            response = conn.getresponse()
            answer: dict[str, Any] | None = json.loads(response.read()) if response.status == 200 else None
            return answer
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            conn.close()

    def poke(self) -> None:
        """Have the gateway reload its routes now."""
        if self._request("POST", "/-/reload") is not None:
            self.last_poke = self.clock()

    def in_flight(self, port: int) -> int | None:
        answer = self._request("GET", "/-/in-flight")
        return None if answer is None else int(answer.get(str(port), 0))

    def timed_out(self, port: int) -> int | None:
        """How many requests to ``port`` the gateway answered 408 (None: it did not say)."""
        answer = self._request("GET", "/-/timed-out")
        return None if answer is None else int(answer.get(str(port), 0))

    def drained(self, port: int, since: float) -> bool:
        """The gateway reloaded its routes after ``since`` and has no request in flight on ``port``."""
        return self.last_poke > since and self.in_flight(port) == 0
