"""Tokens as they are chosen: streamed text, logprobs, frequency and presence penalties, cancellation.

``StreamingGenerator`` and ``StreamingBatch`` extend the batch of
generation.py without changing how it decodes: after every step the batch
hands each ``StreamRequest`` that has a ``TokenFeed`` its new token (with its
logprob and the top alternatives when asked), and before every step it drops
the rows whose feed was cancelled, so a client that went away frees its slot
before the next forward pass. The feed is read on the request's own server
thread, which does the decoding and the JSON, so the batch thread stays on
the model.

The text streamed is held back where it may still change: an incomplete
UTF-8 character at its end, and an end that could be the start of a stop
sequence. The native stream is server-sent events, one ``data: {json}``
line per event: ``{"text", "tokens"?}`` while tokens come, then
``{"text", "finish_reason", "usage", "queue_s"}`` (or ``{"error"}``) last.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Hashable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from .generation import BatchGenerator, GenerationRequest, GenerationResult, RunningBatch, _Row

MAX_TOP_LOGPROBS = 20
CANCELLED = "cancelled"


@dataclass
class StepToken:
    token_id: int
    logprob: float | None = None  # natural log of its probability, when logprobs were asked for
    top: list[tuple[int, float]] = field(default_factory=list)  # (token id, logprob), best first


class TokenFeed:
    """What the batch thread hands a request's server thread: its tokens as they are chosen, then the end."""

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[StepToken | None] = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self.tokens: list[StepToken] = []  # every token taken so far

    def put(self, token: StepToken) -> None:
        self._items.put(token)

    def close(self) -> None:
        self._items.put(None)

    def take(self) -> tuple[list[StepToken], bool]:
        """Wait for the next token, then take every one already there; and whether the request ended."""
        taken: list[StepToken] = []
        item = self._items.get()
        while item is not None:
            taken.append(item)
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                self.tokens += taken
                return taken, False
        self.tokens += taken
        return taken, True

    def take_all(self) -> list[StepToken]:
        """Every token of a request that has ended."""
        ended = False
        while not ended:
            _, ended = self.take()
        return self.tokens


@dataclass
class StreamRequest(GenerationRequest):
    logprobs: int | None = None  # None: no logprobs; k: the chosen token's and the top k alternatives'
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    feed: TokenFeed | None = None
    created_at: float = field(default_factory=time.monotonic)
    admitted_at: float | None = None  # when it joined the batch (set by the batch thread)

    def queue_s(self) -> float | None:
        """How long it waited to join the batch."""
        return None if self.admitted_at is None else self.admitted_at - self.created_at

    def attach(self, future: Future[GenerationResult]) -> None:
        """End the feed when the request is done, with a result or an error."""
        feed = self.feed
        if feed is not None:
            future.add_done_callback(lambda _: feed.close())


def _cancelled(request: GenerationRequest) -> bool:
    return isinstance(request, StreamRequest) and request.feed is not None and request.feed.cancelled.is_set()


class StreamingGenerator(BatchGenerator):
    def batch(self) -> StreamingBatch:
        return StreamingBatch(self)

    @staticmethod
    def _choose(logits: torch.Tensor, rows: list[_Row]) -> list[int]:
        return BatchGenerator._choose(penalized(logits, rows), rows)


def penalized(logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
    """``logits`` less each row's frequency and presence penalties over the tokens it generated (OpenAI's rule:
    minus count × frequency_penalty, minus presence_penalty once a token occurred); a copy when any applies."""
    out: torch.Tensor | None = None
    for i, row in enumerate(rows):
        r = row.request
        if not isinstance(r, StreamRequest) or not (r.frequency_penalty or r.presence_penalty) or not row.generated:
            continue
        if out is None:
            out = logits.clone()
        ids = torch.tensor(row.generated, device=logits.device)
        counts = torch.bincount(ids, minlength=logits.shape[-1])[: logits.shape[-1]].to(logits.dtype)
        out[i] -= counts * r.frequency_penalty + (counts > 0).to(logits.dtype) * r.presence_penalty
    return logits if out is None else out


class StreamingBatch(RunningBatch):
    """A RunningBatch that feeds each streamed row its tokens and drops the rows whose client went away."""

    def __init__(self, generator: BatchGenerator) -> None:
        super().__init__(generator)
        self._early: list[tuple[Hashable, GenerationResult]] = []  # cancelled before they were admitted
        self.cancelled = 0  # rows dropped because their feed was cancelled, since the start

    def admit(self, entries: list[tuple[Hashable, GenerationRequest]]) -> None:
        live = []
        for key, request in entries:
            if _cancelled(request):
                self._early.append((key, _cancelled_result(request, 0)))
                self.cancelled += 1
            else:
                live.append((key, request))
        super().admit(live)
        now = time.monotonic()
        for _, request in live:
            if isinstance(request, StreamRequest):
                request.admitted_at = now

    def step(self) -> list[tuple[Hashable, GenerationResult]]:
        done, self._early = self._early, []
        gone = {i for i, row in enumerate(self.rows) if _cancelled(row.request)}
        if gone:
            done += [(self.rows[i].key, _cancelled_result(self.rows[i].request, len(self.rows[i].generated)))
                     for i in sorted(gone)]
            self._keep([i for i in range(len(self.rows)) if i not in gone])
            self.cancelled += len(gone)
        rows, logits = list(self.rows), self.logits
        before = [len(row.generated) for row in rows]
        done += super().step()
        if logits is not None:
            self._feed(rows, logits, before)
        return done

    @torch.inference_mode()
    def _feed(self, rows: list[_Row], logits: torch.Tensor, before: list[int]) -> None:
        fed = [i for i, row in enumerate(rows) if isinstance(row.request, StreamRequest) and row.request.feed
               is not None and len(row.generated) > before[i]]  # an end-of-sequence token is not fed
        if not fed:
            return
        chosen = [rows[i].generated[before[i]] for i in fed]
        asked = [i for i in fed if _logprobs(rows[i].request) is not None]
        scores: dict[int, tuple[float, list[tuple[int, float]]]] = {}
        if asked:
            index = torch.tensor(asked, device=logits.device)
            logprobs = torch.log_softmax(logits[index].float(), dim=-1)
            ids = torch.tensor([rows[i].generated[before[i]] for i in asked], device=logits.device)
            own = logprobs.gather(1, ids[:, None]).squeeze(1).tolist()
            k = max(_logprobs(rows[i].request) or 0 for i in asked)
            top_values, top_ids = logprobs.topk(k, dim=-1) if k else (logprobs[:, :0], logprobs[:, :0].long())
            for n, i in enumerate(asked):
                want = _logprobs(rows[i].request) or 0
                top = list(zip(top_ids[n, :want].tolist(), top_values[n, :want].tolist(), strict=True))
                scores[i] = (own[n], top)
        for i, token in zip(fed, chosen, strict=True):
            request = rows[i].request
            assert isinstance(request, StreamRequest) and request.feed is not None
            logprob, top = scores.get(i, (None, []))
            request.feed.put(StepToken(token, logprob, top))


def _logprobs(request: GenerationRequest) -> int | None:
    return request.logprobs if isinstance(request, StreamRequest) else None


def _cancelled_result(request: GenerationRequest, generated: int) -> GenerationResult:
    return GenerationResult("", CANCELLED, len(request.prompt_ids), generated)


# --- the server thread's side: text and events --------------------------------------------------


class IncrementalText:
    """The text of a growing list of token ids, handed out in pieces that will not change.

    Each step decodes a window of the last few tokens, not the whole list (a
    4000-token answer would cost milliseconds a token otherwise): the window
    starts a token before the new ones, so that a token's leading space or a
    character split over tokens decodes as it does in the whole text.
    """

    def __init__(self, tokenizer: Any, stop: list[str]) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.longest_stop = max((len(s) for s in stop), default=0)
        self.ids: list[int] = []
        self.prefix = 0  # the window's first token
        self.read = 0  # tokens already in ``text``
        self.text = ""  # the settled text so far: handed out, or held back
        self.sent = 0  # characters of ``text`` handed out
        self.stopped = False

    def _decode(self, ids: list[int]) -> str:
        text: str = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text

    def add(self, ids: list[int]) -> str:
        """The new text that these tokens settle."""
        self.ids += ids
        before = self._decode(self.ids[self.prefix : self.read])
        after = self._decode(self.ids[self.prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):  # U+FFFD: a character not whole yet
            self.text += after[len(before) :]
            self.prefix, self.read = self.read, len(self.ids)
        if self.stopped:
            return ""
        safe = len(self.text)
        if self.stop:
            # a stop sequence not seen before ends in the new text: look only from just before it
            start = max(0, self.sent - self.longest_stop)
            cuts = [at for s in self.stop if (at := self.text.find(s, start)) >= 0]
            if cuts:
                safe, self.stopped = min(cuts), True
            else:
                safe -= _held_back(self.text[start:], self.stop)
        if safe <= self.sent:
            return ""
        delta = self.text[self.sent : safe]
        self.sent = safe
        return delta

    def rest(self, final: str) -> str:
        """What the final text adds to what was handed out."""
        sent = self.text[: self.sent]
        return final[len(sent) :] if final.startswith(sent) else ""


def _held_back(text: str, stop: list[str]) -> int:
    """How many characters at the end of ``text`` could begin a stop sequence."""
    longest = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:k]):
                longest = k
                break
    return longest


def token_entries(tokenizer: Any, tokens: list[StepToken]) -> list[dict[str, Any]]:
    """Tokens as the native answer lists them: id, text, logprob and the top alternatives."""
    return [
        {
            "id": t.token_id,
            "token": tokenizer.decode([t.token_id]),
            "logprob": t.logprob,
            "top_logprobs": [{"id": i, "token": tokenizer.decode([i]), "logprob": lp} for i, lp in t.top],
        }
        for t in tokens
    ]


def usage(result: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def events(tokenizer: Any, request: StreamRequest, future: Future[GenerationResult]) -> Iterator[bytes]:
    """The native stream of one request. Closing it early (the client went away) cancels the request."""
    feed = request.feed
    assert feed is not None
    text = IncrementalText(tokenizer, request.stop)
    try:
        ended = False
        while not ended:
            tokens, ended = feed.take()
            if not tokens:
                continue
            delta = text.add([t.token_id for t in tokens])
            if request.logprobs is not None:
                yield event({"text": delta, "tokens": token_entries(tokenizer, tokens)})
            elif delta:
                yield event({"text": delta})
        try:
            result = future.result()
        except Exception as ex:  # the batch failed: the stream's last event says so
            yield event({"error": {"message": f"Generation failed: {type(ex).__name__}: {ex}"}})
            return
        yield event({"text": text.rest(result.text), "finish_reason": result.finish_reason, "usage": usage(result),
                     "queue_s": request.queue_s()})
    finally:
        feed.cancelled.set()  # nothing when it ended; otherwise the batch drops the row before its next step
