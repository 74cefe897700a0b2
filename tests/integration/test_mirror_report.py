"""The mirror report on a real control plane, gateway and model servers (generation-shaped echo deployments).

Endpoint ``mirr``: blue serves every request; green answers as blue does, red differs from the third word
on, bad answers 500. Each test mirrors to one of them and reads ``Workspace.mirror_report``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from byom.core.entities import MirrorReport
from byom.core.local.request_facts import RequestFactStore
from byom.core.local.serving_files import ServingFiles
from byom.core.local.workspace import LocalWorkspace
from byom.core.mirror_report import BODY_KEPT_MAX, MAX_BODY_BYTES, MAX_PAIRS

from .helpers import ASSETS, deploy, endpoint_with, shut_down, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

GENERATION_ECHO = ASSETS / "generation_echo"
PROMPT = {"prompt": "one two three four five"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorkspace]:
    tmp = tmp_path_factory.mktemp("mirror")
    workspace = LocalWorkspace(tmp / "home", actor="tester")
    try:
        model = endpoint_with(workspace, tmp, "mirr", ("blue", "green"), code=GENERATION_ECHO)
        for name, env in (("red", {"ECHO_DIFFER_FROM": "2"}), ("bad", {"ECHO_FAIL": "1"})):
            dep = deploy(workspace, "mirr", name, model, code=GENERATION_ECHO, environment_variables=env)
            assert dep.provisioning_state == "Succeeded", dep.state_reason
        yield workspace
    finally:
        shut_down(workspace)


def mirrored(ws: LocalWorkspace, deployment: str, payload: dict[str, object] = PROMPT,
             requests: int = 24) -> MirrorReport:
    """Mirror half the requests to ``deployment``, send ``requests``, and wait for the report to count them all."""
    ws.set_traffic("mirr", {"blue": 100}, {deployment: 50})
    for _ in range(requests):
        answer = ws.invoke("mirr", payload)
        assert answer.status_code == 200 and answer.deployment == "blue", answer.body

    def settled() -> MirrorReport | None:
        # every copy answered (a copy shed with 429, the mirror being full, is not compared)
        want = sum(1 for f in ws.backend.request_facts("mirr", 0)
                   if f.mirrored and f.deployment == deployment and f.status_code != 429)
        [row] = ws.mirror_report("mirr", deployment=deployment) or [None]
        return row if row is not None and row.requests == want else None

    # the copies are answered after the caller's answer: wait for them to be recorded
    return wait_until(settled, 30, f"the mirror report to count every copy sent to {deployment}", every_s=0.2)


def test_a_mirror_that_answers_the_same_shows_identical(ws: LocalWorkspace) -> None:
    row = mirrored(ws, "green")
    assert row.requests >= 3 and row.primaries == ["blue"]
    assert (row.identical, row.differing, row.primary_errors, row.mirror_errors) == (row.requests, 0, 0, 0)
    assert row.generations == row.requests and row.exact_match_rate == 1.0 and row.mean_first_difference is None
    assert row.primary_p50_ms is not None and row.mirror_p95_ms is not None and row.mirror_p95_ms > 0


def test_a_mirror_that_answers_differently_shows_differing_and_where(ws: LocalWorkspace) -> None:
    row = mirrored(ws, "red")
    assert row.requests >= 3
    assert (row.identical, row.differing, row.mirror_errors) == (0, row.requests, 0)
    assert row.exact_match_rate == 0.0 and row.mean_first_difference == 2.0  # "one two" agree, "three" does not
    mirrored(ws, "green")  # tests may run alone (xdist): each makes the pairs it reads
    assert [r.deployment for r in ws.mirror_report("mirr")] == ["green", "red"], "one report per mirrored deployment"


def test_an_erroring_mirror_counts_its_errors(ws: LocalWorkspace) -> None:
    row = mirrored(ws, "bad")
    assert row.requests >= 3
    assert (row.identical, row.differing, row.primary_errors, row.mirror_errors) == (0, 0, 0, row.requests)


def test_large_answers_keep_only_their_digest_and_no_key_is_stored(ws: LocalWorkspace) -> None:
    before = ws.mirror_report("mirr", deployment="green") or [None]
    earlier = before[0].requests if before[0] is not None else 0
    row = mirrored(ws, "green", {**PROMPT, "pad": BODY_KEPT_MAX}, requests=12)
    large = row.requests - earlier
    assert large >= 3 and row.identical == row.requests  # by digest
    assert row.generations == earlier  # the large ones are not compared as text: their bodies are not kept
    store = RequestFactStore(ServingFiles(ws.home).requests_db)
    try:
        green = [p for p in store.mirrored("mirr", 0) if p.deployment == "green"]
        assert sum(1 for p in green if p.primary_body is None and p.mirror_body is None) == large
        count, body_bytes = store.kept()
        assert count <= MAX_PAIRS and body_bytes <= MAX_BODY_BYTES
    finally:
        store.close()
    keys = ws.get_keys("mirr")
    stored = b"".join(p.read_bytes() for p in ws.home.iterdir() if p.name.startswith("requests.db"))
    assert keys.primary_key.encode() not in stored and b"Bearer" not in stored
