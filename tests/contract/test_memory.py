import pytest

from core.memory import InMemoryWorkspace

from .contract import WorkspaceContract


class TestInMemoryWorkspace(WorkspaceContract):
    @pytest.fixture
    def workspace(self):
        return InMemoryWorkspace(actor="tester", seed=1)

    @pytest.fixture
    def deploy_kwargs(self):
        return {}
