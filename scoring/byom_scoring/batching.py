"""Dynamic batching: calls that arrive together run as one batch.

Each web-server thread hands its item to ``submit`` and blocks. One
background thread takes the first waiting item, collects whatever else
arrives within ``wait_ms`` (up to ``max_batch`` items) and runs the batch
function once. The batch function calls ``deliver(index, result)`` for each
item as soon as that item is done (a short generation need not wait for a
long one in the same batch); each caller gets its own result. Items that
arrive while a batch runs queue up and form the next batch, so batches grow
with load.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class DynamicBatcher(Generic[Item, Result]):
    def __init__(
        self,
        run_batch: Callable[[list[Item], Callable[[int, Result], None]], None],
        *,
        max_batch: int = 16,
        wait_ms: float = 5.0,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000
        self._queue: queue.Queue[tuple[Item, Future[Result]]] = queue.Queue()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.batch_sizes: list[int] = []  # what ran, for tests and logs

    def submit(self, item: Item) -> Result:
        """Run ``item`` in the next batch and return its result (or raise the batch's error)."""
        self._ensure_running()
        future: Future[Result] = Future()
        self._queue.put((item, future))
        return future.result()

    def _ensure_running(self) -> None:
        # Started on first use, and again after a fork (gunicorn --preload
        # forks workers after init()): threads do not survive a fork.
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="byom-batcher", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            items = [item for item, _ in batch]
            futures = [future for _, future in batch]
            self.batch_sizes.append(len(items))
            try:
                self._run_batch(items, functools.partial(_deliver, futures))
                error: BaseException = RuntimeError("The batch function returned without a result for this item.")
            except BaseException as ex:  # the callers get the error; the loop lives on
                error = ex
            for future in futures:
                if not future.done():
                    future.set_exception(error)


def _deliver(futures: list[Future], index: int, result: object) -> None:
    futures[index].set_result(result)
