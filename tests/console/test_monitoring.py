"""Monitoring: per deployment request counts, error rates and latency, mirrors included."""

import json

from .apptest_helpers import texts


def test_no_requests_yet(open_page, demo):
    at = open_page("monitoring")
    assert not at.exception
    assert "No requests in this window" in texts(at.info)


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
    charts = at.get("plotly_chart")
    names = {trace["name"] for c in charts for trace in json.loads(c.proto.spec)["data"]}
    assert {"chat", "ranks (mirror)", "chat p95"} <= names
    assert "Dotted lines are mirror traffic" in texts(at.caption)

