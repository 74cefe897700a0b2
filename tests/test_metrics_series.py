"""core.metrics_series and core.metrics: buckets on clock boundaries, every bucket present, status codes counted."""

import pytest
from byom.core.entities import RequestFact
from byom.core.metrics import summarize
from byom.core.metrics_series import bucket_index, bucket_starts, status_class

NOW = 1_700_000_125.0  # 22:15:25 UTC: 25 s into a minute


def fact(at: float, deployment: str = "blue", status: int = 200, latency: float = 12.4) -> RequestFact:
    return RequestFact(at=at, endpoint="ep", deployment=deployment, model_version="m:1", status_code=status,
                       latency_ms=latency)


def test_buckets_start_on_whole_minutes_and_cover_the_window():
    starts = bucket_starts(NOW, 600, 60)
    assert len(starts) == 10
    assert all(start % 60 == 0 for start in starts)
    assert starts[-1] == 1_700_000_100.0  # the minute now falls in
    assert starts[1] - starts[0] == 60
    # A refresh a few seconds later draws into the same buckets.
    assert bucket_starts(NOW + 20, 600, 60) == starts
    assert bucket_index(NOW, starts[0], 60, len(starts)) == 9
    assert bucket_index(starts[0] - 1, starts[0], 60, len(starts)) is None
    with pytest.raises(ValueError):
        bucket_starts(NOW, 0, 60)


def test_quiet_buckets_are_zero_not_left_out():
    facts = [fact(NOW - 530), fact(NOW - 5), fact(NOW - 4, status=503, latency=80.0)]
    [metrics] = summarize(facts, "ep", 600, 60, NOW)
    assert [p.requests for p in metrics.series] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert [p.p50_ms for p in metrics.series][1:9] == [None] * 8, "a quiet bucket has no latency, not 0 ms"
    assert metrics.series[-1].status_codes == {"200": 1, "503": 1}
    assert metrics.series[-1].errors == 1
    assert metrics.requests == 3 and metrics.errors == 1


def test_every_deployment_gets_the_same_buckets():
    facts = [fact(NOW - 200, "blue"), fact(NOW - 10, "green")]
    blue, green = summarize(facts, "ep", 600, 60, NOW)
    assert [p.at for p in blue.series] == [p.at for p in green.series] == bucket_starts(NOW, 600, 60)


def test_status_classes():
    assert [status_class(c) for c in (200, 404, 503)] == ["2xx", "4xx", "5xx"]


def test_tokens_are_summed_and_first_token_times_are_percentiles_of_the_streamed_answers():
    facts = [fact(NOW - 130).replace(input_tokens=30, output_tokens=8),
             fact(NOW - 10).replace(input_tokens=20, output_tokens=16, ttft_ms=40.0, tpot_ms=5.0),
             fact(NOW - 8).replace(input_tokens=10, output_tokens=4, ttft_ms=90.0, tpot_ms=7.0),
             fact(NOW - 5, status=429)]  # a refusal: no tokens, no timings
    [metrics] = summarize(facts, "ep", 600, 60, NOW)
    assert (metrics.input_tokens, metrics.output_tokens) == (60, 28)
    assert [p.output_tokens for p in metrics.series] == [0, 0, 0, 0, 0, 0, 0, 8, 0, 20]
    assert [p.input_tokens for p in metrics.series][-3:] == [30, 0, 30]
    last = metrics.series[-1]
    assert (last.ttft_p50_ms, last.ttft_p95_ms, last.tpot_p50_ms, last.tpot_p99_ms) == (40.0, 90.0, 5.0, 7.0)
    assert metrics.series[-3].ttft_p50_ms is None, "a whole answer has no first-token time: a gap, not 0 ms"
