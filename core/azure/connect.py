"""Signing in to an Azure ML workspace (which one is :mod:`byom.core.targets`' business).

Credentials come from ``DefaultAzureCredential`` (``az login``, a service
principal in the environment, a managed identity, ...).
"""

from __future__ import annotations

from typing import Any

from ..errors import NotFound
from ..targets import AzureTarget
from .errors import NO_WORKSPACE, azure_errors


def connect(target: AzureTarget, *, credential: Any = None, **client_kwargs: Any) -> Any:
    """An ``MLClient`` for the target. ``client_kwargs`` go to the SDK's HTTP clients (e.g. ``transport``)."""
    from azure.ai.ml import MLClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    kwargs = {"show_progress": False, "enable_telemetry": False, **client_kwargs}
    with azure_errors("open the Azure ML workspace"):
        if target.config_path is not None:
            return MLClient.from_config(credential=credential, path=str(target.config_path), **kwargs)
        return MLClient(credential, target.subscription, target.resource_group, target.workspace_name, **kwargs)


def check_workspace(ml_client: Any) -> None:
    """Reach the workspace once: a wrong name or a missing sign-in is reported when it is opened, not on first use."""
    name = ml_client.workspace_name
    try:
        with azure_errors(f"open the Azure ML workspace {name!r}"):
            ml_client.workspaces.get(name)
    except NotFound as exc:
        raise NotFound(f"There is no Azure ML workspace {name!r} in resource group "
                       f"{ml_client.resource_group_name!r} of subscription {ml_client.subscription_id!r}.",
                       hint=NO_WORKSPACE) from exc
