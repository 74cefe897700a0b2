"""The contract suite on the Azure ML backend, over a replay of Azure ML's REST API.

azure-ai-ml's real ``MLClient`` (its serializers, pollers and blob upload
code) talks to ``tests.azure_replay``, a small stateful fake of one
workspace's ARM resources, storage account and scoring hosts, which refuses
requests the service would refuse. What Azure ML cannot do through the SDK
is declared in capabilities and skipped, or overridden here to check that
the backend says so.
"""

from pathlib import Path

import pytest

from core.entities import EnvironmentSpec
from core.errors import Unsupported
from tests.azure_replay.sdk import replay_workspace
from tests.azure_replay.service import FakeAzureML

from .contract import CONDA, WorkspaceContract

ASSETS = Path(__file__).parent / "assets"


class TestAzureWorkspace(WorkspaceContract):
    @pytest.fixture
    def service(self):
        service = FakeAzureML(seed=1)
        yield service
        assert service.unrouted == [], "the backend sent requests Azure ML has no route for"
        assert service.refused == [], "the backend sent requests Azure ML refuses"

    @pytest.fixture
    def workspace(self, service, tmp_path, monkeypatch):
        ws = replay_workspace(service, monkeypatch, tmp_path / "audit", actor="tester")
        yield ws
        ws.close()

    @pytest.fixture
    def deploy_kwargs(self):
        return {"code_path": str(ASSETS), "scoring_script": "echo_score.py"}

    @pytest.fixture
    def settle(self, service):
        return service.run_pending

    def test_environment_drift_reports_each_pin(self, workspace):
        """Azure ML does not show what its images hold: the backend says so instead of guessing."""
        workspace.create_environment(EnvironmentSpec(name="d", conda_file=CONDA))
        with pytest.raises(Unsupported) as raised:
            workspace.environment_drift("d")
        assert raised.value.hint
