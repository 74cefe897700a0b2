"""The one way a front end gets a workspace: ``open_workspace(choose_target(...))``.

The CLI and the console both call it, so a flag, a sidebar choice or an
environment variable means the same workspace in either (the precedence is
:mod:`byom.core.targets`'). Backends are imported here, when opened, and
nowhere in a front end: azure.ai.ml takes seconds to import, and the local
CLI never pays for it.
"""

from __future__ import annotations

from typing import Any

from .targets import AzureTarget, LocalTarget, MemoryTarget, Target, choose_target, local_target
from .workspace import Workspace

__all__ = ["choose_target", "local_target", "open_azure", "open_workspace"]


def open_workspace(target: Target | None = None, *, actor: str | None = None, check: bool = False,
                   **azure_options: Any) -> Workspace:
    """The workspace ``target`` names (by default what the environment names).

    ``check`` reaches an Azure ML workspace before returning it, so that a
    wrong name or a missing sign-in is an error here; ``azure_options`` (a
    credential, an HTTP transport) go to the Azure SDK's client.
    """
    target = target if target is not None else choose_target()
    if isinstance(target, AzureTarget):
        return open_azure(target, actor=actor, check=check, **azure_options)
    if isinstance(target, MemoryTarget):
        from .memory import DEMO_WORD_S, InMemoryWorkspace

        return InMemoryWorkspace(actor=actor, seed=target.seed, word_s=DEMO_WORD_S)
    assert isinstance(target, LocalTarget)
    from .local.workspace import LocalWorkspace

    return LocalWorkspace(target.home, actor=actor)


def open_azure(
    target: AzureTarget, *, actor: str | None = None, check: bool = False, **client_kwargs: Any
) -> Workspace:
    """The Azure ML workspace ``target`` names, signed in with ``DefaultAzureCredential``
    unless a credential is given."""
    from .azure.connect import check_workspace, connect
    from .azure.workspace import AzureWorkspace

    ml_client = connect(target, **client_kwargs)
    if check:
        check_workspace(ml_client)
    return AzureWorkspace(ml_client, actor=actor, transport=client_kwargs.get("transport"))
