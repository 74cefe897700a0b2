"""Streamed generation: text handed out in settled pieces, logprobs, penalties, and cancelled rows."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from byom_scoring import streaming
from byom_scoring.batching import ContinuousBatcher
from byom_scoring.streaming import (
    IncrementalText,
    StreamingGenerator,
    StreamRequest,
    TokenFeed,
    penalized,
)


class Pieces:
    """A tokenizer whose tokens are the given strings, decoded by joining them."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(self.pieces[i] for i in ids)


def test_text_that_could_begin_a_stop_sequence_is_held_back() -> None:
    pieces = ["Hel", "lo ", "wo", "rld", "!"]
    text = IncrementalText(Pieces(pieces), stop=["world"])
    assert [text.add([i]) for i in range(4)] == ["Hel", "lo ", "", ""]  # "wo" might be the stop; "world" is
    assert text.rest("Hello ") == ""
    text = IncrementalText(Pieces(pieces), stop=["word"])
    assert [text.add([i]) for i in range(5)] == ["Hel", "lo ", "", "world", "!"]  # "wo" was not "word" after all


def test_a_character_split_over_tokens_is_sent_whole(tiny_lm_in: Any) -> None:
    tokenizer = tiny_lm_in("float32").tokenizer
    ids = tokenizer("Smile 🙂 and ñandú 你好", add_special_tokens=False)["input_ids"]
    text = IncrementalText(tokenizer, stop=[])
    deltas = [text.add([i]) for i in ids]
    assert not any("\ufffd" in d for d in deltas)
    assert "".join(deltas) == tokenizer.decode(ids, skip_special_tokens=True)
    assert any(d == "" for d in deltas)  # some token was indeed only part of a character
    anything = random.Random(0).sample(range(len(tokenizer)), 400)  # byte pieces, specials, words
    text = IncrementalText(tokenizer, stop=["the"])
    handed = "".join(text.add([i]) for i in anything)
    whole = tokenizer.decode(anything, skip_special_tokens=True)
    assert handed + text.rest(whole.split("the")[0]) == whole.split("the")[0]


def test_penalties_follow_openais_rule() -> None:
    logits = torch.zeros((2, 4))
    rows: list[Any] = [
        SimpleNamespace(request=StreamRequest([0], frequency_penalty=0.5, presence_penalty=1.0), generated=[1, 1, 2]),
        SimpleNamespace(request=StreamRequest([0]), generated=[1]),
    ]
    out = penalized(logits, rows)
    assert out[0].tolist() == [0.0, -2.0, -1.5, 0.0] and out[1].tolist() == [0.0] * 4
    assert logits.abs().sum() == 0  # a copy: the logits the logprobs come from are untouched


def run_stream(batcher: ContinuousBatcher[Any, Any], tokenizer: Any, request: StreamRequest) -> list[dict[str, Any]]:
    request.feed = TokenFeed()
    future = batcher.start(request)
    request.attach(future)
    return [json.loads(e.removeprefix(b"data: ")) for e in streaming.events(tokenizer, request, future)]


def test_a_stream_says_what_the_whole_answer_says_with_logprobs(tiny_lm_in: Any, one_torch_thread: None) -> None:
    lm = tiny_lm_in("float32")
    batcher = ContinuousBatcher(StreamingGenerator(lm).batch(), max_batch=4)
    prompt = lm.tokenizer("Once upon a time")["input_ids"]
    whole = batcher.submit(StreamRequest(prompt, max_new_tokens=12))
    events = run_stream(batcher, lm.tokenizer, StreamRequest(prompt, max_new_tokens=12, logprobs=5))
    *tokens, last = events
    assert "".join(e["text"] for e in events) == whole.text
    assert last["finish_reason"] == whole.finish_reason and last["usage"]["completion_tokens"] == 12
    assert 0 <= last["queue_s"] < 60
    listed = [t for e in tokens for t in e["tokens"]]
    assert len(listed) == 12
    for t in listed:
        tops = [a["logprob"] for a in t["top_logprobs"]]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True)
        assert t["logprob"] == pytest.approx(tops[0]) and t["top_logprobs"][0]["id"] == t["id"]  # greedy


def test_cancelled_rows_leave_before_the_next_step_and_queued_ones_never_start(tiny_lm_in: Any,
                                                                              one_torch_thread: None) -> None:
    lm = tiny_lm_in("float32")
    batch = StreamingGenerator(lm).batch()
    prompt = lm.tokenizer("Hello")["input_ids"]
    going, staying, never = (StreamRequest(prompt, max_new_tokens=50, feed=TokenFeed()) for _ in range(3))
    batch.admit([("going", going), ("staying", staying)])
    batch.step()
    going.feed.cancelled.set()
    never.feed.cancelled.set()
    batch.admit([("never", never)])
    done = dict(batch.step())
    assert done["going"].finish_reason == done["never"].finish_reason == "cancelled"
    assert done["going"].completion_tokens == 1 and len(batch) == 1 and batch.cancelled == 2
    assert [row.key for row in batch.rows] == ["staying"]
    while batch:
        batch.step()
    assert batch.cancelled == 2
