"""Monitoring: per deployment request counts, status codes, latency and instances, mirrors included."""

import json

from byom.console import keys

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
