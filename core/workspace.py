"""The Workspace contract: what the console, the CLI and the tests may call.

One interface, implemented by the in-memory workspace (``core.memory``), the
local backend (``core.local``) and the Azure ML backend (``core.azure``).
Every backend passes the one contract suite in ``tests/contract``; what a
backend cannot do it declares in ``capabilities`` and raises
:class:`~core.errors.Unsupported` for.

Rules that hold for every backend (Azure ML semantics, see DESIGN.md):

* Names: endpoints and deployments 3–32 characters
  ``^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$``; models and environments letters,
  digits, ``-``, ``_``, ``.``, starting with a letter or digit, ≤ 255.
  Deployment names are compared lower-cased.
* Versions auto-increment from 1 per name; asking for a version that exists
  raises ``AlreadyExists``. ``"latest"`` names the highest non-archived version.
* Artifacts and specs are immutable once registered; only ``description`` and
  ``tags`` change.
* Every change is written to the audit log (actor, action, target, before,
  after, time) in the same step as the change itself.
* Errors are raised from the tree in :mod:`core.errors`; nothing is half
  written when one is raised.
* Changes to endpoints and deployments take ``wait`` and ``progress``. With
  ``wait`` (the default) the call returns when the change is done, reporting
  progress as it goes; with ``wait=False`` it returns once the backend has
  accepted the change, which then goes on (an endpoint Creating, Updating or
  Deleting; a regenerated key not yet in effect). A backend whose changes
  are immediate is done either way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .entities import (
    AuditRecord,
    Deployment,
    DeploymentMetrics,
    DriftEntry,
    Endpoint,
    EndpointKeys,
    EnvironmentBuild,
    EnvironmentDiff,
    EnvironmentSpec,
    EnvironmentVersion,
    InvokeResult,
    ModelSpec,
    ModelVersion,
    WorkspaceInfo,
)

Progress = Callable[[str, float | None], None]
"""Progress callback: a message and a fraction done (None when unknown)."""

VersionRef = int | str  # 3, "3" or "latest"


def no_progress(message: str, fraction: float | None = None) -> None:
    pass


class Capability:
    """Names a backend lists in ``WorkspaceInfo.capabilities``."""

    MODELS = "models"
    ENVIRONMENTS = "environments"
    ENVIRONMENT_BUILDS = "environment-builds"  # build status and log are visible
    ENDPOINTS = "endpoints"
    DEPLOYMENTS = "deployments"  # deployments can be created and served
    METRICS = "metrics"
    STAGE_APPROVALS = "stage-approvals"  # natively; Azure keeps them in tags
    REMOTE_MODEL_PATHS = "remote-model-paths"  # register files already in cloud storage (azureml://, https://)
    DOCKER_BUILDS = "docker-builds"  # environments from a Docker build context


class Workspace(ABC):
    """A place that holds models, environments and online endpoints."""

    # ------------------------------------------------------------ general

    @abstractmethod
    def info(self) -> WorkspaceInfo:
        """Which workspace this is, and what its backend can do."""

    def supports(self, capability: str) -> bool:
        return capability in self.info().capabilities

    def close(self) -> None:
        """Release connections. Running deployments are left running."""

    # ------------------------------------------------------------- models

    @abstractmethod
    def create_model(self, spec: ModelSpec, progress: Progress = no_progress) -> ModelVersion:
        """Register a version of a model from a folder or a single file.

        The artifacts are copied (a sha256 recorded per file) and the version
        becomes visible only when the copy is complete: a registration that
        dies half-way leaves no version. Concurrent registrations of one name
        get distinct versions. With ``spec.package`` a GGUF checkpoint is
        converted into a transformers folder first. New versions start in
        stage ``dev``.

        A backend with ``Capability.REMOTE_MODEL_PATHS`` also takes a path in
        cloud storage (``azureml://jobs/...``, ``azureml://datastores/...``,
        a blob URL) and registers it where it lies: nothing is copied, so the
        version records no files and no hashes. Other backends refuse such a
        path with ``InvalidInput``.
        """

    @abstractmethod
    def list_models(self, include_archived: bool = False) -> list[ModelVersion]:
        """The latest version of each model name, sorted by name."""

    @abstractmethod
    def list_model_versions(self, name: str, include_archived: bool = False) -> list[ModelVersion]:
        """Every version of one model, newest first. NotFound for an unknown name."""

    @abstractmethod
    def get_model(self, name: str, version: VersionRef = "latest") -> ModelVersion:
        """One version (archived ones too when asked by number)."""

    @abstractmethod
    def update_model(
        self,
        name: str,
        version: VersionRef,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Change the description and/or replace the tags; nothing else changes."""

    @abstractmethod
    def promote_model(
        self, name: str, version: VersionRef, stage: str, *, approver: str, note: str = ""
    ) -> ModelVersion:
        """Move a version to another stage (dev → staging → production).

        Production is reachable only from staging; a version may always go
        back to dev. The approver, note and time are recorded in
        ``stage_history``. An empty approver is refused.
        """

    @abstractmethod
    def archive_model(self, name: str, version: VersionRef | None = None) -> list[ModelVersion]:
        """Hide one version (or every version) from lists and from ``latest``."""

    @abstractmethod
    def restore_model(self, name: str, version: VersionRef | None = None) -> list[ModelVersion]:
        """Undo ``archive_model``."""

    @abstractmethod
    def delete_model(self, name: str, version: VersionRef) -> None:
        """Delete one version and its artifacts. InUse while a deployment uses it."""

    @abstractmethod
    def download_model(self, name: str, version: VersionRef, dest: str | Path) -> Path:
        """Copy a version's artifacts into ``dest/<name>`` and return that folder.

        Every file is checked against its recorded sha256; a version
        registered from cloud storage has none recorded, and comes as stored.
        """

    # ------------------------------------------------------- environments

    @abstractmethod
    def create_environment(self, spec: EnvironmentSpec) -> EnvironmentVersion:
        """Register a version of an environment from a conda YAML (and/or an image).

        The conda file must be YAML with a ``dependencies`` list. The built-in
        ``local-python`` environment cannot be overwritten.
        """

    @abstractmethod
    def list_environments(self, include_archived: bool = False) -> list[EnvironmentVersion]:
        """The latest version of each environment name (``local-python`` included)."""

    @abstractmethod
    def list_environment_versions(self, name: str) -> list[EnvironmentVersion]:
        """Every version of one environment, newest first."""

    @abstractmethod
    def get_environment(self, name: str, version: VersionRef = "latest") -> EnvironmentVersion:
        """One version."""

    @abstractmethod
    def update_environment(
        self,
        name: str,
        version: VersionRef,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> EnvironmentVersion:
        """Change the description and/or replace the tags; the spec is immutable."""

    @abstractmethod
    def archive_environment(self, name: str, version: VersionRef | None = None) -> list[EnvironmentVersion]:
        """Hide one version (or every version) from lists and from ``latest``, as ``archive_model`` does.

        Deployments that already use it keep running. ``local-python`` cannot be archived.
        """

    @abstractmethod
    def restore_environment(self, name: str, version: VersionRef | None = None) -> list[EnvironmentVersion]:
        """Undo ``archive_environment``."""

    def diff_environments(self, name: str, from_version: VersionRef, to_version: VersionRef) -> EnvironmentDiff:
        """Line diff of two versions' conda specs and their resolved requirements."""
        from .environments import diff_environments

        return diff_environments(self.get_environment(name, from_version), self.get_environment(name, to_version))

    @abstractmethod
    def get_environment_build(self, name: str, version: VersionRef = "latest") -> EnvironmentBuild:
        """State, interpreter, installed packages and log of the version's build."""

    @abstractmethod
    def build_environment(
        self, name: str, version: VersionRef = "latest", *, force: bool = False, wait: bool = True,
        progress: Progress = no_progress,
    ) -> EnvironmentBuild:
        """Build (or reuse the cached build of) a version. Unsupported where builds are remote.

        ``force`` rebuilds in place, so it is refused (``InUse``) while a
        deployment runs in that build (its own version or one with the same spec).
        """

    @abstractmethod
    def environment_drift(self, name: str, version: VersionRef = "latest") -> list[DriftEntry]:
        """For each package the spec pins, what is installed where it runs."""

    # ---------------------------------------------------------- endpoints

    @abstractmethod
    def create_or_update_endpoint(
        self, endpoint: Endpoint, *, wait: bool = True, progress: Progress = no_progress
    ) -> Endpoint:
        """Create an endpoint (auth mode ``key``; two keys are issued) or update it.

        On update, description, tags, traffic and mirror traffic change; the
        traffic rules of :func:`core.rules.validate_traffic` apply.
        """

    @abstractmethod
    def get_endpoint(self, name: str) -> Endpoint:
        """One endpoint, with its traffic, scoring and swagger URIs."""

    @abstractmethod
    def list_endpoints(self) -> list[Endpoint]:
        """Every endpoint, sorted by name."""

    @abstractmethod
    def delete_endpoint(self, name: str, *, wait: bool = True, progress: Progress = no_progress) -> None:
        """Delete an endpoint and every deployment under it."""

    @abstractmethod
    def get_keys(self, name: str) -> EndpointKeys:
        """The endpoint's primary and secondary keys. Never written to any log."""

    @abstractmethod
    def regenerate_key(
        self, name: str, key_type: str = "primary", *, wait: bool = True, progress: Progress = no_progress
    ) -> EndpointKeys:
        """Replace one key (``primary`` or ``secondary``); the old value stops working.

        Returns the keys as they are then: without ``wait``, possibly still the old ones.
        """

    @abstractmethod
    def set_traffic(
        self, name: str, traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None, *,
        wait: bool = True, progress: Progress = no_progress,
    ) -> Endpoint:
        """Replace the live split (and, when given, the mirror split) in one step.

        Percentages are integers per existing deployment and total exactly 0
        or 100. Mirror traffic names at most one deployment, 1–50 %, that has
        no live traffic. A split that breaks a rule is refused whole.
        """

    # -------------------------------------------------------- deployments

    @abstractmethod
    def create_or_update_deployment(
        self, deployment: Deployment, *, wait: bool = True, progress: Progress = no_progress
    ) -> Deployment:
        """Create or update a deployment under an existing endpoint.

        The model and environment must exist. With ``wait`` this blocks until
        the deployment is Succeeded or Failed (the reason in ``state_reason``)
        and reports progress; without, it returns in state Creating/Updating.
        A new deployment receives no traffic until traffic is set.
        """

    @abstractmethod
    def get_deployment(self, endpoint_name: str, name: str) -> Deployment:
        """One deployment with its provisioning state and instances."""

    @abstractmethod
    def list_deployments(self, endpoint_name: str) -> list[Deployment]:
        """The endpoint's deployments, sorted by name."""

    @abstractmethod
    def delete_deployment(
        self, endpoint_name: str, name: str, *, wait: bool = True, progress: Progress = no_progress
    ) -> None:
        """Stop and delete a deployment. InUse while it has live traffic.

        Mirror traffic to it is removed with it.
        """

    @abstractmethod
    def scale_deployment(
        self, endpoint_name: str, name: str, instance_count: int, *, wait: bool = True,
        progress: Progress = no_progress,
    ) -> Deployment:
        """Change the number of instances (state Scaling until done)."""

    @abstractmethod
    def get_deployment_logs(
        self, endpoint_name: str, name: str, lines: int = 100, container: str = "inference-server"
    ) -> str:
        """The last ``lines`` lines of the deployment's logs."""

    # ------------------------------------------------------------- invoke

    @abstractmethod
    def invoke(
        self,
        endpoint_name: str,
        payload: Any,
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> InvokeResult:
        """Send ``payload`` (a JSON-able object, or str/bytes sent as is) to the endpoint.

        With ``deployment`` the request targets that deployment and bypasses
        the traffic split. The endpoint's key is used. Non-2xx answers are
        returned, not raised; only an unreachable endpoint raises.
        """

    # ------------------------------------------------------------ metrics

    @abstractmethod
    def get_metrics(self, endpoint_name: str, window_s: int = 3600, bucket_s: int = 60) -> list[DeploymentMetrics]:
        """Per deployment: request and error counts, latency percentiles, and a time series."""

    # -------------------------------------------------------------- audit

    @abstractmethod
    def list_audit(self, limit: int = 100, target_prefix: str | None = None) -> list[AuditRecord]:
        """Changes, newest first; ``target_prefix`` such as ``endpoint/chat``."""
