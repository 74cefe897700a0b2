"""Which workspace a command or a page means: one precedence rule for the CLI and the console.

From the first that applies:

1. ``local`` (az ml's ``--local``): the local home, whatever else is named;
2. ``--subscription``, ``--resource-group``, ``--workspace-name`` (each
   falling back to ``AZURE_SUBSCRIPTION_ID``, ``AZURE_RESOURCE_GROUP``,
   ``AZUREML_WORKSPACE_NAME`` when only some are given): that Azure ML workspace;
3. ``--workspace-config config.json``: the Azure ML workspace it names;
4. a local home named explicitly (``--workspace-dir``, the console's sidebar);
5. ``BYOM_AZURE_CONFIG``, or all three of the variables above: Azure ML;
6. ``BYOM_HOME``, else ``~/.byom``: the local home.

``":memory:"`` as the home is an in-memory workspace (the console's demo
without processes). Naming a target signs in to nothing: see
:mod:`byom.core.factory`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput
from .home import default_home

MEMORY = ":memory:"


@dataclass(frozen=True)
class LocalTarget:
    home: Path


@dataclass(frozen=True)
class MemoryTarget:
    seed: int | None = 0


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
    subscription, group, workspace = (environ.get(var) for var in (ENV_SUBSCRIPTION, ENV_RESOURCE_GROUP, ENV_WORKSPACE))
    if subscription and group and workspace:
        return AzureTarget(subscription=subscription, resource_group=group, workspace_name=workspace)
    return None


Target = LocalTarget | MemoryTarget | AzureTarget


def local_target(home: str | Path | None = None) -> LocalTarget | MemoryTarget:
    """The local home named (or ``BYOM_HOME``, else ``~/.byom``)."""
    named = str(home).strip() if home is not None else ""
    if (named or os.environ.get("BYOM_HOME", "").strip()) == MEMORY:
        return MemoryTarget()
    return LocalTarget(Path(named).expanduser() if named else default_home())


def choose_target(
    *,
    home: str | Path | None = None,
    local: bool = False,
    config: str | None = None,
    subscription: str | None = None,
    resource_group: str | None = None,
    workspace_name: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Target:
    """The workspace these flags (and the environment) name, by the precedence above."""
    if local:
        return local_target(home)
    if subscription or resource_group or workspace_name or config:
        named = resolve_target(config=config, subscription=subscription, resource_group=resource_group,
                               workspace_name=workspace_name, environ=environ)
        assert named is not None  # something was named
        return named
    if home:
        return local_target(home)
    return resolve_target(environ=environ) or local_target()
