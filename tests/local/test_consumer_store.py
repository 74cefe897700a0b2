"""Consumers in a real SQLite home: one create wins a race, an endpoint takes its consumers with it. No processes
are started: nothing here needs the gateway."""

from __future__ import annotations

import threading
from pathlib import Path

from byom.core.entities import Endpoint
from byom.core.errors import AlreadyExists
from byom.core.local.workspace import LocalWorkspace


def test_of_eight_creates_of_one_name_at_once_one_wins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    setup = LocalWorkspace(home, actor="tester")
    setup.create_or_update_endpoint(Endpoint(name="shop"))
    won: list[str] = []
    lost: list[BaseException] = []
    start = threading.Barrier(8)

    def create(index: int) -> None:
        ws = LocalWorkspace(home, actor=f"t{index}")
        try:
            start.wait(10)
            won.append(ws.create_consumer("shop", "Alice" if index % 2 else "alice").key)
        except AlreadyExists as exc:
            lost.append(exc)
        finally:
            ws.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1 and len(lost) == 7, (won, lost)
    assert [c.name.lower() for c in setup.list_consumers("shop")] == ["alice"]
    setup.close()


def test_an_endpoint_deleted_and_made_again_has_no_consumers(tmp_path: Path) -> None:
    ws = LocalWorkspace(tmp_path / "home", actor="tester")
    try:
        ws.create_or_update_endpoint(Endpoint(name="shop"))
        ws.create_consumer("shop", "alice", {"tokens_per_day": 10})
        ws.delete_endpoint("shop")
        ws.create_or_update_endpoint(Endpoint(name="shop"))
        assert ws.list_consumers("shop") == []
    finally:
        ws.close()
