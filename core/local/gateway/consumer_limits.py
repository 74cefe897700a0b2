"""Consumers' limits in the gateway: tokens and requests per minute, tokens per day.

Each limit is a sliding window over buckets (a minute in one-second
buckets, a day in one-minute buckets). A request is let in while its
consumer is under every limit it has. At admission it reserves its tokens in
the current buckets (a bound on its prompt plus its ``max_new_tokens``,
:func:`reservation`); when it ends the reservation is replaced by the tokens
its answer used. Requests in flight therefore count: however many arrive at
once, a limit is overshot by at most the tokens of the last request let in.
Tokens are input and output tokens together.

The gateway has no tokenizer, so the prompt's bound is a token per UTF-8
byte of its text (a byte-level BPE or byte-fallback token covers at least
one byte) plus an allowance for a chat template's own tokens. It is a bound
that only holds requests back while they are in flight: the answer's usage
replaces it.

The counts live in the gateway's memory and are rebuilt from the request
facts (``requests.db``, :mod:`..request_facts`) when the gateway starts, so a
restart forgets at most the facts not yet flushed (``FLUSH_EVERY_S``).

Answers carry OpenAI's headers: ``x-ratelimit-limit-requests``,
``-remaining-requests``, ``-reset-requests`` and the same for ``-tokens``
(the tokens ones for the tokens-per-minute limit, or the per-day one where
that is the consumer's only tokens limit or the one that refused); a refusal
adds ``Retry-After`` (whole seconds).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ...entities import RequestFact
from ...routing import ConsumerRoute

DAY_S = 86400
TEMPLATE_TOKENS = 32  # a chat template's system prompt and the assistant's header (SmolLM2's: 30 for "Hi")
MESSAGE_TOKENS = 8  # a chat template's markers around each message
DEFAULT_NEW_TOKENS = 64  # what scoring/generate.py generates when a request does not say


def _utf8_len(value: object) -> int:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return len(text.encode("utf-8", "replace"))


def prompt_bound(payload: dict[str, object]) -> int:
    """At least the tokens a native payload's prompt comes to, templated (:func:`reservation`)."""
    messages = payload.get("messages")
    if isinstance(messages, list):
        return TEMPLATE_TOKENS + sum(
            MESSAGE_TOKENS + _utf8_len(m.get("content", "") if isinstance(m, dict) else m) for m in messages)
    for field_name in ("prompt", "text", "texts"):
        if field_name in payload:
            return TEMPLATE_TOKENS + MESSAGE_TOKENS + _utf8_len(payload[field_name])
    return 0


def reservation(payload: object) -> int:
    """The tokens a native request (generate.py's payload) may use: a bound on its prompt plus its new tokens."""
    if not isinstance(payload, dict):
        return TEMPLATE_TOKENS + DEFAULT_NEW_TOKENS
    new = payload.get("max_new_tokens")
    generating = "messages" in payload or "prompt" in payload
    if isinstance(new, bool) or not isinstance(new, int) or new < 0:
        new = DEFAULT_NEW_TOKENS if generating else 0
    return prompt_bound(payload) + new


def body_reservation(body: bytes) -> int:
    try:
        return reservation(json.loads(body))
    except (ValueError, RecursionError):
        return reservation(None)


class Window:
    """Amounts in buckets of ``bucket_s`` seconds; what counts is what fell in the last ``length_s``."""

    def __init__(self, length_s: int, bucket_s: int) -> None:
        self.length_s, self.bucket_s = length_s, bucket_s
        self.buckets: dict[int, int] = {}

    def add(self, at: float, amount: int) -> int:
        """Count ``amount`` at time ``at``; the bucket it went in (to adjust it later)."""
        index = int(at // self.bucket_s)
        self.buckets[index] = self.buckets.get(index, 0) + amount
        return index

    def adjust(self, index: int, delta: int) -> None:
        if index in self.buckets:
            self.buckets[index] += delta

    def _live(self, now: float) -> list[tuple[int, int]]:
        # a bucket leaves once all of it is older than length_s: the window is never shorter than length_s
        last_gone = math.floor((now - self.length_s) / self.bucket_s) - 1
        for index in [i for i in self.buckets if i <= last_gone]:
            del self.buckets[index]
        return sorted(self.buckets.items())

    def _leaves(self, index: int, now: float) -> float:
        return max(0.0, (index + 1) * self.bucket_s + self.length_s - now)

    def used(self, now: float) -> int:
        return max(0, sum(amount for _, amount in self._live(now)))

    def free_s(self, now: float, limit: int) -> float:
        """Seconds until what is counted falls under ``limit`` (0 when it is under already)."""
        live = self._live(now)
        used = sum(amount for _, amount in live)
        for index, amount in live:
            if used < limit:
                break
            used -= amount
            if used < limit:
                return self._leaves(index, now)
        return 0.0

    def empty_s(self, now: float) -> float:
        """Seconds until nothing counted is left in the window (OpenAI's reset: the whole limit back)."""
        live = self._live(now)
        return self._leaves(live[-1][0], now) if live else 0.0


@dataclass
class Counters:
    """One consumer's windows."""

    tokens_minute: Window = field(default_factory=lambda: Window(60, 1))
    requests_minute: Window = field(default_factory=lambda: Window(60, 1))
    tokens_day: Window = field(default_factory=lambda: Window(DAY_S, 60))


@dataclass
class Admission:
    """A request let in: what it reserved and where, and the headers its answer carries."""

    counters: Counters
    reserved: int
    spots: tuple[int, int]  # its buckets in tokens_minute and tokens_day
    headers: dict[str, str]
    settled: bool = False


@dataclass(frozen=True)
class Refusal:
    message: str
    limit: str  # "tokens" or "requests": OpenAI's error type
    headers: dict[str, str]


class ConsumerLimits:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.counters: dict[tuple[str, str], Counters] = {}

    def _of(self, endpoint: str, consumer: str) -> Counters:
        key = (endpoint, consumer.lower())
        found = self.counters.get(key)
        if found is None:
            found = self.counters[key] = Counters()
        return found

    def admit(self, endpoint: str, consumer: ConsumerRoute, reserve: int) -> Admission | Refusal:
        """Let the request in (its tokens reserved, its request counted), or say which limit refuses it."""
        now = self.clock()
        counters = self._of(endpoint, consumer.name)
        checks = (("requests", "requests per minute", consumer.requests_per_minute, counters.requests_minute),
                  ("tokens", "tokens per minute", consumer.tokens_per_minute, counters.tokens_minute),
                  ("tokens", "tokens per day", consumer.tokens_per_day, counters.tokens_day))
        for kind, what, limit, window in checks:
            if limit is not None and window.used(now) >= limit:
                retry = max(1, math.ceil(window.free_s(now, limit)))
                headers = {**_headers(consumer, counters, now, refused=window), "Retry-After": str(retry)}
                return Refusal(f"Consumer {consumer.name!r} is over its limit of {limit} {what}: retry in "
                               f"{retry} s (input and output tokens count, those of requests in flight too).",
                               kind, headers)
        counters.requests_minute.add(now, 1)
        spots = (counters.tokens_minute.add(now, reserve), counters.tokens_day.add(now, reserve))
        return Admission(counters, reserve, spots, _headers(consumer, counters, now))

    def settle(self, admission: Admission, used: int | None) -> None:
        """The request ended having used ``used`` tokens (None: unknown, the reservation stands). Once."""
        if admission.settled:
            return
        admission.settled = True
        if used is not None:
            delta = used - admission.reserved
            admission.counters.tokens_minute.adjust(admission.spots[0], delta)
            admission.counters.tokens_day.adjust(admission.spots[1], delta)

    def restore(self, facts: Iterable[RequestFact]) -> None:
        """Count what the facts say consumers used (the gateway's start: what an earlier one counted)."""
        for fact in facts:
            counters = self._of(fact.endpoint, fact.consumer)
            if fact.status_code != 429:
                counters.requests_minute.add(fact.at, 1)
            tokens = fact.input_tokens + fact.output_tokens
            if tokens:
                counters.tokens_minute.add(fact.at, tokens)
                counters.tokens_day.add(fact.at, tokens)


def _headers(consumer: ConsumerRoute, counters: Counters, now: float, refused: Window | None = None
             ) -> dict[str, str]:
    out: dict[str, str] = {}
    if consumer.requests_per_minute is not None:
        out.update(_limit_headers("requests", consumer.requests_per_minute, counters.requests_minute, now))
    tokens: list[tuple[int, Window]] = [(limit, window) for limit, window in (
        (consumer.tokens_per_minute, counters.tokens_minute), (consumer.tokens_per_day, counters.tokens_day))
        if limit is not None]
    if tokens:
        limit, window = next(((lim, win) for lim, win in tokens if win is refused), tokens[0])
        out.update(_limit_headers("tokens", limit, window, now))
    return out


def _limit_headers(kind: str, limit: int, window: Window, now: float) -> dict[str, str]:
    used = window.used(now)
    return {f"x-ratelimit-limit-{kind}": str(limit), f"x-ratelimit-remaining-{kind}": str(max(0, limit - used)),
            f"x-ratelimit-reset-{kind}": f"{math.ceil(window.empty_s(now))}s"}


def usage_pair(usage: object) -> tuple[int, int] | None:
    """(input, output) tokens of an OpenAI-shaped ``usage``, or None where it says nothing usable."""
    if not isinstance(usage, dict):
        return None
    counts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return None
    return int(counts[0] or 0), int(counts[1] or 0)


def answer_usage(body: bytes) -> tuple[int, int] | None:
    """The usage a native answer (generate.py's) reports; None for one without (token ranks, errors)."""
    if b'"usage"' not in body:  # most answers without one are not parsed at all
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return usage_pair(data.get("usage")) if isinstance(data, dict) else None


def used_tokens(status: int, usage: tuple[int, int] | None) -> int | None:
    """What a finished request used, for :meth:`ConsumerLimits.settle`: its usage; 0 for an error answered
    without generating; None (its reservation stands) where that is not known: a success without usage,
    a timeout or a client gone (the generation may have gone on)."""
    if usage is not None:
        return sum(usage)
    if status in (408, 499) or 200 <= status < 300:
        return None
    return 0
