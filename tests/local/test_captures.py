"""Captured bodies on a real captures.db: the bounds hold whoever writes, in the store and in the gateway's buffer."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import pytest
from byom.core.captures import parse_prompt_lines
from byom.core.entities import Capture, CapturedRequest, CaptureState
from byom.core.errors import InvalidInput
from byom.core.local.captures import CaptureStore
from byom.core.local.gateway.capture import Capturer


def bodies(n: int, size: int = 10) -> list[CapturedRequest]:
    return [CapturedRequest(seq=0, at=float(i), body=str(i).rjust(size, "x")) for i in range(n)]


def test_the_store_keeps_what_fits_the_count_and_the_bytes_over_several_writes(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "captures.db")
    assert store.add("c1", bodies(3), max_requests=5, max_bytes=1000) == 3
    assert store.add("c1", bodies(4), max_requests=5, max_bytes=1000) == 2  # five in all
    assert store.counts() == {"c1": (5, 50)}
    assert store.add("c2", bodies(10), max_requests=100, max_bytes=35) == 3  # 30 bytes: a fourth is over
    assert store.add("c2", [CapturedRequest(0, 99.0, "tiny")], max_requests=100, max_bytes=35) == 1
    assert store.counts(["c2"]) == {"c2": (4, 34)}
    assert [r.seq for r in store.requests("c1")] == [1, 4, 2, 5, 3]  # by arrival time, then as written
    store.delete("c1")
    assert store.requests("c1") == [] and set(store.counts()) == {"c2"}
    store.close()


def capturing(endpoint: str = "ep", **bounds: int | float) -> dict[str, object]:
    return Capture(id="cap1", endpoint=endpoint, max_requests=int(bounds.get("max_requests", 3)),
                   max_bytes=int(bounds.get("max_bytes", 1000)),
                   sample_rate=float(bounds.get("sample_rate", 1.0))).to_dict()


def test_the_gateway_buffer_never_takes_more_than_the_bounds_even_before_a_write(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "captures.db")
    capturer = Capturer(store)
    capturer.load([capturing(max_requests=3, max_bytes=1000)])
    for i in range(10):
        capturer.observe("ep", "blue", False, b'{"n": %d}' % i, 200, b"answer", time.perf_counter())
    capturer.observe("other", "blue", False, b"{}", 200, b"", time.perf_counter())  # not capturing
    capturer.observe("ep", "blue", True, b"{}", 200, b"", time.perf_counter())  # targeted: never
    batch = capturer.take()
    assert len(batch) == 3
    capturer.write(batch)
    assert store.counts() == {"cap1": (3, 24)}
    capturer.load([capturing(max_requests=3, max_bytes=1000)])  # a reload keeps the count
    capturer.observe("ep", "blue", False, b"{}", 200, b"", time.perf_counter())
    assert capturer.take() == []

    restarted = Capturer(store)  # a new gateway reads what is stored
    restarted.load([capturing(max_requests=4, max_bytes=1000)])
    restarted.observe("ep", "blue", False, b'{"n": 10}', 200, b"", time.perf_counter())
    restarted.observe("ep", "blue", False, b'{"n": 11}', 200, b"", time.perf_counter())
    restarted.write(restarted.take())
    assert store.counts() == {"cap1": (4, 33)}
    stopped = Capture.from_dict(capturing()).replace(state=CaptureState.STOPPED).to_dict()
    restarted.load([stopped])
    restarted.observe("ep", "blue", False, b"{}", 200, b"", time.perf_counter())
    assert restarted.take() == []


def test_the_byte_bound_and_the_sample_rate(tmp_path: Path) -> None:
    capturer = Capturer(CaptureStore(tmp_path / "captures.db"), random.Random(7))
    capturer.load([capturing(max_requests=1000, max_bytes=25)])
    for _ in range(5):
        capturer.observe("ep", "blue", False, b"0123456789", 200, b"", time.perf_counter())
    assert len(capturer.take()) == 2
    capturer = Capturer(CaptureStore(tmp_path / "sampled.db"), random.Random(7))
    capturer.load([capturing(max_requests=1000, sample_rate=0.25)])
    for _ in range(400):
        capturer.observe("ep", "blue", False, b"{}", 200, b"", time.perf_counter())
    assert 60 <= len(capturer.take()) <= 140


def test_what_is_captured_names_the_answer_never_a_header(tmp_path: Path) -> None:
    capturer = Capturer(CaptureStore(tmp_path / "captures.db"))
    capturer.load([capturing()])
    capturer.observe("ep", "green", False, b'{"prompt": "hi"}', 424, b'{"error": "no"}', time.perf_counter() - 0.05)
    (capture, request), = capturer.take()
    assert capture.id == "cap1" and request.body == '{"prompt": "hi"}' and request.deployment == "green"
    assert request.status_code == 424 and request.latency_ms >= 50
    assert request.digest == hashlib.sha256(b'{"error": "no"}').hexdigest()
    assert set(request.to_dict()) == {"seq", "at", "body", "deployment", "status_code", "latency_ms", "digest"}


def test_prompt_lines_bad_ones_named_by_number() -> None:
    assert parse_prompt_lines('{"prompt": "a"}\n\n{"prompt": "b"}\n') == ['{"prompt": "a"}', '{"prompt": "b"}']
    with pytest.raises(InvalidInput) as refused:
        parse_prompt_lines('{"prompt": "a"}\nnot json\n[1, 2]\n{"prompt": "d"}')
    assert "line 2: not JSON" in str(refused.value) and "line 3: a JSON list" in str(refused.value)
    assert "line 1" not in str(refused.value) and "line 4" not in str(refused.value)
    with pytest.raises(InvalidInput, match="no request body"):
        parse_prompt_lines("\n\n")
