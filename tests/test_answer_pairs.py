"""Answers summed up per side and compared in pairs (what a replay reports), from plain values."""

from __future__ import annotations

import json

from byom.core.answer_pairs import SMALL_BODY, Answer, answer, first_difference, pair_summary, side_summary


def gen(text: str, status: int = 200, latency_ms: float = 10.0) -> Answer:
    return answer(status, latency_ms, json.dumps({"text": text, "finish_reason": "stop"}))


def test_a_side_counts_statuses_errors_and_latency_percentiles() -> None:
    answers = [answer(200, float(ms), "{}") for ms in range(1, 19)] + [answer(424, 50.0, "{}"),
                                                                       answer(0, 3000.0, "")]
    summary = side_summary(answers)
    assert summary.requests == 20 and summary.errors == 2
    assert summary.status_codes == {"0": 1, "200": 18, "424": 1}
    assert summary.latency_p50_ms == 10.0 and summary.latency_p95_ms == 50.0  # no answer, no latency
    empty = side_summary([])
    assert (empty.requests, empty.errors, empty.latency_p50_ms) == (0, 0, None)


def test_first_difference_by_whitespace_tokens() -> None:
    assert first_difference("a b c", "a  b\nc") is None
    assert first_difference("a b c", "a x c") == 1
    assert first_difference("x", "y") == 0
    assert first_difference("a b", "a b c") == 2


def test_pairs_identical_differing_errors_and_generation_figures() -> None:
    pairs = [
        (gen("the cat sat"), gen("the cat sat", latency_ms=99.0)),  # identical: latency is not the answer
        (gen("the cat sat"), gen("the dog sat")),  # differs at token 1
        (gen("one two three four"), gen("one two three five")),  # at token 3
        (answer(200, 1.0, '{"greeting": "hi"}'), answer(200, 1.0, '{"greeting": "hi"}')),  # not a generation
        (gen("x"), answer(424, 1.0, '{"error": "bad field"}')),  # an error on one side
    ]
    summary = pair_summary(pairs)
    assert (summary.compared, summary.identical, summary.differing, summary.errors_either) == (5, 2, 3, 1)
    assert summary.generation_compared == 3
    assert summary.exact_match_rate == 1 / 3
    assert summary.mean_first_difference == 2.0
    none = pair_summary([(answer(404, 1.0, "a"), answer(404, 1.0, "a"))])
    assert (none.identical, none.errors_either, none.exact_match_rate, none.mean_first_difference) == (
        1, 1, None, None)


def test_a_large_body_is_digested_but_not_kept() -> None:
    big = answer(200, 1.0, json.dumps({"text": "y " * SMALL_BODY}))
    assert big.body is None and len(big.digest) == 64
    summary = pair_summary([(big, big)])
    assert summary.identical == 1 and summary.generation_compared == 0
