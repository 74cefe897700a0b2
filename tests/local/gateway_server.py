"""A real ``Gateway`` behind its real ``HttpServer`` on 127.0.0.1, run on a loop in a thread of the test.

Tests talk to it over raw sockets, as a hostile or careless client would.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from byom.core.local.gateway.http_server import HttpServer
from byom.core.local.gateway.proxy import Gateway
from byom.core.local.serving_files import ServingFiles


class Running:
    def __init__(self, gateway: Gateway, server: HttpServer, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.gateway, self.server, self.port, self.loop = gateway, server, port, loop

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the gateway's loop (where its state lives) and return what it returns."""
        done: Future[Any] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    def connect(self, timeout_s: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)


@contextmanager
def running_gateway(home: Path, server_factory: Callable[[Gateway], HttpServer] | None = None) -> Iterator[Running]:
    gateway = Gateway(ServingFiles(home))
    server = server_factory(gateway) if server_factory else HttpServer(gateway.dispatch)
    loop = asyncio.new_event_loop()
    started: Future[asyncio.Server] = Future()
    stopped = threading.Event()

    async def main() -> None:
        try:
            listening = await server.start("127.0.0.1", 0)
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(listening)
        while not stopped.is_set():
            await asyncio.sleep(0.02)
        listening.close()
        gateway.upstreams.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        listening = started.result(timeout=10)
        port = listening.sockets[0].getsockname()[1]
        yield Running(gateway, server, port, loop)
    finally:
        stopped.set()
        thread.join(timeout=10)
        loop.close()
        gateway.db_thread.shutdown()
        gateway.fact_store.close()


def exchange(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data``, then read until the server closes the connection."""
    sock.sendall(data)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket, buffered: bytearray, head_only: bool = False) -> tuple[bytes, bytes]:
    """One response (head, body) off a kept-alive connection, framed by its Content-Length."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole head: {bytes(buffered)!r}")
        buffered += chunk
    end = buffered.index(b"\r\n\r\n") + 4
    head = bytes(buffered[:end])
    del buffered[:end]
    length = 0 if head_only else next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0)
    while len(buffered) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a whole body")
        buffered += chunk
    body = bytes(buffered[:length])
    del buffered[:length]
    return head, body
