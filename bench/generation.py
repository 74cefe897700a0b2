"""Generation side by side: byom's generate.py in its default precision, in float32, and llama.cpp, one run.

    .venv/bin/python -m bench.generation [--model DIR] [--clients 1 4 16] [--rounds 2] [--threads N]
        [--contenders byom float32 transformers transformers32 llama.cpp naive] [--llama-python PATH]

Contenders, all served at once on 127.0.0.1 on the same model:

- ``byom``: scoring/generate.py under the real inference server (gunicorn on
  its app, one worker with 16 threads), in its default precision
  (BYOM_GENERATION_DTYPE unset).
- ``float32``: the same with BYOM_GENERATION_DTYPE=float32, as byom served
  before precisions could be chosen.
- ``transformers``, ``transformers32``: ``byom`` and ``float32`` with
  BYOM_GENERATION_DECODER=transformers: decoded by transformers' modules, as
  before the lean decoder (byom_scoring/llama_decoder.py).
- ``llama.cpp``: llama-cpp-python's OpenAI-compatible server on the GGUF file
  the sample ships (the file byom's folder was packaged from). It is not a
  project dependency: build it once into a venv outside the project, e.g.
  ``python3 -m venv ~/.cache/byom-llama-cpp/venv && ~/.cache/byom-llama-cpp/venv/bin/pip
  install 'llama-cpp-python[server]'``, and pass that venv's python as
  --llama-python (that path is the default). Left out when it is missing.
- ``naive``: scoring/reference/generate_naive.py (one ``generate`` per request).

For each number of concurrent clients the contenders take turns, --rounds
times, so that all see the same load from whatever else runs on the machine;
every client sends --requests-per-client chat prompts (greedy,
--max-new-tokens) one after the other. Per contender and client count:
throughput (completion tokens the server reports over wall time, summed over
the rounds), p50/p95 request latency, time to first token (the latency of a
one-token request, sent by every client at once, before each turn), CPU
seconds the server's processes used per 100 tokens, and at the end the
server's peak resident memory (VmHWM of its processes, the largest; loading
counts) and what it holds resident then (VmRSS).

Torch threads: the scripts' default (cores / WORKER_COUNT) unless --threads
sets BYOM_TORCH_THREADS; llama.cpp gets --threads too, or the cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.servers import REPO, Server, free_port, inference_server, post, stop

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

LLAMA_PYTHON = Path.home() / ".cache" / "byom-llama-cpp" / "venv" / "bin" / "python"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Contender:
    name: str
    url: str
    pid: int  # the server's main process; its children are counted with it
    payload: Callable[[str, int], dict]
    completion_tokens: Callable[[dict], int]


def default_model() -> Path:
    from byom.core.sample import cached_packaged_sample

    return cached_packaged_sample(REPO / ".cache" / "byom")


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            pids.extend(process_tree(int(child)))
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def rss_mib(pid: int, field: str = "VmHWM") -> float:
    """The largest of the server's processes' ``field``: VmHWM, peak resident memory; VmRSS, resident now."""
    sizes = []
    for p in process_tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                sizes.append(int(line.split()[1]) / 1024)
    return max(sizes, default=float("nan"))


def byom_payload(question: str, max_new_tokens: int) -> dict:
    return {"messages": [{"role": "user", "content": question}], "max_new_tokens": max_new_tokens}


def openai_payload(question: str, max_new_tokens: int) -> dict:
    return {"messages": [{"role": "user", "content": question}], "max_tokens": max_new_tokens, "temperature": 0}


def request(contender: Contender, question: str, max_new_tokens: int) -> tuple[int, float]:
    start = time.perf_counter()
    status, body = post(contender.url, contender.payload(question, max_new_tokens), timeout=600)
    if status != 200:
        raise RuntimeError(f"{contender.name}: {status}: {body}")
    return contender.completion_tokens(body), time.perf_counter() - start


def load(contender: Contender, clients: int, requests_per_client: int, max_new_tokens: int) -> dict[str, float]:
    """One turn: time to first token, then ``clients`` concurrent clients; the figures of the turn."""
    with ThreadPoolExecutor(clients) as pool:
        first = list(pool.map(lambda c: request(contender, QUESTIONS[c % len(QUESTIONS)], 1)[1], range(clients)))

    def client(c: int) -> list[tuple[int, float]]:
        return [
            request(contender, QUESTIONS[(c * requests_per_client + r) % len(QUESTIONS)], max_new_tokens)
            for r in range(requests_per_client)
        ]

    cpu = cpu_seconds(contender.pid)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [item for per_client in pool.map(client, range(clients)) for item in per_client]
    wall = time.perf_counter() - start
    latencies = sorted(s for _, s in results)
    return {
        "tokens": sum(t for t, _ in results),
        "wall": wall,
        "cpu": cpu_seconds(contender.pid) - cpu,
        "latencies": latencies,
        "ttft": statistics.median(first),
    }


def percentile(values: list[float], share: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(share * (len(values) - 1)))]


@contextlib.contextmanager
def llama_cpp_server(python: Path, gguf: Path, log_path: Path, threads: int) -> Iterator[Server]:
    port = free_port()
    command = [
        str(python), "-m", "llama_cpp.server",
        "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(threads), "--n_ctx", "2048", "--chat_format", "chatml",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama.cpp's server exited with {process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(OSError):
                status, _ = post(server.url + "/v1/chat/completions", openai_payload("Hi", 1), timeout=60)
                if status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"llama.cpp's server did not answer within 180 s:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="transformers folder (default: the packaged SmolLM2 sample)")
    parser.add_argument("--gguf", type=Path, help="GGUF file for llama.cpp (default: the sample's)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of every server (BYOM_TORCH_THREADS)")
    parser.add_argument("--contenders", nargs="+", default=["byom", "float32", "llama.cpp"])
    parser.add_argument("--llama-python", type=Path, default=LLAMA_PYTHON)
    args = parser.parse_args()
    # Stopped with SIGTERM, still stop the servers (the with blocks below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    model = args.model or default_model()
    names = list(args.contenders)
    if "llama.cpp" in names and not args.llama_python.exists():
        print(f"llama.cpp left out: no {args.llama_python} (see the top of this file)")
        names.remove("llama.cpp")
    env = {"OMP_WAIT_POLICY": "PASSIVE"}
    if args.threads:
        env["BYOM_TORCH_THREADS"] = str(args.threads)
    scripts = {
        "byom": ("generate.py", {}),
        "float32": ("generate.py", {"BYOM_GENERATION_DTYPE": "float32"}),
        "transformers": ("generate.py", {"BYOM_GENERATION_DECODER": "transformers"}),
        "transformers32": (
            "generate.py", {"BYOM_GENERATION_DTYPE": "float32", "BYOM_GENERATION_DECODER": "transformers"}
        ),
        "naive": ("reference/generate_naive.py", {}),
    }
    print(
        f"model {model.name}; machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores; "
        f"threads: {args.threads or 'default'}; {args.max_new_tokens} new tokens per request, greedy; "
        f"contenders: {', '.join(names)}; load average {os.getloadavg()[0]:.2f}"
    )
    turns: dict[tuple[str, int], list[dict[str, float]]] = {(n, c): [] for n in names for c in args.clients}
    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as stack:
        contenders = []
        for name in names:
            log = Path(logs) / f"{name}.log"
            if name == "llama.cpp":
                from byom.core.sample import sample_gguf_path

                gguf = args.gguf or sample_gguf_path(install=True)
                threads = args.threads or len(os.sched_getaffinity(0))
                server = stack.enter_context(llama_cpp_server(args.llama_python, gguf, log, threads))
                contenders.append(
                    Contender(
                        name,
                        server.url + "/v1/chat/completions",
                        server.process.pid,
                        openai_payload,
                        lambda body: body["usage"]["completion_tokens"],
                    )
                )
            else:
                script, extra = scripts[name]
                server = stack.enter_context(inference_server(script, model, log, threads=16, env={**env, **extra}))
                contenders.append(
                    Contender(
                        name,
                        server.score_url,
                        server.process.pid,
                        byom_payload,
                        lambda body: body["usage"]["completion_tokens"],
                    )
                )
        for contender in contenders:
            request(contender, "Warm up.", 2)
        for clients in args.clients:
            for round_ in range(args.rounds):
                for contender in contenders:
                    turn = load(contender, clients, args.requests_per_client, args.max_new_tokens)
                    turns[contender.name, clients].append(turn)
                    print(
                        f"{contender.name:>9}  {clients:>2} clients  round {round_ + 1}  "
                        f"{turn['tokens'] / turn['wall']:7.1f} tokens/s  "
                        f"p50 {percentile(turn['latencies'], 0.5):6.2f} s  "
                        f"TTFT {turn['ttft']:5.2f} s  (load average {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
        rss = {c.name: (rss_mib(c.pid), rss_mib(c.pid, "VmRSS")) for c in contenders}
    print()
    print("| contender | clients | tokens/s | p50 latency (s) | p95 latency (s) | TTFT (s) | CPU s / 100 tokens |")
    print("|---|---|---|---|---|---|---|")
    for clients in args.clients:
        for name in names:
            ts = turns[name, clients]
            tokens = sum(t["tokens"] for t in ts)
            latencies = [s for t in ts for s in t["latencies"]]
            print(
                f"| {name} | {clients} | {tokens / sum(t['wall'] for t in ts):.1f} | "
                f"{percentile(latencies, 0.5):.2f} | {percentile(latencies, 0.95):.2f} | "
                f"{statistics.median(t['ttft'] for t in ts):.2f} | {100 * sum(t['cpu'] for t in ts) / tokens:.2f} |"
            )
    print()
    print(
        "resident memory, peak (at the end): "
        + ", ".join(f"{name} {peak:.0f} MiB ({now:.0f} MiB)" for name, (peak, now) in rss.items())
    )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
