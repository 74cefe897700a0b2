"""The gateway's limits per client: head, idle and body time, connections at once, body size per endpoint.

Each test runs a real gateway on loopback with small limits and plays the
client that overstays them; each wait is bounded by the socket's timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from byom.core.local.gateway.http_server import HttpServer
from byom.core.local.gateway.limits import MIB, Limits
from byom.core.local.gateway.proxy import Gateway

from ..waiting import wait_until
from .gateway_server import Running, read_response, running_gateway

pytestmark = pytest.mark.timeout(60)

SMALL = Limits(header_timeout_s=0.5, idle_timeout_s=0.5, body_timeout_s=0.5, max_connections=4,
               max_body_bytes=1024, endpoint_body_bytes={"big": 4096})
HEALTH = b"GET /-/health HTTP/1.1\r\nHost: x\r\n\r\n"


def small(gateway: Gateway) -> HttpServer:
    return HttpServer(gateway.dispatch, limits=SMALL)


def until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and how long that took."""
    started, chunks = time.monotonic(), []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - started


def test_a_head_sent_slowly_gets_408_and_the_connection_closed(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "home", small) as gw, gw.connect(timeout_s=5) as sock:
        sock.sendall(b"GET /-/health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        answer, took = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and took < 3, (answer, took)


def test_an_idle_kept_alive_connection_is_closed(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "home", small) as gw, gw.connect(timeout_s=5) as sock:
        sock.sendall(HEALTH)
        head, _ = read_response(sock, bytearray())
        assert head.startswith(b"HTTP/1.1 200 ")
        answer, took = until_closed(sock)
    assert answer == b"" and took < 3, (answer, took)


def test_a_body_sent_slowly_gets_408(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "home", small) as gw, gw.connect(timeout_s=5) as sock:
        sock.sendall(b"POST /endpoints/chat/score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":")
        answer, took = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and took < 3, (answer, took)


def served(gw: Running) -> bool:
    with gw.connect(timeout_s=5) as sock:
        sock.sendall(HEALTH)
        head, _ = read_response(sock, bytearray())
        return head.startswith(b"HTTP/1.1 200 ")


def test_connections_over_the_cap_get_503_with_retry_after_and_the_cap_frees_up(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "home", small) as gw:
        held = []
        try:
            for _ in range(SMALL.max_connections):
                sock = gw.connect(timeout_s=5)
                held.append(sock)
                sock.sendall(HEALTH)
                assert read_response(sock, bytearray())[0].startswith(b"HTTP/1.1 200 ")  # counted: it is served
            with gw.connect(timeout_s=5) as extra:
                extra.sendall(HEALTH)
                answer, _ = until_closed(extra)
            assert answer.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1\r\n" in answer, answer
            assert b"BYOM_GATEWAY_MAX_CONNECTIONS" in answer
        finally:
            for sock in held:
                sock.close()
        assert gw.call(lambda: gw.server.connections) <= SMALL.max_connections
        # the held ones closed: the server sees it at its next read, and serves again
        wait_until(lambda: gw.call(lambda: gw.server.connections) == 0, 10, "the held connections to end")
        assert served(gw)


def test_the_body_limit_is_per_endpoint(tmp_path: Path) -> None:
    body = b"{" + b" " * 2000 + b"}"
    with running_gateway(tmp_path / "home", small) as gw:
        for endpoint, status in (("chat", b"413"), ("big", b"404")):  # big: under its 4 KiB, then no such endpoint
            with gw.connect(timeout_s=5) as sock:
                sock.sendall(f"POST /endpoints/{endpoint}/score HTTP/1.1\r\nHost: x\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                head, _ = read_response(sock, bytearray())
                assert head.startswith(b"HTTP/1.1 " + status + b" "), (endpoint, head)


def test_limits_come_from_the_environment_and_bad_values_name_the_variable() -> None:
    assert Limits().max_body_bytes == 8 * MIB  # was 64 MiB
    limits = Limits.from_env({"BYOM_GATEWAY_MAX_BODY_MB": "2,chat=32", "BYOM_GATEWAY_IDLE_TIMEOUT_S": "5",
                              "BYOM_GATEWAY_MAX_CONNECTIONS": "100"})
    assert (limits.max_body_bytes, limits.endpoint_body_bytes, limits.idle_timeout_s, limits.max_connections) == (
        2 * MIB, {"chat": 32 * MIB}, 5.0, 100)
    assert limits.body_limit("/endpoints/chat/score") == 32 * MIB and limits.body_limit("/endpoints/x/score") == 2 * MIB
    for env, words in (({"BYOM_GATEWAY_HEADER_TIMEOUT_S": "soon"}, "BYOM_GATEWAY_HEADER_TIMEOUT_S"),
                       ({"BYOM_GATEWAY_MAX_BODY_MB": "chat=-1"}, "BYOM_GATEWAY_MAX_BODY_MB")):
        with pytest.raises(ValueError, match=words):
            Limits.from_env(env)


NAMES = ["BYOM_GATEWAY_HEADER_TIMEOUT_S", "BYOM_GATEWAY_IDLE_TIMEOUT_S", "BYOM_GATEWAY_BODY_TIMEOUT_S",
         "BYOM_GATEWAY_MAX_CONNECTIONS", "BYOM_GATEWAY_MAX_BODY_MB"]


@pytest.mark.parametrize(("name", "value"), [(name, value) for name in NAMES for value in ("inf", "nan", "1e999")]
                         + [("BYOM_GATEWAY_MAX_BODY_MB", "8,chat=inf"), ("BYOM_GATEWAY_MAX_BODY_MB", "chat=nan")])
def test_a_limit_that_is_not_a_finite_number_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):  # not OverflowError, nor a message without the name
        Limits.from_env({name: value})


@pytest.mark.parametrize(("name", "value"), [("BYOM_GATEWAY_MAX_BODY_MB", "lots"),
                                             ("BYOM_GATEWAY_MAX_CONNECTIONS", "inf")])
def test_a_gateway_given_a_bad_limit_stops_at_start_naming_the_variable(tmp_path: Path, name: str,
                                                                       value: str) -> None:
    env = {**os.environ, name: value}
    done = subprocess.run([sys.executable, "-m", "byom.core.local.gateway", "--home", str(tmp_path / "home")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and name in done.stderr, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
