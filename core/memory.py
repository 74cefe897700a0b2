"""The in-memory workspace: the whole contract with no files and no processes.

It ships inside the library (as ``httpx.MockTransport`` does) so that console
tests and demos run without a backend, and it passes the same contract suite
as the real backends. It is the store-backed backend in its memory
configuration: deployments succeed at once and are answered by
``serving.responder``; ``serving.history`` lists what they received. ``word_s``
paces a streamed answer's words (the console's demo: :data:`DEMO_WORD_S`).
"""

from __future__ import annotations

from .artifacts import MemoryArtifacts
from .builds import FakeBuilder
from .serving import FakeServing, Responder, Serving, echo_responder
from .store import MemoryStore
from .store.backend import StoreBackend
from .workspace import Workspace

DEMO_WORD_S = 0.03
"""Between the words of a streamed answer in the in-memory demo: about the pace of a small model on a CPU."""


class InMemoryWorkspace(Workspace):
    def __init__(self, *, responder: Responder = echo_responder, actor: str | None = None,
                 seed: int | None = None, word_s: float = 0.0) -> None:
        self.fake_serving = FakeServing(responder, seed=seed, word_s=word_s)
        self.store_backend = StoreBackend(MemoryStore(), MemoryArtifacts(), self.fake_serving, builder=FakeBuilder(),
                                          kind="memory", name="in-memory", location="memory")
        super().__init__(self.store_backend, actor=actor)

    @property
    def serving(self) -> Serving:
        """What runs its deployments: ``fake_serving`` unless a test puts another in."""
        return self.store_backend.serving

    @serving.setter
    def serving(self, serving: Serving) -> None:
        self.store_backend.serving = serving
