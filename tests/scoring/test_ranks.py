"""Token ranks on a tiny random Llama, checked against the article's per-prefix reference algorithm."""

import copy
import dataclasses
import math

import pytest
import torch
from byom_scoring.ranks import RankScorer, plan_windows, summarize
from reference.token_ranks_naive import reference_ranks

TEXT = "The quick brown fox jumps over the lazy dog. Ünïcödé and 日本語 too."


def assert_ranks_match(ours, reference, ties):
    """Identical where there is no tie; deep in the tail allow 0.1 % for float noise between pass shapes."""
    assert len(ours) == len(reference)
    for position, (a, b, t) in enumerate(zip(ours, reference, ties, strict=True)):
        if t:
            assert a <= b <= a + t, f"position {position}: argsort rank {b} outside the tie band {a}..{a + t}"
        else:
            assert abs(a - b) <= 0.001 * b, f"position {position}: rank {a}, reference {b}"


def test_ranks_equal_the_per_prefix_reference(tiny_lm, one_torch_thread):
    scorer = RankScorer(tiny_lm)
    result = scorer.score([TEXT], top_k=0)[0]["token_ranks"]
    ids = [scorer.bos, *scorer.tokenize(TEXT)[0]]
    assert len(result) == len(ids) - 1 > 20
    reference = reference_ranks(tiny_lm.model, ids)
    assert_ranks_match([t["rank"] for t in result], reference, [t["ties"] for t in result])
    # Not a vacuous comparison: the model ranks these tokens all over the vocabulary.
    assert len({t["rank"] for t in result}) > len(result) // 2


def test_the_first_token_is_scored_after_bos(tiny_lm):
    scorer = RankScorer(tiny_lm)
    first = scorer.score(["This is"], top_k=0)[0]["token_ranks"][0]
    assert first["token"] == "This"
    with torch.no_grad():
        logits = tiny_lm.model(torch.tensor([[0]])).logits[0, -1]  # after <|endoftext|> alone
    assert first["rank"] == int((logits > logits[first["token_id"]]).sum())
    assert first["logprob"] == pytest.approx(float(torch.log_softmax(logits, -1)[first["token_id"]]), abs=1e-5)


def test_planted_ties_count_strictly_and_report_the_tie(tiny_lm):
    scorer = RankScorer(tiny_lm)
    text = "one two three four"
    ids = scorer.tokenize(text)[0]
    target = ids[2]
    # Give three tokens that are not in the text the output row of the third
    # token: their logits then equal its logit exactly wherever it is predicted.
    clones = [t for t in range(1000, 1100) if t not in ids][:3]
    model = copy.deepcopy(tiny_lm.model)
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head[clones] = head[target].clone()
        logits = model(torch.tensor([[scorer.bos, *ids]])).logits[0, 2]  # predicts ids[2]
    tied = RankScorer(dataclasses.replace(tiny_lm, model=model)).score([text], top_k=0)[0]["token_ranks"][2]
    assert tied["ties"] == 3
    # Equal logits are not greater ones: only strictly greater logits count.
    assert tied["rank"] == int((logits > logits[target]).sum())
    assert int((logits >= logits[target]).sum()) == tied["rank"] + 4
    # argsort breaks the tie somewhere in the band.
    reference = reference_ranks(model, [scorer.bos, *ids])
    assert tied["rank"] <= reference[2] <= tied["rank"] + 3


def test_padding_in_a_batch_changes_nothing(tiny_lm):
    scorer = RankScorer(tiny_lm)
    short = "A short text."
    alone = scorer.score([short], top_k=3)[0]
    batched = scorer.score([TEXT, short, "Medium length text here"], top_k=3)[1]
    assert [t["token_id"] for t in batched["token_ranks"]] == [t["token_id"] for t in alone["token_ranks"]]
    for a, b in zip(alone["token_ranks"], batched["token_ranks"], strict=True):
        assert (a["rank"], a["ties"]) == (b["rank"], b["ties"])
        assert a["logprob"] == pytest.approx(b["logprob"], abs=1e-5)
        assert [x["token_id"] for x in a["top_k"]] == [x["token_id"] for x in b["top_k"]]


def test_plan_windows_scores_every_position_once_with_enough_context():
    for n_tokens, window, stride in [(5, 16, 8), (15, 16, 8), (16, 16, 8), (100, 16, 8), (100, 16, 15), (37, 10, 3)]:
        windows = plan_windows(n_tokens, window, stride)
        scored = [p for start, end, first in windows for p in range(first, end)]
        assert scored == list(range(1, n_tokens + 1))
        for start, end, first in windows:
            assert end - start <= window
            if start:
                assert first - start >= window - stride


def test_a_text_longer_than_the_window_is_scored_in_sliding_windows(tiny_lm, one_torch_thread):
    window, stride = 16, 6
    scorer = RankScorer(tiny_lm, window=window, stride=stride)
    text = TEXT + " And then some more words follow."
    result = scorer.score([text, "Short one."], top_k=0)[0]["token_ranks"]
    ids = [scorer.bos, *scorer.tokenize(text)[0]]
    assert len(ids) > 2 * window
    reference = []
    for start, end, first in plan_windows(len(ids) - 1, window, stride):
        reference += reference_ranks(tiny_lm.model, ids[start:end], first=first - start)
    assert_ranks_match([t["rank"] for t in result], reference, [t["ties"] for t in result])


def test_texts_longer_than_the_model_context_are_scored(tiny_lm):
    scorer = RankScorer(tiny_lm)
    assert scorer.window == tiny_lm.context_length
    text = " ".join(f"word{i}" for i in range(tiny_lm.context_length))
    result = scorer.score([text], top_k=1)[0]
    assert len(result["token_ranks"]) == len(scorer.tokenize(text)[0]) > 2 * tiny_lm.context_length


def test_character_offsets_tile_the_text(tiny_lm):
    scorer = RankScorer(tiny_lm)
    tokens = scorer.score([TEXT], top_k=0)[0]["token_ranks"]
    assert "".join(TEXT[t["start"] : t["end"]] for t in tokens) == TEXT
    assert all(a["end"] == b["start"] for a, b in zip(tokens, tokens[1:], strict=False))
    # 日 is split over byte pieces: the first piece carries it, the others are empty.
    pieces = [t for t in tokens if TEXT[t["start"] : t["end"]].endswith("日")]
    assert len(pieces) == 1


def test_top_k_and_probabilities_agree_with_the_rank(tiny_lm):
    tokens = RankScorer(tiny_lm).score([TEXT], top_k=5)[0]["token_ranks"]
    for t in tokens:
        probs = [alt["prob"] for alt in t["top_k"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert t["prob"] == pytest.approx(math.exp(t["logprob"]))
        assert 0 <= t["entropy"] <= math.log(len(tiny_lm.tokenizer)) + 1e-4
        if t["rank"] < 5:
            assert t["top_k"][t["rank"]]["token_id"] == t["token_id"]
        else:
            assert t["token_id"] not in [alt["token_id"] for alt in t["top_k"]]


def test_bfloat16_models_get_float32_logits(tiny_lm):
    """In bf16 (8 bits of mantissa) tens of logits would share each value; float32 logits keep ranks distinct."""
    model = copy.deepcopy(tiny_lm.model).to(torch.bfloat16)
    lm = dataclasses.replace(tiny_lm, model=model, dtype=torch.bfloat16)
    tokens = RankScorer(lm).score([TEXT], top_k=0)[0]["token_ranks"]
    assert sum(t["ties"] for t in tokens) <= 2
    ids = torch.tensor([[0, *[t["token_id"] for t in tokens]]])
    with torch.no_grad():
        bf16_logits = model(ids).logits[0, :-1]
    bf16_ties = (bf16_logits == bf16_logits.gather(1, ids[0, 1:, None])).sum(1) - 1
    assert bf16_ties.float().mean() > 10  # what the check above guards against


def test_summary():
    summary = summarize([0, 9, 10, 999, 1000], [-1.0, -2.0, -3.0, -4.0, -5.0])
    assert summary["tokens"] == 5
    assert (summary["top_10"], summary["top_100"], summary["top_1000"]) == (0.4, 0.6, 0.8)
    assert summary["mean_logprob"] == -3.0
    assert summary["perplexity"] == pytest.approx(math.exp(3.0))
    expected = (math.log(1) + math.log(10) + math.log(11) + math.log(1000) + math.log(1001)) / 5
    assert summary["mean_log_rank"] == pytest.approx(expected)
