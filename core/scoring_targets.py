"""What ``Workspace.invoke`` needs of an endpoint, kept for a while: its scoring URI and credential.

On Azure ML each is a management call (reading the endpoint lists its
deployments too; reading its keys reads the endpoint again), so without this
one test prompt cost four calls to Azure Resource Manager before it was sent.
An entry is dropped when this workspace changes or deletes the endpoint or
regenerates a key, when the endpoint refuses the credential (a key
regenerated elsewhere: the caller asks again once), and when a token is due
for refresh.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .entities import Endpoint, EndpointCredentials, EndpointToken

KEEP_S = 300.0
TOKEN_MARGIN_S = 60.0  # a token is not used in its last minute


@dataclass(frozen=True)
class ScoringTarget:
    endpoint: Endpoint
    authorization: str  # the Authorization header's value
    until: float  # time.time() after which it is read again
    cached: bool = False  # served from the cache (so a 401 may mean it is stale)


class ScoringTargets:
    def __init__(self, keep_s: float = KEEP_S, clock: Callable[[], float] = time.time) -> None:
        self.keep_s, self.clock = keep_s, clock
        self._targets: dict[str, ScoringTarget] = {}
        self._lock = threading.Lock()

    def get(self, name: str, read: Callable[[], tuple[Endpoint, EndpointCredentials]]) -> ScoringTarget:
        now = self.clock()
        with self._lock:
            kept = self._targets.get(name)
        if kept is not None and now < kept.until:
            return ScoringTarget(kept.endpoint, kept.authorization, kept.until, cached=True)
        endpoint, credentials = read()
        target = ScoringTarget(endpoint, credentials.authorization, self._until(now, credentials))
        with self._lock:
            self._targets[name] = target
        return target

    def _until(self, now: float, credentials: EndpointCredentials) -> float:
        until = now + self.keep_s
        if isinstance(credentials, EndpointToken):
            due = credentials.refresh_after or (credentials.expires_at - TOKEN_MARGIN_S if credentials.expires_at
                                                else now)
            until = min(until, due)
        return until

    def forget(self, name: str) -> None:
        with self._lock:
            self._targets.pop(name, None)
