"""The OpenAI API on every endpoint: ``/endpoints/<name>/v1/models``, ``.../v1/chat/completions`` and
``.../v1/completions``.

The rules of ``/score`` hold here too (proxy.py): ``Authorization: Bearer``
with an endpoint key, the traffic split and the mirror when ``model`` is the
endpoint's name, one deployment when it is that deployment's name (as the
``azureml-model-deployment`` header does), the in-flight limit, round robin
over the ready instances, ``request_timeout_ms``. The request is checked
and turned into generate.py's payload by ``core/openai_api.py`` and sent to
the deployment's ``/score``; the answer comes back in OpenAI's shapes, every
error included (``{"error": {"message", "type", "param", "code"}}``).

A streamed request holds its instance connection for the whole answer, so
it has its own forwarding loop beside proxy.py's (which reads one whole
answer per connection): the model server's events are turned into OpenAI
chunks one by one as they arrive; when the client goes away the instance
connection is reset, which cancels the generation there.
``request_timeout_ms`` bounds the wait for the answer's head and for each
event after it, not the whole stream: a long answer that keeps coming is
not cut.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from ...entities import RequestFact
from ...openai_api import (
    Call,
    ChunkWriter,
    Kind,
    OpenAIError,
    completion,
    completion_id,
    error_body,
    from_native_error,
    model_card,
    models_list,
    parse_request,
    sse,
)
from ...routing import ConsumerRoute, DeploymentRoute, EndpointRoute
from ...serving import DEPLOYMENT_HEADER
from .consumer_limits import Admission, ConsumerLimits, Refusal, reservation, usage_pair, used_tokens
from .http_server import Request, Response, json_response
from .instances import Failure, leave_port, send_to_an_instance
from .streaming import StreamingResponse
from .token_metrics import TokenMetrics
from .upstream import Dropped, Stream, UpstreamPool


class Gateway(Protocol):
    """What these routes use of proxy.py's Gateway (which imports this module, so it is named here)."""

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

CLIENT_CLOSED = 499  # recorded (never sent) for a stream whose client went away, as nginx logs it
TIMINGS_AT = [f.name for f in dataclasses.fields(RequestFact)].index("ttft_ms")
"""Where a fact's timings go: after the fields proxy.py's ``_record`` appends."""
KINDS = {"chat/completions": Kind.CHAT, "completions": Kind.COMPLETION}


def _error(err: OpenAIError, headers: dict[str, str]) -> Response:
    return json_response(err.status, err.body(), headers)


class OpenAIRoutes:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.tokens = TokenMetrics()

    async def dispatch(self, request: Request, name: str, rest: str) -> Response | StreamingResponse:
        headers = self.gw._base_headers(request)
        if rest == "models" or rest.startswith("models/"):
            if request.method != "GET":
                return self._not_allowed("GET", headers)
            return self._models(request, name, rest.partition("/")[2], headers)
        kind = KINDS.get(rest)
        if kind is None:
            return _error(OpenAIError(404, f"This gateway has no route /v1/{rest}: it serves /v1/models, "
                                           "/v1/chat/completions and /v1/completions.", code="not_found"), headers)
        if request.method != "POST":
            return self._not_allowed("POST", headers)
        started = time.perf_counter()
        try:
            return await self._complete(request, name, kind, headers, started)
        except OpenAIError as err:
            self.gw._record(name, None, err.status, started)
            return _error(err, headers)

    @staticmethod
    def _not_allowed(method: str, headers: dict[str, str]) -> Response:
        headers["Allow"] = method
        return _error(OpenAIError(405, f"Use {method} here.", code="method_not_allowed"), headers)

    def _endpoint(self, request: Request, name: str) -> tuple[EndpointRoute, ConsumerRoute | None]:
        route = self.gw.routes.get(name)
        if route is None:
            raise OpenAIError(404, f"No endpoint named {name[:64]!r}.", code="not_found")
        allowed, consumer = route.caller(request.headers.get("authorization"))
        if not allowed:
            raise OpenAIError(401, "Missing or invalid key: send 'Authorization: Bearer <key>' with the endpoint's "
                                   "primary or secondary key, or a consumer's key.", code="invalid_api_key")
        return route, consumer

    def _models(self, request: Request, name: str, one: str, headers: dict[str, str]) -> Response:
        try:
            route, _ = self._endpoint(request, name)
        except OpenAIError as err:
            return _error(err, headers)
        names = [route.name, *sorted(dep.name for dep in route.deployments.values())]
        if not one:
            return json_response(200, models_list(names), headers)
        if one == route.name or route.target(one) is not None:
            return json_response(200, model_card(one), headers)
        return _error(OpenAIError(404, f"The model {one[:64]!r} does not exist here: models are "
                                       f"{', '.join(names)}.", code="model_not_found"), headers)

    def _deployment(self, route: EndpointRoute, model: str, header: str | None) -> tuple[DeploymentRoute, bool]:
        """The deployment a request's ``model`` names, and whether it named one deployment (no split, no mirror).

        With ``model`` the endpoint's name, an ``azureml-model-deployment`` header picks the deployment as on
        ``/score``."""
        if model == route.name and header is not None:
            targeted = route.target(header)
            if targeted is None:
                raise OpenAIError(404, f"Endpoint {route.name!r} has no deployment named {header.strip()[:64]!r}.",
                                  code="model_not_found")
            return targeted, True
        if model == route.name:
            dep = route.choose(self.gw.rng)
            if dep is None:
                raise OpenAIError(404, f"No deployment of endpoint {route.name!r} has live traffic: set traffic, "
                                       "or name a deployment as the model.", param="model", code="model_not_found")
            return dep, False
        dep = route.target(model)
        if dep is None:
            names = ", ".join([route.name, *sorted(d.name for d in route.deployments.values())])
            raise OpenAIError(404, f"The model {model[:64]!r} does not exist on endpoint {route.name!r}: name the "
                                   f"endpoint or one of its deployments ({names}).", param="model",
                              code="model_not_found")
        return dep, True

    async def _complete(self, request: Request, name: str, kind: Kind, headers: dict[str, str],
                        started: float) -> Response | StreamingResponse:
        gw = self.gw
        route, consumer = self._endpoint(request, name)
        who = consumer.name if consumer else ""
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes ("[[[[...")
            raise OpenAIError(400, "The request body is not valid JSON.", code="invalid_json") from None
        call = parse_request(kind, body)
        dep, targeted = self._deployment(route, call.model, request.headers.get(DEPLOYMENT_HEADER))
        headers[DEPLOYMENT_HEADER] = dep.name
        key = (route.name, dep.key)
        if gw.in_flight[key] >= dep.max_in_flight:
            err = OpenAIError(429, f"Deployment {dep.name!r} already has {dep.max_in_flight} requests in flight "
                                   "(2 × max_concurrent_requests_per_instance × instance_count): retry later, or "
                                   "scale the deployment.", code="rate_limit_exceeded", type="rate_limit_error")
            gw._record(route.name, dep, err.status, started, consumer=who)
            return _error(err, headers)
        admission = gw.admit(route, consumer, lambda: reservation(call.payload), headers)
        if isinstance(admission, Refusal):
            gw._record(route.name, dep, 429, started, consumer=who)
            return _error(OpenAIError(429, admission.message, code="rate_limit_exceeded", type=admission.limit),
                          headers)
        native = Request("POST", "/score", {"content-type": "application/json"},
                         [("Content-Type", "application/json")], call.native_body())
        if not targeted:
            self._mirror(route, call)
        caller = _Caller(who, admission)
        if call.stream:
            return await self._stream(route, dep, call, native, headers, started, caller)
        gw._enter(key, +1)
        status, usage = CLIENT_CLOSED, None  # until an answer says otherwise
        try:
            answer = await gw._forward(route, dep, "POST", "/score", native, headers)
            response, usage = self._translate(call, answer, headers)
            status = response.status
        finally:
            gw._enter(key, -1)
            caller.settle(gw, status, usage)
        gw._record(route.name, dep, response.status, started, consumer=who, tokens=usage_pair(usage))
        if usage is not None:
            self.tokens.tokens((route.name, dep.name, dep.model), usage, who)
        return response

    def _mirror(self, route: EndpointRoute, call: Call) -> None:
        shadow = route.mirror_to(self.gw.rng)
        if shadow is None:
            return
        payload = {k: v for k, v in call.payload.items() if k != "stream"}  # its answer is discarded: one piece
        copy = Request("POST", "/score", {"content-type": "application/json"},
                       [("Content-Type", "application/json")], json.dumps(payload).encode())
        task = asyncio.create_task(self.gw._mirror(route, shadow, copy))
        self.gw.mirrors.add(task)
        task.add_done_callback(self.gw.mirrors.discard)

    @staticmethod
    def _translate(call: Call, answer: Response, headers: dict[str, str]) -> tuple[Response, object]:
        """The gateway's answer to the native request, in OpenAI's shape, and its usage (None for an error)."""
        if answer.status == 200:
            try:
                data = json.loads(answer.body)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return _error(OpenAIError(502, "The model server's answer is not a JSON object: is this a "
                                               "generation deployment (scoring/generate.py)?"), headers), None
            body = completion(call, data, id=completion_id(call.kind), created=int(time.time()))
            return json_response(200, body, headers), body["usage"]
        if answer.status == 424:  # the model server answered non-2xx
            status = int(headers.get("ms-azureml-model-error-statuscode", "500"))
            return _error(from_native_error(status, answer.body), headers), None
        return _error(_gateway_error(answer.status, answer.body), headers), None

    async def _open(self, route: EndpointRoute, dep: DeploymentRoute, native: Request,
                    headers: dict[str, str]) -> tuple[Stream, int] | OpenAIError:
        """A streamed answer's head from one of the deployment's instances (the port it holds, counted in
        ``in_flight_port`` from before the request goes out, as proxy.py's ``_forward`` counts), or the error."""
        gw = self.gw
        sent = [("Content-Type", "application/json"), ("x-request-id", headers["x-request-id"])]
        if "x-ms-client-request-id" in headers:
            sent.append(("x-ms-client-request-id", headers["x-ms-client-request-id"]))
        outcome = await send_to_an_instance(
            gw, route, dep, lambda port: gw.upstreams.stream(port, "POST", "/score", sent, native.body), hold=True)
        if isinstance(outcome, Failure):
            if outcome.status == 408:
                return OpenAIError(408, outcome.message, code="timeout", type="server_error")
            return OpenAIError(outcome.status, outcome.message)
        return outcome

    async def _stream(self, route: EndpointRoute, dep: DeploymentRoute, call: Call, native: Request,
                      headers: dict[str, str], started: float, caller: _Caller) -> Response | StreamingResponse:
        gw = self.gw
        key = (route.name, dep.key)
        gw._enter(key, +1)
        try:
            opened = await self._open(route, dep, native, headers)
        except BaseException:
            gw._enter(key, -1)
            caller.settle(gw, CLIENT_CLOSED, None)
            raise
        if isinstance(opened, OpenAIError):
            gw._enter(key, -1)
            caller.settle(gw, opened.status, None)
            gw._record(route.name, dep, opened.status, started, consumer=caller.name)
            return _error(opened, headers)
        stream, port = opened
        if stream.status != 200 or not (stream.content_type or "").startswith("text/event-stream"):
            try:
                body = await stream.read()
            except (Dropped, TimeoutError):
                body = b""
            finally:
                stream.close()
                self._release(key, port)
            err = from_native_error(stream.status, body) if stream.status != 200 else OpenAIError(
                502, "The model server did not stream: is this a generation deployment (scoring/generate.py)?")
            caller.settle(gw, err.status, None)
            gw._record(route.name, dep, err.status, started, consumer=caller.name)
            return _error(err, headers)
        headers["Content-Type"] = "text/event-stream; charset=utf-8"
        headers["Cache-Control"] = "no-cache"
        held = _Held(self, route, dep, stream, port, started, caller)
        return StreamingResponse(200, headers, self._relay(route, dep, call, held), on_close=held.close)

    def _release(self, key: tuple[str, str], port: int) -> None:
        self.gw._enter(key, -1)
        self._leave_port(port)

    def _leave_port(self, port: int) -> None:
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

    async def _relay(self, route: EndpointRoute, dep: DeploymentRoute, call: Call,
                     held: _Held) -> AsyncIterator[bytes]:
        """The model server's events as OpenAI chunks, one by one as they come."""
        writer = ChunkWriter(call, id=completion_id(call.kind), created=int(time.time()))
        stream, started = held.stream, held.started
        first_token: float | None = None
        queue_s: object = None
        try:
            first = writer.start()
            if first:
                yield first
            pending = b""
            async for piece in stream.chunks(dep.timeout_s):
                pending += piece
                while (end := pending.find(b"\n\n")) >= 0:
                    data = _event(pending[:end])
                    pending = pending[end + 2 :]
                    if data is not None:
                        if first_token is None and (data.get("text") or data.get("tokens")):
                            first_token = time.perf_counter()
                        queue_s = data.get("queue_s", queue_s)
                        out = writer.event(data)
                        if out:
                            yield out
            yield writer.end()
            held.status = 200
            held.usage = writer.usage
            held.timings = self._observe(route, dep, writer.usage, started, first_token, queue_s, held.caller.name)
        except TimeoutError:
            held.status = 408
            yield sse(error_body(f"Deployment {dep.name!r} sent nothing for request_timeout_ms="
                                 f"{int(dep.timeout_s * 1000)}.", "server_error", code="timeout"))
        except Dropped as exc:
            held.status = 502
            yield sse(error_body(f"The instance of deployment {dep.name!r} dropped the stream: {exc}.",
                                 "server_error"))
        except Exception:
            held.status = 500
            raise
        finally:
            held.close()


class _Held:
    """What a streamed answer holds (its instance connection, its slot), let go once: when the relay ends, or
    when the answer is done with though the relay never started (the client left before the head went out)."""

    def __init__(self, routes: OpenAIRoutes, route: EndpointRoute, dep: DeploymentRoute, stream: Stream, port: int,
                 started: float, caller: _Caller) -> None:
        self.routes, self.route, self.dep = routes, route, dep
        self.stream, self.port, self.started, self.caller = stream, port, started, caller
        self.status = CLIENT_CLOSED  # until the answer ends otherwise
        self.usage: dict[str, int] | None = None  # the final chunk's
        self.timings: tuple[float | None, float | None] = (None, None)  # time to first token, per output token (s)
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stream.close()  # an answer not read to its end: the connection is reset, the generation cancelled
        self.routes._release((self.route.name, self.dep.key), self.port)
        gw = self.routes.gw
        self.caller.settle(gw, self.status, self.usage)
        recorded = len(gw.facts)
        gw._record(self.route.name, self.dep, self.status, self.started, consumer=self.caller.name,
                   tokens=usage_pair(self.usage))
        if self.timings != (None, None) and len(gw.facts) == recorded + 1 and len(gw.facts[-1]) == TIMINGS_AT:
            # proxy.py's _record takes no timings; the fact it has just appended gets them
            gw.facts[-1] = (*gw.facts[-1], *(None if t is None else t * 1000 for t in self.timings))


class _Caller:
    """Who sent a request (a consumer's name, "" for an endpoint key) and what its admission reserved."""

    def __init__(self, name: str, admission: Admission | None) -> None:
        self.name, self.admission = name, admission

    def settle(self, gw: Gateway, status: int, usage: object) -> None:
        """The request ended: its reservation becomes what it used (once; later calls do nothing)."""
        if self.admission is not None:
            gw.consumer_limits.settle(self.admission, used_tokens(status, usage_pair(usage)))


def _event(raw: bytes) -> dict[str, Any] | None:
    """One server-sent event's JSON data (None for a comment or anything else)."""
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                data = json.loads(line[5:])
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def _gateway_error(status: int, body: bytes) -> OpenAIError:
    """One of the gateway's own errors (``{"error": {"code", "message"}}``) in OpenAI's shape."""
    try:
        message = str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = f"The gateway answered {status}."
    return OpenAIError(status, message, code="timeout" if status == 408 else None,
                       type="server_error" if status >= 500 or status == 408 else None)
