"""The traffic-rollout job: advances every running progressive rollout of the home (``core.traffic_rollout``).

The rollouts are records in ``byom.db`` (kind ``rollout``); each move goes
through a Workspace on the home, so the traffic rules and the audit records
are the Workspace's, and the gateway hears of each split as from any caller.
A control plane started again finds the running records and carries on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ...entities import RolloutState
from ...store.backend import StoreBackend
from ...traffic_rollout import advance
from ...workspace import Workspace
from ..sqlite_store import SqliteStore

log = logging.getLogger("byom.control-plane")

CHECK_EVERY_S = 0.25


class TrafficRollouts:
    def __init__(self, store: SqliteStore, backend: Callable[[], StoreBackend],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._backend_factory = backend
        self._backend: StoreBackend | None = None
        self.clock = clock
        self._last = float("-inf")
        self._failing: dict[str, str] = {}  # endpoint → the error its last advance raised

    def running(self) -> list[tuple[str, str]]:
        """(endpoint, actor) of each running rollout."""
        with self.store.transaction() as txn:
            return [(d["endpoint"], d.get("actor") or "") for d in txn.list("rollout")
                    if d.get("state") == RolloutState.RUNNING]

    def step(self) -> None:
        now = self.clock()
        if now - self._last < CHECK_EVERY_S:
            return
        self._last = now
        for endpoint, actor in self.running():
            if self._backend is None:
                self._backend = self._backend_factory()
            try:
                advance(Workspace(self._backend, actor=actor or None), endpoint)
                self._failing.pop(endpoint, None)
            except Exception as exc:  # one rollout's failure must not stop the others, nor the control plane
                if self._failing.get(endpoint) != repr(exc):  # logged once, not four times a second
                    self._failing[endpoint] = repr(exc)
                    log.exception("Advancing the rollout of endpoint %s failed; trying again", endpoint)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
