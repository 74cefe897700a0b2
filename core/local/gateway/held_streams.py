"""A streamed answer held from one instance to its client, written once for ``/score`` and the OpenAI routes.

A streamed request holds its instance connection for the whole answer, so it
has its own forwarding loop beside proxy.py's ``_forward`` (which reads one
whole answer per connection): the model server's events (generate.py's
``data: {"text"}`` ... ``data: {"text", "finish_reason", "usage"}``) are read
as they arrive, and each is written out before the next is read, as it came
for ``/score`` and as OpenAI chunks for the OpenAI routes: a :class:`Writer`
says which. When the client goes away the instance connection is reset,
which cancels the generation there. ``request_timeout_ms`` bounds the wait
for the answer's head and for each event after it, not the whole stream: a
long answer that keeps coming is not cut.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ...entities import RequestFact
from ...routing import ConsumerRoute, DeploymentRoute, EndpointRoute
from ...sse import EventReader, event_data
from .consumer_limits import Admission, ConsumerLimits, Refusal, usage_pair, used_tokens
from .http_server import Request, Response
from .instances import Failure, leave_port, send_to_an_instance
from .streaming import StreamingResponse
from .token_metrics import TokenMetrics
from .upstream import Dropped, Stream, UpstreamPool

CLIENT_CLOSED = 499  # recorded (never sent) for a stream whose client went away, as nginx logs it
TIMINGS_AT = [f.name for f in dataclasses.fields(RequestFact)].index("ttft_ms")
"""Where a fact's timings go: after the fields proxy.py's ``_record`` appends."""


class Gateway(Protocol):
    """What the streams and the OpenAI routes use of proxy.py's Gateway (which imports them, so it is named
    here)."""

    routes: dict[str, EndpointRoute]
    rng: random.Random
    round_robin: dict[tuple[str, str], int]
    in_flight: dict[tuple[str, str], int]
    in_flight_port: dict[int, int]
    timed_out_port: dict[int, int]
    down: dict[int, float]
    upstreams: UpstreamPool
    mirrors: set[asyncio.Task[None]]
    consumer_limits: ConsumerLimits
    facts: list[tuple[Any, ...]]

    def _base_headers(self, request: Request) -> dict[str, str]: ...
    def _record(self, endpoint: str, dep: DeploymentRoute | None, status: int, started: float,
                mirrored: bool = False, *, consumer: str = "", tokens: tuple[int, int] | None = None) -> None: ...
    def admit(self, route: EndpointRoute, consumer: ConsumerRoute | None, reserve: Callable[[], int],
              headers: dict[str, str]) -> Admission | Refusal | None: ...
    def _enter(self, key: tuple[str, str], delta: int) -> None: ...
    def _is_down(self, port: int) -> bool: ...
    def _mark_down(self, port: int) -> None: ...
    def _unreachable(self, route: EndpointRoute, dep: DeploymentRoute, instance: str, exc: Exception) -> None: ...
    async def _forward(self, route: EndpointRoute, dep: DeploymentRoute, method: str, path: str, request: Request,
                       headers: dict[str, str]) -> Response: ...
    async def _mirror(self, route: EndpointRoute, dep: DeploymentRoute, request: Request) -> None: ...


class Writer(Protocol):
    """What a route makes of the model server's events, one by one."""

    @property
    def usage(self) -> dict[str, int] | None:
        """The final event's usage, once it came."""

    def start(self) -> bytes:
        """What goes out before the first event."""

    def event(self, raw: bytes, data: dict[str, Any] | None) -> bytes:
        """One event: ``raw`` as it came (its blank line included), ``data`` its JSON (None for a comment)."""

    def end(self) -> bytes:
        """What goes out after the last event."""

    def broken(self, status: int, message: str) -> bytes:
        """The last event of a stream that broke off: 408 (the instance sent nothing for the timeout) or 502."""


class Caller:
    """Who sent a request (a consumer's name, "" for an endpoint key) and what its admission reserved."""

    def __init__(self, name: str, admission: Admission | None) -> None:
        self.name, self.admission = name, admission

    def settle(self, gw: Gateway, status: int, tokens: tuple[int, int] | None) -> None:
        """The request ended: its reservation becomes what it used, (input, output) tokens where known (once;
        later calls do nothing)."""
        if self.admission is not None:
            gw.consumer_limits.settle(self.admission, used_tokens(status, tokens))


@dataclass(frozen=True)
class Whole:
    """The instance answered a request to stream in one piece (an error, or a script that does not stream)."""

    status: int
    reason: str
    content_type: str | None
    body: bytes


class Streams:
    """The streams in flight through a gateway, and their token metrics."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.tokens = TokenMetrics()

    async def open(self, route: EndpointRoute, dep: DeploymentRoute, body: bytes, forwarded: list[tuple[str, str]],
                   headers: dict[str, str], caller: Caller, started: float) -> Held | Failure | Whole:
        """``body`` (a native payload asking to stream), with the ``forwarded`` request headers, sent to one of
        the deployment's instances: the held stream when its head says it streams, counted in flight until it is
        closed; otherwise what came instead, the slot already let go (the route then answers, and settles and
        records it with :meth:`ended`)."""
        gw = self.gw
        key = (route.name, dep.key)
        sent = [*forwarded, ("x-request-id", headers["x-request-id"])]
        if "x-ms-client-request-id" in headers:
            sent.append(("x-ms-client-request-id", headers["x-ms-client-request-id"]))
        gw._enter(key, +1)
        try:
            # the port is counted in in_flight_port from before the request goes out, as _forward counts
            outcome = await send_to_an_instance(
                gw, route, dep, lambda port: gw.upstreams.stream(port, "POST", "/score", sent, body), hold=True)
        except BaseException:
            gw._enter(key, -1)
            caller.settle(gw, CLIENT_CLOSED, None)
            raise
        if isinstance(outcome, Failure):
            gw._enter(key, -1)
            return outcome
        stream, port = outcome
        if stream.status == 200 and (stream.content_type or "").startswith("text/event-stream"):
            return Held(self, route, dep, stream, port, caller, started)
        try:
            whole = await stream.read()
        except (Dropped, TimeoutError):
            whole = b""
        finally:
            stream.close()
            self._release(key, port)
        return Whole(stream.status, stream.reason, stream.content_type, whole)

    def ended(self, route: EndpointRoute, dep: DeploymentRoute, caller: Caller, status: int, started: float,
              tokens: tuple[int, int] | None = None,
              timings: tuple[float | None, float | None] = (None, None)) -> None:
        """A request to stream ended with ``status``, (input, output) ``tokens`` and ``timings`` (time to first
        token, per output token, seconds): its caller settled, its fact recorded."""
        caller.settle(self.gw, status, tokens)
        gw = self.gw
        recorded = len(gw.facts)
        gw._record(route.name, dep, status, started, consumer=caller.name, tokens=tokens)
        if timings != (None, None) and len(gw.facts) == recorded + 1 and len(gw.facts[-1]) == TIMINGS_AT:
            # proxy.py's _record takes no timings; the fact it has just appended gets them
            gw.facts[-1] = (*gw.facts[-1], *(None if t is None else t * 1000 for t in timings))

    def respond(self, held: Held, writer: Writer, headers: dict[str, str], content_type: str) -> StreamingResponse:
        """The held stream relayed to the client through ``writer``."""
        headers["Content-Type"] = content_type
        headers["Cache-Control"] = "no-cache"
        return StreamingResponse(200, headers, self._relay(writer, held), on_close=held.close)

    def _release(self, key: tuple[str, str], port: int) -> None:
        self.gw._enter(key, -1)
        leave_port(self.gw, port)

    def _observe(self, route: EndpointRoute, dep: DeploymentRoute, usage: dict[str, int] | None, started: float,
                 first_token: float | None, queue_s: object, consumer: str) -> tuple[float | None, float | None]:
        """A finished stream's token metrics; its time to first token and per output token (seconds, or None)."""
        labels = (route.name, dep.name, dep.model)
        self.tokens.tokens(labels, usage, consumer)
        ttft = tpot = None
        if first_token is not None:
            ttft = first_token - started
            self.tokens.ttft.observe(labels, ttft)
            output = (usage or {}).get("completion_tokens", 0)
            if isinstance(output, int) and output > 1:
                tpot = (time.perf_counter() - first_token) / (output - 1)
                self.tokens.tpot.observe(labels, tpot)
        if isinstance(queue_s, (int, float)) and not isinstance(queue_s, bool):
            self.tokens.queue.observe(labels, float(queue_s))
        return ttft, tpot

    async def _relay(self, writer: Writer, held: Held) -> AsyncIterator[bytes]:
        """The model server's events through ``writer``, one by one as they come."""
        route, dep, stream, started = held.route, held.dep, held.stream, held.started
        first_token: float | None = None
        queue_s: object = None
        try:
            first = writer.start()
            if first:
                yield first
            events = EventReader()
            async for piece in stream.chunks(dep.timeout_s):
                for raw in events.feed(piece):
                    data = event_data(raw)
                    if data is not None:
                        if first_token is None and (data.get("text") or data.get("tokens")):
                            first_token = time.perf_counter()
                        queue_s = data.get("queue_s", queue_s)
                    out = writer.event(raw, data)
                    if out:
                        yield out
            rest = events.rest()  # a last event without its blank line
            out = writer.event(rest, event_data(rest)) if rest else b""
            if out:
                yield out
            last = writer.end()
            if last:
                yield last
            held.status = 200
            held.usage = writer.usage
            held.timings = self._observe(route, dep, writer.usage, started, first_token, queue_s, held.caller.name)
        except TimeoutError:
            held.status = 408
            yield writer.broken(408, f"Deployment {dep.name!r} sent nothing for request_timeout_ms="
                                     f"{int(dep.timeout_s * 1000)}.")
        except Dropped as exc:
            held.status = 502
            yield writer.broken(502, f"The instance of deployment {dep.name!r} dropped the stream: {exc}.")
        except Exception:
            held.status = 500
            raise
        finally:
            held.close()


class Held:
    """What a streamed answer holds (its instance connection, its slot), let go once: when the relay ends, or
    when the answer is done with though the relay never started (the client left before the head went out)."""

    def __init__(self, streams: Streams, route: EndpointRoute, dep: DeploymentRoute, stream: Stream, port: int,
                 caller: Caller, started: float) -> None:
        self.streams, self.route, self.dep, self.stream, self.port = streams, route, dep, stream, port
        self.caller, self.started = caller, started
        self.status = CLIENT_CLOSED  # until the answer ends otherwise
        self.usage: dict[str, int] | None = None  # the final event's
        self.timings: tuple[float | None, float | None] = (None, None)  # time to first token, per output token (s)
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stream.close()  # an answer not read to its end: the connection is reset, the generation cancelled
        self.streams._release((self.route.name, self.dep.key), self.port)
        self.streams.ended(self.route, self.dep, self.caller, self.status, self.started, usage_pair(self.usage),
                           self.timings)


def mirror_whole(gw: Gateway, route: EndpointRoute, payload: dict[str, Any]) -> None:
    """Send a streamed request's mirror copy, if the endpoint mirrors one now; the copy asks for the whole answer
    (it is discarded), and it goes out while the live answer streams."""
    shadow = route.mirror_to(gw.rng)
    if shadow is None:
        return
    whole = {k: v for k, v in payload.items() if k != "stream"}
    copy = Request("POST", "/score", {"content-type": "application/json"},
                   [("Content-Type", "application/json")], json.dumps(whole).encode())
    task = asyncio.create_task(gw._mirror(route, shadow, copy))
    gw.mirrors.add(task)
    task.add_done_callback(gw.mirrors.discard)
