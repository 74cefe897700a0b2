"""byom online-endpoint traffic-history and revert, on a local workspace (its real SQLite file)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from byom.cli.main import main
from byom.core.entities import Deployment, Endpoint, ModelSpec
from byom.core.local.workspace import LocalWorkspace
from byom.core.serving import FakeServing


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local home with endpoint demo (blue 100 %, green), then blue 90 / green 10; no process runs."""
    home = tmp_path / "home"
    monkeypatch.setenv("BYOM_HOME", str(home))
    monkeypatch.setenv("BYOM_ACTOR", "cli-tester")
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04pickle")
    # Deployments are written by a workspace whose serving answers at once; the CLI then opens the home as usual.
    ws = LocalWorkspace(home, serving=FakeServing(), actor="ada")
    try:
        ws.create_model(ModelSpec(name="clf", path=str(tmp_path / "model.pkl")))
        ws.create_or_update_endpoint(Endpoint(name="demo"))
        for name in ("blue", "green"):
            ws.create_or_update_deployment(Deployment(name=name, endpoint_name="demo", model="clf:1"))
        ws.set_traffic("demo", {"blue": 100})
        ws.set_traffic("demo", {"blue": 90, "green": 10})
    finally:
        ws.close()
    return home


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def traffic(home: Path) -> dict[str, int]:
    ws = LocalWorkspace(home, serving=FakeServing())
    try:
        return ws.get_endpoint("demo").traffic
    finally:
        ws.close()


def test_traffic_history_lists_the_changes_newest_first(home: Path, capsys) -> None:
    code, out, _ = run(capsys, "online-endpoint", "traffic-history", "-n", "demo")
    assert code == 0
    latest, first = json.loads(out)
    assert (latest["actor"], latest["before"], latest["after"]) == ("ada", "blue 100", "blue 90 · green 10")
    assert (latest["traffic_before"], latest["traffic_after"]) == ({"blue": 100}, {"blue": 90, "green": 10})
    assert latest["mirror_traffic_after"] == {} and latest["id"] > first["id"]
    assert (first["before"], first["after"]) == ("no traffic", "blue 100")

    code, out, _ = run(capsys, "online-endpoint", "traffic-history", "-n", "demo", "-o", "table")
    header, rule, *rows = out.splitlines()
    assert header.split() == ["Id", "At", "Actor", "Before", "After", "Note"] and set(rule) <= {"-", " "}
    assert re.split(r"\s{2,}", rows[0].rstrip()) == [str(latest["id"]), latest["at"], "ada", "blue 100",
                                                     "blue 90 · green 10"]
    code, out, _ = run(capsys, "online-endpoint", "traffic-history", "-n", "demo", "--query", "[].id", "-o", "tsv")
    assert out.split() == [str(latest["id"]), str(first["id"])]


def test_revert_undoes_the_latest_change_through_set_traffic(home: Path, capsys) -> None:
    code, _, err = run(capsys, "online-endpoint", "revert", "-n", "demo")
    assert code == 2 and "without confirmation: pass --yes" in err
    assert traffic(home) == {"blue": 90, "green": 10}, "nothing changes before the confirmation"

    code, out, _ = run(capsys, "online-endpoint", "revert", "-n", "demo", "--yes")
    assert code == 0 and json.loads(out)["traffic"] == {"blue": 100}
    assert traffic(home) == {"blue": 100}
    code, out, _ = run(capsys, "online-endpoint", "traffic-history", "-n", "demo")
    newest = json.loads(out)[0]
    assert (newest["actor"], newest["after"]) == ("cli-tester", "blue 100"), "the revert is audited"
    code, out, _ = run(capsys, "audit", "list", "--query", "[0].action", "-o", "tsv")
    assert out.strip() == "endpoint.traffic"


def test_revert_to_a_change_by_its_id(home: Path, capsys) -> None:
    _, out, _ = run(capsys, "online-endpoint", "traffic-history", "-n", "demo", "--query", "[].id", "-o", "tsv")
    latest, first = (int(i) for i in out.split())
    code, out, _ = run(capsys, "online-endpoint", "revert", "-n", "demo", "--to", str(first), "-y", "-o", "none")
    assert (code, out) == (0, "")
    assert traffic(home) == {}, "before its first change the endpoint had no traffic"

    code, _, err = run(capsys, "online-endpoint", "revert", "-n", "demo", "--to", "999", "--yes")
    assert code == 2 and "has no traffic change 999" in err and str(latest) in err


def test_revert_is_refused_where_the_rules_or_the_history_say_no(home: Path, capsys) -> None:
    ws = LocalWorkspace(home, serving=FakeServing())
    try:
        ws.set_traffic("demo", {"blue": 100, "green": 0})
        ws.delete_deployment("demo", "green")
        ws.create_or_update_endpoint(Endpoint(name="fresh"))
    finally:
        ws.close()
    _, out, _ = run(capsys, "online-endpoint", "traffic-history", "-n", "demo", "--query", "[].id", "-o", "tsv")
    gave_green_10 = int(out.split()[1])  # blue 100 → blue 90 · green 10
    code, _, err = run(capsys, "online-endpoint", "revert", "-n", "demo", "--to", str(gave_green_10 + 1), "--yes")
    assert code == 2 and "Cannot revert: it gave traffic to green (10 %), deleted since." in err
    assert traffic(home) == {"blue": 100}

    code, _, err = run(capsys, "online-endpoint", "revert", "-n", "fresh", "--yes")
    assert code == 2 and "'fresh' has no traffic change to revert" in err
    code, _, err = run(capsys, "online-endpoint", "traffic-history", "-n", "nowhere")
    assert code == 2 and "No endpoint named 'nowhere'" in err
