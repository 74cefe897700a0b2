"""The OpenAI API on an endpoint, with the official openai client, through the real gateway to a real
model server running scoring/generate.py on a tiny random Llama.

The endpoint ``chat`` has two deployments, ``blue`` with all the traffic and ``green``.
Greedy requests (temperature 0) are deterministic, so a streamed answer can
be checked against the same request answered whole.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests
from byom.core.entities import Endpoint, ModelSpec
from byom.core.local.gateway import admin_token
from byom.core.local.workspace import LocalWorkspace
from byom.core.sample import cached_tiny_llama

from .helpers import deploy_generation, shut_down, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CONTEXT = 4096  # long enough that a stream can be cut long before it would end on its own
GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, sample_model_dir: Path,
       model_cache_dir: Path) -> Iterator[LocalWorkspace]:
    tmp = tmp_path_factory.mktemp("openai")
    model_dir = cached_tiny_llama(model_cache_dir, tokenizer_dir=sample_model_dir, max_position_embeddings=CONTEXT)
    workspace = LocalWorkspace(tmp / "home", actor="tester")
    try:
        model = workspace.create_model(ModelSpec(name="tiny", path=str(model_dir))).ref
        workspace.create_or_update_endpoint(Endpoint(name="chat"))
        for name in ("blue", "green"):
            deploy_generation(workspace, "chat", name, model, max_new_tokens=CONTEXT - 100)
        workspace.set_traffic("chat", {"blue": 100})
        yield workspace
    finally:
        shut_down(workspace)


@pytest.fixture(scope="module")
def base_url(ws: LocalWorkspace) -> str:
    return ws.get_endpoint("chat").scoring_uri.removesuffix("/score") + "/v1"


@pytest.fixture(scope="module")
def client(ws: LocalWorkspace, base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=ws.get_keys("chat").primary_key, max_retries=0, timeout=60)


def batch_state(ws: LocalWorkspace) -> dict[str, int]:
    """The model server's batch, asked of the instance directly: rows running, queued, cancelled so far."""
    [instance] = ws.get_deployment("chat", "blue").instances
    answer = requests.get(f"http://127.0.0.1:{instance.port}/score", timeout=10)
    answer.raise_for_status()
    state: dict[str, int] = answer.json()
    return state


def gateway_in_flight(ws: LocalWorkspace, base_url: str) -> dict[str, int]:
    """The gateway's requests in flight, per upstream (an admin route: the home's token admits the call)."""
    answer = requests.get(base_url.split("/endpoints/")[0] + "/-/in-flight", timeout=10,
                          headers=admin_token.headers(ws.home / "run"))
    assert answer.status_code == 200, answer.text
    in_flight: dict[str, int] = answer.json()
    return in_flight


def test_models_are_the_endpoint_and_its_deployments(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["chat", "blue", "green"]
    assert client.models.retrieve("blue").id == "blue"


def test_chat_and_completion_answer_in_openai_shapes(client: openai.OpenAI) -> None:
    chat = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "Hello"}], max_tokens=8, **GREEDY)
    assert chat.headers["azureml-model-deployment"] == "blue"
    answer = chat.parse()
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-") and answer.model == "chat"
    [choice] = answer.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("length", "stop") and choice.logprobs is None
    assert answer.usage is not None and 1 <= answer.usage.completion_tokens <= 8
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens

    text = client.completions.create(model="blue", prompt="Once upon a time", max_tokens=5, seed=3,
                                     temperature=0.8, top_p=0.9, frequency_penalty=0.5, presence_penalty=0.5,
                                     stop=["\n\n"])
    assert text.object == "text_completion" and text.model == "blue"
    assert text.choices[0].text and text.usage is not None and text.usage.completion_tokens <= 5


def test_a_stream_comes_in_chunks_and_ends_with_usage(client: openai.OpenAI) -> None:
    request = {"model": "chat", "messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 24,
               **GREEDY}
    whole = client.chat.completions.create(**request)  # type: ignore[call-overload]  # a dict of the arguments
    arrived: list[tuple[float, openai.types.chat.ChatCompletionChunk]] = []
    with client.chat.completions.create(**request, stream=True,  # type: ignore[call-overload]  # as above
                                        stream_options={"include_usage": True}) as stream:
        for chunk in stream:
            arrived.append((time.monotonic(), chunk))
    content = [(at, c) for at, c in arrived if c.choices and c.choices[0].delta.content]
    assert len(content) >= 5, [c for _, c in arrived]
    assert content[0][0] < content[-1][0]  # the first token came before the last one was made
    assert arrived[0][1].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for _, c in content) == whole.choices[0].message.content
    finish = [c.choices[0].finish_reason for _, c in arrived if c.choices and c.choices[0].finish_reason]
    assert finish == [whole.choices[0].finish_reason]
    last = arrived[-1][1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for _, c in arrived[:-1])
    assert len({c.id for _, c in arrived}) == 1


def test_top_5_logprobs(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Hi"}],
                                            max_tokens=6, logprobs=True, top_logprobs=5, **GREEDY)
    entries = answer.choices[0].logprobs.content
    assert entries is not None and len(entries) == answer.usage.completion_tokens
    for entry in entries:
        tops = [t.logprob for t in entry.top_logprobs]
        assert len(tops) == 5 and tops == sorted(tops, reverse=True) and all(lp <= 0 for lp in tops)
        assert entry.logprob == pytest.approx(tops[0])  # greedy: the chosen token is the most likely one
        assert entry.bytes == list(entry.token.encode())
    streamed = client.completions.create(model="chat", prompt="The sky is", max_tokens=4, logprobs=5, stream=True,
                                         **GREEDY)
    tokens = [c.choices[0].logprobs for c in streamed if c.choices and c.choices[0].logprobs]
    assert tokens and all(len(lp.top_logprobs[0]) >= 1 for lp in tokens if lp.top_logprobs)


@pytest.mark.parametrize(("arguments", "param"), [
    ({"extra_body": {"tools_choice": "auto"}}, "tools_choice"),
    ({"n": 2}, "n"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"temperature": 3}, "temperature"),
    ({"extra_body": {"stop": [1]}}, "stop"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
])
def test_bad_parameters_are_refused_with_the_parameter_named(client: openai.OpenAI, arguments: dict[str, object],
                                                             param: str) -> None:
    request: dict[str, object] = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2,
                                  **arguments}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**request)  # type: ignore[call-overload]  # a dict of the arguments
    assert caught.value.status_code == 400 and caught.value.param == param
    assert caught.value.type == "invalid_request_error" and param in caught.value.message


def test_the_model_servers_own_refusal_names_the_openai_parameter(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:  # more than the deployment's BYOM_MAX_NEW_TOKENS
        client.completions.create(model="chat", prompt="Hi", max_tokens=CONTEXT)
    assert caught.value.param == "max_tokens"


def test_keys_models_and_routes_are_checked(ws: LocalWorkspace, base_url: str, client: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="purple", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.param == "model" and "blue" in caught.value.message
    by_header = client.with_options(default_headers={"azureml-model-deployment": "nope"})
    with pytest.raises(openai.NotFoundError):
        by_header.completions.create(model="chat", prompt="Hi", max_tokens=1)
    secondary = openai.OpenAI(base_url=base_url, api_key=ws.get_keys("chat").secondary_key, max_retries=0)
    assert secondary.completions.create(model="chat", prompt="Hi", max_tokens=1).usage is not None


def test_a_client_that_goes_away_mid_stream_frees_its_batch_slot(ws: LocalWorkspace, base_url: str,
                                                                   client: openai.OpenAI) -> None:
    before = batch_state(ws)
    assert before["running"] == 0
    with client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Go on"}],
                                        max_tokens=CONTEXT - 200, stream=True, **GREEDY) as stream:
        chunks = iter(stream)
        for _ in range(3):
            next(chunks)
        assert batch_state(ws)["running"] == 1
    # closed after three chunks of a few thousand tokens: the row leaves the batch cancelled, not finished
    wait_until(lambda: batch_state(ws)["cancelled"] == before["cancelled"] + 1, 30, "the stream's row cancelled")
    wait_until(lambda: batch_state(ws)["running"] == 0, 30, "the batch empty")
    wait_until(lambda: gateway_in_flight(ws, base_url) == {}, 30, "the gateway holding no request")
    metrics = requests.get(base_url.split("/endpoints/")[0] + "/metrics", timeout=10).text
    assert 'byom_requests_total{endpoint="chat",deployment="blue",model_version="tiny:1",status="499"' in metrics
    # the slot is free for the next request, and the gateway answers on
    assert client.completions.create(model="chat", prompt="Again", max_tokens=2).usage is not None


def test_a_client_that_resets_before_the_first_byte_frees_its_slot_and_cancels_the_generation(
        ws: LocalWorkspace, base_url: str) -> None:
    before = batch_state(ws)
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "Go on and on"}],
                       "max_tokens": CONTEXT - 200, "stream": True, **GREEDY}).encode()
    host, _, rest = base_url.removeprefix("http://").partition("/")
    with socket.create_connection((host.split(":")[0], int(host.split(":")[1])), timeout=10) as sock:
        sock.sendall(f"POST /{rest}/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Authorization: Bearer {ws.get_keys('chat').primary_key}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close: a reset
    # the gateway read the request, then the reset: the answer's head finds the client gone
    wait_until(lambda: batch_state(ws)["cancelled"] == before["cancelled"] + 1, 30, "the stream's row cancelled")
    wait_until(lambda: batch_state(ws)["running"] == 0, 30, "the batch empty")
    wait_until(lambda: gateway_in_flight(ws, base_url) == {}, 30, "the gateway holding no request")


def test_the_native_score_route_is_unchanged(ws: LocalWorkspace) -> None:
    result = ws.invoke("chat", json.dumps({"prompt": "Hello", "max_new_tokens": 3}).encode())
    assert result.ok, result.body
    answer = json.loads(result.body)
    assert set(answer) == {"model", "text", "finish_reason", "usage"} and answer["model"] == "tiny"
    assert answer["usage"]["completion_tokens"] <= 3


def test_streams_share_the_batch_and_early_leavers_leak_nothing(ws: LocalWorkspace, base_url: str,
                                                                client: openai.OpenAI) -> None:
    before = batch_state(ws)["cancelled"]
    streams = [client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"Story {i}"}],
                                              max_tokens=CONTEXT - 200 if i % 2 else 400, stream=True, **GREEDY)
               for i in range(4)]
    readers = [iter(s) for s in streams]
    for reader in readers:
        next(reader)  # the role chunk
        next(reader)  # a first token: every stream is generating now
    assert batch_state(ws)["running"] == 4  # continuous batching: four rows decoded together
    for i, (stream, reader) in enumerate(zip(streams, readers, strict=True)):
        if i % 2:
            stream.close()  # the long ones go away
        else:
            rest = list(reader)
            assert rest[-1].choices[0].finish_reason in ("length", "stop")
    wait_until(lambda: batch_state(ws)["cancelled"] == before + 2, 30, "two rows cancelled")
    wait_until(lambda: batch_state(ws)["running"] == 0 and gateway_in_flight(ws, base_url) == {}, 30, "nothing held")


def metric(base_url: str, name: str, **labels: str) -> float:
    """The sum of a /metrics series over the lines that carry these labels."""
    text = requests.get(base_url.split("/endpoints/")[0] + "/metrics", timeout=10).text
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(w in line for w in wanted))


def test_token_metrics_count_what_the_requests_used(base_url: str, client: openai.OpenAI) -> None:
    labels = {"endpoint": "chat", "deployment": "blue", "model_version": "tiny:1"}

    def snapshot() -> dict[str, float]:
        return {
            "input": metric(base_url, "gen_ai_client_token_usage_sum", **labels, gen_ai_token_type="input"),
            "output": metric(base_url, "gen_ai_client_token_usage_sum", **labels, gen_ai_token_type="output"),
            "ttft": metric(base_url, "gen_ai_server_time_to_first_token_seconds_count", **labels),
            "tpot": metric(base_url, "gen_ai_server_time_per_output_token_seconds_count", **labels),
            "queue": metric(base_url, "gen_ai_server_request_queue_time_seconds_count", **labels),
        }

    before = snapshot()
    whole = client.completions.create(model="chat", prompt="Count me", max_tokens=6, **GREEDY)
    chunks = list(client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Me too"}],
                                                 max_tokens=9, stream=True, stream_options={"include_usage": True},
                                                 **GREEDY))
    streamed = chunks[-1].usage
    assert whole.usage is not None and streamed is not None
    after = snapshot()
    assert after["input"] - before["input"] == whole.usage.prompt_tokens + streamed.prompt_tokens
    assert after["output"] - before["output"] == whole.usage.completion_tokens + streamed.completion_tokens
    assert [after[k] - before[k] for k in ("ttft", "tpot", "queue")] == [1, 1, 1]  # measured on streams only


def test_sixteen_streams_with_random_disconnects_leak_no_slot_or_connection(ws: LocalWorkspace, base_url: str,
                                                                             client: openai.OpenAI) -> None:
    before = batch_state(ws)["cancelled"]
    rng = random.Random(20)
    leaving = sorted(rng.sample(range(16), 8))
    reads = {i: rng.randint(2, 6) for i in leaving}  # chunks read before going away
    outcomes: dict[int, str] = {}

    def one(i: int) -> None:
        long = i in leaving
        with client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"Go {i}"}],
                                            max_tokens=CONTEXT - 200 if long else 30, stream=True,
                                            **GREEDY) as stream:
            chunks = iter(stream)
            if long:
                for _ in range(reads[i]):
                    next(chunks)
                outcomes[i] = "left"
            else:
                outcomes[i] = [c for c in chunks][-1].choices[0].finish_reason or ""

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == list(range(16))
    assert all(outcomes[i] == "left" for i in leaving)
    assert all(outcomes[i] in ("length", "stop") for i in range(16) if i not in leaving)
    wait_until(lambda: batch_state(ws)["cancelled"] == before + len(leaving), 60, "every leaver's row cancelled")
    state = batch_state(ws)
    assert (state["running"], state["queued"]) == (0, 0)
    wait_until(lambda: gateway_in_flight(ws, base_url) == {}, 30, "the gateway holding no request")


def requests_to(base_url: str, deployment: str, mirrored: bool) -> float:
    return metric(base_url, "byom_requests_total", endpoint="chat", deployment=deployment, status="200",
                  mirrored="true" if mirrored else "false")


def test_the_split_and_the_mirror_apply_when_model_is_the_endpoint(ws: LocalWorkspace, base_url: str,
                                                                   client: openai.OpenAI) -> None:
    chat: dict[str, object] = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, **GREEDY}

    def settled_copies() -> float:
        wait_until(lambda: metric(base_url, "byom_requests_in_flight", endpoint="chat", deployment="green") == 0, 30,
                   "no copy in flight")
        return requests_to(base_url, "green", mirrored=True)

    try:
        ws.set_traffic("chat", {"blue": 100}, {"green": 50})
        before = settled_copies()
        for i in range(40):  # at 50 %, all or none copied has a chance of 2 in 2**40
            if i % 2:
                client.chat.completions.create(model="chat", **chat)  # type: ignore[call-overload]  # a dict
            else:
                list(client.chat.completions.create(model="chat", stream=True, **chat))
        copied = settled_copies() - before
        assert 0 < copied < 40  # about half were copied to green (its answers discarded)
        for _ in range(6):
            client.chat.completions.create(model="blue", **chat)  # type: ignore[call-overload]  # one deployment
        assert settled_copies() - before == copied  # a request naming a deployment is never mirrored
        ws.set_traffic("chat", {"blue": 50, "green": 50}, {})
        answered = {client.chat.completions.with_raw_response.create(model="chat", **chat)
                    .headers["azureml-model-deployment"] for _ in range(20)}
        assert answered == {"blue", "green"}
    finally:
        ws.set_traffic("chat", {"blue": 100}, {})
