from pathlib import Path

import pytest
from byom.core.local.workspace import LocalWorkspace

from .contract import WorkspaceContract

ASSETS = Path(__file__).parent / "assets"


class TestLocalWorkspace(WorkspaceContract):
    @pytest.fixture
    def workspace(self, tmp_path):
        ws = LocalWorkspace(tmp_path / "home", actor="tester")
        yield ws
        ws.serving.shutdown()  # deployments run as real processes: end them with the test
        ws.close()

    @pytest.fixture
    def deploy_kwargs(self):
        return {"code_path": str(ASSETS), "scoring_script": "echo_score.py"}


def test_only_the_owner_can_read_the_database_that_holds_the_keys(tmp_path):
    from byom.core.entities import Endpoint

    ws = LocalWorkspace(tmp_path / "home", actor="tester")
    try:
        ws.create_or_update_endpoint(Endpoint(name="keyed"))
        files = list((tmp_path / "home").glob("byom.db*"))
        assert {p.name for p in files} >= {"byom.db", "byom.db-wal"}
        assert all(p.stat().st_mode & 0o077 == 0 for p in files), [oct(p.stat().st_mode) for p in files]
    finally:
        ws.serving.shutdown()
        ws.close()
