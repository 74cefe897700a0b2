"""The Workspace over an Azure ML workspace: the one Workspace on an :class:`~core.azure.backend.AzureBackend`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..workspace import Workspace
from .backend import DEFAULT_INSTANCE_TYPE, AzureBackend


class AzureWorkspace(Workspace):
    """``ml_client`` is azure-ai-ml's ``MLClient``; the audit log is kept under ``audit_home``."""

    def __init__(
        self,
        ml_client: Any,
        *,
        audit_home: str | Path | None = None,
        actor: str | None = None,
        transport: Any = None,
        default_instance_type: str = DEFAULT_INSTANCE_TYPE,
        progress_every_s: float = 5.0,
    ) -> None:
        self.azure = AzureBackend(ml_client, audit_home=audit_home, transport=transport,
                                  default_instance_type=default_instance_type)
        super().__init__(self.azure, actor=actor, progress_every_s=progress_every_s)

    @property
    def ml(self) -> Any:
        return self.azure.ml

    def studio_url(self, page: str) -> str:
        return self.azure.studio_url(page)
