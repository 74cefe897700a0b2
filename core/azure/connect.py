"""Which Azure ML workspace, and signing in to it.

A workspace is named, in this order, by:

1. ``--subscription``, ``--resource-group`` and ``--workspace-name`` (each
   falling back to ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``,
   ``AZUREML_WORKSPACE_NAME`` when only some are given);
2. a ``config.json`` as Studio downloads it (``--workspace-config PATH``,
   else ``BYOM_AZURE_CONFIG``), read by ``MLClient.from_config``;
3. ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP`` and
   ``AZUREML_WORKSPACE_NAME`` when all three are set;
4. nothing: the caller uses the local workspace.

A caller that must ignore the environment (the CLI with ``--workspace-dir``)
passes ``environ={}``.

Credentials come from ``DefaultAzureCredential`` (``az login``, a service
principal in the environment, a managed identity, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, NotFound
from .errors import NO_WORKSPACE, azure_errors

ENV_CONFIG = "BYOM_AZURE_CONFIG"
ENV_SUBSCRIPTION = "AZURE_SUBSCRIPTION_ID"
ENV_RESOURCE_GROUP = "AZURE_RESOURCE_GROUP"
ENV_WORKSPACE = "AZUREML_WORKSPACE_NAME"


@dataclass(frozen=True)
class AzureTarget:
    subscription: str | None = None
    resource_group: str | None = None
    workspace_name: str | None = None
    config_path: Path | None = None


# The environment variables that select an Azure ML workspace when no flag does.
AZURE_SELECTORS = (ENV_CONFIG, ENV_SUBSCRIPTION, ENV_RESOURCE_GROUP, ENV_WORKSPACE)


def environ_names_azure(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment alone selects an Azure ML workspace (as :func:`resolve_target` reads it)."""
    if environ.get(ENV_CONFIG, "").strip():
        return True
    return all(environ.get(name, "").strip() for name in (ENV_SUBSCRIPTION, ENV_RESOURCE_GROUP, ENV_WORKSPACE))


def resolve_target(
    *,
    config: str | None = None,
    subscription: str | None = None,
    resource_group: str | None = None,
    workspace_name: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> AzureTarget | None:
    """The workspace the flags and environment name, or None for "use the local workspace"."""
    if subscription or resource_group or workspace_name:
        target = AzureTarget(
            subscription or environ.get(ENV_SUBSCRIPTION),
            resource_group or environ.get(ENV_RESOURCE_GROUP),
            workspace_name or environ.get(ENV_WORKSPACE),
        )
        missing = [flag for flag, value in (("--subscription", target.subscription),
                                            ("--resource-group", target.resource_group),
                                            ("--workspace-name", target.workspace_name)) if not value]
        if missing:
            raise InvalidInput(
                f"An Azure ML workspace needs {', '.join(missing)} as well.",
                hint=f"Pass them, set {ENV_SUBSCRIPTION}/{ENV_RESOURCE_GROUP}/{ENV_WORKSPACE}, "
                     "or use --workspace-config config.json.",
            )
        return target
    config = config or environ.get(ENV_CONFIG)
    if config:
        path = Path(config).expanduser()
        if not path.exists():
            raise InvalidInput(f"Workspace config {str(path)!r} does not exist.",
                               hint="Download config.json from the workspace's page in Azure ML studio.")
        return AzureTarget(config_path=path)
    named = tuple(environ.get(var) for var in (ENV_SUBSCRIPTION, ENV_RESOURCE_GROUP, ENV_WORKSPACE))
    if all(named):
        return AzureTarget(*named)
    return None


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


def open_azure_workspace(
    target: AzureTarget, *, actor: str | None = None, check: bool = False, **client_kwargs: Any
) -> Any:
    """The AzureWorkspace for ``target``; ``check`` reaches it first (see :func:`check_workspace`)."""
    from .workspace import AzureWorkspace

    ml_client = connect(target, **client_kwargs)
    if check:
        check_workspace(ml_client)
    return AzureWorkspace(ml_client, actor=actor, transport=client_kwargs.get("transport"))
