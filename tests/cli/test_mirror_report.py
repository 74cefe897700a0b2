"""``byom online-endpoint mirror-report`` as scripts use it: json, tsv and table from a real requests.db; exit 2
with the flag named for bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from byom.core.local.request_facts import RequestFactStore
from byom.core.local.serving_files import ServingFiles
from byom.core.mirror_report import Answer, answers

from .test_consumers import fails, ok


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BYOM_ACTOR", "cli-tester")
    return tmp_path / "home"


def text(words: str) -> bytes:
    return json.dumps({"text": words}).encode()


def test_mirror_report_per_mirrored_deployment_in_json_tsv_and_table(home: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "shop")
    now = time.time()
    pairs = [  # what the gateway keeps, written where it writes it
        answers(now - 5, "shop", Answer("blue", 200, 10.0, text("a b c")), Answer("green", 200, 30.0, text("a b c"))),
        answers(now - 4, "shop", Answer("blue", 200, 12.0, text("a b c")), Answer("green", 200, 40.0, text("a x c"))),
        answers(now - 3, "shop", Answer("blue", 200, 11.0, text("a b c")), Answer("green", 424, 5.0, b"{}")),
        answers(now - 2, "shop", Answer("blue", 200, 11.0, b"{}"), Answer("red", 200, 9.0, b"{}")),
        answers(now - 7200, "shop", Answer("blue", 200, 11.0, b"{}"), Answer("green", 200, 9.0, b"{}")),
    ]
    store = RequestFactStore(ServingFiles(home).requests_db)
    try:
        for pair in pairs:
            store.hold(pair)
        store.add([])
    finally:
        store.close()

    rows = json.loads(ok(capsys, "online-endpoint", "mirror-report", "-n", "shop"))
    assert [(r["deployment"], r["requests"], r["identical"], r["differing"], r["primary_errors"], r["mirror_errors"])
            for r in rows] == [("green", 3, 1, 1, 0, 1), ("red", 1, 1, 0, 0, 0)]
    green = rows[0]
    assert green["primary"] == "blue" and green["exact_match_rate"] == 0.5 and green["mean_first_difference"] == 1.0
    assert (green["primary_p50_ms"], green["mirror_p95_ms"]) == (11.0, 40.0)

    day = json.loads(ok(capsys, "online-endpoint", "mirror-report", "-n", "shop", "--since", "1d", "-d", "GREEN"))
    assert [(r["deployment"], r["requests"]) for r in day] == [("green", 4)]
    tsv = ok(capsys, "online-endpoint", "mirror-report", "-n", "shop", "-o", "tsv").splitlines()
    assert [line.split("\t")[:3] for line in tsv] == [["green", "blue", "3"], ["red", "blue", "1"]]
    table = ok(capsys, "online-endpoint", "mirror-report", "-n", "shop", "-o", "table")
    assert "green" in table and "Identical" in table.splitlines()[0].title()

    assert "--since" in fails(capsys, "online-endpoint", "mirror-report", "-n", "shop", "--since", "banana")
    assert "purple" in fails(capsys, "online-endpoint", "mirror-report", "-n", "shop", "-d", "purple")
    assert "deployment" in fails(capsys, "online-endpoint", "mirror-report", "-n", "shop", "-d", "no_such!")
    assert "nope" in fails(capsys, "online-endpoint", "mirror-report", "-n", "nope")
