"""The OpenAI API's shapes, written once: requests checked and turned into generate.py's payload, and that
script's answers and stream events turned into OpenAI's completions, chunks and errors.

Pure functions over plain JSON values, no I/O: the local gateway
(``core/local/gateway/openai_routes.py``) serves them, and another backend
can share them. The payload is the native one of ``scoring/generate.py``
(``max_new_tokens``, ``logprobs`` as a count of alternatives, ``stream``), so
the same script answers ``/score`` and the OpenAI routes, here and on Azure.

Supported, as vLLM's OpenAI server and OpenAI's own API take them:
``messages`` / ``prompt``, ``max_tokens`` / ``max_completion_tokens``,
``temperature``, ``top_p``, ``stop``, ``seed``, ``n`` (1 only), ``stream``,
``stream_options.include_usage``, ``logprobs`` (chat: true with
``top_logprobs`` up to 20; completions: a count up to 20),
``frequency_penalty`` and ``presence_penalty``. Anything else is refused
with OpenAI's error shape (400, ``type`` "invalid_request_error", ``param``
named), not ignored: a client that asks for ``tools`` or ``response_format``
learns at once that they are not honoured.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .sse import encode as sse

MAX_TOP_LOGPROBS = 20
MAX_STOP = 4
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
COMMON = {"model", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream", "stream_options", "logprobs",
          "frequency_penalty", "presence_penalty"}
CHAT_FIELDS = COMMON | {"messages", "max_completion_tokens", "top_logprobs"}
COMPLETION_FIELDS = COMMON | {"prompt"}
# generate.py's field → the OpenAI parameter a client sent
NATIVE_PARAMS = {"max_new_tokens": "max_tokens", "logprobs": "logprobs"}


class Kind(StrEnum):
    CHAT = "chat.completion"
    COMPLETION = "text_completion"


class OpenAIError(Exception):
    """An answer in OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or ("invalid_request_error" if status < 500 else "server_error")

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _bad(message: str, param: str, code: str | None = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


@dataclass(frozen=True)
class Call:
    """A checked OpenAI request: whom it names, the native payload for generate.py, and how to answer."""

    kind: Kind
    model: str
    payload: dict[str, Any]
    stream: bool
    include_usage: bool
    logprobs: bool  # whether the answer lists logprobs

    def native_body(self) -> bytes:
        return json.dumps(self.payload).encode()


# ------------------------------------------------------------------ requests


def parse_request(kind: Kind, body: object) -> Call:
    """A Call from the JSON body of ``/v1/chat/completions`` or ``/v1/completions``, or OpenAIError."""
    if not isinstance(body, dict):
        raise OpenAIError(400, "The request body must be a JSON object.", code="invalid_json")
    allowed = CHAT_FIELDS if kind is Kind.CHAT else COMPLETION_FIELDS
    for name in body:
        if name not in allowed:
            raise _bad(f"Unrecognized request argument supplied: {name}. This server takes: "
                       f"{', '.join(sorted(allowed))}.", name, "unsupported_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("'model' is required: the endpoint's name, or one of its deployments' names.", "model",
                   "missing_required_parameter" if model is None else "invalid_type")
    payload: dict[str, Any] = {}
    if kind is Kind.CHAT:
        payload["messages"] = _messages(body.get("messages"))
    else:
        payload["prompt"] = _prompt(body.get("prompt"))
        payload["chat_template"] = False  # a completion continues the text as it is
    limit = _max_tokens(body)
    if limit is not None:
        payload["max_new_tokens"] = limit
    temperature = _number(body, "temperature", 0.0, 2.0)
    if temperature is None or temperature > 0:
        payload["do_sample"] = True  # OpenAI samples at temperature 1 unless told otherwise
        if temperature is not None:
            payload["temperature"] = temperature
    top_p = _number(body, "top_p", 0.0, 1.0)
    if top_p is not None:
        if top_p == 0:
            raise _bad("'top_p' must be greater than 0.", "top_p")
        payload["top_p"] = top_p
    for name in ("frequency_penalty", "presence_penalty"):
        value = _number(body, name, -2.0, 2.0)
        if value is not None:
            payload[name] = value
    seed = _integer(body, "seed", 0, 2**63 - 1)
    if seed is not None:
        payload["seed"] = seed
    stop = _stop(body.get("stop"))
    if stop:
        payload["stop"] = stop
    n = _integer(body, "n", 1, 128)
    if n not in (None, 1):
        raise _bad("Only n=1 is supported: send one request per completion you want.", "n")
    stream = _boolean(body, "stream") or False
    include_usage = _stream_options(body.get("stream_options"), stream)
    top = _logprobs(body, kind)
    if top is not None:
        payload["logprobs"] = top
    if stream:
        payload["stream"] = True
    return Call(kind, model, payload, stream, include_usage, top is not None)


def _type_error(param: str, wanted: str, value: object) -> OpenAIError:
    return _bad(f"'{param}' must be {wanted}, got {json.dumps(value)[:80]}.", param, "invalid_type")


def _messages(value: object) -> list[dict[str, str]]:
    if value is None:
        raise _bad("'messages' is required: a list of {role, content} messages.", "messages",
                   "missing_required_parameter")
    if not isinstance(value, list) or not value:
        raise _bad("'messages' must be a non-empty list of {role, content} messages.", "messages")
    out = []
    for i, message in enumerate(value):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _type_error(param, "an object with 'role' and 'content'", message)
        extra = sorted(set(message) - {"role", "content", "name"})
        if extra:
            raise _bad(f"'{param}.{extra[0]}' is not supported: messages take 'role' and 'content'.",
                       f"{param}.{extra[0]}", "unsupported_parameter")
        role = message.get("role")
        if role not in ROLES:
            raise _bad(f"'{param}.role' must be one of {', '.join(sorted(ROLES))}, got {json.dumps(role)}.",
                       f"{param}.role")
        out.append({"role": ROLES[str(role)], "content": _content(message.get("content"), f"{param}.content")})
    return out


def _content(value: object, param: str) -> str:
    """A message's text: a string, or a list of text parts joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        parts = []
        for i, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"'{param}[{i}]' must be a text part ({{\"type\": \"text\", \"text\": ...}}): "
                           "this server takes text only.", f"{param}[{i}]")
            parts.append(part["text"])
        return "".join(parts)
    raise _type_error(param, "a string or a list of text parts", value)


def _prompt(value: object) -> str:
    if value is None:
        raise _bad("'prompt' is required: the text to continue.", "prompt", "missing_required_parameter")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    if not isinstance(value, str):
        raise _type_error("prompt", "a string (one prompt per request)", value)
    if not value:
        raise _bad("'prompt' is empty.", "prompt")
    return value


def _max_tokens(body: dict[str, Any]) -> int | None:
    given = [name for name in ("max_completion_tokens", "max_tokens") if body.get(name) is not None]
    if len(given) > 1:
        raise _bad("Send one of 'max_tokens' and 'max_completion_tokens', not both.", "max_tokens")
    return _integer(body, given[0], 1, 2**31 - 1) if given else None


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _type_error(name, "a number", value)
    if not lo <= value <= hi:
        raise _bad(f"'{name}' must be between {lo:g} and {hi:g}, got {value}.", name)
    return float(value)


def _integer(body: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "an integer", value)
    if not lo <= value <= hi:
        raise _bad(f"'{name}' must be between {lo} and {hi}, got {value}.", name)
    return value


def _boolean(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _type_error(name, "true or false", value)
    return value


def _stop(value: object) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or len(stops) > MAX_STOP or not all(isinstance(s, str) and s for s in stops):
        raise _bad(f"'stop' must be a string or a list of at most {MAX_STOP} non-empty strings.", "stop")
    return stops


def _stream_options(value: object, stream: bool) -> bool:
    if value is None:
        return False
    if not stream:
        raise _bad("'stream_options' is only allowed when 'stream' is true.", "stream_options")
    if not isinstance(value, dict):
        raise _type_error("stream_options", "an object", value)
    for name in value:
        if name != "include_usage":
            raise _bad(f"'stream_options.{name}' is not supported: only include_usage is.", f"stream_options.{name}",
                       "unsupported_parameter")
    include = value.get("include_usage", False)
    if not isinstance(include, bool):
        raise _type_error("stream_options.include_usage", "true or false", include)
    return include


def _logprobs(body: dict[str, Any], kind: Kind) -> int | None:
    """How many alternatives to list per token (0: the chosen token's logprob only), or None for no logprobs."""
    if kind is Kind.COMPLETION:
        return _integer(body, "logprobs", 0, MAX_TOP_LOGPROBS)
    wanted = _boolean(body, "logprobs")
    top = _integer(body, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    if top is not None and not wanted:
        raise _bad("'top_logprobs' needs 'logprobs': true.", "top_logprobs")
    return (top or 0) if wanted else None


# ----------------------------------------------------------------- answers


def base_url(scoring_uri: str) -> str:
    """Where an OpenAI client points for an endpoint whose gateway serves the OpenAI routes: beside its
    ``/score``, ``.../endpoints/<name>/v1``."""
    return scoring_uri.removesuffix("/score") + "/v1"


def completion_id(kind: Kind) -> str:
    return ("chatcmpl-" if kind is Kind.CHAT else "cmpl-") + uuid.uuid4().hex


def models_list(names: list[str], created: int | None = None) -> dict[str, Any]:
    """``GET /v1/models``: the endpoint and its deployments, each a model a request may name."""
    return {"object": "list", "data": [model_card(name, created) for name in names]}


def model_card(name: str, created: int | None = None) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": int(time.time()) if created is None else created,
            "owned_by": "byom"}


def _token_bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


def chat_logprobs(tokens: list[dict[str, Any]]) -> dict[str, Any]:
    """generate.py's token list as a chat choice's ``logprobs``: ``{"content": [{token, logprob, bytes,
    top_logprobs}]}``."""
    return {
        "content": [
            {
                "token": t["token"], "logprob": t["logprob"], "bytes": _token_bytes(t["token"]),
                "top_logprobs": [{"token": a["token"], "logprob": a["logprob"], "bytes": _token_bytes(a["token"])}
                                 for a in t.get("top_logprobs") or []],
            }
            for t in tokens
        ],
        "refusal": None,
    }


def completion_logprobs(tokens: list[dict[str, Any]], offset: int = 0) -> dict[str, Any]:
    """generate.py's token list as a completion choice's ``logprobs`` (the legacy shape: parallel lists)."""
    offsets = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t["token"])
    return {
        "tokens": [t["token"] for t in tokens],
        "token_logprobs": [t["logprob"] for t in tokens],
        "top_logprobs": [{a["token"]: a["logprob"] for a in t.get("top_logprobs") or []} for t in tokens],
        "text_offset": offsets,
    }


def _finish_reason(reason: object) -> str | None:
    return reason if reason in ("stop", "length") else None


def completion(call: Call, answer: dict[str, Any], *, id: str, created: int) -> dict[str, Any]:
    """generate.py's answer to a non-streamed request as OpenAI's chat completion or text completion."""
    tokens = answer.get("logprobs") if call.logprobs else None
    choice: dict[str, Any] = {"index": 0}
    if call.kind is Kind.CHAT:
        choice["message"] = {"role": "assistant", "content": answer.get("text", ""), "refusal": None}
        choice["logprobs"] = chat_logprobs(tokens) if tokens is not None else None
    else:
        choice["text"] = answer.get("text", "")
        choice["logprobs"] = completion_logprobs(tokens) if tokens is not None else None
    choice["finish_reason"] = _finish_reason(answer.get("finish_reason"))
    return {"id": id, "object": call.kind.value, "created": created, "model": call.model, "choices": [choice],
            "usage": answer.get("usage")}


class ChunkWriter:
    """Turns generate.py's stream events into OpenAI's chunks (``data: {...}`` lines), then ``data: [DONE]``."""

    def __init__(self, call: Call, *, id: str, created: int) -> None:
        self.call = call
        self.id = id
        self.created = created
        self.object = "chat.completion.chunk" if call.kind is Kind.CHAT else "text_completion"
        self.offset = 0  # characters of completion text sent (a completion's text_offset)
        self.usage: dict[str, int] | None = None

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        chunk: dict[str, Any] = {"id": self.id, "object": self.object, "created": self.created,
                                 "model": self.call.model, "choices": choices}
        if self.call.include_usage:
            chunk["usage"] = usage
        return sse(chunk)

    def _choice(self, text: str, tokens: list[dict[str, Any]] | None, finish: str | None,
                first: bool = False) -> dict[str, Any]:
        if self.call.kind is Kind.CHAT:
            delta: dict[str, Any] = {"role": "assistant", "content": text} if first else (
                {"content": text} if text or finish is None else {})
            choice: dict[str, Any] = {"index": 0, "delta": delta}
            choice["logprobs"] = chat_logprobs(tokens) if tokens else None
        else:
            choice = {"index": 0, "text": text,
                      "logprobs": completion_logprobs(tokens, self.offset) if tokens else None}
        choice["finish_reason"] = finish
        self.offset += len(text)
        return choice

    def start(self) -> bytes:
        """The first chunk, sent before any token: a chat's assistant role (nothing for a completion)."""
        return self._chunk([self._choice("", None, None, first=True)]) if self.call.kind is Kind.CHAT else b""

    def event(self, data: dict[str, Any]) -> bytes:
        """One native event as chunks; an ``{"error"}`` event becomes OpenAI's error line."""
        if "error" in data:
            message = str((data.get("error") or {}).get("message") or "The model server failed.")
            return sse(error_body(message, "server_error"))
        text = str(data.get("text") or "")
        tokens = data.get("tokens") if self.call.logprobs else None
        finish = data.get("finish_reason")
        out = b""
        if text or tokens:
            out += self._chunk([self._choice(text, tokens, None)])
        if finish is not None:
            self.usage = data.get("usage")
            out += self._chunk([self._choice("", None, _finish_reason(finish) or "stop")])
        return out

    def end(self) -> bytes:
        """The usage chunk (when asked for) and ``[DONE]``."""
        out = self._chunk([], self.usage) if self.call.include_usage and self.usage is not None else b""
        return out + b"data: [DONE]\n\n"


def from_native_error(status: int, body: bytes) -> OpenAIError:
    """The model server's 4xx (``{"message", "field"}``) as OpenAI's error: 400 with the parameter named as the
    client sent it."""
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    message = str(data.get("message") or f"The model server answered {status}.")
    field = data.get("field")
    param = NATIVE_PARAMS.get(field, field) if isinstance(field, str) else None
    if 400 <= status < 500:
        code = "context_length_exceeded" if status == 413 and param in ("prompt", "messages") else None
        return OpenAIError(400, message, param=param, code=code)
    return OpenAIError(500, message, param=param)
