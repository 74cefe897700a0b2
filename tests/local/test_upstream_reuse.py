"""The gateway's kept-alive connections to a model server: never reused after a refusal, retried once when stale.

The model servers here are small asyncio servers on loopback that behave as
gunicorn does at the edges: one answers an over-limit body before reading
it, one closes a kept connection just as the next request arrives.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from byom.core.local.gateway.http_server import Request
from byom.core.local.gateway.proxy import Gateway
from byom.core.local.gateway.upstream import UpstreamPool
from byom.core.local.processes import free_port
from byom.core.local.serving_files import ServingFiles

from .test_gateway_faults import KEY, routes_to

pytestmark = pytest.mark.timeout(60)

LIMIT = 1000


def score(body: bytes) -> Request:
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    return Request("POST", "/endpoints/chat/score", headers, list(headers.items()), body)


def ok(writer: asyncio.StreamWriter) -> None:
    body = json.dumps({"ok": True}).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))


def content_length(head: bytes) -> int:
    return next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")), 0)


Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def refusing_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """413 for a body over LIMIT, without reading it; a request line it cannot parse ends the connection."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.split(b"\r\n", 1)[0].endswith(b" HTTP/1.1") or b"x" in head[:10]:
                break  # the unread body, taken for a request: gunicorn closes without a word
            length = content_length(head)
            if length > LIMIT:
                writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 2\r\n\r\n{}")
                continue
            await reader.readexactly(length)
            ok(writer)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def stale_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers one request per connection, keeping it open, and closes it when the next one comes."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(content_length(head))
        ok(writer)
        await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


def drive(tmp_path: Path, serve: Serve, requests: list[Request]) -> list[int]:
    gateway = Gateway(ServingFiles(tmp_path / "home"))
    port = free_port()
    gateway.routes = routes_to(port)

    async def test() -> list[int]:
        server = await asyncio.start_server(serve, "127.0.0.1", port)
        try:
            return [(await gateway.dispatch(request)).status for request in requests]
        finally:
            gateway.upstreams.close()
            server.close()

    try:
        return asyncio.run(asyncio.wait_for(test(), 30))
    finally:
        gateway.db_thread.shutdown()
        gateway.fact_store.close()


def test_a_small_request_after_a_refused_body_is_served(tmp_path: Path) -> None:
    big, small = score(b'{"a": "' + b"x" * (LIMIT * 4) + b'"}'), score(b"{}")
    statuses = drive(tmp_path, refusing_server, [small, big, small, big, small, small])
    assert statuses == [200, 424, 200, 424, 200, 200], statuses  # 424: the model server's 413, passed on


def test_a_request_on_a_kept_connection_the_server_closed_is_sent_again_on_a_fresh_one(tmp_path: Path) -> None:
    statuses = drive(tmp_path, stale_server, [score(b"{}") for _ in range(5)])
    assert statuses == [200] * 5, statuses


async def half_answer_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers a connection's first request; breaks off its answer to the second half way through the head."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(content_length(head))
        ok(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-")
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


def swagger() -> Request:
    headers = {"authorization": f"Bearer {KEY}"}
    return Request("GET", "/endpoints/chat/swagger.json", headers, list(headers.items()), b"")


def test_a_broken_answer_is_retried_for_get_but_not_for_a_score_that_may_have_run(tmp_path: Path) -> None:
    assert drive(tmp_path / "get", half_answer_server, [swagger(), swagger(), swagger()]) == [200, 200, 200]
    # the model may have scored it: a POST that got part of an answer back is not sent twice
    assert drive(tmp_path / "post", half_answer_server, [score(b"{}"), score(b"{}")]) == [200, 502]


class Recording:
    """A model server that logs each request line it reads and answers as ``refusing_server`` does; a HEAD gets
    the head a chunked answer would have, and no body (RFC 9110)."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0]
                self.lines.append(line)
                if not line.endswith(b" HTTP/1.1") or b"x" in head[:10]:
                    break
                if line.startswith(b"HEAD "):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n")
                    continue
                length = content_length(head)
                if length > LIMIT:
                    writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 2\r\n\r\n{}")
                    continue
                await reader.readexactly(length)
                ok(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def with_pool(test: Callable[[UpstreamPool, int, Recording], Awaitable[None]]) -> Recording:
    recording = Recording()

    async def main() -> None:
        server = await asyncio.start_server(recording.serve, "127.0.0.1", 0)
        pool = UpstreamPool(max_idle_s=30)
        try:
            await test(pool, server.sockets[0].getsockname()[1], recording)
        finally:
            pool.close()
            server.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    return recording


def test_a_streamed_refusal_of_a_body_does_not_keep_the_connection(tmp_path: Path) -> None:
    async def test(pool: UpstreamPool, port: int, _: Recording) -> None:
        stream = await pool.stream(port, "POST", "/score", [], b'{"a": "' + b"x" * (LIMIT * 4) + b'"}')
        assert stream.status == 413 and await stream.read() == b"{}"
        stream.close()
        answer = await pool.request(port, "POST", "/score", [], b"{}")
        assert answer.status == 200

    recording = with_pool(test)
    # the refused body was never read as a request: the next request went out on a connection of its own
    assert recording.lines == [b"POST /score HTTP/1.1"] * 2 and recording.connections == 2, recording.lines


def test_a_streamed_answer_to_head_has_no_body_whatever_its_headers_say(tmp_path: Path) -> None:
    async def test(pool: UpstreamPool, port: int, _: Recording) -> None:
        stream = await pool.stream(port, "HEAD", "/score", [], b"")
        assert stream.status == 200
        assert [piece async for piece in stream.chunks(idle_timeout_s=5)] == []  # at once, not after 5 s
        stream.close()
        assert (await pool.request(port, "POST", "/score", [], b"{}")).status == 200  # on the kept connection

    recording = with_pool(test)
    assert recording.lines == [b"HEAD /score HTTP/1.1", b"POST /score HTTP/1.1"] and recording.connections == 1
