"""The OpenAI routes' streams when the client or the instance misbehaves, and bodies the JSON parser cannot take.

A real ``Gateway`` behind its real ``HttpServer`` (gateway_server.py) routes
the endpoint ``chat`` to a small streaming model server on loopback run by
this test: it answers a request's head when the test lets it, then sends
generate.py-shaped events until its connection breaks, recording what it
saw. Clients are raw sockets, as a careless one would be.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from byom.core.entities import Deployment, Endpoint, EndpointKeys, InstanceState, RequestSettings
from byom.core.local.gateway import proxy as gateway_module
from byom.core.local.gateway.http_server import HttpServer, Request
from byom.core.local.gateway.limits import Limits
from byom.core.local.gateway.proxy import Gateway
from byom.core.local.processes import free_port
from byom.core.local.serving_files import ServingFiles
from byom.core.local.state import InstanceRecord
from byom.core.routing import build_routes

from ..waiting import wait_until
from .gateway_server import Running, read_response, running_gateway

pytestmark = pytest.mark.timeout(60)

KEY = "the-key"
KEY_OF = ("chat", "blue")  # the in-flight key: endpoint, deployment


def routes_to(port: int, timeout_ms: int = 5000) -> dict:
    endpoint = Endpoint(name="chat", traffic={"blue": 100})
    deployment = Deployment(name="blue", endpoint_name="chat", model="m:1", instance_count=1,
                            request_settings=RequestSettings(request_timeout_ms=timeout_ms,
                                                             max_concurrent_requests_per_instance=4))
    instance = InstanceRecord(id="blue-0", endpoint="chat", deployment="blue", generation="g1", index=0,
                              state=InstanceState.READY, port=port)
    return build_routes([endpoint], {"chat": EndpointKeys(primary_key=KEY, secondary_key="")}, [deployment],
                        [instance])


def chat_request(stream: bool = True, body: bytes | None = None) -> bytes:
    if body is None:
        body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4000,
                           "stream": stream}).encode()
    return (b"POST /endpoints/chat/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            + KEY.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


@dataclass
class ModelServer:
    """A streaming model server: holds each answer's head until ``release()``, then sends events of ``text``."""

    loop: asyncio.AbstractEventLoop
    text: str = "tok "
    events: int = 100_000  # then it hangs, until the gateway closes the connection
    port: int = 0
    requests: int = 0
    active: int = 0  # connections being served
    ended: int = 0  # connections whose answer broke off (the gateway closed or reset them)
    received: threading.Event = field(default_factory=threading.Event)
    _go: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self._go.set)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.active += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            self.requests += 1
            self.received.set()
            await self._go.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            event = b"data: " + json.dumps({"text": self.text}).encode() + b"\n\n"
            for _ in range(self.events):  # a long generation, which only the gateway's going away ends
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                await asyncio.sleep(0.001)  # pacing, as tokens come
            await reader.read()
            self.ended += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            self.ended += 1
        finally:
            self.active -= 1
            writer.close()


@contextmanager
def gateway_and_model_server(tmp_path: Path, timeout_ms: int = 5000, text: str = "tok ", events: int = 100_000,
                             server_factory: Callable[[Gateway], HttpServer] | None = None,
                             ) -> Iterator[tuple[Running, ModelServer]]:
    with running_gateway(tmp_path / "home", server_factory) as gw:
        model = ModelServer(gw.loop, text=text, events=events)
        listening = asyncio.run_coroutine_threadsafe(asyncio.start_server(model.serve, "127.0.0.1", 0),
                                                     gw.loop).result(10)
        model.port = listening.sockets[0].getsockname()[1]
        gw.call(lambda: setattr(gw.gateway, "routes", routes_to(model.port, timeout_ms)))
        try:
            yield gw, model
        finally:
            model.release()
            gw.call(listening.close)
            try:  # every connection ended before the loop stops (a test that failed may have left some)
                wait_until(lambda: held(gw) == ({}, 0) and gw.call(lambda: gw.server.connections + model.active) == 0,
                           10, "every connection to end")
            except AssertionError:
                pass  # the test's own assertions say what was left


def held(gw: Running) -> tuple[dict[int, int], int]:
    """What the gateway holds: requests in flight per instance port, and the deployment's slots taken."""
    return gw.call(lambda: (dict(gw.gateway.in_flight_port), gw.gateway.in_flight[KEY_OF]))


def client_closed(gw: Running) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in gw.call(gw.gateway.metrics.render).splitlines()
               if line.startswith("byom_requests_total{") and 'status="499"' in line)


def test_a_client_that_resets_before_the_head_is_sent_leaks_no_slot_nor_connection(tmp_path: Path) -> None:
    with gateway_and_model_server(tmp_path) as (gw, model):
        sock = gw.connect(timeout_s=5)
        sock.sendall(chat_request())
        assert model.received.wait(10), "the request reached the model server"
        assert held(gw)[1] == 1
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset, before the gateway had anything to send
        for _ in range(3):
            gw.call(lambda: None)  # the gateway's loop has turned: it has read the reset
        model.release()  # the head comes back now, to a client that is gone
        wait_until(lambda: held(gw) == ({}, 0), 10, "the gateway to let go of the stream")
        wait_until(lambda: model.ended == 1, 10, "the model server's connection reset (the generation cancelled)")
        assert client_closed(gw) == 1
        # the slot is free: the next stream is served whole
        with gw.connect(timeout_s=5) as again:
            again.sendall(chat_request())
            head, _ = read_response(again, bytearray(), head_only=True)
            assert head.startswith(b"HTTP/1.1 200 ") and b"text/event-stream" in head, head


def test_a_client_that_stops_reading_its_stream_is_let_go_after_the_idle_time(tmp_path: Path) -> None:
    limits = Limits(idle_timeout_s=0.5)
    with gateway_and_model_server(tmp_path, text="x" * 32_000,
                                  server_factory=lambda g: HttpServer(g.dispatch, limits=limits)) as (gw, model):
        model.release()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, which it never reads
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", gw.port))
            sock.sendall(chat_request())
            assert model.received.wait(10)
            started = time.monotonic()
            wait_until(lambda: held(gw) == ({}, 0), 15, "the gateway to give up on the client")
            took = time.monotonic() - started
            wait_until(lambda: model.ended == 1, 10, "the model server's connection reset")
            assert took < 10, took
            assert client_closed(gw) == 1
        finally:
            sock.close()


def test_a_stream_waiting_for_its_head_is_in_flight_and_a_timeout_counts_for_its_instance(tmp_path: Path) -> None:
    with gateway_and_model_server(tmp_path, timeout_ms=1500) as (gw, model), gw.connect(timeout_s=10) as sock:
        sock.sendall(chat_request())  # the model server never answers: it is hung
        assert model.received.wait(10)
        assert held(gw) == ({model.port: 1}, 1), "a drain of the instance must wait for this request"
        head, body = read_response(sock, bytearray())
        assert head.startswith(b"HTTP/1.1 408 "), head
        assert json.loads(body)["error"]["code"] == "timeout"
        assert held(gw) == ({}, 0)
        assert gw.call(lambda: dict(gw.gateway.timed_out_port)) == {model.port: 1}  # the control plane sees it


def test_a_stream_whose_instance_stops_sending_ends_with_a_timeout_error(tmp_path: Path) -> None:
    with gateway_and_model_server(tmp_path, timeout_ms=1000, events=3) as (gw, model), \
            gw.connect(timeout_s=10) as sock:
        model.release()
        sock.sendall(chat_request())
        received = b""
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the last chunk: the gateway ended the stream
            piece = sock.recv(65536)
            assert piece, received
            received += piece
        assert received.startswith(b"HTTP/1.1 200 ") and received.count(b'"content":"tok "') == 3, received
        assert b'"code":"timeout"' in received and b"request_timeout_ms=1000" in received, received
        wait_until(lambda: model.ended == 1, 10, "the model server's connection closed")
        assert held(gw) == ({}, 0)
        assert 'status="408"' in gw.call(gw.gateway.metrics.render)


def test_a_stream_to_an_instance_that_refuses_marks_it_down_for_down_s(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_module, "DOWN_S", 30.0)
    gateway = Gateway(ServingFiles(tmp_path / "home"))
    port = free_port()  # nothing listens there
    gateway.routes = routes_to(port)
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    body = chat_request().partition(b"\r\n\r\n")[2]
    try:
        answer = asyncio.run(asyncio.wait_for(gateway.dispatch(
            Request("POST", "/endpoints/chat/v1/chat/completions", headers, list(headers.items()), body)), 10))
        assert answer.status == 502
        assert gateway.down[port] > time.monotonic() + 20  # as long as /score marks it
        assert dict(gateway.in_flight_port) == {}
    finally:
        gateway.db_thread.shutdown()
        gateway.fact_store.close()


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"model": ' + b'{"a": ' * 50_000 + b"1"])
def test_json_nested_too_deep_is_refused_with_400_in_openai_shape(tmp_path: Path, body: bytes) -> None:
    with gateway_and_model_server(tmp_path) as (gw, model), gw.connect(timeout_s=10) as sock:
        sock.sendall(chat_request(body=body))
        head, answer = read_response(sock, bytearray())
        assert head.startswith(b"HTTP/1.1 400 "), (head, answer[:300])
        error = json.loads(answer)["error"]
        assert error["code"] == "invalid_json" and error["type"] == "invalid_request_error", error
        assert set(error) == {"message", "type", "param", "code"}
        assert model.requests == 0
