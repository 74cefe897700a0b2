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

A streamed request is held and relayed by held_streams.py, as a streamed
``/score`` is: the model server's events become OpenAI chunks one by one as
they arrive, and a client that goes away cancels the generation.
"""

from __future__ import annotations

import json
import time
from typing import Any

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
)
from ...routing import ConsumerRoute, DeploymentRoute, EndpointRoute
from ...serving import DEPLOYMENT_HEADER
from ...sse import encode
from .consumer_limits import Refusal, reservation, usage_pair
from .held_streams import CLIENT_CLOSED, Caller, Gateway, Held, Streams, mirror_whole
from .http_server import Request, Response, json_response
from .instances import Failure
from .streaming import StreamingResponse

KINDS = {"chat/completions": Kind.CHAT, "completions": Kind.COMPLETION}


def _error(err: OpenAIError, headers: dict[str, str]) -> Response:
    return json_response(err.status, err.body(), headers)


class OpenAIRoutes:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.streams = Streams(gateway)
        self.tokens = self.streams.tokens

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
            mirror_whole(gw, route, call.payload)
        caller = Caller(who, admission)
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
            caller.settle(gw, status, usage_pair(usage))
        gw._record(route.name, dep, response.status, started, consumer=who, tokens=usage_pair(usage))
        if usage is not None:
            self.tokens.tokens((route.name, dep.name, dep.model), usage, who)
        return response

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

    async def _stream(self, route: EndpointRoute, dep: DeploymentRoute, call: Call, native: Request,
                      headers: dict[str, str], started: float, caller: Caller) -> Response | StreamingResponse:
        streams = self.streams
        opened = await streams.open(route, dep, native.body, native.raw_headers, headers, caller, started)
        if isinstance(opened, Held):
            return streams.respond(opened, _Chunks(call), headers, "text/event-stream; charset=utf-8")
        if isinstance(opened, Failure):
            err = OpenAIError(opened.status, opened.message, code="timeout" if opened.status == 408 else None,
                              type="server_error" if opened.status == 408 else None)
        elif opened.status != 200:
            err = from_native_error(opened.status, opened.body)
        else:
            err = OpenAIError(502, "The model server did not stream: is this a generation deployment "
                                   "(scoring/generate.py)?")
        streams.ended(route, dep, caller, err.status, started)
        return _error(err, headers)


class _Chunks:
    """A stream's events as OpenAI's chunks (core/openai_api.py's ChunkWriter), for the relay."""

    def __init__(self, call: Call) -> None:
        self.writer = ChunkWriter(call, id=completion_id(call.kind), created=int(time.time()))

    @property
    def usage(self) -> dict[str, int] | None:
        return self.writer.usage

    def start(self) -> bytes:
        return self.writer.start()

    def event(self, raw: bytes, data: dict[str, Any] | None) -> bytes:
        return self.writer.event(data) if data is not None else b""

    def end(self) -> bytes:
        return self.writer.end()

    def broken(self, status: int, message: str) -> bytes:
        return encode(error_body(message, "server_error", code="timeout" if status == 408 else None))


def _gateway_error(status: int, body: bytes) -> OpenAIError:
    """One of the gateway's own errors (``{"error": {"code", "message"}}``) in OpenAI's shape."""
    try:
        message = str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = f"The gateway answered {status}."
    return OpenAIError(status, message, code="timeout" if status == 408 else None,
                       type="server_error" if status >= 500 or status == 408 else None)
