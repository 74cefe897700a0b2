"""Point azure-ai-ml's real client at the replay.

``MLClient(..., transport=...)`` hands the transport to every generated REST
client it builds, so ARM calls reach the replay without any patching. The
one place the SDK does not forward it is the blob client its artifact helper
builds for uploads and downloads (``BlobStorageClient`` calls
``BlobServiceClient(account_url, credential)`` and
``ContainerClient.from_container_url(url)``); ``bind_blob_clients`` gives
those two names in that helper module the same transport. The SDK's upload
and download code itself runs unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from byom.core.azure.connect import connect
from byom.core.azure.workspace import AzureWorkspace
from byom.core.targets import AzureTarget

from .service import AAD_TOKEN, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, FakeAzureML
from .wire import replay_transport


class ReplayCredential:
    """A TokenCredential that never signs in: the replay only checks that a bearer token is sent."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(AAD_TOKEN, int(time.time()) + 3600)


def bind_blob_clients(monkeypatch: pytest.MonkeyPatch, transport: Any) -> None:
    import azure.storage.blob as blob
    from azure.ai.ml._artifacts import _blob_storage_helper as helper

    class ServiceClient(blob.BlobServiceClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, transport=transport, **kwargs)

    class ContainerClient(blob.ContainerClient):
        @classmethod
        def from_container_url(cls, container_url: str, credential: Any = None, **kwargs: Any) -> Any:
            return blob.ContainerClient.from_container_url(container_url, credential, transport=transport, **kwargs)

    monkeypatch.setattr(helper, "BlobServiceClient", ServiceClient)
    monkeypatch.setattr(helper, "ContainerClient", ContainerClient)


def replay_workspace(
    service: FakeAzureML, monkeypatch: pytest.MonkeyPatch, home: Path, **kwargs: Any
) -> AzureWorkspace:
    transport = replay_transport(service)
    bind_blob_clients(monkeypatch, transport)
    target = AzureTarget(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    ml = connect(target, credential=ReplayCredential(), transport=transport)
    return AzureWorkspace(ml, audit_home=home, transport=transport, progress_every_s=0.01, **kwargs)
