"""``byom online-endpoint capture ...`` as scripts use them on a local home (no serving process needed): saved
prompt sets from files, bad input refused with the flag or the line named and nothing written, one capture at a
time, deletion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from byom.cli.main import main


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


CAPTURE = ("online-endpoint", "capture")


def test_a_saved_prompt_set_from_a_file_and_bad_lines_refused(home: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "shop")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "one"}\n{"prompt": \n\n"just a string"\n')
    err = fails(capsys, *CAPTURE, "create", "-n", "shop", "--file", str(bad))
    assert "line 2: not JSON" in err and "line 4: a JSON str" in err and "Nothing was saved" in err
    assert json.loads(ok(capsys, *CAPTURE, "list", "-n", "shop")) == []

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"tell me {i}"}) + "\n" for i in range(4)))
    err = fails(capsys, *CAPTURE, "create", "-n", "shop", "--file", str(prompts), "--max-requests", "3")
    assert "--max-requests 3" in err
    saved = json.loads(ok(capsys, *CAPTURE, "create", "-n", "shop", "--file", str(prompts)))
    assert (saved["state"], saved["requests"], saved["source"], saved["actor"]) == (
        "Saved", 4, "prompts.jsonl", "cli-tester")
    shown = json.loads(ok(capsys, *CAPTURE, "show", "--capture", saved["id"], "--bodies"))
    assert [json.loads(r["body"]) for r in shown["captured"]] == [{"prompt": f"tell me {i}"} for i in range(4)]
    table = ok(capsys, *CAPTURE, "list", "-n", "shop", "-o", "table")
    assert saved["id"] in table and "Saved" in table

    ok(capsys, *CAPTURE, "delete", "--capture", saved["id"], "--yes")
    assert "No capture with id" in fails(capsys, *CAPTURE, "show", "--capture", saved["id"])
    assert not any(b"tell me" in p.read_bytes() for p in home.glob("captures.db*") if p.stat().st_size)
    actions = json.loads(ok(capsys, "audit", "list", "--query", "[].action"))
    assert {"capture.create", "capture.delete"} <= set(actions)


def test_start_stop_one_at_a_time_and_flags_named(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "shop")
    for flag, value in (("--max-requests", "0"), ("--max-bytes", "-1"), ("--sample-rate", "0"),
                        ("--sample-rate", "1.5")):
        assert flag in fails(capsys, *CAPTURE, "start", "-n", "shop", flag, value)
    assert "--max-requests" in fails(capsys, *CAPTURE, "start", "-n", "shop", "--max-requests", "many")
    assert "No endpoint named 'nope'" in fails(capsys, *CAPTURE, "start", "-n", "nope")
    assert "is not being captured" in fails(capsys, *CAPTURE, "stop", "-n", "shop")

    started = json.loads(ok(capsys, *CAPTURE, "start", "-n", "shop", "--max-requests", "5", "--sample-rate", "0.5"))
    assert (started["state"], started["max_requests"], started["sample_rate"]) == ("Capturing", 5, 0.5)
    assert "already being captured" in fails(capsys, *CAPTURE, "start", "-n", "shop")
    assert "is capturing" in fails(capsys, *CAPTURE, "delete", "--capture", started["id"], "--yes")
    stopped = json.loads(ok(capsys, *CAPTURE, "stop", "-n", "shop"))
    assert (stopped["id"], stopped["state"], stopped["requests"]) == (started["id"], "Stopped", 0)
    assert "--concurrency" in fails(capsys, "online-endpoint", "replay", "-n", "shop", "--capture", started["id"],
                                    "-d", "blue", "--concurrency", "0")
    assert "no deployment named 'blue'" in fails(capsys, "online-endpoint", "replay", "-n", "shop", "--capture",
                                                 started["id"], "-d", "blue").lower()


def test_deleting_the_endpoint_deletes_its_captures(home: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "online-endpoint", "create", "-n", "shop")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "keep me out"}\n')
    saved = json.loads(ok(capsys, *CAPTURE, "create", "-n", "shop", "--file", str(prompts)))
    ok(capsys, "online-endpoint", "delete", "-n", "shop", "--yes")
    ok(capsys, "online-endpoint", "create", "-n", "shop")
    assert json.loads(ok(capsys, *CAPTURE, "list", "-n", "shop")) == []
    assert "No capture with id" in fails(capsys, *CAPTURE, "show", "--capture", saved["id"])
