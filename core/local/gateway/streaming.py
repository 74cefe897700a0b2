"""Answers whose body is sent as it is made (server-sent events), over the gateway's HTTP/1.1 server.

The body goes out in chunks (``Transfer-Encoding: chunked``), each written
and drained before the next is asked for, so nothing is buffered between the
model server and the client. A client that went away (its end of the
connection closed, a write failed, or it read nothing for the write time)
ends the stream: the chunk iterator is closed at once, and it closes the
model server's connection, which cancels the generation there.

``on_close`` runs once whatever happens, the head never written included:
an async generator closed before its first step never runs its ``finally``,
so what a stream holds (a slot, an instance connection) is let go there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus

log = logging.getLogger("byom.gateway")


class StreamingResponse:
    __slots__ = ("status", "headers", "chunks", "reason", "on_close")

    def __init__(self, status: int, headers: dict[str, str], chunks: AsyncIterator[bytes],
                 on_close: Callable[[], None] | None = None) -> None:
        self.status, self.headers, self.chunks, self.on_close = status, headers, chunks, on_close
        self.reason = HTTPStatus(status).phrase


class ClientGone(Exception):
    """The client closed its connection while its answer was streaming."""


async def send(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, response: StreamingResponse,
               keep_alive: bool, write_timeout_s: float) -> bool:
    """Write the answer as its chunks come; whether the connection may carry another request.

    A client that takes none of what was written for ``write_timeout_s`` is taken for gone."""
    head = [f"HTTP/1.1 {response.status} {response.reason}\r\nTransfer-Encoding: chunked\r\n"]
    head += [f"{name}: {value}\r\n" for name, value in response.headers.items()]
    if not keep_alive:
        head.append("Connection: close\r\n")
    head.append("\r\n")

    async def drain() -> None:
        async with asyncio.timeout(write_timeout_s):
            await writer.drain()

    finished = False
    try:
        writer.write("".join(head).encode("latin-1", "replace"))
        await drain()
        async for piece in response.chunks:
            if not piece:
                continue
            if reader.at_eof() or writer.is_closing():
                raise ClientGone
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await drain()
        writer.write(b"0\r\n\r\n")
        await drain()
        finished = True
    except (ClientGone, ConnectionError):
        pass
    except TimeoutError:  # what is unsent would never leave: close without waiting for it
        writer.transport.abort()
    except Exception:  # the head is out: all the client can be told is that the stream ends here
        log.exception("Streaming an answer failed")
    finally:
        try:
            aclose = getattr(response.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            if response.on_close is not None:
                response.on_close()
    return finished and keep_alive
