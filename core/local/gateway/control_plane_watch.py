"""The gateway's half of mutual supervision: it starts the home's control plane again when that one crashed.

The control plane restarts the gateway (``control_plane.gateway_supervisor``);
this restarts the control plane, so a crash of either is repaired without
anyone running ``byom local start``. A crash is a control-plane record
(``run/control-plane.json``) naming a process that no longer runs: a control
plane that stops as asked (``byom local stop``, SIGTERM) removes its record
first, and is left stopped. Starts back off as the other restarts do, from
the shortest again once a control plane has run for ``HEALTHY_S``; two
starting at once is harmless, the home's lock keeps one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable

from ..control_plane.instances import backoff
from ..processes import HOME_MARKER, ProcessRef, spawn_detached
from ..serving_files import ServingFiles, read_json

log = logging.getLogger("byom.gateway")

CONTROL_PLANE_MODULE = "byom.core.local.control_plane"
CHECK_EVERY_S = 0.5
HEALTHY_S = 10.0


class ControlPlaneWatch:
    def __init__(self, files: ServingFiles, clock: Callable[[], float] = time.monotonic,
                 start: Callable[[ServingFiles], object] | None = None) -> None:
        self.files = files
        self.clock = clock
        self.start = start or start_control_plane
        self.streak = 0
        self.next_start = 0.0
        self.alive_since: float | None = None
        self.restarts = 0

    def check(self) -> bool:
        """Start the control plane if it crashed and its backoff is over; True when it was started."""
        record = read_json(self.files.control_plane)
        now = self.clock()
        if not record:
            self.alive_since = None  # stopped as asked, or never started: not this watch's business
            return False
        if ProcessRef(record.get("pid") or 0, record.get("start")).alive():
            if self.alive_since is None:
                self.alive_since = now
            elif now - self.alive_since >= HEALTHY_S:
                self.streak = 0
            return False
        self.alive_since = None
        if now < self.next_start:
            return False
        self.streak += 1
        self.next_start = now + backoff(self.streak)
        log.warning("The control plane (pid %s) is gone without stopping: starting it again", record.get("pid"))
        self.start(self.files)
        self.restarts += 1
        return True


def start_control_plane(files: ServingFiles) -> ProcessRef:
    env = {**os.environ, HOME_MARKER: str(files.home)}
    return spawn_detached([sys.executable, "-m", CONTROL_PLANE_MODULE, "--home", str(files.home)], env=env,
                          log_path=files.control_plane_log)


async def watch_control_plane(files: ServingFiles) -> None:
    """Check every ``CHECK_EVERY_S`` until cancelled; the checks run off the event loop (they start processes)."""
    watch = ControlPlaneWatch(files)
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(CHECK_EVERY_S)
        try:
            await loop.run_in_executor(None, watch.check)
        except Exception:
            log.exception("Checking on the control plane failed")
