"""Answers whose body is sent as it is made (server-sent events), over the gateway's HTTP/1.1 server.

The body goes out in chunks (``Transfer-Encoding: chunked``), each written
and drained before the next is asked for, so nothing is buffered between the
model server and the client. A client that went away (its end of the
connection closed, or a write failed) ends the stream: the chunk iterator is
closed at once, and it closes the model server's connection, which cancels
the generation there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus

log = logging.getLogger("byom.gateway")


class StreamingResponse:
    __slots__ = ("status", "headers", "chunks", "reason")

    def __init__(self, status: int, headers: dict[str, str], chunks: AsyncIterator[bytes]) -> None:
        self.status, self.headers, self.chunks = status, headers, chunks
        self.reason = HTTPStatus(status).phrase


class ClientGone(Exception):
    """The client closed its connection while its answer was streaming."""


async def send(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, response: StreamingResponse,
               keep_alive: bool) -> bool:
    """Write the answer as its chunks come; whether the connection may carry another request."""
    head = [f"HTTP/1.1 {response.status} {response.reason}\r\nTransfer-Encoding: chunked\r\n"]
    head += [f"{name}: {value}\r\n" for name, value in response.headers.items()]
    if not keep_alive:
        head.append("Connection: close\r\n")
    head.append("\r\n")
    writer.write("".join(head).encode("latin-1", "replace"))
    finished = False
    try:
        await writer.drain()
        async for piece in response.chunks:
            if not piece:
                continue
            if reader.at_eof() or writer.is_closing():
                raise ClientGone
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        finished = True
    except (ClientGone, ConnectionError):
        pass
    except Exception:  # the head is out: all the client can be told is that the stream ends here
        log.exception("Streaming an answer failed")
    finally:
        aclose = getattr(response.chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    return finished and keep_alive
