"""The mirror report's figures (core/mirror_report.py) and the bounded table that keeps mirrored answers."""

from __future__ import annotations

import json
from pathlib import Path

from byom.core.entities import MirroredAnswers, RequestFact
from byom.core.local.request_facts import RequestFactStore
from byom.core.mirror_report import BODY_KEPT_MAX, Answer, answers, digest, first_difference, report_row, reports


def gen(text: str) -> bytes:
    return json.dumps({"text": text, "finish_reason": "stop"}).encode()


def pair(primary_body: bytes, mirror_body: bytes, *, primary_status: int = 200, mirror_status: int = 200,
         primary_ms: float = 10.0, mirror_ms: float = 20.0, mirror: str = "green", at: float = 100.0,
         endpoint: str = "chat") -> MirroredAnswers:
    return answers(at, endpoint, Answer("blue", primary_status, primary_ms, primary_body),
                   Answer(mirror, mirror_status, mirror_ms, mirror_body))


def test_first_difference_is_the_first_differing_word() -> None:
    assert first_difference("a b c", "a b c") is None
    assert first_difference("a b c", "a x c") == 1
    assert first_difference("x", "y") == 0
    assert first_difference("a b", "a b c d") == 2  # a prefix: where the shorter one ends
    assert first_difference("a  b\nc", "a b c") is None  # words, not characters


def test_identical_differing_and_errors_on_either_side_are_counted_apart() -> None:
    pairs = [pair(b'{"x": 1}', b'{"x": 1}'), pair(b'{"x": 1}', b'{"x": 1}'), pair(b'{"x": 1}', b'{"x": 2}'),
             pair(b'{"x": 1}', b'{"error": "boom"}', mirror_status=424),
             pair(b'{"error": "slow"}', b'{"x": 1}', primary_status=408)]
    [row] = reports(pairs, "chat")
    assert (row.requests, row.identical, row.differing, row.primary_errors, row.mirror_errors) == (5, 2, 1, 1, 1)
    assert row.deployment == "green" and row.primaries == ["blue"]
    assert row.generations == 0 and row.exact_match_rate is None and row.mean_first_difference is None


def test_latency_percentiles_of_each_side() -> None:
    pairs = [pair(b"a", b"a", primary_ms=float(i), mirror_ms=float(10 * i)) for i in range(1, 101)]
    [row] = reports(pairs, "chat")
    assert (row.primary_p50_ms, row.primary_p95_ms) == (50.0, 95.0)
    assert (row.mirror_p50_ms, row.mirror_p95_ms) == (500.0, 950.0)


def test_generations_give_an_exact_match_rate_and_the_mean_first_differing_word() -> None:
    pairs = [pair(gen("the cat sat"), gen("the cat sat")), pair(gen("the cat sat"), gen("the dog sat")),
             pair(gen("one two three four"), gen("one two three five")),
             pair(b'{"label": "blue"}', b'{"label": "green"}')]  # not a generation: counted, not compared as text
    [row] = reports(pairs, "chat")
    assert row.generations == 3 and row.differing == 3 and row.identical == 1
    assert row.exact_match_rate == 1 / 3
    assert row.mean_first_difference == (1 + 3) / 2
    shown = report_row(row)
    assert shown["exact_match_rate"] == 0.333 and shown["mean_first_difference"] == 2.0


def test_large_bodies_keep_only_their_digest() -> None:
    big = b"x" * (BODY_KEPT_MAX + 1)
    kept = pair(big, b"small")
    assert kept.primary_body is None and kept.primary_sha256 == digest(big) and kept.mirror_body == b"small"
    # a large generation is identical or differing by digest, but not compared as text
    [row] = reports([pair(gen("a " * 3000), gen("a " * 3000))], "chat")
    assert row.identical == 1 and row.generations == 0


def test_one_report_per_mirrored_deployment_of_the_endpoint_only() -> None:
    pairs = [pair(b"a", b"a", mirror="green"), pair(b"a", b"b", mirror="Red"), pair(b"a", b"a", mirror="red"),
             pair(b"a", b"a", endpoint="other")]
    rows = reports(pairs, "chat")
    assert [(r.deployment.lower(), r.requests) for r in rows] == [("green", 1), ("red", 2)]


def test_the_store_writes_held_pairs_with_the_next_batch_within_its_bounds(tmp_path: Path) -> None:
    store = RequestFactStore(tmp_path / "requests.db", max_pairs=5, max_body_bytes=100)
    try:
        fact = RequestFact(100.0, "chat", "green", "echo:1", 200, 20.0, True)
        for i in range(8):
            store.hold(pair(b"p" * 10, b"m" * 10, at=100.0 + i))
        assert store.mirrored("chat", 0) == []  # held, not yet written
        store.add([fact])
        kept = store.mirrored("chat", 0)
        assert [p.at for p in kept] == [103.0, 104.0, 105.0, 106.0, 107.0]  # the newest max_pairs
        assert kept[-1].primary_body == b"p" * 10 and kept[-1].mirror_sha256 == digest(b"m" * 10)
        assert store.kept() == (5, 100)

        store.hold(pair(b"p" * 30, b"m" * 30, at=200.0))  # 60 bytes: the oldest go until 100 bytes fit
        store.add([])
        assert [p.at for p in store.mirrored("chat", 0)] == [106.0, 107.0, 200.0]
        assert store.kept() == (3, 100)
        assert [p.at for p in store.mirrored("chat", 150.0)] == [200.0]
        assert len(store.since("chat", 0)) == 1  # the facts table is the one it was
    finally:
        store.close()
