"""The traffic-rollout job: advances every running progressive rollout of the home (``core.traffic_rollout``).

The rollouts are records in ``byom.db`` (kind ``rollout``); each move goes
through a Workspace on the home, so the traffic rules and the audit records
are the Workspace's, and the gateway hears of each split as from any caller.
A control plane started again finds the running records and carries on.
A rollout whose every move fails for ``GIVE_UP_AFTER_S`` is ended ``Failed``
(``core.traffic_rollout.give_up``), not retried for ever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ...entities import RolloutState
from ...store.backend import StoreBackend
from ...traffic_rollout import GIVE_UP_AFTER_S, advance, give_up
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
        self._failing: dict[str, tuple[str, float]] = {}  # endpoint → (its last advance's error, failing since)
        self._ending_failed: set[str] = set()  # endpoints whose give_up failed: logged once

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
            ws = Workspace(self._backend, actor=actor or None)
            try:
                advance(ws, endpoint)
                self._failing.pop(endpoint, None)
            except Exception as exc:  # one rollout's failure must not stop the others, nor the control plane
                error, since = self._failing.get(endpoint, ("", now))
                self._failing[endpoint] = (str(exc) or repr(exc), since)
                if error != self._failing[endpoint][0]:  # logged once, not four times a second
                    log.exception("Advancing the rollout of endpoint %s failed; trying again", endpoint)
                if now - since >= GIVE_UP_AFTER_S:
                    self._give_up(ws, endpoint, now - since)

    def _give_up(self, ws: Workspace, endpoint: str, failing_s: float) -> None:
        try:
            give_up(ws, endpoint, self._failing[endpoint][0], failing_s)
        except Exception:  # where even ending it cannot be recorded, it is tried again at the next check
            if endpoint not in self._ending_failed:
                self._ending_failed.add(endpoint)
                log.exception("Ending the failing rollout of endpoint %s failed; trying again", endpoint)
        else:
            log.error("The rollout of endpoint %s was ended: its moves kept failing for %.0f s", endpoint, failing_s)
            self._failing.pop(endpoint, None)
            self._ending_failed.discard(endpoint)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
