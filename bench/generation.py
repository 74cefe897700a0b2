"""Generation throughput: scoring/generate.py (dynamic batching) against the naive reference script, one run.

    .venv/bin/python -m bench.generation [--model DIR] [--clients 1 4 16] [--threads N]

Each script is served in turn by the real inference server (gunicorn on its
app, one worker with 16 threads, bound to 127.0.0.1) on the same model. For
each number of concurrent clients, every client sends --requests-per-client
chat prompts (greedy, --max-new-tokens); throughput is the completion tokens
the server reports, divided by the wall time. The worker's peak resident
memory is read from /proc at the end of each script's run.
"""

from __future__ import annotations

import argparse
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
    from core.sample import cached_packaged_sample

    return cached_packaged_sample(REPO / ".cache" / "byom")


def worker_peak_rss_mib(master_pid: int) -> float:
    peaks = []
    for children in Path(f"/proc/{master_pid}/task").glob("*/children"):
        for pid in children.read_text().split():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=float("nan"))


def load(url: str, clients: int, requests_per_client: int, max_new_tokens: int) -> tuple[float, float, float]:
    """(completion tokens per second, median latency s, requests) for ``clients`` concurrent clients."""

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
    tokens = sum(t for t, _ in results)
    return tokens / wall, statistics.median(s for _, s in results), len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, help="transformers folder or .gguf (default: the packaged SmolLM2 sample)"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads in the server (BYOM_TORCH_THREADS)")
    args = parser.parse_args()
    # Stopped with SIGTERM, still stop the servers (the with blocks below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    model = args.model or default_model()
    env = {"BYOM_TORCH_THREADS": str(args.threads)} if args.threads else {}
    print(
        f"model {model.name}; machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores; "
        f"torch threads: {args.threads or 'default'}; {args.max_new_tokens} new tokens per request, greedy"
    )
    figures: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as logs:
        for label, script in SCRIPTS.items():
            with inference_server(script, model, Path(logs) / f"{label}.log", threads=16, env=env) as server:
                post(server.score_url, {"prompt": "Warm up.", "max_new_tokens": 2}, timeout=600)
                for clients in args.clients:
                    rate, latency, n = load(server.score_url, clients, args.requests_per_client, args.max_new_tokens)
                    figures[label, clients] = rate
                    print(
                        f"{label:>8}  {clients:>2} clients  {n:>3} requests  {rate:7.1f} tokens/s  "
                        f"median latency {latency:6.2f} s",
                        flush=True,
                    )
                print(f"{label:>8}  worker peak resident memory {worker_peak_rss_mib(server.process.pid):.0f} MiB")
    print()
    for clients in args.clients:
        ratio = figures["batched", clients] / figures["naive", clients]
        print(f"{clients:>2} clients: batched / naive throughput = {ratio:.1f}×")


if __name__ == "__main__":
    main()
