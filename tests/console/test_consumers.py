"""Consumers: issue a key (shown once), see the limits, and the usage table, chart and CSV."""

import json
import time

from byom.console import keys
from byom.core.entities import RequestFact

from .apptest_helpers import texts


def test_issue_a_consumer_and_see_its_key_once_then_its_limits(open_page, demo):
    at = open_page("consumers")
    at.text_input(key=keys.CONS_NAME).set_value("team-a")
    at.number_input(key=keys.CONS_TPM).set_value(20000)
    at.button(key=keys.CONS_CREATE).click().run()
    assert not at.exception and not at.error
    [shown] = [c.value for c in at.code]
    assert shown.startswith("byomc-") and "shown this once" in texts(at.success)
    table = at.dataframe[0].value.set_index("consumer")
    assert table.loc["team-a", "tokens per minute"] == "20,000"
    assert table.loc["team-a", "tokens per day"] == "no limit"
    assert shown not in table.to_string()
    at.run()  # the next run shows the consumer, not its key
    assert not at.code and "team-a" in at.dataframe[0].value["consumer"].tolist()


def test_a_bad_name_is_refused_with_the_field_named(open_page, demo):
    at = open_page("consumers")
    at.text_input(key=keys.CONS_NAME).set_value("not a name")
    at.button(key=keys.CONS_CREATE).click().run()
    assert not at.exception
    assert "--consumer" in texts(at.error) or "consumer name" in texts(at.error)
    assert at.dataframe[0].value.empty


def test_usage_per_consumer_with_a_chart_and_csv(open_page, demo):
    demo.create_consumer("demo", "team-a")
    now = time.time()
    # what the local gateway records per request; the in-memory serving keeps facts without consumers
    demo.fake_serving._facts.extend([
        RequestFact(now - 60, "demo", "chat", "m:1", 200, 5.0, consumer="team-a", input_tokens=30, output_tokens=10),
        RequestFact(now - 30, "demo", "chat", "m:1", 429, 1.0, consumer="team-a"),
        RequestFact(now - 20, "demo", "chat", "m:1", 200, 5.0, input_tokens=3, output_tokens=2),
    ])
    at = open_page("consumers")
    assert not at.exception
    usage = at.dataframe[1].value.set_index("consumer")
    assert usage.loc["team-a", "requests"] == 2 and usage.loc["team-a", "total_tokens"] == 40
    assert usage.loc["team-a", "errors"] == 1 and usage.loc["(endpoint key)", "input_tokens"] == 3
    [chart] = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["layout"]["title"]["text"] == "Tokens per consumer"
    assert {t["name"]: t["y"] for t in spec["data"]} == {"input tokens": [3, 30], "output tokens": [2, 10]}
    at.selectbox(key=keys.CONS_PERIOD).set_value("Per hour").run()
    assert "period" in at.dataframe[1].value.columns
