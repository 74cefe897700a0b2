"""core.local.process_stats: CPU and memory read from /proc of a real process tree, sampled bounded."""

from __future__ import annotations

import subprocess
import sys

from byom.core.local.process_stats import TICKS_PER_S, InstanceProcess, TreeReading, UsageSampler, read_tree
from byom.core.local.processes import start_time

from ..waiting import wait_until

# A parent holding ~40 MiB whose child spins: the tree's memory and CPU are both the sum.
TREE = (
    "import subprocess, sys, time\n"
    "ballast = bytearray(40 * 2**20)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
    "print(child.pid, flush=True)\n"
    "sys.stdin.read()\n"
    "child.kill()\n"
)


def test_a_process_tree_is_read_with_its_children():
    parent = subprocess.Popen([sys.executable, "-c", TREE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        start = start_time(parent.pid)
        first = read_tree(parent.pid, start)
        assert first is not None
        assert first.rss_bytes > 40 * 2**20
        later = wait_until(lambda: (r := read_tree(parent.pid, start)) and r.cpu_ticks > first.cpu_ticks + 5 and r,
                           30, "the spinning child's CPU time to count in its parent's tree")
        assert later.cpu_ticks > first.cpu_ticks
        assert read_tree(parent.pid, (start or 0) + 1) is None, "another process on the same pid is not ours"
        assert read_tree(child, None) is not None
    finally:
        parent.stdin.close()
        parent.wait(timeout=10)
    assert read_tree(parent.pid, start) is None


def test_cpu_is_a_rate_between_two_readings_and_sampling_is_throttled():
    clock = [100.0]
    ticks = {1: 0}
    sampler = UsageSampler(min_interval_s=2.0, clock=lambda: clock[0],
                           read=lambda pid, start: TreeReading(ticks[pid], 50 * 2**20) if pid in ticks else None)
    instances = [InstanceProcess("ep", "blue", 1, None), InstanceProcess("ep", "blue", 2, None),
                 InstanceProcess("other", "x", 1, None)]
    sampler.sample("ep", instances)
    [first] = sampler.history("ep", 0)
    assert first.cpu_percent is None, "one reading gives no rate"
    assert first.instances == 1 and first.memory_bytes == 50 * 2**20  # pid 2 is gone: not counted

    clock[0] += 1.0
    ticks[1] = TICKS_PER_S
    sampler.sample("ep", instances)
    assert len(sampler.history("ep", 0)) == 1, "read again within min_interval_s: nothing new"

    clock[0] += 1.0
    sampler.sample("ep", instances)
    [_, second] = sampler.history("ep", 0)
    assert second.cpu_percent == 50.0  # one second of CPU over two seconds
    assert sampler.history("ep", clock[0]) == [second]
    assert sampler.history("other", 0) == []


def test_history_is_bounded():
    clock = [0.0]
    sampler = UsageSampler(min_interval_s=0, history=3, clock=lambda: clock[0],
                           read=lambda pid, start: TreeReading(0, 1))
    for _ in range(10):
        clock[0] += 1
        sampler.sample("ep", [InstanceProcess("ep", "blue", 1, None)])
    assert [s.at for s in sampler.history("ep", 0)] == [8.0, 9.0, 10.0]
