"""The gateway's side of request capture: which endpoints capture, and their bodies buffered for the writer.

The routes' reload hands :meth:`Capturer.load` the capture records of
``byom.db``; a request answered through the split (a targeted one, like a
replay's, never is: as with the mirror) is kept by :meth:`Capturer.observe`
when its endpoint captures, the sample lets it in and the capture's bounds
have room, counting what is still buffered. :meth:`Capturer.write` writes
the buffer on the gateway's database thread, where the store checks the
bounds again (:mod:`core.local.captures`). Only the body is kept, never a
header.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...entities import Capture, CapturedRequest
from ..captures import CaptureStore


@dataclass
class _Active:
    capture: Capture
    requests: int  # stored and buffered
    bytes: int


class Capturer:
    def __init__(self, store: CaptureStore, rng: random.Random | None = None) -> None:
        self.store = store
        self.rng = rng or random.Random()
        self._lock = threading.Lock()  # load runs on the database thread, observe on the event loop
        self._active: dict[str, _Active] = {}  # by endpoint
        self._pending: list[tuple[Capture, CapturedRequest]] = []

    def load(self, docs: Iterable[dict[str, Any]]) -> None:
        """The capture records as stored: those capturing from now on (on the database thread)."""
        capturing = {c.endpoint: c for c in map(Capture.from_dict, docs) if c.capturing}
        with self._lock:
            known = {a.capture.id for a in self._active.values()}
        counts = self.store.counts([c.id for c in capturing.values() if c.id not in known])
        with self._lock:
            before = {a.capture.id: a for a in self._active.values()}
            active = {}
            for endpoint, capture in capturing.items():
                was = before.get(capture.id)
                counted = (was.requests, was.bytes) if was is not None else counts.get(capture.id, (0, 0))
                active[endpoint] = _Active(capture, *counted)
            self._active = active

    def observe(self, endpoint: str, deployment: str, targeted: bool, body: bytes, status: int, answer: bytes,
                started: float) -> None:
        """A request answered by ``deployment``; kept when its endpoint captures and it fits (on the loop)."""
        if targeted:
            return
        active = self._active.get(endpoint)
        if active is None:
            return
        capture = active.capture
        with self._lock:
            if active.requests + 1 > capture.max_requests or active.bytes + len(body) > capture.max_bytes:
                return
            if capture.sample_rate < 1 and self.rng.random() >= capture.sample_rate:
                return
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return  # scoring bodies are JSON: what is not text is not kept
            active.requests, active.bytes = active.requests + 1, active.bytes + len(body)
        latency_s = time.perf_counter() - started
        self._pending.append((capture, CapturedRequest(
            seq=0, at=time.time() - latency_s, body=text, deployment=deployment, status_code=status,
            latency_ms=latency_s * 1000, digest=hashlib.sha256(answer).hexdigest())))

    def take(self) -> list[tuple[Capture, CapturedRequest]]:
        """What is buffered, for :meth:`write` (on the loop, where it was buffered)."""
        batch, self._pending = self._pending, []
        return batch

    def write(self, batch: list[tuple[Capture, CapturedRequest]]) -> None:
        """Store a batch :meth:`take` gave (on the database thread)."""
        by_capture: dict[str, tuple[Capture, list[CapturedRequest]]] = {}
        for capture, request in batch:
            by_capture.setdefault(capture.id, (capture, []))[1].append(request)
        for capture, requests in by_capture.values():
            requests.sort(key=lambda r: r.at)
            self.store.add(capture.id, requests, capture.max_requests, capture.max_bytes)
