"""Capture and replay on a real gateway and real model servers (``byom online-endpoint capture`` / ``replay``).

Endpoint ``cap``: ``blue`` runs the echo script (its answer carries the request, and a body's ``say`` lines
go to its log, in the order the server got them) with all the traffic; ``gen`` runs scoring/generate.py on a
tiny random Llama, whose payload schema is another one (unknown fields are a 400).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from byom.cli.main import main
from byom.core import captures
from byom.core.entities import Deployment, ModelSpec, RequestSettings
from byom.core.local.workspace import LocalWorkspace

from .helpers import endpoint_with, shut_down, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[LocalWorkspace]:
    tmp = tmp_path_factory.mktemp("capture")
    workspace = LocalWorkspace(tmp / "home", actor="tester")
    try:
        endpoint_with(workspace, tmp, "cap", ("blue",))
        workspace.set_traffic("cap", {"blue": 100})
        model = workspace.create_model(ModelSpec(name="tiny", path=str(tiny_model_dir))).ref
        dep = workspace.create_or_update_deployment(Deployment(
            name="gen", endpoint_name="cap", model=model, code_path=str(REPO / "scoring"),
            scoring_script="generate.py", instance_count=1,
            request_settings=RequestSettings(request_timeout_ms=60000, max_concurrent_requests_per_instance=4),
            environment_variables={"BYOM_TORCH_THREADS": "1", "BYOM_MAX_NEW_TOKENS": "8", "BYOM_MODEL_NAME": "tiny"}))
        assert dep.provisioning_state == "Succeeded", dep.state_reason
        yield workspace
    finally:
        shut_down(workspace)


def byom(ws: LocalWorkspace, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main([*argv, "--workspace-dir", str(ws.home)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out) if out.strip() else None


def post(ws: LocalWorkspace, body: dict[str, Any], **headers: str) -> requests.Response:
    key = ws.get_keys("cap").primary_key
    return requests.post(ws.get_endpoint("cap").scoring_uri, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {key}", **headers})


def said(ws: LocalWorkspace, tag: str) -> list[int]:
    """The numbers of the ``say`` lines tagged ``tag`` in blue's log, in the order the server printed them."""
    log = ws.get_deployment_logs("cap", "blue", lines=2000)
    return [int(n) for n in re.findall(rf"\b{tag}-(\d+)\s*$", log, re.MULTILINE)]


def test_a_capture_of_n_requests_replays_them_in_order(ws: LocalWorkspace, capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    started = byom(ws, capsys, "online-endpoint", "capture", "start", "-n", "cap", "--max-requests", "5")
    answers = []
    for i in range(8):
        r = post(ws, {"n": i, "say": [f"order-{i}"]}, **{"x-secret-header": "s3cr3t-value"})
        assert r.status_code == 200, r.text
        answers.append(r.content)
    assert post(ws, {"n": 99}, **{"azureml-model-deployment": "blue"}).status_code == 200  # targeted: not kept
    stopped = byom(ws, capsys, "online-endpoint", "capture", "stop", "-n", "cap")
    assert (stopped["id"], stopped["state"], stopped["requests"]) == (started["id"], "Stopped", 5)

    shown = byom(ws, capsys, "online-endpoint", "capture", "show", "--capture", started["id"], "--bodies")
    kept = shown["captured"]
    assert [json.loads(r["body"])["n"] for r in kept] == [0, 1, 2, 3, 4]
    assert all(r["deployment"] == "blue" and r["status_code"] == 200 for r in kept)
    assert [r["digest"] for r in kept] == [hashlib.sha256(a).hexdigest() for a in answers[:5]]
    stored = b"".join(p.read_bytes() for p in ws.home.glob("captures.db*"))
    key = ws.get_keys("cap").primary_key.encode()
    assert b'"n": 3' in stored and key not in stored and b"s3cr3t-value" not in stored and b"Bearer" not in stored

    report = byom(ws, capsys, "online-endpoint", "replay", "-n", "cap", "--capture", started["id"],
                  "--deployment", "blue")
    assert [r["seq"] for r in report["results"]] == [r["seq"] for r in kept]
    assert [r["status"] for r in report["results"]] == [200] * 5
    # the echo answers carry the request (and the same worker answers): each replayed answer is the captured one
    assert [r["digest"] for r in report["results"]] == [r["digest"] for r in kept]
    side = report["sides"][0]
    assert side["deployment"] == "blue" and side["summary"]["requests"] == 5 and side["summary"]["errors"] == 0
    assert side["summary"]["latency_p95_ms"] >= side["summary"]["latency_p50_ms"] > 0
    # the server got them in capture order: the originals 0..7, then the replay's 0..4
    wait_until(lambda: said(ws, "order") == [*range(8), *range(5)], 30, "the replayed say lines in blue's log")

    table = main(["online-endpoint", "replay", "-n", "cap", "--capture", started["id"], "-d", "blue",
                  "--concurrency", "2", "-o", "table", "--workspace-dir", str(ws.home)])
    out = capsys.readouterr().out
    assert table == 0 and "blue" in out and "200:5" in out
    in_flight = captures.replay(ws, "cap", started["id"], "blue", concurrency=2)  # blue takes 2 in flight
    assert [r.digest for r in in_flight.results] == [r["digest"] for r in kept], "results in capture order"


def test_captures_never_exceed_their_bounds_under_concurrent_requests(ws: LocalWorkspace,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bounded = byom(ws, capsys, "online-endpoint", "capture", "start", "-n", "cap", "--max-requests", "1000",
                   "--max-bytes", "100")
    body = {"pad": "x" * 30}  # 41 bytes as json.dumps writes it: two fit in 100, not three
    with ThreadPoolExecutor(max_workers=2) as pool:  # blue takes 2 in flight
        statuses = list(pool.map(lambda _: post(ws, body).status_code, range(12)))
    assert statuses == [200] * 12
    stopped = byom(ws, capsys, "online-endpoint", "capture", "stop", "-n", "cap")
    assert (stopped["requests"], stopped["bytes"]) == (2, 82)

    counted = byom(ws, capsys, "online-endpoint", "capture", "start", "-n", "cap", "--max-requests", "3")
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert all(r.status_code == 200 for r in pool.map(lambda i: post(ws, {"i": i}), range(12)))
    byom(ws, capsys, "online-endpoint", "capture", "stop", "-n", "cap")
    listed = {c["id"]: c for c in byom(ws, capsys, "online-endpoint", "capture", "list", "-n", "cap")}
    assert listed[counted["id"]]["requests"] == 3 and listed[bounded["id"]]["requests"] == 2
    byom(ws, capsys, "online-endpoint", "capture", "delete", "--capture", bounded["id"], "--yes")
    assert bounded["id"] not in {c["id"] for c in byom(ws, capsys, "online-endpoint", "capture", "list", "-n", "cap")}


def test_a_replay_against_another_payload_schema_reports_its_4xx_answers(
        ws: LocalWorkspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"n": i, "shape": "echo's"}) for i in range(4)) + "\n")
    saved = byom(ws, capsys, "online-endpoint", "capture", "create", "-n", "cap", "--file", str(prompts))
    report = byom(ws, capsys, "online-endpoint", "replay", "-n", "cap", "--capture", saved["id"],
                  "--deployment", "blue", "--against", "gen")
    blue, gen = report["sides"]
    assert blue["summary"]["status_codes"] == {"200": 4} and blue["summary"]["errors"] == 0
    assert gen["deployment"] == "gen" and gen["summary"]["status_codes"] == {"424": 4}
    assert gen["summary"]["errors"] == 4 and gen["model_status_codes"] == {"400": 4}
    comparison = report["comparison"]
    assert (comparison["compared"], comparison["identical"], comparison["errors_either"]) == (4, 0, 4)
    assert all(r["against_status"] == 424 and r["identical"] is False for r in report["results"])

    generation = tmp_path / "generation.jsonl"
    generation.write_text("\n".join(json.dumps({"prompt": f"Say {w}", "max_new_tokens": 4, "seed": 1})
                                    for w in ("one", "two", "three")))
    asked = byom(ws, capsys, "online-endpoint", "capture", "create", "-n", "cap", "--file", str(generation))
    report = byom(ws, capsys, "online-endpoint", "replay", "-n", "cap", "--capture", asked["id"],
                  "--deployment", "gen", "--against", "blue")
    gen, blue = report["sides"]
    assert gen["summary"]["status_codes"] == {"200": 3} and blue["summary"]["status_codes"] == {"200": 3}
    assert report["comparison"]["differing"] == 3 and report["comparison"]["generation_compared"] == 0
