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


def stored_hash(workspace, consumer: str) -> str:
    """The sha256 the store keeps of a consumer's key (what the gateway matches a presented key against)."""
    from byom.core.consumer_keys import STORED
    from byom.core.store.backend import consumer_key

    with workspace.backend.store.transaction() as txn:
        return str(txn.get("consumer", consumer_key("demo", consumer))[STORED])


def test_change_a_consumer_s_limits_and_remove_one(open_page, demo):
    demo.create_consumer("demo", "team-a", {"tokens_per_minute": 20000})
    demo.create_consumer("demo", "team-b")
    key_hash = stored_hash(demo, "team-a")
    at = open_page("consumers")
    assert at.selectbox(key=keys.CONS_MANAGE).value == "team-a"
    revision = demo.get_consumer("demo", "team-a").updated_at
    tpm = at.number_input(key=keys.consumer_limit("tokens_per_minute", "team-a", revision))
    assert tpm.value == 20000
    assert at.button(key=keys.CONS_SAVE).disabled, "nothing to save before a limit changes"

    tpm.set_value(0)
    at.number_input(key=keys.consumer_limit("tokens_per_day", "team-a", revision)).set_value(1_000_000)
    at.run()
    at.button(key=keys.CONS_SAVE).click().run()
    assert not at.exception and not at.error
    assert ("Saved the limits of team-a: tokens per minute 20,000 → no limit; tokens per day no limit → 1,000,000."
            in texts(at.success))
    team_a = demo.get_consumer("demo", "team-a")
    assert (team_a.tokens_per_minute, team_a.requests_per_minute, team_a.tokens_per_day) == (None, None, 1_000_000)
    table = at.dataframe[0].value.set_index("consumer")
    assert (table.loc["team-a", "tokens per minute"], table.loc["team-a", "tokens per day"]) == (
        "no limit", "1,000,000")
    assert stored_hash(demo, "team-a") == key_hash, "its key stays"
    assert at.number_input(key=keys.consumer_limit("tokens_per_day", "team-a", team_a.updated_at)).value == 1_000_000
    assert demo.get_consumer("demo", "team-b").tokens_per_day is None, "the other consumer is untouched"


def test_delete_a_consumer_asks_first_naming_it_and_its_key(open_page, demo):
    demo.create_consumer("demo", "team-a")
    demo.create_consumer("demo", "team-b")
    at = open_page("consumers")
    at.selectbox(key=keys.CONS_MANAGE).set_value("team-b").run()
    at.button(key=keys.CONS_DELETE).click().run()
    assert ("Delete consumer team-b of demo? Its key stops working at once: requests sent with it get 401. What it "
            "used stays in the usage below.") in texts(at.warning)
    assert [c.name for c in demo.list_consumers("demo")] == ["team-a", "team-b"], "nothing before the confirmation"
    at.button(key=keys.cancel_button("delete-consumer:demo/team-b")).click().run()
    assert not at.warning and len(demo.list_consumers("demo")) == 2

    at.button(key=keys.CONS_DELETE).click().run()
    at.button(key=keys.confirm_button("delete-consumer:demo/team-b")).click().run()
    assert not at.exception
    assert [c.name for c in demo.list_consumers("demo")] == ["team-a"]
    assert "Deleted consumer team-b: its key no longer works." in texts(at.success)
    assert at.dataframe[0].value["consumer"].tolist() == ["team-a"]
    assert at.selectbox(key=keys.CONS_MANAGE).value == "team-a"
    assert demo.list_audit(1)[0].action == "consumer.delete"


def test_regenerate_a_consumer_s_key_shows_the_new_one_once_and_the_old_one_stops(open_page, demo):
    from byom.core.consumer_keys import key_sha256

    old = demo.create_consumer("demo", "team-a", {"requests_per_minute": 60}).key
    at = open_page("consumers")
    at.button(key=keys.CONS_REGENERATE).click().run()
    assert ("Give consumer team-a of demo a new key? Its current key stops working at once: requests sent with it "
            "get 401. Its limits and usage stay.") in texts(at.warning)
    assert stored_hash(demo, "team-a") == key_sha256(old), "nothing before the confirmation"
    at.button(key=keys.confirm_button("regenerate-consumer:demo/team-a")).click().run()
    assert not at.exception and not at.error
    [shown] = [c for c in at.code]
    assert shown.value.startswith("byomc-") and shown.value != old
    assert shown.language == "text", "a code box, with its copy button, as the Keys tab shows keys"
    assert "shown this once" in texts(at.success) and "the old one no longer works" in texts(at.success)
    assert stored_hash(demo, "team-a") == key_sha256(shown.value) != key_sha256(old)
    assert demo.get_consumer("demo", "team-a").requests_per_minute == 60, "its limits stay"
    assert shown.value not in at.dataframe[0].value.to_string()
    at.run()
    assert not at.code, "the key is not shown again"
