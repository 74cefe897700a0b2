from pathlib import Path

import pytest

from core.local.workspace import LocalWorkspace

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
