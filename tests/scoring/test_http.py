"""Both entry scripts under the real inference server (gunicorn on its app, bound to 127.0.0.1), tiny model."""

import json
import subprocess
import sys
import textwrap
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.servers import REPO, free_port, post

pytestmark = pytest.mark.integration


def swagger(server, version="2"):
    with urllib.request.urlopen(f"{server.url}/swagger.json?version={version}", timeout=10) as response:
        return json.loads(response.read())


def assert_worker_never_restarted(server):
    assert server.process.poll() is None
    assert server.log_tail(10_000).count("Booting worker") == 1, server.log_tail()


class TestTokenRanks:
    def test_one_text_answers_the_reference_shape(self, tiny_token_ranks_server, tiny_model_dir):
        status, body = post(tiny_token_ranks_server.score_url, {"text": "This is a test.", "top_k": 2})
        assert status == 200, body
        assert body["model"] == tiny_model_dir.name
        tokens = body["token_ranks"]
        assert [t["token"] for t in tokens] == ["This", " is", " a", " test", "."]
        assert all(isinstance(t["rank"], int) and t["rank"] >= 0 for t in tokens)
        assert all(len(t["top_k"]) == 2 for t in tokens)
        assert body["summary"]["tokens"] == 5

    def test_several_texts_answer_one_result_each(self, tiny_token_ranks_server):
        texts = ["This is a test.", "Another, longer text to score."]
        status, body = post(tiny_token_ranks_server.score_url, {"texts": texts, "top_k": 0})
        assert status == 200, body
        assert len(body["results"]) == 2
        _, alone = post(tiny_token_ranks_server.score_url, {"text": texts[1], "top_k": 0})
        assert body["results"][1]["token_ranks"] == alone["token_ranks"]

    @pytest.mark.parametrize(
        ("payload", "status", "field", "words"),
        [
            (b"not json", 400, None, "not valid JSON"),
            (b'{"text": "caf\xe9"}', 400, None, "not valid UTF-8"),
            (b"", 400, None, "empty"),
            (b'["a list"]', 400, None, "JSON object"),
            ({}, 400, "text", "exactly one of"),
            ({"text": "a", "texts": ["b"]}, 400, "text", "exactly one of"),
            ({"text": ""}, 400, "text", "empty"),
            ({"text": "   "}, 400, "text", "empty"),
            ({"text": 5}, 400, "text", "must be a string"),
            ({"texts": []}, 400, "texts", "non-empty list"),
            ({"texts": "one"}, 400, "texts", "non-empty list"),
            ({"texts": ["fine", None]}, 400, "texts[1]", "must be a string"),
            ({"text": "a", "top_k": 21}, 400, "top_k", "between 0 and 20"),
            ({"text": "a", "top_k": "5"}, 400, "top_k", "integer"),
            ({"text": "a", "top_k": True}, 400, "top_k", "integer"),
            ({"text": "a", "topk": 5}, 400, "topk", "Unknown field"),
            ({"texts": ["a"] * 33}, 413, "texts", "limit is 32"),
            ({"text": "x" * 100_001}, 413, "text", "limit is 100000"),
            (b'{"text": "' + b"x" * (1 << 20) + b'"}', 413, None, "limit"),
        ],
    )
    def test_bad_input_is_refused_with_a_reason(self, tiny_token_ranks_server, payload, status, field, words):
        got_status, body = post(tiny_token_ranks_server.score_url, payload)
        assert got_status == status, body
        assert words in body["message"]
        assert body.get("field") == field

    def test_an_over_limit_body_is_answered_413_every_time_not_a_broken_pipe(self, tiny_token_ranks_server):
        # the script reads and drops the body before refusing it; unread, the connection is reset under the client
        body = b'{"text": "' + b"x" * (4 << 20) + b'"}'
        for _ in range(8):
            status, answer = post(tiny_token_ranks_server.score_url, body)
            assert status == 413 and "limit" in answer["message"], answer

    def test_get_is_refused_and_the_worker_survives_everything(self, tiny_token_ranks_server):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(tiny_token_ranks_server.score_url, timeout=10)
        assert caught.value.code == 405
        status, _ = post(tiny_token_ranks_server.score_url, {"text": "Still here."})
        assert status == 200
        assert_worker_never_restarted(tiny_token_ranks_server)

    def test_swagger_describes_the_api(self, tiny_token_ranks_server):
        spec = swagger(tiny_token_ranks_server)
        assert set(spec["definitions"]["ServiceInput"]["properties"]) == {"text", "texts", "top_k"}
        assert "token_ranks" in spec["definitions"]["ServiceOutput"]["properties"]
        spec3 = swagger(tiny_token_ranks_server, "3")
        assert "texts" in spec3["components"]["schemas"]["ServiceInput"]["properties"]


class TestGenerate:
    def test_prompt(self, tiny_generate_server):
        status, body = post(tiny_generate_server.score_url, {"prompt": "Hello", "max_new_tokens": 5})
        assert status == 200, body
        assert body["finish_reason"] in {"stop", "length"}
        usage = body["usage"]
        assert usage["completion_tokens"] <= 5
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert usage["prompt_tokens"] > 5  # the prompt went through the chat template

    def test_messages_and_raw_prompts(self, tiny_generate_server):
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        status, body = post(tiny_generate_server.score_url, {"messages": messages, "max_new_tokens": 3})
        assert status == 200, body
        status, raw = post(
            tiny_generate_server.score_url, {"prompt": "Hello", "chat_template": False, "max_new_tokens": 3}
        )
        assert status == 200, raw
        assert raw["usage"]["prompt_tokens"] == 1

    def test_concurrent_requests_get_their_own_answers(self, tiny_generate_server):
        prompts = [f"Prompt number {i} " + "word " * i for i in range(8)]
        sequential = [post(tiny_generate_server.score_url, {"prompt": p, "max_new_tokens": 6})[1] for p in prompts]
        with ThreadPoolExecutor(8) as pool:
            concurrent = list(
                pool.map(lambda p: post(tiny_generate_server.score_url, {"prompt": p, "max_new_tokens": 6})[1], prompts)
            )
        assert [c["text"] for c in concurrent] == [s["text"] for s in sequential]
        assert len({s["text"] for s in sequential}) > 1

    @pytest.mark.parametrize(
        ("payload", "status", "field", "words"),
        [
            ({}, 400, "prompt", "exactly one of"),
            ({"prompt": "a", "messages": []}, 400, "prompt", "exactly one of"),
            ({"prompt": ""}, 400, "prompt", "empty"),
            ({"prompt": ["a"]}, 400, "prompt", "must be a string"),
            ({"messages": []}, 400, "messages", "non-empty list"),
            ({"messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role", "must be one of"),
            ({"messages": [{"role": "user"}]}, 400, "messages[0]", "exactly 'role' and 'content'"),
            ({"messages": [{"role": "user", "content": 1}]}, 400, "messages[0].content", "must be a string"),
            ({"prompt": "a", "max_new_tokens": 0}, 400, "max_new_tokens", "between 1 and 512"),
            ({"prompt": "a", "max_new_tokens": 10_000}, 400, "max_new_tokens", "between 1 and 512"),
            ({"prompt": "a", "temperature": 3}, 400, "temperature", "between"),
            ({"prompt": "a", "top_p": 0}, 400, "top_p", "between"),
            ({"prompt": "a", "do_sample": "yes"}, 400, "do_sample", "true or false"),
            ({"prompt": "a", "seed": -1}, 400, "seed", "between"),
            ({"prompt": "a", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop", "at most 4"),
            ({"prompt": "a", "stop": [""]}, 400, "stop", "non-empty"),
            ({"prompt": "a", "max_tokens": 5}, 400, "max_tokens", "Unknown field"),
            ({"prompt": "word " * 300, "max_new_tokens": 8}, 413, "prompt", "context is 256 tokens"),
            (b"\xff\xfe", 400, None, "UTF-8"),
        ],
    )
    def test_bad_input_is_refused_with_a_reason(self, tiny_generate_server, payload, status, field, words):
        got_status, body = post(tiny_generate_server.score_url, payload)
        assert got_status == status, body
        assert words in body["message"]
        assert body.get("field") == field

    def test_the_worker_survives_bad_input(self, tiny_generate_server):
        post(tiny_generate_server.score_url, b"{")
        status, _ = post(tiny_generate_server.score_url, {"prompt": "Still here", "max_new_tokens": 2})
        assert status == 200
        assert_worker_never_restarted(tiny_generate_server)

    def test_swagger_describes_the_api(self, tiny_generate_server):
        spec = swagger(tiny_generate_server)
        assert {"prompt", "messages", "max_new_tokens", "stop"} <= set(
            spec["definitions"]["ServiceInput"]["properties"]
        )
        assert "finish_reason" in spec["definitions"]["ServiceOutput"]["properties"]


# azmlinfsrv binds 0.0.0.0, which tests must not do; in a private network
# namespace (unshare -rn) that address is the namespace's own loopback and
# nothing else, so the real command line runs there, with its client beside it.
AZMLINFSRV_DRIVER = textwrap.dedent(
    """
    import json, os, subprocess, sys, urllib.request
    from tests.waiting import wait_until
    port, model_dir, log, script, payload = sys.argv[1:6]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    azmlinfsrv = [os.path.join(os.path.dirname(sys.executable), "azmlinfsrv")]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [*azmlinfsrv, "--entry_script", f"scoring/{script}", "--model_dir", model_dir, "--port", port],
            stdout=out, stderr=subprocess.STDOUT,
        )
    def answer():
        if server.poll() is not None:
            sys.exit(f"azmlinfsrv exited with {server.returncode}")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/score", data=payload.encode(), headers={"Content-Type": "application/json"},
        )
        try:
            return urllib.request.urlopen(request, timeout=60).read().decode()
        except OSError:
            return None

    try:
        print(wait_until(answer, 90, "azmlinfsrv to answer /score", every_s=0.3))
    finally:
        server.terminate()
        server.wait(20)
    """
)


def _can_unshare_network() -> bool:
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_under_azmlinfsrv(script, model_dir, payload, tmp_path):
    """Start ``azmlinfsrv`` on a scoring script, post ``payload`` once it answers, and return the answer."""
    log = tmp_path / "azmlinfsrv.log"
    done = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", AZMLINFSRV_DRIVER, str(free_port()), str(model_dir), str(log),
         script, json.dumps(payload)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr + log.read_text()
    return json.loads(done.stdout.strip().splitlines()[-1])


needs_unshare = pytest.mark.skipif(not _can_unshare_network(), reason="needs unshare -rn (user and network namespaces)")


@needs_unshare
def test_the_azmlinfsrv_command_runs_the_script(tiny_model_dir, tmp_path):
    body = run_under_azmlinfsrv("token_ranks.py", tiny_model_dir, {"text": "Hello world"}, tmp_path)
    assert [t["token"] for t in body["token_ranks"]] == ["Hello", " world"]
