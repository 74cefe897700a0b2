"""The Consumers page's tables, CSV and chart, from core entities."""

from byom.console.views import consumers as view
from byom.core.entities import Consumer, ConsumerUsage


def test_limits_are_shown_or_said_absent_and_zero_is_no_limit() -> None:
    table = view.consumers_table([Consumer(name="a", endpoint_name="e", tokens_per_day=1500)])
    assert table.iloc[0].to_dict()["tokens per day"] == "1,500"
    assert table.iloc[0].to_dict()["requests per minute"] == "no limit"
    assert view.limits_given({"tokens_per_minute": 0, "tokens_per_day": 9}) == {"tokens_per_minute": None,
                                                                                "tokens_per_day": 9}


def test_the_csv_has_every_column_and_the_endpoint_keys_row_named() -> None:
    rows = [ConsumerUsage("", "blue", 1, 3, 2, 0),
            ConsumerUsage("a", "blue", 2, 30, 10, 1, period="2026-01-01T00:00:00+00:00")]
    lines = view.usage_csv(rows).splitlines()
    assert lines[0] == ",".join(view.USAGE_COLUMNS)
    assert lines[1] == ",(endpoint key),blue,1,3,2,5,0"
    assert lines[2] == "2026-01-01T00:00:00+00:00,a,blue,2,30,10,40,1"
    assert list(view.usage_table(rows[:1]).columns) == view.USAGE_COLUMNS[1:]


def test_only_the_limits_that_change_are_sent():
    from byom.core.entities import Consumer

    current = Consumer(name="team-a", endpoint_name="demo", tokens_per_minute=20000)
    assert view.limit_boxes(current) == {"tokens_per_minute": 20000, "requests_per_minute": 0, "tokens_per_day": 0}
    assert view.limit_changes(current, view.limit_boxes(current)) == {}
    changes = view.limit_changes(current, {"tokens_per_minute": 0, "requests_per_minute": 0, "tokens_per_day": 5})
    assert changes == {"tokens_per_minute": None, "tokens_per_day": 5}
    assert view.changes_text(current, changes) == "tokens per minute 20,000 → no limit; tokens per day no limit → 5"
