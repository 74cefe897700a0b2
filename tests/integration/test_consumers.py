"""Consumer keys and their limits, with the official openai client, through the real gateway to a real model
server running scoring/generate.py on a tiny random Llama.

The endpoint ``shop`` has one deployment, ``blue``, with all the traffic; each test issues its own consumers.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests
from byom.cli.main import main
from byom.core import consumer_keys
from byom.core.entities import Endpoint, ModelSpec
from byom.core.local.serving_files import ServingFiles, read_json
from byom.core.local.workspace import LocalWorkspace

from .helpers import deploy_generation, shut_down, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[LocalWorkspace]:
    workspace = LocalWorkspace(tmp_path_factory.mktemp("consumers") / "home", actor="tester")
    try:
        model = workspace.create_model(ModelSpec(name="tiny", path=str(tiny_model_dir))).ref
        workspace.create_or_update_endpoint(Endpoint(name="shop"))
        deploy_generation(workspace, "shop", "blue", model)
        workspace.set_traffic("shop", {"blue": 100})
        yield workspace
    finally:
        shut_down(workspace)


@pytest.fixture(scope="module")
def base_url(ws: LocalWorkspace) -> str:
    return ws.get_endpoint("shop").scoring_uri.removesuffix("/score") + "/v1"


def client_of(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)


def chat(client: openai.OpenAI, max_tokens: int = 8) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(model="shop", messages=HI, max_tokens=max_tokens,  # type: ignore[arg-type]
                                          temperature=0)


def use_up(client: openai.OpenAI, max_tokens: int = 16, attempts: int = 30) -> openai.RateLimitError:
    """Chat until the consumer's limit refuses; the refusal."""
    for _ in range(attempts):
        try:
            chat(client, max_tokens)
        except openai.RateLimitError as refused:
            return refused
    raise AssertionError(f"{attempts} requests and no 429")


def score(ws: LocalWorkspace, key: str) -> requests.Response:
    return requests.post(ws.get_endpoint("shop").scoring_uri, json={"prompt": "Hello", "max_new_tokens": 3},
                         headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_a_consumers_key_works_on_the_openai_routes_and_score_until_it_is_replaced(
        ws: LocalWorkspace, base_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    issued = ws.create_consumer("shop", "alice")
    assert issued.key.startswith(consumer_keys.PREFIX)
    alice = client_of(base_url, issued.key)
    assert [m.id for m in alice.models.list()] == ["shop", "blue"]
    answer = chat(alice)
    assert answer.usage is not None and answer.usage.completion_tokens >= 1
    assert score(ws, issued.key).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        chat(client_of(base_url, issued.key + "x"))

    renewed = ws.regenerate_consumer_key("shop", "alice")
    assert renewed.key != issued.key
    with pytest.raises(openai.AuthenticationError):
        chat(alice)
    assert score(ws, issued.key).status_code == 401
    assert chat(client_of(base_url, renewed.key)).usage is not None

    ws.delete_consumer("shop", "alice")
    with pytest.raises(openai.AuthenticationError):
        chat(client_of(base_url, renewed.key))
    # what alice used stays, for chargeback: three answered requests, and their tokens
    [row] = [r for r in ws.consumer_usage("shop", "1h", consumer="alice")]
    assert (row.consumer, row.deployment, row.requests, row.errors) == ("alice", "blue", 3, 0)
    assert row.input_tokens > 0 and row.output_tokens > 0
    assert main(["online-endpoint", "usage", "-n", "shop", "-c", "alice", "--workspace-dir", str(ws.home),
                 "-o", "tsv"]) == 0
    assert capsys.readouterr().out.split("\t")[:3] == ["alice", "blue", "3"]
    metrics = requests.get(base_url.split("/endpoints/")[0] + "/metrics", timeout=10).text
    assert any(line.startswith("gen_ai_client_token_usage_sum{") and 'consumer="alice"' in line
               for line in metrics.splitlines()), "token metrics by consumer"


def test_a_limited_consumer_gets_rate_limit_error_with_retry_after_and_openais_headers(ws: LocalWorkspace,
                                                                                      base_url: str) -> None:
    key = ws.create_consumer("shop", "bob", {"tokens_per_minute": 120}).key
    bob = client_of(base_url, key)
    first = bob.chat.completions.with_raw_response.create(model="shop", messages=HI,  # type: ignore[arg-type]
                                                          max_tokens=16, temperature=0)
    usage = first.parse().usage
    assert usage is not None
    assert first.headers["x-ratelimit-limit-tokens"] == "120"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 120
    refused = use_up(bob)
    assert refused.status_code == 429 and refused.code == "rate_limit_exceeded"
    assert "120 tokens per minute" in refused.message
    headers = refused.response.headers
    assert 1 <= int(headers["retry-after"]) <= 61
    assert headers["x-ratelimit-limit-tokens"] == "120" and headers["x-ratelimit-remaining-tokens"] == "0"
    assert headers["x-ratelimit-reset-tokens"].endswith("s") and int(headers["x-ratelimit-reset-tokens"][:-1]) <= 61
    native = score(ws, key)  # the native route counts against the same limit
    assert native.status_code == 429 and int(native.headers["Retry-After"]) >= 1
    # another consumer, and the endpoint's own keys, are not limited by bob's use
    assert chat(client_of(base_url, ws.create_consumer("shop", "bobs-colleague").key)).usage is not None
    assert chat(client_of(base_url, ws.get_keys("shop").primary_key)).usage is not None


def test_requests_per_minute_refuse_with_the_requests_headers(ws: LocalWorkspace, base_url: str) -> None:
    client = client_of(base_url, ws.create_consumer("shop", "carl", {"requests_per_minute": 2}).key)
    chat(client, 1)
    chat(client, 1)
    with pytest.raises(openai.RateLimitError) as refused:
        chat(client, 1)
    headers = refused.value.response.headers
    assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
    assert int(headers["retry-after"]) >= 1


def test_a_tokens_per_minute_limit_holds_within_one_request_under_16_concurrent_clients(ws: LocalWorkspace,
                                                                                       base_url: str) -> None:
    limit, max_tokens, clients = 400, 24, 16  # each client sends 20 requests at most, for 40 s at most
    client = client_of(base_url, ws.create_consumer("shop", "carol", {"tokens_per_minute": limit}).key)
    used: list[int] = []  # total tokens of each answered request
    refusals: list[int] = []
    failures: list[BaseException] = []
    deadline = time.monotonic() + 40  # well inside the limit's minute
    lock = threading.Lock()

    def consume(index: int) -> None:
        for _ in range(20):
            if time.monotonic() > deadline:
                return
            try:
                if index % 2:  # half of them stream
                    stream = client.chat.completions.create(
                        model="shop", messages=[{"role": "user", "content": f"Story {index}"}],
                        max_tokens=max_tokens, stream=True, stream_options={"include_usage": True})
                    totals = [c.usage.total_tokens for c in stream if c.usage is not None]
                    tokens = totals[-1]
                else:
                    answer = client.chat.completions.create(
                        model="shop", messages=[{"role": "user", "content": f"Story {index}"}], max_tokens=max_tokens)
                    assert answer.usage is not None
                    tokens = answer.usage.total_tokens
            except openai.RateLimitError:  # and on at once: the clients keep the limit under pressure
                with lock:
                    refusals.append(index)
                continue
            except BaseException as exc:  # noqa: BLE001  # reported below, from the test's thread
                with lock:
                    failures.append(exc)
                return
            with lock:
                used.append(tokens)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(t.is_alive() for t in threads), "clients still running"
    assert not failures, failures[:3]
    assert refusals, "the limit never refused"
    largest = max(used)  # one request's tokens: its prompt and at most max_tokens
    print(f"\n16 clients, {limit} tokens/minute: {len(used)} answered, {sum(used)} tokens, largest {largest}, "
          f"{len(refusals)} refused")
    assert sum(used) <= limit + largest, (sum(used), used)


def test_limits_and_keys_survive_a_gateway_restart(ws: LocalWorkspace, base_url: str) -> None:
    key = ws.create_consumer("shop", "dave", {"tokens_per_day": 100}).key
    dave = client_of(base_url, key)
    use_up(dave)
    files = ServingFiles(ws.home)
    before = read_json(files.gateway)["pid"]
    os.kill(before, signal.SIGTERM)  # the gateway stops as it would for an upgrade; the control plane starts it again

    def serving_again() -> bool:
        record = read_json(files.gateway) or {}
        if record.get("pid") in (None, before):
            return False
        try:
            return bool(dave.models.list().data)
        except openai.APIConnectionError:
            return False

    wait_until(serving_again, 30, "a new gateway that knows dave's key")
    with pytest.raises(openai.RateLimitError) as refused:
        chat(dave)
    assert "100 tokens per day" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) > 60  # it is the day's limit that refuses
    assert ws.get_consumer("shop", "dave").tokens_per_day == 100


def test_keys_are_kept_only_as_their_hash(ws: LocalWorkspace, base_url: str) -> None:
    key = ws.create_consumer("shop", "erin").key
    assert chat(client_of(base_url, key)).usage is not None
    ws.consumer_usage("shop")  # the gateway has flushed what it recorded
    files = [p for p in ws.home.rglob("*") if p.is_file()]
    assert any(p.name == "byom.db" for p in files)
    stored = b"".join(p.read_bytes() for p in files if p.name.startswith("byom.db"))
    assert consumer_keys.key_sha256(key).encode() in stored
    leaked = [p for p in files if key.encode() in p.read_bytes()]
    assert not leaked, leaked
    assert "key" not in ws.get_consumer("shop", "erin").to_dict()
