"""OpenAI requests into generate.py's payload, and its answers and events into OpenAI's shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from byom.core.openai_api import ChunkWriter, Kind, OpenAIError, completion, from_native_error, parse_request

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}


def test_a_chat_request_becomes_the_native_payload() -> None:
    call = parse_request(Kind.CHAT, {**CHAT, "max_completion_tokens": 7, "temperature": 0, "top_p": 0.5,
                                     "stop": "\n", "seed": 4, "n": 1, "frequency_penalty": 0.1, "logprobs": True,
                                     "top_logprobs": 3, "stream": True, "stream_options": {"include_usage": True},
                                     "messages": [{"role": "developer", "content": [{"type": "text", "text": "a"},
                                                                                    {"type": "text", "text": "b"}]}]})
    assert call.payload == {"messages": [{"role": "system", "content": "ab"}], "max_new_tokens": 7, "top_p": 0.5,
                            "frequency_penalty": 0.1, "seed": 4, "stop": ["\n"], "logprobs": 3, "stream": True}
    assert (call.stream, call.include_usage, call.logprobs) == (True, True, True)
    sampled = parse_request(Kind.COMPLETION, {"model": "m", "prompt": ["go"], "logprobs": 0})
    assert sampled.payload == {"prompt": "go", "chat_template": False, "do_sample": True, "logprobs": 0}


@pytest.mark.parametrize(("kind", "body", "param"), [
    (Kind.CHAT, {**CHAT, "tools": []}, "tools"),
    (Kind.CHAT, {"messages": CHAT["messages"]}, "model"),
    (Kind.CHAT, {"model": "chat"}, "messages"),
    (Kind.CHAT, {**CHAT, "max_tokens": 1, "max_completion_tokens": 1}, "max_tokens"),
    (Kind.CHAT, {**CHAT, "top_logprobs": 2}, "top_logprobs"),
    (Kind.CHAT, {**CHAT, "stream_options": {"include_usage": True}}, "stream_options"),
    (Kind.CHAT, {**CHAT, "stream": True, "stream_options": {"x": 1}}, "stream_options.x"),
    (Kind.CHAT, {**CHAT, "max_tokens": True}, "max_tokens"),
    (Kind.CHAT, {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]"),
    (Kind.COMPLETION, {"model": "m", "prompt": "x", "logprobs": 21}, "logprobs"),
    (Kind.COMPLETION, {"model": "m", "prompt": ["a", "b"]}, "prompt"),
    (Kind.COMPLETION, {"model": "m", "prompt": "x", "echo": True}, "echo"),
    (Kind.COMPLETION, {"model": "m", "prompt": "x", "presence_penalty": -3}, "presence_penalty"),
])
def test_bad_requests_name_the_parameter(kind: Kind, body: dict[str, Any], param: str) -> None:
    with pytest.raises(OpenAIError) as caught:
        parse_request(kind, body)
    err = caught.value.body()["error"]
    assert caught.value.status == 400 and err["param"] == param and err["type"] == "invalid_request_error"


def test_answers_and_native_refusals_in_openai_shapes() -> None:
    call = parse_request(Kind.COMPLETION, {"model": "m", "prompt": "x", "logprobs": 1})
    tokens = [{"id": 1, "token": "ab", "logprob": -0.5, "top_logprobs": [{"id": 1, "token": "ab", "logprob": -0.5}]},
              {"id": 2, "token": "c", "logprob": -1.0, "top_logprobs": [{"id": 2, "token": "c", "logprob": -1.0}]}]
    answer = completion(call, {"text": "abc", "finish_reason": "length", "logprobs": tokens,
                               "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
                        id="cmpl-1", created=5)
    assert answer["choices"][0]["logprobs"] == {"tokens": ["ab", "c"], "token_logprobs": [-0.5, -1.0],
                                                "top_logprobs": [{"ab": -0.5}, {"c": -1.0}], "text_offset": [0, 2]}
    refused = from_native_error(400, json.dumps({"message": "too many", "field": "max_new_tokens"}).encode())
    assert (refused.status, refused.param) == (400, "max_tokens")
    too_long = from_native_error(413, json.dumps({"message": "long", "field": "messages"}).encode())
    assert (too_long.status, too_long.code) == (400, "context_length_exceeded")


def lines(raw: bytes) -> list[Any]:
    return [json.loads(x) if x != "[DONE]" else x for x in raw.decode().replace("data: ", "").split("\n\n") if x]


def test_native_events_become_chunks_then_usage_then_done() -> None:
    call = parse_request(Kind.CHAT, {**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    writer = ChunkWriter(call, id="chatcmpl-1", created=5)
    out = writer.start() + writer.event({"text": "Hel"}) + writer.event({"text": ""}) + writer.event(
        {"text": "lo", "finish_reason": "length", "usage": {"prompt_tokens": 1, "completion_tokens": 2,
                                                            "total_tokens": 3}}) + writer.end()
    chunks = lines(out)
    assert chunks[-1] == "[DONE]"
    role, hel, lo, finish, usage = chunks[:-1]
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"] for c in (hel, lo)] == [{"content": "Hel"}, {"content": "lo"}]
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 3
    assert all(c["usage"] is None for c in (role, hel, lo, finish)) and {c["id"] for c in chunks[:-1]} == {"chatcmpl-1"}
    failed = lines(ChunkWriter(call, id="x", created=5).event({"error": {"message": "boom"}}))
    assert failed == [{"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}]
