"""The gateway's rules and status codes, on one endpoint with real model servers.

The endpoint ``rules`` has three echo deployments: ``blue`` and ``green``
(one instance, one request at a time, 3 s timeout) and ``slow`` (500 ms
timeout). Each test sets the traffic it needs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from byom.core.entities import RequestSettings
from byom.core.errors import InvalidInput
from byom.core.local.workspace import LocalWorkspace

from .helpers import deploy, endpoint_with, shut_down, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ONE_AT_A_TIME = RequestSettings(request_timeout_ms=3000, max_concurrent_requests_per_instance=1)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorkspace]:
    tmp = tmp_path_factory.mktemp("gateway")
    workspace = LocalWorkspace(tmp / "home", actor="tester")
    try:
        model = endpoint_with(workspace, tmp, "rules", ("blue", "green"), settings=ONE_AT_A_TIME)
        slow = deploy(workspace, "rules", "slow", model, settings=RequestSettings(request_timeout_ms=500))
        assert slow.provisioning_state == "Succeeded", slow.state_reason
        yield workspace
    finally:
        shut_down(workspace)


@pytest.fixture
def uri(ws: LocalWorkspace) -> str:
    return ws.get_endpoint("rules").scoring_uri


@pytest.fixture
def auth(ws: LocalWorkspace) -> dict[str, str]:
    return {"Authorization": f"Bearer {ws.get_keys('rules').primary_key}"}


def post(url: str, headers: dict[str, str], payload: object = None, **kwargs: object) -> requests.Response:
    return requests.post(url, json=payload if payload is not None else {}, headers=headers, timeout=15, **kwargs)


def in_flight(uri: str, deployment: str) -> int:
    """Requests (mirror copies among them) the gateway has sent to ``deployment`` and not had answered,
    from /metrics."""
    text = requests.get(uri.split("/endpoints/")[0] + "/metrics", timeout=10).text
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("byom_requests_in_flight{") and f'deployment="{deployment}"' in line)


def mirrored_statuses(uri: str, deployment: str) -> Counter[str]:
    """Mirror copies sent to ``deployment`` so far, by the status the gateway recorded, from its /metrics."""
    text = requests.get(uri.split("/endpoints/")[0] + "/metrics", timeout=10).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("byom_requests_total{") and f'deployment="{deployment}"' in line \
                and 'mirrored="true"' in line:
            status = line.split('status="')[1].split('"')[0]
            counts[status] += int(line.rsplit(" ", 1)[1])
    return counts


def test_keys_are_required_and_regeneration_invalidates_the_old_one(ws: LocalWorkspace, uri: str) -> None:
    ws.set_traffic("rules", {"blue": 100})
    keys = ws.get_keys("rules")
    assert post(uri, {}).status_code == 401
    assert post(uri, {"Authorization": "Bearer not-the-key"}).status_code == 401
    assert post(uri, {"Authorization": f"Basic {keys.primary_key}"}).status_code == 401
    assert post(uri, {"Authorization": "Bearer"}).status_code == 401
    assert post(uri, {"Authorization": f"Bearer {keys.primary_key}"}).status_code == 200
    assert post(uri, {"Authorization": f"Bearer {keys.secondary_key}"}).status_code == 200

    renewed = ws.regenerate_key("rules", "primary")
    assert post(uri, {"Authorization": f"Bearer {keys.primary_key}"}).status_code == 401
    assert post(uri, {"Authorization": f"Bearer {renewed.primary_key}"}).status_code == 200
    assert post(uri, {"Authorization": f"Bearer {keys.secondary_key}"}).status_code == 200


def test_404_for_unknown_endpoints_deployments_and_no_traffic(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    ws.set_traffic("rules", {})
    answer = post(uri, auth)
    assert answer.status_code == 404 and "traffic" in answer.json()["error"]["message"]
    assert post(uri.replace("/rules/", "/nope/"), auth).status_code == 404
    assert post(uri, {**auth, "azureml-model-deployment": "purple"}).status_code == 404
    targeted = post(uri, {**auth, "azureml-model-deployment": "GREEN"})  # names are compared lower-cased
    assert targeted.status_code == 200 and targeted.headers["azureml-model-deployment"] == "green"


def test_the_split_is_weighted_and_the_header_bypasses_it(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    ws.set_traffic("rules", {"blue": 70, "green": 30})
    session = requests.Session()
    served = Counter()
    for i in range(200):
        answer = session.post(uri, json={"i": i}, headers=auth, timeout=15)
        assert answer.status_code == 200
        assert answer.json()["label"] == answer.headers["azureml-model-deployment"]
        served[answer.headers["azureml-model-deployment"]] += 1
    assert set(served) == {"blue", "green"}
    assert 30 <= served["green"] <= 90, served  # expected 60; this is ±4.6 standard deviations

    ws.set_traffic("rules", {"blue": 100})
    for _ in range(5):
        assert post(uri, {**auth, "azureml-model-deployment": "green"}).json()["label"] == "green"


def test_mirror_copies_go_to_the_shadow_but_never_for_targeted_requests(ws: LocalWorkspace, uri: str,
                                                                         auth: dict) -> None:
    ws.set_traffic("rules", {"blue": 100, "green": 0}, {"green": 50})
    before = mirrored_statuses(uri, "green")
    session = requests.Session()
    for i in range(100):
        answer = session.post(uri, json={"i": i}, headers=auth, timeout=15)
        assert answer.status_code == 200 and answer.headers["azureml-model-deployment"] == "blue"

    def copies() -> Counter[str]:
        return mirrored_statuses(uri, "green") - before

    wait_until(lambda: copies().total() >= 25, 10, "mirror copies to be recorded")
    wait_until(lambda: in_flight(uri, "green") == 0, 15, "the last mirror copies to green to be answered")
    sent = copies()
    assert 25 <= sent.total() <= 75, sent  # expected 50; ±5 standard deviations
    # A copy is answered by green, or shed with 429 when green already has its limit in flight (a loaded
    # machine can slow green past the client's pace); a shadow never queues behind live traffic.
    assert set(sent) <= {"200", "429"} and sent["200"] >= 5, sent
    shadow = next(m for m in ws.get_metrics("rules") if m.mirrored and m.deployment == "green")
    assert shadow.requests >= sent.total()

    for _ in range(20):
        assert post(uri, {**auth, "azureml-model-deployment": "blue"}).status_code == 200
    # the gateway starts a copy before it serves the next request (a /metrics read too): none in flight, none sent
    assert in_flight(uri, "green") == 0
    assert copies() == sent
    ws.set_traffic("rules", {"blue": 100}, {})


def test_request_ids_are_new_and_the_client_id_is_echoed(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    ws.set_traffic("rules", {"blue": 100})
    first = post(uri, {**auth, "x-ms-client-request-id": "c" * 60})
    second = post(uri, auth)
    assert first.headers["x-ms-client-request-id"] == "c" * 40
    assert "x-ms-client-request-id" not in second.headers
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    rejected = post(uri, {"x-ms-client-request-id": "mine"})
    assert rejected.status_code == 401 and rejected.headers["x-ms-client-request-id"] == "mine"
    assert rejected.headers["x-request-id"]


def test_model_errors_are_424_with_the_model_status(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    ws.set_traffic("rules", {"blue": 100})
    answer = post(uri, auth, {"status": 400})
    assert answer.status_code == 424
    assert answer.headers["ms-azureml-model-error-statuscode"] == "400"
    assert answer.headers["ms-azureml-model-error-reason"].lower() == "bad request"
    assert answer.json() == {"error": "asked for 400"}
    assert answer.headers["azureml-model-deployment"] == "blue"


def test_408_past_the_request_timeout(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    started = time.monotonic()
    answer = post(uri, {**auth, "azureml-model-deployment": "slow"}, {"sleep": 5})
    assert answer.status_code == 408 and "500" in answer.json()["error"]["message"]
    assert time.monotonic() - started < 4, "the gateway cut the request off; the model did not answer late"


def test_429_beyond_twice_the_concurrency(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    # blue: 1 instance × 1 concurrent request → at most 2 in flight at the gateway
    barrier = threading.Barrier(6)
    codes: list[int] = []

    def client() -> None:
        barrier.wait()
        codes.append(post(uri, {**auth, "azureml-model-deployment": "blue"}, {"sleep": 0.4}).status_code)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) <= {200, 429}
    assert codes.count(200) >= 2 and codes.count(429) >= 1, codes


def test_prometheus_metrics_label_requests(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    ws.set_traffic("rules", {"blue": 100})
    assert post(uri, auth).status_code == 200
    text = requests.get(uri.split("/endpoints/")[0] + "/metrics", timeout=10).text
    assert 'byom_requests_total{endpoint="rules",deployment="blue",model_version="echo:1",status="200",' in text
    assert "# TYPE byom_request_duration_seconds histogram" in text
    assert 'byom_requests_in_flight{endpoint="rules",deployment="blue"} 0' in text


def test_a_traffic_change_that_breaks_a_rule_is_refused_whole(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    ws.set_traffic("rules", {"blue": 100})
    with pytest.raises(InvalidInput, match="100"):
        ws.set_traffic("rules", {"blue": 50, "green": 60})
    with pytest.raises(InvalidInput, match="live traffic"):
        ws.set_traffic("rules", {"blue": 100}, {"blue": 10})
    assert ws.get_endpoint("rules").traffic == {"blue": 100}
    assert all(post(uri, auth).headers["azureml-model-deployment"] == "blue" for _ in range(10))


CHUNKED = b"POST /endpoints/rules/score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def raw_request(port: int, data: bytes) -> int:
    """Send bytes as they are; return the HTTP status of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        head = sock.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1])


def test_fuzzing_gets_only_4xx_and_the_gateway_stays_up(ws: LocalWorkspace, uri: str, auth: dict) -> None:
    ws.set_traffic("rules", {"blue": 100})
    base = uri.split("/endpoints/")[0]
    port = int(base.rsplit(":", 1)[1])
    codes = {
        "malformed json": requests.post(uri, data=b"{not json", headers=auth, timeout=15).status_code,
        "json list": post(uri, auth, [1, 2]).status_code,
        "wrong key": post(uri, {"Authorization": "Bearer " + "x" * 5000}).status_code,
        "unknown endpoint": post(f"{base}/endpoints/no-such/score", auth).status_code,
        "odd endpoint name": post(f"{base}/endpoints/%00%ff/score", auth).status_code,
        "dot segments": post(f"{base}/endpoints/../metrics", auth).status_code,
        "wrong method": requests.get(uri, headers=auth, timeout=15).status_code,
        "unknown path": requests.get(f"{base}/nothing/here", timeout=15).status_code,
        "odd deployment header": post(uri, {**auth, "azureml-model-deployment": "../../x\t"}).status_code,
        "huge header": post(uri, {**auth, "X-Big": "y" * 20000}).status_code,
        "bad request line": raw_request(port, b"NOT HTTP AT ALL\r\n\r\n"),
        "bad header line": raw_request(
            port, b"POST /endpoints/rules/score HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"),
        "bad content length": raw_request(
            port, b"POST /endpoints/rules/score HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        "negative chunk size": raw_request(port, CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n"),
        "0x chunk size": raw_request(port, CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n"),
        "empty chunk size": raw_request(port, CHUNKED + b"\r\nhello\r\n0\r\n\r\n"),
        "chunk longer than its size": raw_request(port, CHUNKED + b"5\r\nhello world\r\n0\r\n\r\n"),
        "chunk size line over 64 KiB": raw_request(port, CHUNKED + b"5;" + b"x" * (70 * 1024) + b"\r\n"),
        "trailers over 64 KiB": raw_request(port, CHUNKED + b"0\r\nX-Trailer: " + b"y" * (70 * 1024) + b"\r\n\r\n"),
    }
    huge = requests.post(uri, data=b"x" * (65 * 1024 * 1024), headers={**auth, "Content-Type": "application/json"},
                         timeout=60)
    codes["huge body"] = huge.status_code
    assert all(400 <= code < 500 for code in codes.values()), codes
    assert codes["huge body"] == 413 and codes["malformed json"] == 424 and codes["wrong key"] == 401
    assert codes["negative chunk size"] == codes["chunk longer than its size"] == 400
    assert codes["trailers over 64 KiB"] == 431
    assert requests.get(f"{base}/-/health", timeout=10).status_code == 200
    assert post(uri, auth).status_code == 200
    assert "Traceback" not in (ws.home / "logs" / "gateway.log").read_text()
