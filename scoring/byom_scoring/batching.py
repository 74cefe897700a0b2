"""Continuous (iteration-level) batching: requests join and leave a running batch at every step.

Each web-server thread hands its item to ``submit`` and blocks. One
background thread drives an engine (a ``RunningBatch`` in production): before
every step it admits the items waiting in the queue, up to ``max_batch`` rows
in all, then runs one step, which returns the items that are done; each
caller gets its result as soon as its own item is done. When the batch is
empty the thread waits for an item and then collects whatever else arrives
within ``wait_ms``, so requests sent together are prefilled together.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections.abc import Hashable
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Engine(Protocol[Item, Result]):
    def __len__(self) -> int: ...  # rows running

    def accepts(self) -> bool: ...  # whether items may join now

    def admit(self, entries: list[tuple[Hashable, Item]]) -> None: ...  # all or none

    def step(self) -> list[tuple[Hashable, Result]]: ...  # the entries that are done

    def clear(self) -> None: ...  # drop every row


class ContinuousBatcher(Generic[Item, Result]):
    def __init__(self, engine: Engine[Item, Result], *, max_batch: int = 16, wait_ms: float = 5.0):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.engine = engine
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000
        self._queue: queue.Queue[tuple[Item, Future[Result]]] = queue.Queue()
        self._keys = itertools.count()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.admissions: list[tuple[int, int]] = []  # (rows running, rows joining), for tests and logs

    def submit(self, item: Item) -> Result:
        """Run ``item`` in the batch and return its result (or raise the error that stopped it)."""
        return self.start(item).result()

    def start(self, item: Item) -> Future[Result]:
        """Queue ``item`` for the batch; the future gets its result (a streamed item is read as it runs)."""
        self._ensure_running()
        future: Future[Result] = Future()
        self._queue.put((item, future))
        return future

    def queued(self) -> int:
        """Items waiting to join the batch."""
        return self._queue.qsize()

    def _ensure_running(self) -> None:
        # Started on first use, and again after a fork (gunicorn --preload
        # forks workers after init()): threads do not survive a fork.
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="byom-batcher", daemon=True)
                self._thread.start()

    def _waiting(self, room: int, block: bool) -> list[tuple[Item, Future[Result]]]:
        """Up to ``room`` queued items; with ``block``, wait for one and then ``wait_ms`` for more."""
        if room <= 0:
            return []
        waiting = [self._queue.get()] if block else []
        deadline = time.monotonic() + (self.wait_s if block else 0)
        while len(waiting) < room:
            remaining = deadline - time.monotonic()
            try:
                waiting.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return waiting

    def _loop(self) -> None:
        engine = self.engine
        running: dict[Hashable, Future[Result]] = {}
        while True:
            room = self.max_batch - len(running) if engine.accepts() else 0
            joining = {next(self._keys): pair for pair in self._waiting(room, block=not running)}
            if joining:
                self.admissions.append((len(running), len(joining)))
                try:
                    engine.admit([(key, item) for key, (item, _) in joining.items()])
                    running.update((key, future) for key, (_, future) in joining.items())
                except BaseException as ex:  # these callers get the error; the running rows go on
                    for _, future in joining.values():
                        future.set_exception(ex)
            if not running:
                continue
            try:
                for key, result in engine.step():
                    running.pop(key).set_result(result)
            except BaseException as ex:  # every running caller gets the error; the loop lives on
                engine.clear()
                for future in running.values():
                    future.set_exception(ex)
                running.clear()
