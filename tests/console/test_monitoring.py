"""Monitoring: per deployment request counts, status codes, latency, instances and tokens, mirrors included."""

import json
import time

from byom.console import keys
from byom.core.entities import RequestFact

from .apptest_helpers import texts


def charts(at) -> dict[str, dict]:
    return {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec)
            for c in at.get("plotly_chart")}


def test_no_requests_yet_still_draws_every_deployment_at_zero(open_page, demo):
    at = open_page("monitoring")
    assert not at.exception
    assert "No requests in this window" in texts(at.info)
    requests = charts(at)["Requests per 1 min"]
    assert {t["name"] for t in requests["data"]} == {"chat", "ranks"}
    assert all(set(t["y"]) == {0} for t in requests["data"])
    assert "runs no model-server processes" in texts(at.info), "the in-memory workspace says it has no CPU to show"


def test_requests_errors_and_mirror_per_deployment(open_page, demo):
    demo.set_traffic("demo", {"chat": 100, "ranks": 0}, {"ranks": 50})
    for _ in range(20):
        demo.invoke("demo", {"prompt": "hi"})
    demo.fake_serving.responder = lambda endpoint, deployment, payload: (500, {"message": "boom"})
    for _ in range(5):
        demo.invoke("demo", {"prompt": "hi"}, deployment="chat")

    at = open_page("monitoring")
    assert not at.exception
    table = at.dataframe[0].value.set_index("deployment")
    assert table.loc["chat", "requests"] == 25
    assert table.loc["chat", "errors"] == 5
    assert table.loc["chat", "error rate %"] == 20.0
    assert 0 < table.loc["ranks (mirror)", "requests"] < 20
    shown = charts(at)
    assert set(shown) >= {"Requests per 1 min", "Requests by status code per 1 min", "Latency p95", "Instances now"}
    colours = {t["name"]: t["line"]["color"] for t in shown["Requests per 1 min"]["data"]}
    assert colours == {t["name"]: t["line"]["color"] for t in shown["Latency p95"]["data"]}
    assert colours["ranks (mirror)"] == colours["ranks"] != colours["chat"]
    codes = {t["name"]: sum(t["y"]) for t in shown["Requests by status code per 1 min"]["data"]}
    assert codes == {"200": 20, "500": 5}
    assert "Dotted lines are mirror traffic" in texts(at.caption)

    at.segmented_control(key=keys.MON_PERCENTILE).set_value("p50").run()
    assert "Latency p50" in charts(at) and "Latency p95" not in charts(at)


def test_tokens_and_token_times_per_deployment_in_its_colour(open_page, demo):
    now = time.time()
    # what the local gateway records: a whole answer, and a streamed one with its token times
    demo.fake_serving._facts.extend([
        RequestFact(now - 20, "demo", "chat", "m:1", 200, 300.0, input_tokens=30, output_tokens=8),
        RequestFact(now - 10, "demo", "chat", "m:1", 200, 400.0, input_tokens=20, output_tokens=16, ttft_ms=61.4,
                    tpot_ms=21.26),
    ])
    at = open_page("monitoring")
    assert not at.exception
    table = at.dataframe[0].value.set_index("deployment")
    assert (table.loc["chat", "input tokens"], table.loc["chat", "output tokens"]) == (50, 24)
    shown = charts(at)
    colours = {t["name"]: t["line"]["color"] for t in shown["Requests per 1 min"]["data"]}
    for title in ("Input tokens per 1 min", "Output tokens per 1 min", "Time to first token p95",
                  "Time per output token p95"):
        assert {t["name"]: t["line"]["color"] for t in shown[title]["data"]} == colours, title
        assert shown[title]["layout"]["yaxis"]["range"][0] == 0, title
    output = {t["name"]: t["y"] for t in shown["Output tokens per 1 min"]["data"]}
    assert sum(output["chat"]) == 24 and set(output["ranks"]) == {0}
    first = {t["name"]: [y for y in t["y"] if y is not None] for t in shown["Time to first token p95"]["data"]}
    assert first == {"chat": [61], "ranks": []}
    per_token = {t["name"]: [y for y in t["y"] if y is not None] for t in shown["Time per output token p95"]["data"]}
    assert per_token["chat"] == [21.3]
    assert "measured by the gateway on streamed answers" in texts(at.caption)

    at.segmented_control(key=keys.MON_PERCENTILE).set_value("p50").run()
    assert "Time to first token p50" in charts(at) and "Time per output token p50" in charts(at)
