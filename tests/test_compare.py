"""The version diff's figures, from token-rank answers written by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from byom.core.compare import bucketed_kl, diff_text, read_prompts, summarize
from byom.core.errors import InvalidInput


def row(token_id: int, rank: int, prob: float, top: list[tuple[int, float]]) -> dict:
    return {"token": f"t{token_id}", "token_id": token_id, "rank": rank, "prob": prob,
            "top_k": [{"token": f"t{i}", "token_id": i, "prob": p} for i, p in top]}


def test_kl_is_zero_for_one_distribution_and_grows_as_they_part() -> None:
    p = {1: 0.5, 2: 0.3}
    assert bucketed_kl(p, dict(p)) == 0.0
    near, far = {1: 0.45, 2: 0.35}, {1: 0.1, 2: 0.6}
    assert 0 < bucketed_kl(p, near) < bucketed_kl(p, far)
    # over {1, 2, rest}: 0.5 ln(0.5/0.1) + 0.3 ln(0.3/0.6) + 0.2 ln(0.2/0.3)
    assert bucketed_kl(p, far) == pytest.approx(0.5 * math.log(5) + 0.3 * math.log(0.5) + 0.2 * math.log(2 / 3))


def test_a_text_diff_counts_top1_agreement_rank_changes_and_what_moved() -> None:
    a = {"token_ranks": [row(7, 0, 0.6, [(7, 0.6), (8, 0.2)]), row(9, 3, 0.05, [(1, 0.5), (2, 0.2)])]}
    b = {"token_ranks": [row(7, 0, 0.6, [(7, 0.6), (8, 0.2)]), row(9, 0, 0.4, [(9, 0.4), (1, 0.3)])]}
    diff = diff_text(0, a, b)
    assert diff.tokens == 2 and diff.top1_agreement == 0.5
    assert diff.mean_log_rank_change == pytest.approx((0 + math.log1p(0) - math.log1p(3)) / 2)
    assert diff.max_log_rank_change == pytest.approx(math.log1p(3))
    assert [(m.position, m.rank_a, m.rank_b) for m in diff.moved] == [(1, 3, 0)]
    assert diff.mean_kl > 0
    same = diff_text(0, a, a)
    assert (same.top1_agreement, same.mean_kl, same.mean_log_rank_change, same.moved) == (1.0, 0.0, 0.0, [])


def test_texts_tokenized_differently_are_refused() -> None:
    a = {"token_ranks": [row(7, 0, 0.6, [(7, 0.6)])]}
    b = {"token_ranks": [row(8, 0, 0.6, [(8, 0.6)])]}
    with pytest.raises(InvalidInput, match="tokenized differently"):
        diff_text(2, a, b)


def test_the_set_is_weighted_by_tokens() -> None:
    one = diff_text(0, *[{"token_ranks": [row(1, 0, 0.9, [(1, 0.9)])]}] * 2)
    a = {"token_ranks": [row(1, 0, 0.9, [(1, 0.9)])] * 3}
    b = {"token_ranks": [row(1, 1, 0.2, [(2, 0.7), (1, 0.2)])] * 3}
    three = diff_text(1, a, b)
    report = summarize("e", "x", "y", "m:1", "m:2", [one, three])
    assert report.tokens == 4
    assert report.top1_agreement == pytest.approx(0.25)
    assert report.mean_kl == pytest.approx(three.mean_kl * 3 / 4)


def test_prompt_files_in_three_forms_and_bad_ones_named(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("first text\n\nsecond text\n")
    (tmp_path / "p.json").write_text('["one", "two"]')
    (tmp_path / "p.jsonl").write_text('"one"\n{"text": "two"}\n')
    assert read_prompts(tmp_path / "p.txt") == ["first text", "second text"]
    assert read_prompts(tmp_path / "p.json") == read_prompts(tmp_path / "p.jsonl") == ["one", "two"]
    (tmp_path / "bad.json").write_text('{"text": "x"}')
    (tmp_path / "empty.jsonl").write_text('{"text": ""}\n')
    for name, said in (("bad.json", "JSON list"), ("empty.jsonl", "Prompt 1"), ("missing.txt", "does not exist")):
        with pytest.raises(InvalidInput, match=said):
            read_prompts(tmp_path / name)


def test_a_pasted_prompt_set_is_read_as_lines_and_its_refusals_name_it() -> None:
    from byom.core.compare import parse_prompts

    assert parse_prompts("first\n\n  \nsecond\n") == ["first", "second"]
    assert parse_prompts('["a", "b"]', ".json", "Prompt file 'p.json'") == ["a", "b"]
    with pytest.raises(InvalidInput, match="The pasted prompt set holds no prompt"):
        parse_prompts("\n \n", "", "The pasted prompt set")
    with pytest.raises(InvalidInput, match="Prompt 2 of prompt file 'p.jsonl' is not a non-empty string"):
        parse_prompts('"a"\n{"text": 3}\n', ".jsonl", "Prompt file 'p.jsonl'")
