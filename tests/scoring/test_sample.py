"""The scoring scripts on the real SmolLM2-135M-Instruct sample: exactness, and one HTTP round trip each."""

import pytest
from byom_scoring.ranks import RankScorer
from reference.token_ranks_naive import reference_ranks

from bench.servers import inference_server, post

from .test_http import needs_unshare, run_under_azmlinfsrv
from .test_ranks import assert_ranks_match

pytestmark = pytest.mark.slow

ONE_THREAD = {"BYOM_TORCH_THREADS": "1"}  # see the one_torch_thread fixture
TEXT = "The capital of France is Paris. It is known for the Eiffel Tower and fine food."


def test_ranks_equal_the_per_prefix_reference_on_smollm2(sample_lm, one_torch_thread):
    scorer = RankScorer(sample_lm)
    assert scorer.bos == 0  # <|endoftext|>, not the declared <|im_start|>
    tokens = scorer.score([TEXT], top_k=0)[0]["token_ranks"]
    ids = [scorer.bos, *scorer.tokenize(TEXT)[0]]
    reference = reference_ranks(sample_lm.model, ids)
    assert_ranks_match([t["rank"] for t in tokens], reference, [t["ties"] for t in tokens])
    # A trained model: most tokens of plain English are among its first choices.
    assert sum(t["rank"] < 10 for t in tokens) > len(tokens) / 2


@pytest.mark.integration
def test_token_ranks_over_http(sample_model_dir, sample_lm, tmp_path, one_torch_thread):
    with inference_server(
        "token_ranks.py", sample_model_dir, tmp_path / "server.log", threads=2, env=ONE_THREAD
    ) as server:
        status, body = post(server.score_url, {"text": TEXT, "top_k": 3})
    assert status == 200, body
    expected = RankScorer(sample_lm).score([TEXT], top_k=3)[0]
    assert [t["rank"] for t in body["token_ranks"]] == [t["rank"] for t in expected["token_ranks"]]
    assert body["token_ranks"][0]["token"] == "The"


@pytest.mark.integration
def test_generation_over_http(sample_model_dir, tmp_path):
    with inference_server(
        "generate.py", sample_model_dir, tmp_path / "server.log", threads=4, env=ONE_THREAD
    ) as server:
        question = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_new_tokens": 20}
        status, body = post(server.score_url, question)
    assert status == 200, body
    assert "Paris" in body["text"]
    assert body["finish_reason"] == "stop"
    assert 0 < body["usage"]["completion_tokens"] < 20


@pytest.mark.integration
@needs_unshare
def test_both_scripts_answer_under_the_azmlinfsrv_command(sample_model_dir, sample_lm, tmp_path, one_torch_thread):
    ranks = run_under_azmlinfsrv("token_ranks.py", sample_model_dir, {"text": TEXT, "top_k": 0}, tmp_path)
    expected = RankScorer(sample_lm).score([TEXT], top_k=0)[0]
    assert [t["rank"] for t in ranks["token_ranks"]] == [t["rank"] for t in expected["token_ranks"]]
    question = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_new_tokens": 20}
    answer = run_under_azmlinfsrv("generate.py", sample_model_dir, question, tmp_path)
    assert "Paris" in answer["text"] and answer["finish_reason"] == "stop"


def test_a_gguf_file_is_served_as_it_is(sample_gguf, sample_lm, one_torch_thread):
    from byom_scoring import common

    lm = common.load_model(sample_gguf)
    assert lm.name == "SmolLM2-135M-Instruct.Q4_1"
    text = "The capital of France is Paris."
    from_gguf = RankScorer(lm).score([text], top_k=0)[0]["token_ranks"]
    packaged = RankScorer(sample_lm).score([text], top_k=0)[0]["token_ranks"]
    assert [t["rank"] for t in from_gguf] == [t["rank"] for t in packaged]
