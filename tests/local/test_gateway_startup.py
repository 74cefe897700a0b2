"""A gateway starting (or restarting after a crash) knows its routes before it takes a connection."""

from __future__ import annotations

import asyncio
import http.client
import socket
from pathlib import Path
from typing import Any

import pytest
from byom.core.entities import Endpoint, EndpointKeys
from byom.core.local.gateway import proxy
from byom.core.local.serving_files import ServingFiles, read_json
from byom.core.local.sqlite_store import SqliteStore

from ..waiting import wait_until

pytestmark = pytest.mark.timeout(60)


def with_endpoint(home: Path, name: str = "chat") -> ServingFiles:
    files = ServingFiles(home)
    files.run.mkdir(parents=True)
    store = SqliteStore(files.db)
    with store.transaction() as txn:
        txn.put("endpoint", name, 0, Endpoint(name=name).to_dict())
        txn.put("keys", name, 0, EndpointKeys(primary_key="k", secondary_key="").to_dict())
    store.close()
    return files


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def post(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=b"{}", headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_gateway_loads_its_routes_before_it_listens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = with_endpoint(tmp_path / "home")
    port = files.gateway_port()
    seen_at_load: list[bool] = []
    real_load = proxy.Gateway._load

    def load(self: proxy.Gateway) -> Any:
        seen_at_load.append(listening(port))  # a client connecting now would get "No endpoint named 'chat'"
        return real_load(self)

    monkeypatch.setattr(proxy.Gateway, "_load", load)

    async def test() -> None:
        stop = asyncio.Event()
        served = asyncio.create_task(proxy.serve(files, stop))
        try:
            await asyncio.to_thread(wait_until, lambda: read_json(files.gateway), 20, "the gateway's record")
            status, body = await asyncio.to_thread(post, port, "/endpoints/chat/score", {"Authorization": "Bearer k"})
            # it has no deployment yet: 404 "no live traffic", never "no endpoint named"
            assert b"No endpoint named" not in body, (status, body)
        finally:
            stop.set()
            assert await asyncio.wait_for(served, 20) == 0

    asyncio.run(test())
    assert seen_at_load and seen_at_load[0] is False, "the gateway took connections before it had its routes"
