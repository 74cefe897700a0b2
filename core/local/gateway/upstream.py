"""The gateway's HTTP/1.1 client for model servers on 127.0.0.1: one request per connection at a time,
idle connections kept per port for the next request.

It knows only what a model server answers (a status line, headers, a body
framed by Content-Length, chunks or the end of the connection), which is
why it is this small and why it costs a fraction of a general client.
A connection is reused only after a whole answer was read from it, the
server did not ask to close it and did not refuse the request (an error
answer with a body may come before the server read the request's body,
whose rest it would then read as the next request); one idle for longer
than ``max_idle_s`` (below the server's keep-alive) or closed by the
server is dropped, so a request never goes out on a connection the server
is closing. Should a kept connection still fail, the request is sent once
more on a fresh one: any request when nothing at all came back on the kept
connection (the server had closed it), an idempotent one after any drop.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class Refused(Exception):
    """The instance refused the connection (nothing listens on its port): nothing was sent."""


class Unreachable(Exception):
    """No connection could be made for another reason (out of file descriptors or local ports):
    nothing was sent, and the instance is not to blame."""


class Dropped(Exception):
    """The connection ended before a whole answer came back."""


class _NothingBack(Exception):
    """The connection ended before the first byte of an answer."""


@dataclass(slots=True)
class Answer:
    status: int
    reason: str
    content_type: str | None
    body: bytes


@dataclass(slots=True)
class _Head:
    status: int
    reason: str
    content_type: str | None
    length: int | None
    chunked: bool
    close: bool


class _Connection:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.idle_since = reader, writer, 0.0

    def usable(self, now: float, max_idle_s: float) -> bool:
        return now - self.idle_since < max_idle_s and not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()

    def reset(self) -> None:
        """Close with a reset rather than a FIN, so that the server's very next write fails (a streaming
        generation is cancelled at its next token, not at the one after)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.writer.close()


class Stream:
    """An answer whose body is read as it comes (``chunks``); ``close()`` when done with it, whole or not."""

    def __init__(self, pool: UpstreamPool, port: int, conn: _Connection, head: _Head, sent_body: bool) -> None:
        self.status, self.reason, self.content_type = head.status, head.reason, head.content_type
        self._pool, self._port, self._conn, self._head = pool, port, conn, head
        self._done = False
        # as in _exchange: a refusal may have come before the server read the body, whose rest it would then
        # read as the next request
        self._keepable = not (head.status >= 400 and sent_body)

    async def chunks(self, idle_timeout_s: float) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive; TimeoutError when none comes for ``idle_timeout_s``, Dropped when
        the connection breaks."""
        reader, head = self._conn.reader, self._head
        try:
            if head.chunked:
                while True:
                    async with asyncio.timeout(idle_timeout_s):
                        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                        if size == 0:
                            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                                pass
                            break
                        piece = await reader.readexactly(size)
                        await reader.readexactly(2)
                    yield piece
            elif head.length is not None:
                left = head.length
                while left > 0:
                    async with asyncio.timeout(idle_timeout_s):
                        piece = await reader.read(min(left, 64 * 1024))
                    if not piece:
                        raise asyncio.IncompleteReadError(b"", left)
                    left -= len(piece)
                    yield piece
            else:
                while True:
                    async with asyncio.timeout(idle_timeout_s):
                        piece = await reader.read(64 * 1024)
                    if not piece:
                        head.close = True
                        break
                    yield piece
        except TimeoutError:  # an OSError too: not to be taken for a broken connection
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise Dropped(type(exc).__name__) from None
        self._done = True

    async def read(self) -> bytes:
        """The whole body (an error answer's)."""
        return b"".join([piece async for piece in self.chunks(idle_timeout_s=30.0)])

    def close(self) -> None:
        """Keep the connection for the next request when the whole answer was read and the request was not
        refused; otherwise close it (reset it when the answer was not read to its end)."""
        if self._done and not self._head.close and self._keepable:
            self._conn.idle_since = time.monotonic()
            self._pool._idle[self._port].append(self._conn)
        elif not self._done:
            self._conn.reset()
        else:
            self._conn.close()


class UpstreamPool:
    def __init__(self, max_idle_s: float) -> None:
        self.max_idle_s = max_idle_s
        self._idle: defaultdict[int, list[_Connection]] = defaultdict(list)

    async def _connection(self, port: int, fresh: bool = False) -> tuple[_Connection, bool]:
        """A connection to ``port`` and whether it was kept from an earlier request."""
        idle = None if fresh else self._idle.get(port)
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if conn.usable(now, self.max_idle_s):
                    return conn, True
                conn.close()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=MAX_HEAD_BYTES)
        except ConnectionRefusedError as exc:
            raise Refused(str(exc)) from None
        except OSError as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from None
        return _Connection(reader, writer), False

    async def request(self, port: int, method: str, path: str, headers: list[tuple[str, str]],
                      body: bytes) -> Answer:
        """Send one request and read its whole answer.

        Raises ``Refused`` when the instance refused the connection,
        ``Unreachable`` when no connection could be made for another reason
        and ``Dropped`` when the connection broke; a cancellation (the caller's timeout)
        closes the connection.
        """
        conn, kept = await self._connection(port)
        try:
            return await self._exchange(port, conn, method, path, headers, body)
        except _NothingBack:
            if not kept:
                raise Dropped("IncompleteReadError") from None
        except Dropped:
            if not kept or method not in IDEMPOTENT:
                raise
        conn, _ = await self._connection(port, fresh=True)  # once, on a connection made for it
        try:
            return await self._exchange(port, conn, method, path, headers, body)
        except _NothingBack:
            raise Dropped("IncompleteReadError") from None

    async def _exchange(self, port: int, conn: _Connection, method: str, path: str, headers: list[tuple[str, str]],
                        body: bytes) -> Answer:
        done = False
        try:
            _write_request(conn, port, method, path, headers, body)
            answer, keep = await _read_answer(conn.reader, method)
            done = True
        except _NothingBack:
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise Dropped(type(exc).__name__) from None
        finally:
            # a refusal may have come before the server read the body: the rest would be read as a request
            if done and keep and not (answer.status >= 400 and body):
                conn.idle_since = time.monotonic()
                self._idle[port].append(conn)
            else:
                conn.close()
        return answer

    async def stream(self, port: int, method: str, path: str, headers: list[tuple[str, str]],
                     body: bytes) -> Stream:
        """Send one request and read the head of its answer; the body is the Stream's to read.

        Raises as ``request`` does; a cancellation while the head is awaited closes the connection.
        """
        conn, kept = await self._connection(port)
        try:
            head = await self._stream_head(port, conn, method, path, headers, body)
        except _NothingBack:
            if not kept:
                raise Dropped("IncompleteReadError") from None
            # a kept connection the server had closed: nothing was read, so once more on a fresh one
            conn, _ = await self._connection(port, fresh=True)
            try:
                head = await self._stream_head(port, conn, method, path, headers, body)
            except _NothingBack:
                raise Dropped("IncompleteReadError") from None
        if method == "HEAD" or head.status in (204, 304):
            head.length, head.chunked = 0, False  # no body, whatever its headers say
        return Stream(self, port, conn, head, sent_body=bool(body))

    async def _stream_head(self, port: int, conn: _Connection, method: str, path: str,
                           headers: list[tuple[str, str]], body: bytes) -> _Head:
        try:
            _write_request(conn, port, method, path, headers, body)
            return await _read_head(conn.reader)
        except _NothingBack:
            conn.close()
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            conn.close()
            raise Dropped(type(exc).__name__) from None
        except BaseException:
            conn.close()
            raise

    def forget(self, port: int) -> None:
        """Close the idle connections to a port (its instance is gone)."""
        for conn in self._idle.pop(port, []):
            conn.close()

    def close(self) -> None:
        for port in list(self._idle):
            self.forget(port)


def _write_request(conn: _Connection, port: int, method: str, path: str, headers: list[tuple[str, str]],
                   body: bytes) -> None:
    head = [f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"]
    head += [f"{name}: {value}\r\n" for name, value in headers]
    head.append("\r\n")
    conn.writer.write("".join(head).encode("latin-1") + body)


async def _read_answer(reader: asyncio.StreamReader, method: str) -> tuple[Answer, bool]:
    """One answer from the stream, and whether the connection may carry another request."""
    head = await _read_head(reader)
    if method == "HEAD" or head.status in (204, 304):
        body = b""
    elif head.chunked:
        body = await _read_chunks(reader)
    elif head.length is not None:
        body = await reader.readexactly(head.length)
    else:
        body, head.close = await reader.read(), True
    return Answer(head.status, head.reason, head.content_type, body), not head.close


async def _read_head(reader: asyncio.StreamReader) -> _Head:
    """An answer's status line and the headers that frame its body (1xx answers skipped)."""
    first = True
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if first and not getattr(exc, "partial", b""):
                raise _NothingBack from None
            raise
        first = False
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        status = int(code)
        if status >= 200 or status == 101:
            break  # 1xx answers (100 Continue) come before the real one
    length: int | None = None
    chunked, close, content_type = False, version != "HTTP/1.1", None
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "connection":
            close = close or "close" in value.lower()
        elif name == "content-type":
            content_type = value
    return _Head(status, reason, content_type, length, chunked, close)


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
