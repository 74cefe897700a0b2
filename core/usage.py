"""Which deployments use a model or an environment: maps from a version's reference to its users.

A user is written ``endpoint/deployment``; a reference is what the
deployment names (``name:version``). The maps are built from the
deployments themselves, so they hold on every backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .entities import Deployment
from .workspace import Workspace


def all_deployments(ws: Workspace) -> list[Deployment]:
    """Every deployment of the workspace, endpoint by endpoint."""
    return [d for e in ws.list_endpoints() for d in ws.list_deployments(e.name)]


def model_usage(deployments: Iterable[Deployment]) -> dict[str, list[str]]:
    """``"name:version"`` → the deployments (``endpoint/deployment``) that serve it."""
    usage: dict[str, list[str]] = {}
    for d in deployments:
        usage.setdefault(d.model, []).append(f"{d.endpoint_name}/{d.name}")
    return usage


def environment_usage(deployments: Iterable[Deployment]) -> dict[str, list[str]]:
    """``"name:version"`` → the deployments (``endpoint/deployment``) that run in it."""
    usage: dict[str, list[str]] = {}
    for d in deployments:
        usage.setdefault(d.environment, []).append(f"{d.endpoint_name}/{d.name}")
    return usage


def environment_users(usage: Mapping[str, list[str]], name: str) -> list[str]:
    """The deployments that run in any version of environment ``name``."""
    return [user for ref, users in usage.items() if ref.rsplit(":", 1)[0] == name for user in users]
