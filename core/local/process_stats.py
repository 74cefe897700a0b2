"""CPU and memory of the local model servers, read from ``/proc`` of the pids the serving state records.

An instance is a process tree (azmlinfsrv starts gunicorn, gunicorn its
worker, which holds the model): its use is the sum over the instance's pid
and its descendants, found through ``/proc/<pid>/task/<pid>/children``. Each
read is a handful of small files; the tree walk is bounded. CPU is a rate, so
it needs two readings of the same process: the sampler keeps the last
reading of each ``(pid, start)`` and a bounded history per deployment, and
reads no more often than ``min_interval_s`` however many pages ask.

The rate is summed per process of the tree, from the ticks of each
``(pid, start)`` read last time: a gunicorn worker that exits and is replaced
takes its CPU time out of the tree's total, which must not read as negative
use. Only the processes of the latest reading are remembered.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..metrics_series import ResourceSample

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MAX_TREE = 64  # processes read per instance at most
HISTORY = 720  # samples kept per deployment (an hour at one every 5 s)


ProcessKey = tuple[int, int | None]  # (pid, start time): a pid alone may be another process by now


@dataclass(frozen=True)
class TreeReading:
    ticks: Mapping[ProcessKey, int]  # user + system CPU time of each live process of the tree
    rss_bytes: int

    @property
    def cpu_ticks(self) -> int:
        return sum(self.ticks.values())


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from the state on (the name before it may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def read_tree(pid: int, start: int | None) -> TreeReading | None:
    """CPU time and resident memory of ``pid`` (while it is the process started at ``start``) and its descendants."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z" or (start is not None and int(fields[19]) != start):
        return None
    ticks: dict[ProcessKey, int] = {}
    rss = 0
    todo, seen = [pid], 0
    while todo and seen < MAX_TREE:
        current = todo.pop()
        stat = fields if current == pid else _stat_fields(current)
        seen += 1
        if stat is None or stat[0] == "Z":
            continue
        ticks[(current, int(stat[19]))] = int(stat[11]) + int(stat[12])  # utime, stime
        rss += int(stat[21]) * PAGE_SIZE
        todo.extend(_children(current))
    return TreeReading(ticks, rss)


@dataclass
class _Total:
    instances: int = 0
    cpu_percent: float | None = None
    memory_bytes: int = 0


@dataclass(frozen=True)
class InstanceProcess:
    endpoint: str
    deployment: str
    pid: int
    start: int | None


class UsageSampler:
    """Samples the deployments' processes on demand and keeps what it read, bounded."""

    def __init__(self, *, min_interval_s: float = 2.0, history: int = HISTORY,
                 clock: Callable[[], float] = time.time,
                 read: Callable[[int, int | None], TreeReading | None] = read_tree) -> None:
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._read = read
        self._history_len = history
        # per endpoint, per instance (pid, start): when it was last read, and the ticks of each of its processes
        self._last: dict[str, dict[ProcessKey, tuple[float, Mapping[ProcessKey, int]]]] = {}
        self._history: dict[tuple[str, str], deque[ResourceSample]] = {}
        self._sampled_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def sample(self, endpoint: str, instances: Iterable[InstanceProcess]) -> None:
        """Read the endpoint's instances once (unless read less than ``min_interval_s`` ago)."""
        with self._lock:
            now = self._clock()
            if now - self._sampled_at.get(endpoint, float("-inf")) < self.min_interval_s:
                return
            self._sampled_at[endpoint] = now
            totals: dict[str, _Total] = {}
            last, read_now = self._last.get(endpoint, {}), {}
            for inst in instances:
                if inst.endpoint != endpoint:
                    continue
                reading = self._read(inst.pid, inst.start)
                if reading is None:
                    continue
                key = (inst.pid, inst.start)
                before = last.get(key)
                read_now[key] = (now, reading.ticks)
                total = totals.setdefault(inst.deployment, _Total())
                total.instances += 1
                total.memory_bytes += reading.rss_bytes
                if before is not None and now > before[0]:
                    used = 100.0 * _ticks_used(before[1], reading.ticks) / TICKS_PER_S / (now - before[0])
                    total.cpu_percent = (total.cpu_percent or 0.0) + used
            self._last[endpoint] = read_now  # an instance or a process gone since is forgotten
            for deployment, total in totals.items():
                history = self._history.setdefault((endpoint, deployment), deque(maxlen=self._history_len))
                history.append(ResourceSample(at=now, endpoint=endpoint, deployment=deployment,
                                              instances=total.instances, cpu_percent=total.cpu_percent,
                                              memory_bytes=total.memory_bytes))

    def remembered(self) -> set[ProcessKey]:
        """The processes (instances and their descendants) whose last reading is kept for the next rate."""
        with self._lock:
            return {p for instances in self._last.values() for _, ticks in instances.values() for p in ticks}

    def history(self, endpoint: str, since: float) -> list[ResourceSample]:
        """The samples of the endpoint's deployments taken since ``since``, oldest first."""
        with self._lock:
            rows = [s for (ep, _), samples in self._history.items() if ep == endpoint for s in samples
                    if s.at >= since]
        return sorted(rows, key=lambda s: (s.at, s.deployment))


def _ticks_used(before: Mapping[ProcessKey, int], now: Mapping[ProcessKey, int]) -> int:
    """CPU ticks the tree used between two readings: a process started since counts from 0, one gone since counts
    nothing (what it used after the last reading is lost with it)."""
    return sum(max(0, ticks - before.get(key, 0)) for key, ticks in now.items())
