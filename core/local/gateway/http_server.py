"""The gateway's HTTP/1.1 server: one asyncio-streams loop per client connection.

It serves what the gateway needs and nothing more: requests with a body
framed by Content-Length or chunks, keep-alive, pipelining (answered in
order), ``Expect: 100-continue``, and a JSON 4xx for anything malformed
(bad request line or header, bad Content-Length, a head over 64 KiB, a body
over the limit, a chunk size that is not plain hexadecimal, a chunk without
its CRLF, a chunk line or trailers over 64 KiB). A general framework costs several times more CPU per
request, and on one machine that CPU is taken from the model servers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import unquote

from . import streaming
from .limits import Limits

log = logging.getLogger("byom.gateway")

MAX_HEAD_BYTES = 64 * 1024
DISCARD_TIMEOUT_S = 5.0
_REASONS = {s.value: s.phrase for s in HTTPStatus}
# RFC 9110: a field name is a token; a field value holds no control character but tab (a bare CR or LF in
# one would end the line where the client did not mean it to, in this head or in one that echoes it)
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class Request:
    __slots__ = ("method", "path", "headers", "raw_headers", "body")

    def __init__(self, method: str, path: str, headers: dict[str, str], raw_headers: list[tuple[str, str]],
                 body: bytes) -> None:
        self.method = method
        self.path = path  # percent-decoded, without the query
        self.headers = headers  # lower-cased names; repeated headers joined with ", "
        self.raw_headers = raw_headers  # as sent
        self.body = body


class Response:
    __slots__ = ("status", "headers", "body", "reason")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, reason: str | None = None) -> None:
        self.status, self.headers, self.body = status, headers, body
        self.reason = reason or _REASONS.get(status, "Unknown")


def json_response(status: int, data: object, headers: dict[str, str]) -> Response:
    headers["Content-Type"] = "application/json; charset=utf-8"
    return Response(status, headers, json.dumps(data).encode())


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    headers = headers if headers is not None else {"x-request-id": str(uuid.uuid4())}
    return json_response(status, {"error": {"code": status, "message": message}}, headers)


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Handler = Callable[[Request], Awaitable[Response | streaming.StreamingResponse]]

_HEX_DIGITS = b"0123456789abcdefABCDEF"


async def _line(reader: asyncio.StreamReader, status: int, too_long: str) -> bytes:
    """One CRLF-ended line of a chunked body; BadRequest(status, too_long) past the stream's limit."""
    try:
        return await reader.readuntil(b"\r\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(status, too_long) from None


class _Idle(Exception):
    """No request began on a connection within its time."""


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


class HttpServer:
    def __init__(self, handler: Handler, max_body_bytes: int | None = None, limits: Limits | None = None) -> None:
        self.handler = handler
        self.limits = limits if limits is not None else Limits()
        if max_body_bytes is not None:
            self.limits = dataclasses.replace(self.limits, max_body_bytes=max_body_bytes)
        self.connections = 0  # served now
        self.turned_away = 0  # over the cap, being answered 503 now

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.connection, host, port, limit=MAX_HEAD_BYTES, reuse_address=True)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections >= self.limits.max_connections:
            await self._turn_away(reader, writer)
            return
        self.connections += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.connections -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        try:
            while True:
                try:
                    head = await self._head(reader, first)
                except _Idle:
                    return  # nothing asked for a while: the connection goes, quietly
                except TimeoutError:
                    await self._refuse(writer, 408, f"The request head did not arrive within "
                                                    f"{self.limits.header_timeout_s:g} s.")
                    return
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection between requests
                except asyncio.LimitOverrunError:
                    await self._refuse(writer, 431, f"The request head is over {MAX_HEAD_BYTES // 1024} KiB.")
                    return
                first = False
                length: int | None = 0
                try:
                    request, keep_alive, expect_continue, length = self._parse(head)
                    limit = self.limits.body_limit(request.path)
                    if length is not None and length > limit:
                        raise BadRequest(413, f"The request body is over {_size(limit)}.")
                    if expect_continue and length:
                        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    try:
                        async with asyncio.timeout(self.limits.body_timeout_s):
                            request.body = await (reader.readexactly(length) if length is not None
                                                  else self._read_chunks(reader, limit))
                    except TimeoutError:
                        raise BadRequest(408, f"The request body did not arrive within "
                                              f"{self.limits.body_timeout_s:g} s.") from None
                except BadRequest as exc:
                    await self._refuse(writer, exc.status, str(exc))
                    if exc.status == 413 and length:
                        await self._discard(reader, length)
                    return
                try:
                    response = await self.handler(request)
                except Exception:
                    log.exception("Answering %s %s failed", request.method, request.path)
                    response = json_error(500, "The gateway failed on this request; its log says why.")
                if isinstance(response, streaming.StreamingResponse):
                    # a client that reads nothing of its stream for the idle time is gone, as an idle one is
                    if not await streaming.send(writer, reader, response, keep_alive, self.limits.idle_timeout_s):
                        return
                    continue
                self._write(writer, response, keep_alive, with_body=request.method != "HEAD")
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
                if not keep_alive:
                    await writer.drain()
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request
        finally:
            writer.close()

    def _parse(self, head: bytes) -> tuple[Request, bool, bool, int | None]:
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
            raise BadRequest(400, "The request head is not text.") from None
        lines = text[:-4].split("\r\n")
        parts = lines[0].split(" ")
        if _CONTROL.search(lines[0]):
            raise BadRequest(400, "The request line holds a control character (CR, LF or another).")
        if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
            raise BadRequest(400, "The request line is not 'METHOD /path HTTP/1.1'.")
        method, target, version = parts
        headers: dict[str, str] = {}
        raw: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not _FIELD_NAME.fullmatch(name):
                raise BadRequest(400, "A request header line is not 'Name: value'.")
            value = value.strip(" \t")
            if _CONTROL.search(value):
                raise BadRequest(400, f"Request header {name[:64]} holds a control character (CR, LF or another).")
            raw.append((name, value))
            lower = name.lower()
            headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
        length: int | None = 0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            length = None
        elif "content-length" in headers:
            given = headers["content-length"]
            if not given.isdigit() or not given.isascii():
                raise BadRequest(400, "Content-Length is not a whole number of bytes.")
            length = int(given)
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        expect_continue = headers.get("expect", "").lower() == "100-continue"
        path = unquote(target.partition("?")[0], errors="replace")
        return Request(method, path, headers, raw, b""), keep_alive, expect_continue, length

    async def _head(self, reader: asyncio.StreamReader, first: bool) -> bytes:
        """The next request head: it must begin within the idle time (the head time for a connection's first)
        and be whole within the head time from there."""
        try:
            async with asyncio.timeout(self.limits.header_timeout_s if first else self.limits.idle_timeout_s):
                start = await reader.readexactly(1)
        except TimeoutError:
            raise _Idle from None
        async with asyncio.timeout(self.limits.header_timeout_s):
            return start + await reader.readuntil(b"\r\n\r\n")

    async def _turn_away(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """503 for a connection over the cap: after its head if it comes at once, so that the client reads it."""
        self.turned_away += 1
        try:
            if self.turned_away <= 64:  # beyond, not even a second each
                try:
                    async with asyncio.timeout(1.0):
                        await reader.readuntil(b"\r\n\r\n")
                except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    pass
            answer = json_error(503, f"The gateway serves {self.limits.max_connections} connections at once "
                                     "(BYOM_GATEWAY_MAX_CONNECTIONS): retry later.",
                                {"x-request-id": str(uuid.uuid4()), "Retry-After": "1"})
            self._write(writer, answer, keep_alive=False)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.turned_away -= 1
            writer.close()

    async def _read_chunks(self, reader: asyncio.StreamReader, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = await _line(reader, 400, f"A chunk size line is over {MAX_HEAD_BYTES // 1024} KiB.")
            digits = line[:-2].split(b";", 1)[0].strip(b" \t")
            if not digits or digits.strip(_HEX_DIGITS):  # int(..., 16) would take "-5", "+5", "0x5", "5_0"
                raise BadRequest(400, "A chunk size is not a hexadecimal number.")
            size = int(digits, 16)
            if size == 0:
                trailers = 0
                while (trailer := await _line(reader, 431, "The request trailers are too large.")) != b"\r\n":
                    trailers += len(trailer)
                    if trailers > MAX_HEAD_BYTES:
                        raise BadRequest(431, "The request trailers are too large.")
                return b"".join(parts)
            total += size
            if total > limit:
                raise BadRequest(413, f"The request body is over {_size(limit)}.")
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest(400, "A chunk is longer than its size says (no CRLF after it).")

    @staticmethod
    def _write(writer: asyncio.StreamWriter, response: Response, keep_alive: bool, with_body: bool = True) -> None:
        reason = _CONTROL.sub("", response.reason)  # the model server's words, too: never a line break in them
        head = [f"HTTP/1.1 {response.status} {reason}\r\nContent-Length: {len(response.body)}\r\n"]
        head += [f"{name}: {_CONTROL.sub('', value)}\r\n" for name, value in response.headers.items()]
        if not keep_alive:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        # a HEAD answer says how long the body would be, and sends none (RFC 9110 9.3.2): a client reads no body
        writer.write("".join(head).encode("latin-1", "replace") + (response.body if with_body else b""))

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        self._write(writer, json_error(status, message), keep_alive=False)
        await writer.drain()

    @staticmethod
    async def _discard(reader: asyncio.StreamReader, length: int) -> None:
        """Read what the client still sends of a refused body, so that it gets to read the answer."""
        try:
            async with asyncio.timeout(DISCARD_TIMEOUT_S):
                while length > 0:
                    data = await reader.read(min(length, 1024 * 1024))
                    if not data:
                        return
                    length -= len(data)
        except TimeoutError:
            pass
