"""Issue 20's done-when, against the sample model: the official openai client, pointed at the ``openai_base_url``
that ``byom online-endpoint show`` gives and holding an endpoint key, lists models, completes, chats, streams,
returns top-5 logprobs, and gets ``RateLimitError`` with ``Retry-After`` as a limited consumer.

The sample (SmolLM2-135M-Instruct, packaged) is deployed once for the module, as ``make run`` deploys it
(``core.demo.chat_deployment``). Answers are kept short (at most 16 tokens) so that the module runs in well
under a minute of CPU on two cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from byom.cli.endpoints import endpoint_show
from byom.core.demo import chat_deployment
from byom.core.entities import Endpoint, ModelSpec
from byom.core.local.workspace import LocalWorkspace

from ..waiting import wait_until
from .helpers import shut_down

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

ENDPOINT = "sample"
HELLO = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, sample_model_dir: Path) -> Iterator[LocalWorkspace]:
    workspace = LocalWorkspace(tmp_path_factory.mktemp("openai-sample") / "home", actor="tester")
    try:
        model = workspace.create_model(ModelSpec(name="smollm2-135m-instruct", path=str(sample_model_dir))).ref
        workspace.create_or_update_endpoint(Endpoint(name=ENDPOINT))
        dep = workspace.create_or_update_deployment(chat_deployment(model, endpoint=ENDPOINT))
        assert dep.provisioning_state == "Succeeded", dep.state_reason
        workspace.set_traffic(ENDPOINT, {dep.name: 100})
        yield workspace
    finally:
        shut_down(workspace)


@pytest.fixture(scope="module")
def base_url(ws: LocalWorkspace) -> str:
    shown = endpoint_show(ws, argparse.Namespace(name=ENDPOINT))  # what `byom online-endpoint show` prints
    url = shown["openai_base_url"]
    assert isinstance(url, str) and url.startswith("http://127.0.0.1:"), shown
    return url


@pytest.fixture(scope="module")
def client(ws: LocalWorkspace, base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=ws.get_keys(ENDPOINT).primary_key, max_retries=0, timeout=60)


def test_models_are_the_endpoint_and_its_deployment(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [ENDPOINT, "chat"]


def test_chat_and_completion_answer_with_usage(client: openai.OpenAI) -> None:
    chat = client.chat.completions.create(model=ENDPOINT, messages=HELLO, max_tokens=8,  # type: ignore[arg-type]
                                          **GREEDY)
    [choice] = chat.choices
    assert choice.message.role == "assistant"
    assert "paris" in (choice.message.content or "").lower(), choice.message.content  # the real weights answer
    assert chat.usage is not None and 1 <= chat.usage.completion_tokens <= 8 and chat.usage.prompt_tokens > 10
    text = client.completions.create(model="chat", prompt="The capital of France is", max_tokens=4, **GREEDY)
    assert text.object == "text_completion" and text.choices[0].text.strip()
    assert text.usage is not None and 1 <= text.usage.completion_tokens <= 4


def test_a_stream_comes_token_by_token_and_ends_with_usage(client: openai.OpenAI) -> None:
    sent = time.monotonic()
    arrived: list[tuple[float, openai.types.chat.ChatCompletionChunk]] = []
    with client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Tell me a story"}],
                                        max_tokens=16, stream=True, stream_options={"include_usage": True},
                                        **GREEDY) as stream:
        for chunk in stream:
            arrived.append((time.monotonic(), chunk))
    content = [at for at, c in arrived if c.choices and c.choices[0].delta.content]
    assert len(content) >= 8, [c for _, c in arrived]
    first, last = content[0] - sent, content[-1] - sent
    # the first token leaves as soon as it is made: well before the last of 16 (each step a forward pass)
    assert first < 0.5 * last, f"first token after {first:.3f} s, last after {last:.3f} s"
    final = arrived[-1][1]
    assert final.choices == [] and final.usage is not None
    assert final.usage.completion_tokens == 16  # a story of 16 tokens does not end on its own
    assert all(c.usage is None for _, c in arrived[:-1])


def test_top_5_logprobs(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=ENDPOINT, messages=HELLO, max_tokens=4,  # type: ignore[arg-type]
                                            logprobs=True, top_logprobs=5, **GREEDY)
    assert answer.choices[0].logprobs is not None and answer.usage is not None
    entries = answer.choices[0].logprobs.content or []
    assert len(entries) == answer.usage.completion_tokens
    for entry in entries:
        tops = [t.logprob for t in entry.top_logprobs]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True) and all(lp <= 0 for lp in tops)
        assert entry.logprob == pytest.approx(tops[0], abs=1e-4)  # greedy: the chosen token is the likeliest
        assert entry.token == entry.top_logprobs[0].token


def test_a_limited_consumer_gets_rate_limit_error_with_retry_after(ws: LocalWorkspace, base_url: str) -> None:
    # about 40 tokens of a templated "What is the capital ...?" plus 8 new ones: the second request is over
    key = ws.create_consumer(ENDPOINT, "limited", {"tokens_per_minute": 60}).key
    limited = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)
    refused: openai.RateLimitError | None = None
    for _ in range(4):
        try:
            limited.chat.completions.create(model=ENDPOINT, messages=HELLO, max_tokens=8,  # type: ignore[arg-type]
                                            **GREEDY)
        except openai.RateLimitError as error:
            refused = error
            break
    assert refused is not None, "four requests of about 50 tokens each under a limit of 60 tokens a minute"
    assert refused.status_code == 429 and "60 tokens per minute" in refused.message
    assert 1 <= int(refused.response.headers["retry-after"]) <= 61
    assert refused.response.headers["x-ratelimit-limit-tokens"] == "60"
    [row] = ws.consumer_usage(ENDPOINT, "1h", consumer="limited")
    assert row.requests >= 2 and row.input_tokens > 0 and row.output_tokens > 0


def test_monitoring_gets_each_streams_tokens_and_time_to_first_token(ws: LocalWorkspace,
                                                                      client: openai.OpenAI) -> None:
    before = {m.deployment: (m.input_tokens, m.output_tokens) for m in ws.get_metrics(ENDPOINT, window_s=600)}
    with client.chat.completions.create(model=ENDPOINT, messages=HELLO, max_tokens=6, stream=True,
                                        stream_options={"include_usage": True}, **GREEDY) as stream:
        usage = [c.usage for c in stream if c.usage is not None][-1]
    wanted = tuple(map(sum, zip(before.get("chat", (0, 0)), (usage.prompt_tokens, usage.completion_tokens),
                                strict=True)))

    def counted() -> Any:
        # the gateway records a stream as it closes it, just after its last chunk reached the client
        [chat] = [m for m in ws.get_metrics(ENDPOINT, window_s=600) if m.deployment == "chat" and not m.mirrored]
        return chat if (chat.input_tokens, chat.output_tokens) == wanted else None

    chat = wait_until(counted, 10, f"the stream's tokens {wanted} (input, output) in the metrics")
    timed = [p for p in chat.series if p.ttft_p50_ms is not None]
    assert timed, "the stream's time to first token is in the request facts"
    point = timed[-1]
    # each stream's first token leaves before its end: the bucket's first-token times sit under its latencies
    assert point.ttft_p50_ms is not None and point.p99_ms is not None and 0 < point.ttft_p50_ms < point.p99_ms
    assert point.tpot_p50_ms is not None and 0 < point.tpot_p50_ms < point.p99_ms
