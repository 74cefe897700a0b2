"""The gateway process under 5,000+ hostile requests: no 5xx, no crash, and the valid probe always served.

A real gateway (``python -m byom.core.local.gateway``) routes the endpoint
``fuzz`` to a small model server on loopback run by this test. Hostile
clients send, each on its own connection: control characters in the
request line and header values (CR, LF, NUL), percent-encoded and doubly
encoded admin paths with no or a wrong token, malformed request lines,
Content-Lengths and chunks, oversized heads and bodies, JSON nested deeper
than the parser goes (to the OpenAI routes), garbage, and heads
and bodies that stop half way (the gateway's head and body times are half a
second here). A probe client sends a valid scoring request all along.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from byom.core.entities import Deployment, Endpoint, EndpointKeys, InstanceState, RequestSettings
from byom.core.local.processes import free_port
from byom.core.local.serving_files import ServingFiles, read_json
from byom.core.local.sqlite_store import SqliteStore
from byom.core.local.state import InstanceRecord, ServingState, write_state

from ..waiting import wait_until

pytestmark = pytest.mark.timeout(120)

KEY = "fuzz-key-0123456789"
HOSTILE = 5200
CONCURRENCY = 48
PROBE = (b"POST /endpoints/fuzz/score HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + KEY.encode()
         + b"\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\": 1.5}")


def hostile(rng: random.Random) -> tuple[bytes, bool]:
    """One hostile request, and whether it stops half way (the client then waits for the gateway to give up)."""
    auth = b"Authorization: Bearer " + KEY.encode() + b"\r\n"
    kind = rng.randrange(12)
    if kind == 0:  # a control character in a header value
        bad = rng.choice([b"\r", b"\n", b"\x00", b"\x7f", b"\r\nSet-Cookie: x=1", b"\nX-Injected: 1"])
        return (b"POST /endpoints/fuzz/score HTTP/1.1\r\nHost: x\r\n" + auth + b"x-ms-client-request-id: a" + bad
                + b"b\r\nContent-Length: 2\r\n\r\n{}"), False
    if kind == 1:  # ... or in the request line, or a header name that is no token
        return rng.choice([b"POST /endpoints/fuzz\r/score HTTP/1.1\r\n\r\n", b"GET /-/he\x00alth HTTP/1.1\r\n\r\n",
                           b"GET /-/health HTTP/1.1\r\nBad Name: 1\r\n\r\n",
                           b"GET /-/health HTTP/1.1\r\nX\x01: 1\r\n\r\n"]), False
    if kind == 2:  # admin routes, encoded once or twice, with no token or a wrong one
        path = rng.choice([b"/-/reload", b"/%2D/reload", b"/%2d/%72eload", b"/-%2Freload", b"/%252D/reload",
                           b"/-/flush", b"/%2D/flush", b"/-/in-flight", b"/%2D/in-flight", b"/-/timed-out",
                           b"/-//reload", b"/-/reload/", b"/-/./reload", b"/-/reload%00", b"/-/reload?x=%0d%0a"])
        token = rng.choice([b"", b"x-byom-admin-token: wrong\r\n", b"x-byom-admin-token: \r\n"])
        return rng.choice([b"POST ", b"GET ", b"HEAD "]) + path + b" HTTP/1.1\r\nHost: x\r\n" + token + b"\r\n", False
    if kind == 3:  # malformed request lines
        return rng.choice([b"GET\r\n\r\n", b"GET / HTTP/2.0\r\n\r\n", b"G@T / HTTP/1.1\r\n\r\n", b" / HTTP/1.1\r\n\r\n",
                           b"GET  / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n",
                           b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"]), False
    if kind == 4:  # Content-Length games
        length = rng.choice([b"-1", b"1e3", b"0x10", b" 5", b"5, 6", b"99999999999999999999", b"\xd9\xa3"])
        return (b"POST /endpoints/fuzz/score HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: " + length
                + b"\r\n\r\n{}"), False
    if kind == 5:  # chunk games
        chunk = rng.choice([b"-5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"5\r\nhelloXX0\r\n\r\n",
                            b"0x5\r\nhello\r\n0\r\n\r\n", b"5 ;ext\r\nhello\r\n0\r\n\r\n", b"1" * 70000 + b"\r\n"])
        return (b"POST /endpoints/fuzz/score HTTP/1.1\r\nHost: x\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n"
                + chunk), False
    if kind == 6:  # a head over 64 KiB
        return b"GET /-/health HTTP/1.1\r\nX-Big: " + b"a" * (66 * 1024) + b"\r\n\r\n", False
    if kind == 7:  # a body over the limit (the default 8 MiB), said up front
        return (b"POST /endpoints/fuzz/score HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 9000000\r\n\r\n"
                + b"{" * 1000), False
    if kind == 8:  # garbage
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) + b"\r\n\r\n", False
    if kind == 9:  # odd but well-formed: unknown endpoints and routes, long paths, wrong methods and keys
        return rng.choice([b"GET /endpoints/fuzz/score HTTP/1.1\r\n\r\n",
                           b"POST /endpoints/" + b"n" * 5000 + b"/score HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                           b"POST /endpoints/%2E%2E/score HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                           b"POST /endpoints/fuzz/score HTTP/1.1\r\nAuthorization: Bearer nope\r\n"
                           b"Content-Length: 2\r\n\r\n{}",
                           b"POST /endpoints/fuzz/score HTTP/1.1\r\n" + auth +
                           b"azureml-model-deployment: \xff\xfe\r\nContent-Length: 2\r\n\r\n{}",
                           b"OPTIONS * HTTP/1.1\r\n\r\n", b"GET /%ff%fe%00 HTTP/1.1\r\n\r\n",
                           # JSON nested deeper than the parser goes, on the OpenAI routes
                           b"POST /endpoints/fuzz/v1/chat/completions HTTP/1.1\r\n" + auth
                           + b"Content-Length: 100000\r\n\r\n" + b"[" * 100_000,
                           b"POST /endpoints/fuzz/v1/completions HTTP/1.1\r\n" + auth
                           + b"Content-Length: 60000\r\n\r\n" + b'{"a":' * 12_000]), False
    if kind == 10:  # a head that stops half way
        return b"POST /endpoints/fuzz/score HTTP/1.1\r\nHost: x\r\n" + auth[: rng.randrange(len(auth))], True
    # a body that stops half way
    return (b"POST /endpoints/fuzz/score HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 1000\r\n\r\n{\"a\":"), True


async def model_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            body = json.dumps({"received": len(await reader.readexactly(length))}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def first_answer(port: int, data: bytes, stop_half_way: bool) -> tuple[int, bytes]:
    """The status and head of the gateway's first answer (0: it closed without one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10 if stop_half_way else 5):
            head = await reader.readuntil(b"\r\n\r\n")
        return (int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0), head
    except (ConnectionError, asyncio.IncompleteReadError):
        return 0, b""
    finally:
        writer.close()


def home_with_endpoint(home: Path, upstream: int) -> ServingFiles:
    files = ServingFiles(home)
    files.run.mkdir(parents=True)
    store = SqliteStore(files.db)
    with store.transaction() as txn:
        txn.put("endpoint", "fuzz", 0, Endpoint(name="fuzz", traffic={"blue": 100}).to_dict())
        txn.put("keys", "fuzz", 0, EndpointKeys(primary_key=KEY, secondary_key="").to_dict())
        txn.put("deployment", "fuzz/blue", 0, Deployment(
            name="blue", endpoint_name="fuzz", model="m:1", instance_count=1,
            request_settings=RequestSettings(request_timeout_ms=5000, max_concurrent_requests_per_instance=64),
        ).to_dict())
    store.close()
    write_state(files.state, ServingState(instances=[InstanceRecord(
        id="blue-0", endpoint="fuzz", deployment="blue", generation="g1", index=0, state=InstanceState.READY,
        port=upstream)]))
    return files


def test_thousands_of_hostile_requests_get_no_5xx_and_the_probe_is_always_served(tmp_path: Path) -> None:
    upstream = free_port()
    files = home_with_endpoint(tmp_path / "home", upstream)
    env = {**os.environ, "BYOM_GATEWAY_HEADER_TIMEOUT_S": "0.5", "BYOM_GATEWAY_BODY_TIMEOUT_S": "0.5"}
    log = open(files.home / "gateway.out", "wb")  # noqa: SIM115 - closed below
    gateway = subprocess.Popen([sys.executable, "-m", "byom.core.local.gateway", "--home", str(files.home)],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    statuses: Counter[int] = Counter()
    probes: list[tuple[int, float]] = []
    injected: list[bytes] = []  # answer heads that carry a header the request smuggled in
    admitted: list[bytes] = []  # admin requests without the token that were answered 200
    started = time.monotonic()
    try:
        port = wait_until(lambda: (read_json(files.gateway) or {}).get("port"), 30, "the gateway to listen")

        async def run() -> None:
            server = await asyncio.start_server(model_server, "127.0.0.1", upstream)
            rng = random.Random(17)
            requests = [hostile(rng) for _ in range(HOSTILE)]
            done = asyncio.Event()

            async def probe() -> None:
                while not done.is_set():
                    sent = time.monotonic()
                    status, _ = await first_answer(port, PROBE, False)
                    probes.append((status, time.monotonic() - sent))
                    await asyncio.sleep(0.02)

            async def client(share: list[tuple[bytes, bool]]) -> None:
                for data, half in share:
                    status, head = await first_answer(port, data, half)
                    statuses[status] += 1
                    if b"Set-Cookie" in head or b"X-Injected" in head:
                        injected.append(head)
                    if status == 200 and data.split(b" ")[1].startswith((b"/-", b"/%")):
                        admitted.append(data[:200])

            prober = asyncio.create_task(probe())
            await asyncio.gather(*(client(requests[i::CONCURRENCY]) for i in range(CONCURRENCY)))
            done.set()
            await prober
            server.close()

        asyncio.run(asyncio.wait_for(run(), 100))
        assert gateway.poll() is None, "the gateway crashed"
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=20)
        log.close()
    took = time.monotonic() - started
    print(f"\n{sum(statuses.values())} hostile requests in {took:.1f} s: {dict(sorted(statuses.items()))}; "
          f"{len(probes)} probes, slowest {max(p[1] for p in probes) * 1000:.0f} ms")
    assert sum(statuses.values()) >= 5000
    assert not [s for s in statuses if s >= 500], statuses
    assert not injected, injected[:3]
    assert not admitted, admitted[:3]
    assert probes and all(status == 200 for status, _ in probes), Counter(s for s, _ in probes)
    assert max(seconds for _, seconds in probes) < 5
    output = (files.home / "gateway.out").read_text(errors="replace") + files.gateway_log.read_text(errors="replace") \
        if files.gateway_log.exists() else (files.home / "gateway.out").read_text(errors="replace")
    assert "Traceback" not in output, output[-3000:]
