"""Gateway overhead: the same trivial score script called directly and through the gateway, one run.

    .venv/bin/python -m bench.gateway [--requests 2000] [--clients 1 32] [--sample | --sample-only]

A fresh workspace home gets one deployment of a score script that answers
its input, one instance (max_concurrent_requests_per_instance 32, so the
gateway admits 64 in flight and never answers 429 here). For each number of
concurrent clients, the clients (asyncio tasks of one aiohttp client with
keep-alive connections, in this process) send --requests requests in total,
first straight to the instance's port, then to the endpoint's scoring URI
with the key. Latency is per request, from send to the end of the answer;
throughput is requests over wall time. Every answer must be 200.

With --sample (or --sample-only) it also times ``online-deployment create``
of the packaged sample model (SmolLM2-135M-Instruct) with
scoring/generate.py, from the call to Succeeded, as the CLI does it, with
the workspace's control plane already running (a home's first deployment
also waits for it to start), and splits that time into phases read from the
instance's log.

The load average printed beside the figures tells whether other work shared
the machine: client, gateway and model server all run on it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from byom.core.entities import Deployment, Endpoint, ModelSpec, RequestSettings
from byom.core.local.workspace import LocalWorkspace

REPO = Path(__file__).resolve().parent.parent

ECHO_SCRIPT = """
import json

def init():
    pass

def run(raw_data):
    return json.loads(raw_data)
"""


async def measure(url: str, headers: dict[str, str], total: int, clients: int) -> tuple[list[float], float]:
    payload = b'{"prompt": "How fast is the gateway?", "max_new_tokens": 8}'
    latencies: list[float] = []
    remaining = total
    connector = aiohttp.TCPConnector(limit=0)  # keep-alive: the model servers and the gateway both keep connections

    async with aiohttp.ClientSession(connector=connector) as session:
        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=payload, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"{url} answered {answer.status}")
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - started
    return latencies, total / wall


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes and their waited-for children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))]


def gateway_overhead(ws: LocalWorkspace, tmp: Path, requests: int, clients: list[int]) -> list[str]:
    code = tmp / "code"
    code.mkdir()
    (code / "score.py").write_text(ECHO_SCRIPT)
    (tmp / "model").mkdir()
    (tmp / "model" / "README").write_text("The echo script needs no model.\n")
    model = ws.create_model(ModelSpec(name="echo", path=str(tmp / "model"))).ref
    ws.create_or_update_endpoint(Endpoint(name="bench"))
    dep = ws.create_or_update_deployment(Deployment(
        name="blue", endpoint_name="bench", model=model, code_path=str(code), scoring_script="score.py",
        request_settings=RequestSettings(max_concurrent_requests_per_instance=32)))
    assert dep.provisioning_state == "Succeeded", dep.state_reason
    ws.set_traffic("bench", {"blue": 100})
    [instance] = ws.get_deployment("bench", "blue").instances
    direct = f"http://127.0.0.1:{instance.port}/score"
    through = ws.get_endpoint("bench").scoring_uri
    auth = {"Authorization": f"Bearer {ws.get_keys('bench').primary_key}", "Content-Type": "application/json"}
    plain = {"Content-Type": "application/json"}
    asyncio.run(measure(direct, plain, 200, 4))  # warm both paths up
    asyncio.run(measure(through, auth, 200, 4))

    gateway = ws.serving.gateway()
    assert gateway is not None
    server = worker_pids(instance.pid)
    rows = ["| clients | direct p50 / p99 (ms) | gateway p50 / p99 (ms) | added p50 / p99 (ms) | direct req/s | "
            "gateway req/s | throughput ratio | CPU ms per request: server / gateway |",
            "|---|---|---|---|---|---|---|---|"]
    for n in clients:
        d_lat, d_rps = asyncio.run(measure(direct, plain, requests, n))
        before = cpu_seconds(server), cpu_seconds([gateway.pid])
        g_lat, g_rps = asyncio.run(measure(through, auth, requests, n))
        server_ms = (cpu_seconds(server) - before[0]) / requests * 1000
        gateway_ms = (cpu_seconds([gateway.pid]) - before[1]) / requests * 1000
        d50, d99, g50, g99 = (percentile(d_lat, 50), percentile(d_lat, 99), percentile(g_lat, 50),
                              percentile(g_lat, 99))
        rows.append(f"| {n} | {d50:.2f} / {d99:.2f} | {g50:.2f} / {g99:.2f} | {g50 - d50:+.2f} / {g99 - d99:+.2f} | "
                    f"{d_rps:.0f} | {g_rps:.0f} | {g_rps / d_rps:.0%} | {server_ms:.2f} / {gateway_ms:.2f} |")
        print(rows[-1], f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    return rows


# Lines of an instance log that mark the phases of a start, and what each phase ends with.
PHASES = (
    ("=== byom: starting", "control plane: copy the code folder, start the instance"),
    ("Booting worker", "gunicorn master: start, fork the worker"),
    ("Found user script", "worker: import the server app, then the score script (torch, transformers)"),
    ("init has completed", "init(): load tokenizer and model"),
)


def _log_time(line: str) -> float | None:
    """When a log line was written (byom's lines carry ISO UTC times, the server's 'YYYY-mm-dd HH:MM:SS,mmm' UTC)."""
    try:
        if line.startswith("=== byom:"):
            return datetime.fromisoformat(line.rsplit(" at ", 1)[1].strip()).timestamp()
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp()
    except (ValueError, IndexError):
        return None


def sample_deploy_time(ws: LocalWorkspace) -> list[str]:
    from byom.core.sample import cached_packaged_sample

    folder = cached_packaged_sample(Path(os.environ.get("BYOM_CACHE") or REPO / ".cache" / "byom"))
    model = ws.create_model(ModelSpec(name="smollm2", path=str(folder))).ref
    ws.create_or_update_endpoint(Endpoint(name="sample"))
    ws.serving.ensure_started()
    load = os.getloadavg()[0]
    started, clock = time.time(), time.perf_counter()
    dep = ws.create_or_update_deployment(Deployment(
        name="blue", endpoint_name="sample", model=model, code_path=str(REPO / "scoring"),
        scoring_script="generate.py"))
    seconds = time.perf_counter() - clock
    assert dep.provisioning_state == "Succeeded", dep.state_reason
    out = [f"online-deployment create of the packaged sample model to Succeeded: {seconds:.1f} s "
           f"(load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"]
    lines = ws.get_deployment_logs("sample", "blue", lines=500).splitlines()
    previous = started
    for marker, what in PHASES:
        at = next((t for line in lines if marker in line and (t := _log_time(line)) is not None), None)
        if at is not None:
            out.append(f"  {at - previous:5.2f} s  {what}")
            previous = at
    out.append(f"  {started + seconds - previous:5.2f} s  readiness seen, Succeeded reported")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--sample", action="store_true", help="also time deploying the packaged sample model")
    parser.add_argument("--sample-only", action="store_true", help="only time deploying the packaged sample model")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="byom-bench-") as scratch:
        ws = LocalWorkspace(Path(scratch) / "home", actor="bench")
        try:
            if not args.sample_only:
                print("\n".join(gateway_overhead(ws, Path(scratch), args.requests, args.clients)))
            if args.sample or args.sample_only:
                print("\n".join(sample_deploy_time(ws)))
        finally:
            ws.serving.shutdown()
            ws.close()


if __name__ == "__main__":
    main()
