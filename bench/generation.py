"""Generation throughput: scoring/generate.py (continuous batching) against the naive reference script, one run.

    .venv/bin/python -m bench.generation [--model DIR] [--clients 1 4 16] [--rounds 2] [--threads N]

Both scripts are served at once by the real inference server (gunicorn on
its app, one worker with 16 threads each, bound to 127.0.0.1) on the same
model and the same settings. For each number of concurrent clients the two
take turns, --rounds times, so that both see the same load from whatever
else runs on the machine; every client sends --requests-per-client chat
prompts (greedy, --max-new-tokens) one after the other. Throughput is the
completion tokens the server reports divided by the wall time, summed over
the rounds. The workers' peak resident memory is read from /proc at the end.

Torch threads: the scripts' default (cores / WORKER_COUNT) unless --threads
sets BYOM_TORCH_THREADS. OMP_WAIT_POLICY=PASSIVE is set for both servers:
generate.py sets it itself, the reference imports torch before it could.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.servers import REPO, inference_server, post

QUESTIONS = [
    "What is the capital of France?",
    "Give me three tips for a good night's sleep.",
    "Explain what a neural network is in simple words.",
    "Write a short poem about the sea.",
    "How do plants make their food?",
    "What is the difference between weather and climate?",
    "Suggest a name for a friendly robot.",
    "Why is the sky blue?",
]

SCRIPTS = {"batched": "generate.py", "naive": "reference/generate_naive.py"}


def default_model() -> Path:
    from byom.core.sample import cached_packaged_sample

    return cached_packaged_sample(REPO / ".cache" / "byom")


def worker_peak_rss_mib(master_pid: int) -> float:
    peaks = []
    for children in Path(f"/proc/{master_pid}/task").glob("*/children"):
        for pid in children.read_text().split():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=float("nan"))


def load(url: str, clients: int, requests_per_client: int, max_new_tokens: int) -> tuple[int, float, float]:
    """(completion tokens, wall time s, median latency s) for ``clients`` concurrent clients."""

    def client(c: int) -> list[tuple[int, float]]:
        done = []
        for r in range(requests_per_client):
            question = QUESTIONS[(c * requests_per_client + r) % len(QUESTIONS)]
            payload = {"messages": [{"role": "user", "content": question}], "max_new_tokens": max_new_tokens}
            start = time.perf_counter()
            status, body = post(url, payload, timeout=600)
            if status != 200:
                raise RuntimeError(f"{status}: {body}")
            done.append((body["usage"]["completion_tokens"], time.perf_counter() - start))
        return done

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [item for per_client in pool.map(client, range(clients)) for item in per_client]
    wall = time.perf_counter() - start
    return sum(t for t, _ in results), wall, statistics.median(s for _, s in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, help="transformers folder or .gguf (default: the packaged SmolLM2 sample)"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads in the server (BYOM_TORCH_THREADS)")
    args = parser.parse_args()
    # Stopped with SIGTERM, still stop the servers (the with blocks below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    model = args.model or default_model()
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    if args.threads:
        env["BYOM_TORCH_THREADS"] = str(args.threads)
    print(
        f"model {model.name}; machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores; "
        f"torch threads: {args.threads or 'default'}; {args.max_new_tokens} new tokens per request, greedy; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    tokens = {(label, c): 0.0 for label in SCRIPTS for c in args.clients}
    seconds = dict.fromkeys(tokens, 0.0)
    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as stack:
        servers = {
            label: stack.enter_context(
                inference_server(script, model, Path(logs) / f"{label}.log", threads=16, env=env)
            )
            for label, script in SCRIPTS.items()
        }
        for server in servers.values():
            post(server.score_url, {"prompt": "Warm up.", "max_new_tokens": 2}, timeout=600)
        for clients in args.clients:
            for round_ in range(args.rounds):
                rates = {}
                for label, server in servers.items():
                    n, wall, latency = load(server.score_url, clients, args.requests_per_client, args.max_new_tokens)
                    tokens[label, clients] += n
                    seconds[label, clients] += wall
                    rates[label] = n / wall
                    print(
                        f"{label:>8}  {clients:>2} clients  round {round_ + 1}  {n / wall:7.1f} tokens/s  "
                        f"median latency {latency:6.2f} s  (load average {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
                print(
                    f"{'':>8}  {clients:>2} clients  round {round_ + 1}  ratio {rates['batched'] / rates['naive']:.1f}×"
                )
        for label, server in servers.items():
            print(f"{label:>8}  worker peak resident memory {worker_peak_rss_mib(server.process.pid):.0f} MiB")
    print()
    for clients in args.clients:
        rate = {label: tokens[label, clients] / seconds[label, clients] for label in SCRIPTS}
        print(
            f"{clients:>2} clients: batched {rate['batched']:.1f} tokens/s, naive {rate['naive']:.1f} tokens/s, "
            f"ratio {rate['batched'] / rate['naive']:.1f}×"
        )


if __name__ == "__main__":
    main()
