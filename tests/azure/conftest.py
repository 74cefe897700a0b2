"""The replayed Azure ML workspace the tests of this folder talk to, through the SDK and through the CLI."""

import pytest

from tests.azure_replay.sdk import ReplayCredential, bind_blob_clients, replay_workspace
from tests.azure_replay.service import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeAzureML
from tests.azure_replay.wire import replay_transport


@pytest.fixture
def service():
    service = FakeAzureML(seed=3)
    yield service
    service.hold = False
    service.run_pending()  # let the SDK's poller threads of held operations end
    assert service.unrouted == []


@pytest.fixture
def ws(service, tmp_path, monkeypatch):
    workspace = replay_workspace(service, monkeypatch, tmp_path / "audit", actor="tester")
    yield workspace
    workspace.close()


@pytest.fixture
def cli(service, monkeypatch, tmp_path):
    """``byom`` reaching the replay when it opens an Azure ML workspace (no sign-in), and the flags naming it."""
    import byom.core.factory as factory

    transport = replay_transport(service)
    bind_blob_clients(monkeypatch, transport)
    monkeypatch.setenv("BYOM_HOME", str(tmp_path / "home"))
    for var in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME", "BYOM_AZURE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    opened = factory.open_azure
    monkeypatch.setattr(factory, "open_azure", lambda target, **kwargs: opened(
        target, credential=ReplayCredential(), transport=transport, **kwargs))
    return ["--subscription", SUBSCRIPTION, "-g", RESOURCE_GROUP, "-w", WORKSPACE]
