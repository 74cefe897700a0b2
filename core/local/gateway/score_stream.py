"""A streamed ``/score``: a JSON body with ``"stream": true`` gets the model server's server-sent events
unchanged, as they come.

proxy.py's ``score`` applies the rules it applies to every request (key, deployment, in-flight limit,
consumer admission) and hands such a request here; held_streams.py holds and relays it as it does the OpenAI
routes' streams: the slot and the instance connection are held until the answer ends, a client that goes away
cancels the generation, and the request's fact (status, consumer, tokens from the final event's ``usage``) is
recorded once. Whatever comes before the first event is answered as a whole ``/score`` is: the gateway's JSON
errors, 424 with the model server's status and reason when it answered non-2xx, and a 2xx answer that does not
stream (a script that ignores ``stream``) as it came.
"""

from __future__ import annotations

import json
from typing import Any

from ...routing import DeploymentRoute, EndpointRoute
from ...sse import encode
from .consumer_limits import Admission, answer_usage
from .held_streams import Caller, Gateway, Held, Streams, Whole, mirror_whole
from .http_server import Response, json_error
from .instances import Failure
from .streaming import StreamingResponse


def stream_payload(body: bytes) -> dict[str, Any] | None:
    """The payload of a ``/score`` body that asks to stream (a JSON object with ``"stream": true``), else None:
    anything else goes to the model server whole, which judges it."""
    if b'"stream"' not in body:  # most bodies are not parsed here at all
        return None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) and payload.get("stream") is True else None


async def stream_score(gw: Gateway, streams: Streams, route: EndpointRoute, dep: DeploymentRoute, targeted: bool,
                       payload: dict[str, Any], body: bytes, forwarded: list[tuple[str, str]],
                       headers: dict[str, str], started: float, consumer: str,
                       admission: Admission | None) -> Response | StreamingResponse:
    """The streamed answer to an admitted ``/score`` request, sent with the ``forwarded`` request headers."""
    if not targeted:
        mirror_whole(gw, route, payload)
    caller = Caller(consumer, admission)
    opened = await streams.open(route, dep, body, forwarded, headers, caller, started)
    if isinstance(opened, Held):
        return streams.respond(opened, _AsItCame(), headers,
                               opened.stream.content_type or "text/event-stream; charset=utf-8")
    if isinstance(opened, Failure):
        response = json_error(opened.status, opened.message, headers)
    else:
        response = model_answer(opened, headers)
    tokens = answer_usage(opened.body) if isinstance(opened, Whole) and response.status < 300 else None
    streams.ended(route, dep, caller, response.status, started, tokens)
    return response


def model_answer(answer: Whole, headers: dict[str, str]) -> Response:
    """The gateway's answer to what the model server answered: as it is when 2xx, else 424 with the server's
    status and reason in ``ms-azureml-model-error-*`` (proxy.py's ``_forward`` answers the same)."""
    headers["Content-Type"] = answer.content_type or "application/json"
    if 200 <= answer.status < 300:
        return Response(answer.status, headers, answer.body)
    headers["ms-azureml-model-error-statuscode"] = str(answer.status)
    headers["ms-azureml-model-error-reason"] = answer.reason
    return Response(424, headers, answer.body)


class _AsItCame:
    """The model server's events relayed unchanged; the final one's usage kept for the request's fact."""

    def __init__(self) -> None:
        self.usage: dict[str, int] | None = None

    def start(self) -> bytes:
        return b""

    def event(self, raw: bytes, data: dict[str, Any] | None) -> bytes:
        if data is not None and isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        return raw

    def end(self) -> bytes:
        return b""

    def broken(self, status: int, message: str) -> bytes:
        """An error event in the gateway's error shape (``{"error": {"code", "message"}}``)."""
        return encode({"error": {"code": status, "message": message}})
