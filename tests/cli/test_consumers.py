"""``byom online-endpoint consumer ...`` and ``usage`` as scripts use them: the key printed once, limits
checked with the flag named, exit codes; usage read from a real requests.db."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from byom.cli.main import main
from byom.core.entities import RequestFact
from byom.core.local.request_facts import RequestFactStore
from byom.core.local.serving_files import ServingFiles


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BYOM_ACTOR", "cli-tester")
    return tmp_path / "home"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as refused:  # argparse's own refusals
        code = int(refused.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, ""), (code, out, err)
    return err


def test_create_list_show_update_regenerate_and_delete(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "shop")
    key = ok(capsys, "online-endpoint", "consumer", "create", "-n", "shop", "--consumer", "alice",
             "--tokens-per-minute", "1000", "--requests-per-minute", "10", "--query", "key", "-o", "tsv").strip()
    assert key.startswith("byomc-") and len(key) > 40
    ok(capsys, "online-endpoint", "consumer", "create", "-n", "shop", "-c", "bob")

    listed = json.loads(ok(capsys, "online-endpoint", "consumer", "list", "-n", "shop"))
    assert [(c["name"], c["tokens_per_minute"], c["requests_per_minute"], c["tokens_per_day"]) for c in listed] == [
        ("alice", 1000, 10, None), ("bob", None, None, None)]
    assert not any("key" in field for c in listed for field in c), "a key, or its hash, is shown again"
    assert key not in json.dumps(listed)
    table = ok(capsys, "online-endpoint", "consumer", "list", "-n", "shop", "-o", "table")
    assert "alice" in table and key not in table

    shown = json.loads(ok(capsys, "online-endpoint", "consumer", "show", "-n", "shop", "-c", "ALICE"))
    assert shown["name"] == "alice" and shown["created_by"] == "cli-tester"
    updated = json.loads(ok(capsys, "online-endpoint", "consumer", "update", "-n", "shop", "-c", "alice",
                            "--tokens-per-day", "50000", "--requests-per-minute", "none"))
    assert (updated["tokens_per_minute"], updated["requests_per_minute"], updated["tokens_per_day"]) == (
        1000, None, 50000)

    renewed = ok(capsys, "online-endpoint", "consumer", "regenerate-key", "-n", "shop", "-c", "alice",
                 "--query", "key", "-o", "tsv").strip()
    assert renewed.startswith("byomc-") and renewed != key
    stored = (home / "byom.db").read_bytes() + b"".join(p.read_bytes() for p in home.glob("byom.db-*"))
    assert key.encode() not in stored and renewed.encode() not in stored

    ok(capsys, "online-endpoint", "consumer", "delete", "-n", "shop", "-c", "alice", "--yes")
    assert "no consumer named 'alice'" in fails(capsys, "online-endpoint", "consumer", "show", "-n", "shop",
                                                "-c", "alice")
    names = json.loads(ok(capsys, "online-endpoint", "consumer", "list", "-n", "shop", "--query", "[].name"))
    assert names == ["bob"]
    actions = json.loads(ok(capsys, "audit", "list", "--query", "[].action"))
    assert {"consumer.create", "consumer.update", "consumer.regenerate-key", "consumer.delete"} <= set(actions)


@pytest.mark.parametrize(("argv", "said"), [
    (("create", "-c", "alice", "--tokens-per-minute", "0"), "--tokens-per-minute"),
    (("create", "-c", "alice", "--tokens-per-day", "-5"), "--tokens-per-day"),
    (("create", "-c", "alice", "--requests-per-minute", "lots"), "--requests-per-minute"),
    (("create", "-c", "not a name"), "--consumer"),
    (("create", "-c", "bob"), "already has a consumer named 'bob'"),
    (("update", "-c", "bob"), "Nothing to update"),
    (("update", "-c", "nobody", "--tokens-per-day", "5"), "no consumer named 'nobody'"),
    (("create", "-c", "alice"), None),  # the endpoint below is unknown
])
def test_bad_input_exits_2_naming_the_flag_and_writes_nothing(home: Path, capsys: pytest.CaptureFixture[str],
                                                              argv: tuple[str, ...], said: str | None) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "shop")
    ok(capsys, "online-endpoint", "consumer", "create", "-n", "shop", "-c", "bob")
    endpoint = "shop" if said is not None else "nowhere"
    err = fails(capsys, "online-endpoint", "consumer", argv[0], "-n", endpoint, *argv[1:])
    assert (said or "nowhere") in err, err
    names = json.loads(ok(capsys, "online-endpoint", "consumer", "list", "-n", "shop", "--query", "[].name"))
    assert names == ["bob"]


def test_usage_per_consumer_and_deployment_by_hour_in_json_tsv_and_table(home: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "shop")
    for name in ("alice", "bob"):
        ok(capsys, "online-endpoint", "consumer", "create", "-n", "shop", "-c", name)
    hour = (time.time() // 3600) * 3600
    facts = [  # what the gateway records, written where it writes it
        RequestFact(hour + 1, "shop", "blue", "tiny:1", 200, 10.0, consumer="alice", input_tokens=30, output_tokens=8),
        RequestFact(hour + 2, "shop", "blue", "tiny:1", 200, 10.0, consumer="alice", input_tokens=31, output_tokens=9),
        RequestFact(hour + 3, "shop", "green", "tiny:2", 429, 1.0, consumer="alice"),
        RequestFact(hour - 1, "shop", "blue", "tiny:1", 200, 10.0, consumer="bob", input_tokens=5, output_tokens=5),
        RequestFact(hour + 4, "shop", "blue", "tiny:1", 200, 10.0, input_tokens=7, output_tokens=1),
        RequestFact(hour + 5, "shop", "blue", "tiny:1", 200, 10.0, mirrored=True, consumer="bob", input_tokens=9),
        RequestFact(hour - 90_000, "shop", "blue", "tiny:1", 200, 10.0, consumer="bob", input_tokens=99),
        RequestFact(hour + 6, "other", "blue", "tiny:1", 200, 10.0, consumer="alice", input_tokens=99),
    ]
    store = RequestFactStore(ServingFiles(home).requests_db)
    try:
        store.add(facts)
    finally:
        store.close()

    rows = json.loads(ok(capsys, "online-endpoint", "usage", "-n", "shop"))
    assert [(r["consumer"], r["deployment"], r["requests"], r["input_tokens"], r["output_tokens"], r["errors"])
            for r in rows] == [("(endpoint key)", "blue", 1, 7, 1, 0), ("alice", "blue", 2, 61, 17, 0),
                               ("alice", "green", 1, 0, 0, 1), ("bob", "blue", 1, 5, 5, 0)]
    assert rows[1]["total_tokens"] == 78

    tsv = ok(capsys, "online-endpoint", "usage", "-n", "shop", "--consumer", "alice", "--by", "hour", "-o", "tsv")
    lines = [line.split("\t") for line in tsv.splitlines()]
    assert [line[1:] for line in lines] == [["alice", "blue", "2", "61", "17", "78", "0"],
                                            ["alice", "green", "1", "0", "0", "0", "1"]]
    assert lines[0][0].endswith(":00:00+00:00")
    daily = json.loads(ok(capsys, "online-endpoint", "usage", "-n", "shop", "--since", "2d", "--by", "day",
                          "-c", "bob"))
    assert sum(r["input_tokens"] for r in daily) == 104 and all(r["period"] for r in daily)
    table = ok(capsys, "online-endpoint", "usage", "-n", "shop", "-o", "table")
    assert "alice" in table and "Input" in table.splitlines()[0].title()

    assert "--by" in fails(capsys, "online-endpoint", "usage", "-n", "shop", "--by", "week")
    assert "--since" in fails(capsys, "online-endpoint", "usage", "-n", "shop", "--since", "yesterday")
    assert "carol" in fails(capsys, "online-endpoint", "usage", "-n", "shop", "-c", "carol")
