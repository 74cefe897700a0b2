"""core.local.process_stats: CPU and memory read from /proc of a real process tree, sampled bounded."""

from __future__ import annotations

import subprocess
import sys

from byom.core.local.process_stats import TICKS_PER_S, InstanceProcess, TreeReading, UsageSampler, read_tree
from byom.core.local.processes import alive, start_time

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
    sampler = UsageSampler(
        min_interval_s=2.0, clock=lambda: clock[0],
        read=lambda pid, start: TreeReading({(pid, 1): ticks[pid]}, 50 * 2**20) if pid in ticks else None)
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
                           read=lambda pid, start: TreeReading({(pid, 1): 0}, 1))
    for _ in range(10):
        clock[0] += 1
        sampler.sample("ep", [InstanceProcess("ep", "blue", 1, None)])
    assert [s.at for s in sampler.history("ep", 0)] == [8.0, 9.0, 10.0]


# A parent (the gunicorn master) whose child (a worker) spins until it is replaced by an idle one, as gunicorn
# replaces a worker that exits: each line on stdin swaps the child, and the new child's pid is printed.
SWAPPING = (
    "import subprocess, sys\n"
    "spin = [sys.executable, '-c', 'while True: pass']\n"
    "idle = [sys.executable, '-c', 'import sys; sys.stdin.read()']\n"
    "child = subprocess.Popen(spin)\n"
    "print(child.pid, flush=True)\n"
    "for line in sys.stdin:\n"
    "    child.kill(); child.wait()\n"
    "    child = subprocess.Popen(idle, stdin=subprocess.PIPE)\n"
    "    print(child.pid, flush=True)\n"
    "child.kill()\n"
)


def test_a_replaced_worker_never_makes_cpu_negative_and_is_forgotten():
    parent = subprocess.Popen([sys.executable, "-c", SWAPPING], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        spinner = int(parent.stdout.readline())
        start, spinner_key = start_time(parent.pid), (spinner, start_time(spinner))
        clock = [0.0]
        sampler = UsageSampler(min_interval_s=0, clock=lambda: clock[0])
        instances = [InstanceProcess("ep", "blue", parent.pid, start)]
        sampler.sample("ep", instances)
        wait_until(lambda: (r := read_tree(*spinner_key)) and r.cpu_ticks >= 20, 30,
                   "the worker to have used 0.2 s of CPU")
        clock[0] += 1
        sampler.sample("ep", instances)
        assert sampler.history("ep", 0)[-1].cpu_percent > 0

        parent.stdin.write("swap\n")
        parent.stdin.flush()
        idle = int(parent.stdout.readline())
        idle_key = (idle, start_time(idle))
        assert not alive(*spinner_key) and alive(*idle_key), "the new worker runs in place of the old"
        clock[0] += 1
        sampler.sample("ep", instances)
        after = sampler.history("ep", 0)[-1]
        assert after.instances == 1
        assert after.cpu_percent is not None and after.cpu_percent >= 0, after
        remembered = sampler.remembered()
        assert spinner_key not in remembered, "the worker that exited is forgotten"
        assert {(parent.pid, start), idle_key} <= remembered
    finally:
        parent.stdin.close()
        parent.wait(timeout=10)


def test_only_the_processes_of_the_latest_reading_are_remembered():
    clock = [0.0]
    trees = {1: {(1, 1): 10, (2, 5): 400}, 7: {(7, 3): 0}}
    sampler = UsageSampler(min_interval_s=0, clock=lambda: clock[0],
                           read=lambda pid, start: TreeReading(trees[pid], 1) if pid in trees else None)
    instances = [InstanceProcess("ep", "blue", 1, 1), InstanceProcess("ep", "green", 7, 3)]
    sampler.sample("ep", instances)
    sampler.sample("other", [InstanceProcess("other", "x", 9, 9)])  # gone: nothing to keep
    assert sampler.remembered() == {(1, 1), (2, 5), (7, 3)}
    clock[0] += 1
    trees[1] = {(1, 1): 10 + TICKS_PER_S // 2, (3, 8): TICKS_PER_S // 4}  # the worker 2 exited, 3 replaced it
    del trees[7]  # and the green instance stopped
    sampler.sample("ep", instances)
    [blue] = [s for s in sampler.history("ep", 1) if s.deployment == "blue"]
    assert blue.cpu_percent == 100.0 * (TICKS_PER_S // 2 + TICKS_PER_S // 4) / TICKS_PER_S
    assert sampler.remembered() == {(1, 1), (3, 8)}
