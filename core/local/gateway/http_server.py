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
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import unquote

from . import streaming

log = logging.getLogger("byom.gateway")

MAX_HEAD_BYTES = 64 * 1024
DISCARD_TIMEOUT_S = 5.0
_REASONS = {s.value: s.phrase for s in HTTPStatus}


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


class HttpServer:
    def __init__(self, handler: Handler, max_body_bytes: int) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.connection, host, port, limit=MAX_HEAD_BYTES, reuse_address=True)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection between requests
                except asyncio.LimitOverrunError:
                    await self._refuse(writer, 431, f"The request head is over {MAX_HEAD_BYTES // 1024} KiB.")
                    return
                length: int | None = 0
                try:
                    request, keep_alive, expect_continue, length = self._parse(head)
                    if length is not None and length > self.max_body_bytes:
                        raise BadRequest(413, f"The request body is over {self.max_body_bytes // (1024 * 1024)} MiB.")
                    if expect_continue and length:
                        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    request.body = await (reader.readexactly(length) if length is not None
                                          else self._read_chunks(reader))
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
                    if not await streaming.send(writer, reader, response, keep_alive):
                        return
                    continue
                self._write(writer, response, keep_alive)
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
        if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/1."):
            raise BadRequest(400, "The request line is not 'METHOD /path HTTP/1.1'.")
        method, target, version = parts
        headers: dict[str, str] = {}
        raw: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or " " in name:
                raise BadRequest(400, "A request header line is not 'Name: value'.")
            value = value.strip()
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

    async def _read_chunks(self, reader: asyncio.StreamReader) -> bytes:
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
            if total > self.max_body_bytes:
                raise BadRequest(413, f"The request body is over {self.max_body_bytes // (1024 * 1024)} MiB.")
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest(400, "A chunk is longer than its size says (no CRLF after it).")

    @staticmethod
    def _write(writer: asyncio.StreamWriter, response: Response, keep_alive: bool) -> None:
        head = [f"HTTP/1.1 {response.status} {response.reason}\r\nContent-Length: {len(response.body)}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in response.headers.items()]
        if not keep_alive:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        writer.write("".join(head).encode("latin-1", "replace") + response.body)

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
