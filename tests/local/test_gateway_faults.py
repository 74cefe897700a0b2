"""The gateway's answers when instances or its own resources fail, without model-server processes.

A ``Gateway`` is driven through ``dispatch`` with a routing table made here;
its one upstream is a tiny HTTP server on loopback that this test starts.
"""

from __future__ import annotations

import asyncio
import errno
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from byom.core.entities import Deployment, Endpoint, EndpointKeys, InstanceState, RequestSettings
from byom.core.local.gateway import proxy as gateway_module
from byom.core.local.gateway import upstream as upstream_module
from byom.core.local.gateway.http_server import Request
from byom.core.local.gateway.proxy import Gateway
from byom.core.local.processes import free_port
from byom.core.local.serving_files import ServingFiles
from byom.core.local.state import InstanceRecord
from byom.core.routing import build_routes

pytestmark = pytest.mark.timeout(60)

KEY = "the-key"


def routes_to(port: int) -> dict:
    endpoint = Endpoint(name="chat", traffic={"blue": 100})
    deployment = Deployment(name="blue", endpoint_name="chat", model="m:1", instance_count=1,
                            request_settings=RequestSettings(request_timeout_ms=5000,
                                                             max_concurrent_requests_per_instance=4))
    instance = InstanceRecord(id="blue-0", endpoint="chat", deployment="blue", generation="g1", index=0,
                              state=InstanceState.READY, port=port)
    return build_routes([endpoint], {"chat": EndpointKeys(primary_key=KEY, secondary_key="")}, [deployment],
                        [instance])


def score(endpoint: str = "chat", key: str = KEY) -> Request:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    return Request("POST", f"/endpoints/{endpoint}/score", headers, list(headers.items()), b"{}")


async def model_server(port: int) -> asyncio.Server:
    """Answers every request with 200 and {"ok": true}, keeping the connection alive."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                body = json.dumps({"ok": True}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", port)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(ServingFiles(tmp_path / "home"))
    yield gw
    gw.db_thread.shutdown()
    gw.fact_store.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


def test_an_instance_that_refused_a_connection_is_tried_again_after_a_while(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_module, "DOWN_S", 5.0)
    port = free_port()
    gateway.routes = routes_to(port)

    async def test() -> None:
        assert (await gateway.dispatch(score())).status == 502  # nothing listens: refused, marked down
        marked_until = gateway.down[port]
        server = await model_server(port)  # the instance is back, on the same port
        try:
            assert (await gateway.dispatch(score())).status == 503  # still marked down: not tried
            assert gateway.down[port] == marked_until, "a request that was not sent leaves the mark alone"
            gateway.down[port] = time.monotonic() - 0.001  # DOWN_S has passed
            assert (await gateway.dispatch(score())).status == 200
            assert port not in gateway.down
        finally:
            gateway.upstreams.close()
            await asyncio.sleep(0.05)  # the model server sees its connections end
            server.close()

    run(test)


def test_running_out_of_file_descriptors_marks_no_instance_down(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    gateway.routes = routes_to(port)
    real_open = asyncio.open_connection

    async def out_of_descriptors(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EMFILE, "Too many open files")

    async def test() -> None:
        server = await model_server(port)
        try:
            monkeypatch.setattr(upstream_module.asyncio, "open_connection", out_of_descriptors)
            answer = await gateway.dispatch(score())
            assert answer.status == 503 and b"Too many open files" in answer.body
            assert gateway.down == {}
            monkeypatch.setattr(upstream_module.asyncio, "open_connection", real_open)
            assert (await gateway.dispatch(score())).status == 200  # at once: the instance was never blamed
        finally:
            gateway.upstreams.close()
            await asyncio.sleep(0.05)  # the model server sees its connections end
            server.close()

    run(test)


def test_requests_to_unknown_endpoints_add_no_metrics_series(gateway: Gateway) -> None:
    gateway.routes = routes_to(free_port())

    async def test() -> None:
        for _ in range(200):
            assert (await gateway.dispatch(score(endpoint=uuid.uuid4().hex))).status == 404
        assert (await gateway.dispatch(score(key="wrong"))).status == 401

    run(test)
    series = [line for line in gateway.metrics.render().splitlines() if line.startswith("byom_requests_total{")]
    assert series == [
        'byom_requests_total{endpoint="",deployment="",model_version="",status="404",mirrored="false"} 200',
        'byom_requests_total{endpoint="chat",deployment="",model_version="",status="401",mirrored="false"} 1',
    ]
