"""Streaming through the gateway against the instance directly: time to first token and tokens/s, one run.

    .venv/bin/python -m bench.gateway_stream [--clients 1 16] [--rounds 5] [--streams-per-client 4]
        [--max-tokens 32] [--threads 1]

A fresh workspace home gets one deployment of scoring/generate.py (one
instance, max_concurrent_requests_per_instance 16, so the gateway admits 32
streams and never answers 429 here) on a tiny random Llama (2 layers, hidden
size 64, the sample's tokenizer). The tiny model is on purpose: a decode
step of a few milliseconds leaves the gateway's own cost per stream and per
chunk in plain view; with the sample model's tens of milliseconds a step the
same overhead is a smaller share.

For each number of concurrent clients, in each round, the two paths take
turns (their order swapped every round, so both see the same load):

- ``direct``: POST the instance's own port ``/score`` with the native
  streaming body, the body the gateway itself sends for the OpenAI request
  (``core.openai_api.parse_request(...).native_body()``);
- ``gateway``: POST ``<openai_base_url>/chat/completions`` with the endpoint
  key, ``stream: true`` and ``stream_options.include_usage``.

Every client (an asyncio task of one aiohttp session, keep-alive, in this
process) sends --streams-per-client greedy chat streams one after the other.
Time to first token: from sending to the first event that carries text (the
gateway's role-only first chunk does not count), p50 and p95 over every
stream. Tokens/s: the completion tokens the streams' usage reports, over the
turn's wall time. The issue's goals: the gateway adds at most 2 ms to time
to first token and keeps at least 95 % of the tokens/s.

Client, gateway and model server share the machine; the load average before
and after is printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from byom.core.entities import Deployment, Endpoint, ModelSpec, RequestSettings
from byom.core.local.workspace import LocalWorkspace
from byom.core.openai_api import Kind, base_url, parse_request

from bench.gateway import cpu_seconds, percentile

REPO = Path(__file__).resolve().parent.parent
QUESTION = "Tell me about the gateway."


@dataclass
class Route:
    name: str
    url: str
    headers: dict[str, str]
    body: bytes
    first_text: Callable[[dict], bool]  # whether an event carries the first text
    completion_tokens: Callable[[dict], int | None]


@dataclass
class Turn:
    ttft_ms: list[float] = field(default_factory=list)
    tokens: int = 0
    wall_s: float = 0.0
    gateway_cpu_s: float = 0.0


async def one_stream(session: aiohttp.ClientSession, path: Route, turn: Turn) -> None:
    sent = time.perf_counter()
    first: float | None = None
    tokens: int | None = None
    async with session.post(path.url, data=path.body, headers=path.headers) as answer:
        if answer.status != 200:
            raise RuntimeError(f"{path.name}: {answer.status}: {(await answer.read())[:300]!r}")
        async for line in answer.content:
            if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                continue
            data = json.loads(line[5:])
            if first is None and path.first_text(data):
                first = time.perf_counter()
            tokens = path.completion_tokens(data) or tokens
    if first is None or tokens is None:
        raise RuntimeError(f"{path.name}: a stream without text or without usage")
    turn.ttft_ms.append((first - sent) * 1000)
    turn.tokens += tokens


async def measure(path: Route, clients: int, streams_per_client: int, gateway_pid: int) -> Turn:
    turn = Turn()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def client() -> None:
            for _ in range(streams_per_client):
                await one_stream(session, path, turn)

        await one_stream(session, path, Turn())  # a connection to keep alive, and a warm path
        cpu = cpu_seconds([gateway_pid])
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        turn.wall_s = time.perf_counter() - started
        turn.gateway_cpu_s = cpu_seconds([gateway_pid]) - cpu
    return turn


def paths(ws: LocalWorkspace, endpoint: str, deployment: str, max_tokens: int) -> tuple[Route, Route]:
    openai_body = {"model": endpoint, "messages": [{"role": "user", "content": QUESTION}], "max_tokens": max_tokens,
                   "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    native = parse_request(Kind.CHAT, openai_body).native_body()  # what the gateway sends the instance
    [instance] = ws.get_deployment(endpoint, deployment).instances
    json_type = {"Content-Type": "application/json"}
    direct = Route("direct", f"http://127.0.0.1:{instance.port}/score", json_type, native,
                   lambda d: bool(d.get("text")),
                   lambda d: (d.get("usage") or {}).get("completion_tokens"))
    gateway = Route("gateway", base_url(ws.get_endpoint(endpoint).scoring_uri) + "/chat/completions",
                    {**json_type, "Authorization": f"Bearer {ws.get_keys(endpoint).primary_key}"},
                    json.dumps(openai_body).encode(),
                    lambda d: bool(d.get("choices") and d["choices"][0].get("delta", {}).get("content")),
                    lambda d: (d.get("usage") or {}).get("completion_tokens"))
    return direct, gateway


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams-per-client", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the model server")
    args = parser.parse_args()
    from byom.core.sample import cached_packaged_sample, cached_tiny_llama

    cache = Path(os.environ.get("BYOM_CACHE") or REPO / ".cache" / "byom")
    model_dir = cached_tiny_llama(cache, tokenizer_dir=cached_packaged_sample(cache))
    print(f"# {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}; "
          f"tiny random Llama, {args.max_tokens} new tokens per stream, greedy; torch threads {args.threads}\n"
          f"# before: {uptime()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="byom-bench-") as scratch:
        ws = LocalWorkspace(Path(scratch) / "home", actor="bench")
        try:
            model = ws.create_model(ModelSpec(name="tiny", path=str(model_dir))).ref
            ws.create_or_update_endpoint(Endpoint(name="bench"))
            dep = ws.create_or_update_deployment(Deployment(
                name="blue", endpoint_name="bench", model=model, code_path=str(REPO / "scoring"),
                scoring_script="generate.py",
                request_settings=RequestSettings(request_timeout_ms=60_000, max_concurrent_requests_per_instance=16),
                environment_variables={"BYOM_TORCH_THREADS": str(args.threads), "GUNICORN_CMD_ARGS": "--threads 20",
                                       "BYOM_MODEL_NAME": "tiny"}))
            assert dep.provisioning_state == "Succeeded", dep.state_reason
            ws.set_traffic("bench", {"blue": 100})
            gateway = ws.serving.gateway()
            assert gateway is not None
            direct, through = paths(ws, "bench", "blue", args.max_tokens)
            turns: dict[tuple[str, int], list[Turn]] = {(p, c): [] for p in ("direct", "gateway")
                                                        for c in args.clients}
            for r in range(args.rounds):
                for c in args.clients:
                    for path in (direct, through) if r % 2 == 0 else (through, direct):
                        turn = asyncio.run(measure(path, c, args.streams_per_client, gateway.pid))
                        turns[(path.name, c)].append(turn)
                        print(f"round {r + 1}, {c} clients, {path.name}: TTFT p50 "
                              f"{statistics.median(turn.ttft_ms):.2f} ms, {turn.tokens / turn.wall_s:.0f} tokens/s "
                              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
            print(f"# after: {uptime()}")
            print(table(turns, args.clients))
        finally:
            ws.serving.shutdown()
            ws.close()


def table(turns: dict[tuple[str, int], list[Turn]], clients: list[int]) -> str:
    rows = ["| streams at once | TTFT p50 / p95 direct (ms) | TTFT p50 / p95 gateway (ms) | added p50 / p95 (ms) | "
            "tokens/s direct | tokens/s gateway | tokens/s ratio | gateway CPU ms per 100 tokens |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in clients:
        d = [t for turn in turns[("direct", c)] for t in turn.ttft_ms]
        g = [t for turn in turns[("gateway", c)] for t in turn.ttft_ms]
        d50, d95, g50, g95 = percentile(d, 50), percentile(d, 95), percentile(g, 50), percentile(g, 95)
        d_rate = sum(t.tokens for t in turns[("direct", c)]) / sum(t.wall_s for t in turns[("direct", c)])
        gateway_turns = turns[("gateway", c)]
        g_tokens = sum(t.tokens for t in gateway_turns)
        g_rate = g_tokens / sum(t.wall_s for t in gateway_turns)
        cpu = sum(t.gateway_cpu_s for t in gateway_turns) * 1000 / g_tokens * 100
        rows.append(f"| {c} | {d50:.2f} / {d95:.2f} | {g50:.2f} / {g95:.2f} | {g50 - d50:+.2f} / {g95 - d95:+.2f} | "
                    f"{d_rate:.0f} | {g_rate:.0f} | {g_rate / d_rate:.0%} | {cpu:.1f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
