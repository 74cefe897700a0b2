"""The native ``/score`` streamed: a body with ``"stream": true`` gets the model server's server-sent events,
through the real gateway from a real model server running scoring/generate.py on a tiny random Llama.

The endpoint ``native`` has one deployment, ``blue``, with all the traffic. Greedy requests (temperature 0)
are deterministic, so a streamed answer can be checked against the same request answered whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from byom.core.entities import Deployment, Endpoint, ModelSpec, RequestSettings
from byom.core.local.gateway import admin_token
from byom.core.local.workspace import LocalWorkspace
from byom.core.sample import cached_tiny_llama

from .helpers import shut_down, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
CONTEXT = 4096  # long enough that a stream can be cut long before it would end on its own
STORY = {"prompt": "Once upon a time", "max_new_tokens": 48, "temperature": 0}
LONG_STORY = {**STORY, "max_new_tokens": 400}  # long enough that its first words come well before its last


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, sample_model_dir: Path,
       model_cache_dir: Path) -> Iterator[LocalWorkspace]:
    model_dir = cached_tiny_llama(model_cache_dir, tokenizer_dir=sample_model_dir, max_position_embeddings=CONTEXT)
    workspace = LocalWorkspace(tmp_path_factory.mktemp("score-stream") / "home", actor="tester")
    try:
        model = workspace.create_model(ModelSpec(name="tiny", path=str(model_dir))).ref
        workspace.create_or_update_endpoint(Endpoint(name="native"))
        dep = workspace.create_or_update_deployment(Deployment(
            name="blue", endpoint_name="native", model=model, code_path=str(REPO / "scoring"),
            scoring_script="generate.py", instance_count=1,
            request_settings=RequestSettings(request_timeout_ms=60000, max_concurrent_requests_per_instance=8),
            environment_variables={"BYOM_TORCH_THREADS": "1", "BYOM_MAX_NEW_TOKENS": str(CONTEXT - 100),
                                   "BYOM_MODEL_NAME": "tiny", "GUNICORN_CMD_ARGS": "--threads 20"}))
        assert dep.provisioning_state == "Succeeded", dep.state_reason
        workspace.set_traffic("native", {"blue": 100})
        yield workspace
    finally:
        shut_down(workspace)


@pytest.fixture(scope="module")
def uri(ws: LocalWorkspace) -> str:
    return ws.get_endpoint("native").scoring_uri


@pytest.fixture(scope="module")
def key(ws: LocalWorkspace) -> str:
    return ws.get_keys("native").primary_key


def post(uri: str, key: str, payload: dict[str, Any], stream: bool = False) -> requests.Response:
    return requests.post(uri, json=payload, headers={"Authorization": f"Bearer {key}"}, timeout=60, stream=stream)


def events_of(answer: requests.Response) -> list[tuple[float, dict[str, Any]]]:
    """A streamed answer's events, each with when its chunk arrived (read as the chunks come)."""
    arrived: list[tuple[float, dict[str, Any]]] = []
    pending = b""
    for piece in answer.iter_content(chunk_size=None):
        pending += piece
        while (end := pending.find(b"\n\n")) >= 0:
            raw, pending = pending[:end], pending[end + 2 :]
            assert raw.startswith(b"data: "), raw
            arrived.append((time.monotonic(), json.loads(raw[6:])))
    assert pending == b""
    return arrived


def batch_state(ws: LocalWorkspace) -> dict[str, int]:
    """The model server's batch, asked of the instance directly: rows running, queued, cancelled so far."""
    [instance] = ws.get_deployment("native", "blue").instances
    answer = requests.get(f"http://127.0.0.1:{instance.port}/score", timeout=10)
    answer.raise_for_status()
    state: dict[str, int] = answer.json()
    return state


def gateway_in_flight(ws: LocalWorkspace, uri: str) -> dict[str, int]:
    answer = requests.get(uri.split("/endpoints/")[0] + "/-/in-flight", timeout=10,
                          headers=admin_token.headers(ws.home / "run"))
    assert answer.status_code == 200, answer.text
    in_flight: dict[str, int] = answer.json()
    return in_flight


def test_score_without_stream_answers_whole_as_before(uri: str, key: str) -> None:
    answer = post(uri, key, STORY)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["azureml-model-deployment"] == "blue" and answer.headers["x-request-id"]
    body = answer.json()
    assert body["text"] and body["usage"]["completion_tokens"] >= 1 and body["finish_reason"]


def test_a_streamed_score_comes_in_events_as_they_are_made(ws: LocalWorkspace, uri: str, key: str) -> None:
    whole = post(uri, key, LONG_STORY).json()
    sent = time.monotonic()
    with post(uri, key, {**LONG_STORY, "stream": True}, stream=True) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["azureml-model-deployment"] == "blue" and answer.headers["x-request-id"]
        arrived = events_of(answer)
    texts = [(at, e["text"]) for at, e in arrived if e.get("text")]
    assert len(texts) >= 20, arrived
    first, last = texts[0][0] - sent, arrived[-1][0] - sent
    assert first < last / 2, (first, last)  # the first words came long before the answer was done
    # the model server's own events, unchanged: text deltas, then the finish reason and usage
    assert "".join(e.get("text", "") for _, e in arrived) == whole["text"]
    final = arrived[-1][1]
    assert final["finish_reason"] == whole["finish_reason"] and final["usage"] == whole["usage"]
    assert all("usage" not in e for _, e in arrived[:-1])


def test_a_streamed_score_counts_a_consumers_tokens(ws: LocalWorkspace, uri: str) -> None:
    issued = ws.create_consumer("native", "carol", {"tokens_per_minute": 100_000})
    with post(uri, issued.key, {**STORY, "stream": True}, stream=True) as answer:
        assert answer.status_code == 200
        assert answer.headers["x-ratelimit-limit-tokens"] == "100000"
        usage = events_of(answer)[-1][1]["usage"]
    wait_until(lambda: [r.requests for r in ws.consumer_usage("native", "1h", consumer="carol")] == [1], 30,
               "the stream's request fact recorded")
    [row] = ws.consumer_usage("native", "1h", consumer="carol")
    assert (row.deployment, row.errors) == ("blue", 0)
    assert (row.input_tokens, row.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])


def test_errors_before_the_first_event_are_answered_as_score_answers_them(uri: str, key: str) -> None:
    wrong = post(uri, "wrong", {**STORY, "stream": True})
    assert wrong.status_code == 401 and "key" in wrong.json()["error"]["message"]
    refused = post(uri, key, {"prompt": "Hi", "max_new_tokens": CONTEXT, "stream": True})
    assert refused.status_code == 424, refused.text
    assert refused.headers["ms-azureml-model-error-statuscode"] == "400"
    assert "max_new_tokens" in refused.text
    unknown = requests.post(uri, json={**STORY, "stream": True}, timeout=60,
                            headers={"Authorization": f"Bearer {key}", "azureml-model-deployment": "nope"})
    assert unknown.status_code == 404


def test_a_client_that_goes_away_mid_stream_frees_its_batch_slot(ws: LocalWorkspace, uri: str, key: str) -> None:
    before = batch_state(ws)
    assert before["running"] == 0
    long = {"prompt": "Go on", "max_new_tokens": CONTEXT - 200, "temperature": 0, "stream": True}
    with post(uri, key, long, stream=True) as answer:
        pieces = answer.iter_content(chunk_size=None)
        for _ in range(3):
            next(pieces)
        assert batch_state(ws)["running"] == 1
    # closed after three events of a few thousand tokens: the row leaves the batch cancelled, not finished
    wait_until(lambda: batch_state(ws)["cancelled"] == before["cancelled"] + 1, 30, "the stream's row cancelled")
    wait_until(lambda: batch_state(ws)["running"] == 0, 30, "the batch empty")
    wait_until(lambda: not gateway_in_flight(ws, uri), 30, "the gateway's slot for the stream let go")


def test_the_workspace_streams_an_answer_through_the_gateway(ws: LocalWorkspace) -> None:
    whole = ws.invoke("native", LONG_STORY).json()
    [first, *events] = ws.invoke_stream("native", LONG_STORY)
    assert first.head is not None and first.head.status_code == 200 and first.head.deployment == "blue"
    texts = [e for e in events if e.text]
    assert len(texts) >= 20 and texts[0].at_ms < events[-1].at_ms / 2
    assert "".join(e.text for e in events) == whole["text"]
    assert events[-1].data is not None and events[-1].data["usage"] == whole["usage"]


def test_closing_the_workspaces_stream_cancels_the_generation(ws: LocalWorkspace) -> None:
    before = batch_state(ws)
    stream = ws.invoke_stream("native", {"prompt": "Go on", "max_new_tokens": CONTEXT - 200, "temperature": 0})
    assert next(stream).head is not None
    assert next(stream).text and batch_state(ws)["running"] == 1
    stream.close()
    wait_until(lambda: batch_state(ws)["cancelled"] == before["cancelled"] + 1, 30, "the stream's row cancelled")
    wait_until(lambda: batch_state(ws)["running"] == 0, 30, "the batch empty")
