"""The in-memory workspace: the whole contract with no files and no processes.

It ships inside the library (as ``httpx.MockTransport`` does) so that console
tests and demos run without a backend, and it passes the same contract suite
as the real backends. Deployments succeed at once and are answered by
``serving.responder``; ``serving.history`` lists what they received.
"""

from __future__ import annotations

from .artifacts import MemoryArtifacts
from .builds import FakeBuilder
from .serving import FakeServing, Responder, echo_responder
from .store import MemoryStore
from .store_workspace import StoreWorkspace


class InMemoryWorkspace(StoreWorkspace):
    kind = "memory"

    def __init__(self, *, responder: Responder = echo_responder, actor: str | None = None, seed: int | None = None) -> None:
        self.fake_serving = FakeServing(responder, seed=seed)
        super().__init__(
            MemoryStore(), MemoryArtifacts(), self.fake_serving, builder=FakeBuilder(),
            actor=actor, name="in-memory", location="memory",
        )
