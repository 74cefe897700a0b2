"""The Playground page: which deployments answer prompts, the request body, what an answer says."""

from __future__ import annotations

import difflib
import html
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from byom.core.entities import Deployment, InvokeResult, StreamEvent

from .common import GENERATION, deployment_task

SPLIT = "The traffic split"
MODES = ["Prompt", "Chat", "A/B"]


@dataclass
class Answer:
    """What the Playground shows for one call."""

    ok: bool
    status_code: int
    text: str  # the generated text, or the error the endpoint gave
    deployment: str | None
    latency_ms: float
    request_id: str
    completion_tokens: int | None
    finish_reason: str | None
    raw: Any
    first_token_ms: float | None = None  # a streamed answer's time to its first text
    stopped: bool = False  # a streamed answer ended by the user (Stop) before it was complete

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens per second: of a streamed answer, over the time from its first token to its last (the
        first one's wait is time to first token); of an answer given whole, over its latency."""
        if not self.completion_tokens or self.latency_ms <= 0:
            return None
        if self.first_token_ms is not None:
            decoding_ms = self.latency_ms - self.first_token_ms
            if self.completion_tokens < 2 or decoding_ms <= 0:
                return None
            return (self.completion_tokens - 1) / (decoding_ms / 1000)
        return self.completion_tokens / (self.latency_ms / 1000)


class Streamed:
    """An answer as it streams in (``Workspace.invoke_stream``'s events), kept in the session while it comes:
    the run after a Stop (which ends the streaming run) shows what had come. ``mode`` and ``chat`` (the
    conversation it answers, in Chat mode) say where it belongs."""

    def __init__(self, mode: str, chat: list[dict[str, str]] | None = None) -> None:
        self.mode, self.chat = mode, chat
        self.head: InvokeResult | None = None
        self.text = ""
        self.first_token_ms: float | None = None
        self.last_ms = 0.0
        self.steps = 0  # events that brought text: a decoding step each
        self.final: dict[str, Any] = {}  # the event with the finish reason and usage, once it came
        self.error: str | None = None
        self._settled = threading.Lock()

    def add(self, event: StreamEvent) -> bool:
        """Take in one event; whether it added text."""
        self.last_ms = event.at_ms
        if event.head is not None:
            self.head = event.head
        data = event.data or {}
        if isinstance(data.get("error"), dict):
            self.error = str(data["error"].get("message") or "The model server failed.")
        if "finish_reason" in data or "usage" in data:
            self.final = data
        if not event.text:
            return False
        if self.first_token_ms is None:
            self.first_token_ms = event.at_ms
        self.text += event.text
        self.steps += 1
        return True

    def claim(self) -> bool:
        """Whether the caller is the one to show this answer as done: true once, for the first to ask (the run
        that streamed it, or the run after a Stop, which may begin before the streaming one has ended)."""
        return self._settled.acquire(blocking=False)

    def answer(self, *, stopped: bool = False) -> Answer:
        """What the Playground shows of it: ``stopped`` when the user ended it."""
        head = self.head
        if head is None:  # stopped before the endpoint answered
            return Answer(True, 0, "", None, self.last_ms, "", None, None, {"text": ""}, None, stopped)
        if not head.ok:
            return answer_of(head)
        usage = self.final.get("usage") if isinstance(self.final.get("usage"), dict) else {}
        completion = usage.get("completion_tokens") if usage else None
        tokens = completion if isinstance(completion, int) else (self.steps or None)
        finish = self.final.get("finish_reason")
        raw = {"text": self.text, **({"finish_reason": finish, "usage": usage} if self.final else {})}
        if self.error is not None:
            return Answer(False, head.status_code, self.error, head.deployment, self.last_ms, head.request_id,
                          None, None, {**raw, "error": self.error}, self.first_token_ms, stopped)
        return Answer(True, head.status_code, self.text, head.deployment, self.last_ms, head.request_id, tokens,
                      finish if isinstance(finish, str) else None, raw, self.first_token_ms, stopped)


def chat_after(chat: list[dict[str, str]], answer: Answer) -> list[dict[str, str]]:
    """The conversation once ``answer`` came: with the assistant's turn when it said something."""
    return [*chat, {"role": "assistant", "content": answer.text}] if answer.ok and answer.text else chat


STATUS_HINTS = {
    401: "The endpoint refused the key: regenerate it on the Endpoints page if it leaked.",
    404: "No deployment has live traffic (or the deployment named does not exist): "
         "set traffic on the Endpoints page, or call one deployment by name.",
    408: "The model took longer than the deployment's request timeout: raise it, or ask for fewer tokens.",
    424: "The model server answered with an error: read the deployment's logs on the Endpoints page.",
    429: "Too many requests in flight: wait, or scale the deployment out.",
    502: "No healthy instance answered: check the deployment's state and logs.",
    503: "No healthy instance answered: check the deployment's state and logs.",
}


def generation_deployments(deployments: Iterable[Deployment]) -> list[str]:
    """The deployments that answer prompts (token-rank ones do not)."""
    return [d.name for d in deployments if deployment_task(d) == GENERATION]


def target_of(choice: str) -> str | None:
    """The deployment a 'Send to' choice names; None for the traffic split."""
    return None if choice == SPLIT else choice


def status_hint(status_code: int) -> str | None:
    """What to do about an endpoint's non-2xx answer."""
    if status_code in STATUS_HINTS:
        return STATUS_HINTS[status_code]
    if 400 <= status_code < 500:
        return "The deployment refused the request: check the fields of the request body."
    return None


def generation_payload(prompt: str, *, chat: Sequence[Mapping[str, str]] | None = None, max_new_tokens: int = 64,
                       temperature: float = 0.0, top_p: float = 1.0) -> dict[str, Any]:
    """The request body of the generation scoring script: greedy at temperature 0."""
    body: dict[str, Any] = {"messages": list(chat)} if chat is not None else {"prompt": prompt}
    body["max_new_tokens"] = max_new_tokens
    if temperature > 0:
        body.update(do_sample=True, temperature=temperature, top_p=top_p)
    return body


def answer_of(result: InvokeResult) -> Answer:
    return read_answer(result.status_code, result.body, result.deployment, result.latency_ms, result.request_id)


def read_answer(status_code: int, body: str, deployment: str | None, latency_ms: float, request_id: str) -> Answer:
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body
    ok = 200 <= status_code < 300
    if isinstance(parsed, dict):
        if ok:
            text = str(parsed.get("text", parsed))
        else:
            text = str(parsed.get("message") or parsed.get("error") or parsed)
        usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else {}
        completion = usage.get("completion_tokens") if usage else None
        finish = parsed.get("finish_reason")
    else:
        text, completion, finish = str(parsed), None, None
    return Answer(ok, status_code, text, deployment, latency_ms, request_id,
                  int(completion) if isinstance(completion, int) else None, finish, parsed)


DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9
"""Light sampling by default: greedy decoding makes a small model repeat itself within a few sentences."""


def figures_text(answer: Answer) -> str:
    """Latency (and a streamed answer's time to first token), speed and who answered, as one line of markdown
    that wraps rather than cuts a long name."""
    served = (answer.deployment or "none").replace("_", "\\_")
    first = (f"**Time to first token** {answer.first_token_ms:,.0f} ms · "
             if answer.first_token_ms is not None else "")
    return (f"{first}**Latency** {answer.latency_ms:,.0f} ms · **Tokens/s** {tokens_per_second_text(answer)} · "
            f"**Served by** {served}")


def differences(a: str, b: str) -> tuple[str, str]:
    """The two answers as HTML, the words where they differ marked: what an A/B comparison is for."""
    words_a, words_b = a.split(" "), b.split(" ")
    out_a: list[str] = []
    out_b: list[str] = []
    matcher = difflib.SequenceMatcher(a=words_a, b=words_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        left = html.escape(" ".join(words_a[i1:i2]))
        right = html.escape(" ".join(words_b[j1:j2]))
        if op == "equal":
            out_a.append(left)
            out_b.append(right)
        else:
            if left:
                out_a.append(f'<mark class="byom-diff">{left}</mark>')
            if right:
                out_b.append(f'<mark class="byom-diff">{right}</mark>')
    style = "white-space:pre-wrap;line-height:1.6"
    return (f'<div class="byom-answer" style="{style}">{" ".join(out_a)}</div>',
            f'<div class="byom-answer" style="{style}">{" ".join(out_b)}</div>')


def tokens_per_second_text(answer: Answer) -> str:
    tps = answer.tokens_per_second
    return f"{tps:,.1f}" if tps else "n/a"


def answer_caption(answer: Answer) -> str:
    if not answer.status_code:
        return "Stopped before the endpoint answered."
    return (f"Request id `{answer.request_id}` · HTTP {answer.status_code}"
            + (f" · finish reason {answer.finish_reason}" if answer.finish_reason else "")
            + (" · stopped: the model stopped generating here" if answer.stopped else ""))


def raw_text(answer: Answer) -> str:
    """The body as the endpoint sent it, indented where it is JSON."""
    return answer.raw if isinstance(answer.raw, str) else json.dumps(answer.raw, indent=2)
