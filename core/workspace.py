"""The Workspace: what the console, the CLI and the tests call, over any :class:`~core.backend.Backend`.

One concrete class, as httpx has one ``Client`` over its transports: every
rule of Azure ML's model is applied here once, and a backend only keeps state
(``core.store``: local SQLite or in memory; ``core.azure``: Azure ML). What a
backend cannot do it declares in ``capabilities`` and raises
:class:`~core.errors.Unsupported` for. Every backend passes the one contract
suite in ``tests/contract``.

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
  after, time) once the backend has taken it.
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

import json
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any, TypeVar

from . import chargeback, consumer_keys, mirror_report, rules, sse
from .actor import default_actor
from .artifacts import check_source, downloadable, is_remote, remote_download_hint
from .asset_refs import RegistryRef, parse_asset_ref, registry_ref
from .backend import Backend, Kind, LocalProcesses, Operation, Ref
from .curated_environments import CURATED_TAG, local_equivalent
from .entities import (
    LOCAL_PYTHON,
    AuditRecord,
    Consumer,
    ConsumerUsage,
    Deployment,
    DeploymentMetrics,
    DriftEntry,
    Endpoint,
    EndpointCredentials,
    EndpointKeys,
    EnvironmentBuild,
    EnvironmentDiff,
    EnvironmentSpec,
    EnvironmentVersion,
    InvokeResult,
    IssuedConsumer,
    MirrorReport,
    ModelSpec,
    ModelVersion,
    StageChange,
    StreamEvent,
    WorkspaceInfo,
    utcnow,
    utcnow_after,
)
from .environments import drift, installed_packages, local_python_environment, parse_conda
from .errors import (
    AlreadyExists,
    AuthFailed,
    BackendError,
    ByomError,
    InUse,
    InvalidInput,
    NotFound,
    Unsupported,
)
from .metrics import summarize
from .metrics_series import ResourceSample
from .mlflow_models import (
    ENVIRONMENT_FILES,
    MLFLOW_MODEL,
    MLFLOW_TAG,
    SCORE_FOLDER,
    SCORE_SCRIPT,
    check_mlflow_folder,
    environment_for,
)
from .progress import Progress, no_progress
from .scoring_targets import ScoringTarget, ScoringTargets
from .serving import DEPLOYMENT_HEADER

__all__ = ["Capability", "Progress", "VersionRef", "Workspace", "no_progress"]

VersionRef = int | str  # 3, "3" or "latest"
A = TypeVar("A", ModelVersion, EnvironmentVersion)
TERMINAL = ("Succeeded", "Failed")


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
    OPENAI_API = "openai-api"  # the OpenAI API beside each scoring URI (core/openai_api.py's base_url)
    LOCAL_ENDPOINTS = "local-endpoints"  # az ml's --local endpoints: one deployment, no traffic rule, no key
    REGISTRY_ASSETS = "registry-assets"  # deployments name azureml://registries/... assets as they are
    MLFLOW_NO_CODE = "mlflow-no-code"  # MLflow models deploy with neither code nor environment, scored natively
    CONSUMERS = "consumers"  # named keys per endpoint with token and request limits, and their usage
    TRAFFIC_ROLLOUTS = "traffic-rollouts"  # progressive rollouts driven by the backend (core/traffic_rollout.py)
    MIRROR_REPORTS = "mirror-reports"  # both answers of mirrored requests kept and compared (core/mirror_report.py)
    CAPTURES = "captures"  # request bodies captured at the gateway, and replayed (core/captures.py)


NO_CONSUMERS = ("Azure ML managed online endpoints have no consumer keys, token limits or per-consumer usage: "
                "the capability is absent from this workspace.")
APIM_HINT = ("Put Azure API Management in front of the endpoint: its token-limit policy (llm-token-limit) gives "
             "each subscription key a tokens-per-minute limit and quota, and llm-emit-token-metric reports the "
             "tokens per consumer for chargeback.")
NO_MIRROR_REPORTS = ("This workspace keeps no mirrored answers to compare: Azure ML managed online endpoints send the "
                     "mirror's copies and discard its answers (only their counts and latencies reach Azure Monitor).")
MIRROR_HINT = ("Send the same requests to each deployment with 'online-endpoint invoke --deployment-name D' and "
               "compare the answers, or try the deployments on a local workspace, whose gateway keeps both answers.")


def encode_payload(payload: Any) -> bytes:
    """A JSON-able object as JSON; str and bytes as they are."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload).encode("utf-8")


class Workspace:
    """A place that holds models, environments and online endpoints, kept by ``backend``."""

    def __init__(self, backend: Backend, *, actor: str | None = None, progress_every_s: float = 5.0) -> None:
        self.backend = backend
        self._actor = actor
        self.progress_every_s = progress_every_s
        self._targets = ScoringTargets()

    # ------------------------------------------------------------ general

    @property
    def actor(self) -> str:
        """Who the audit log names: the one given, else ``BYOM_ACTOR``, else whom the backend is signed in as,
        else the OS user. Read once, when first needed."""
        if self._actor is None:
            self._actor = os.environ.get("BYOM_ACTOR") or self.backend.identity() or default_actor()
        return self._actor

    def info(self) -> WorkspaceInfo:
        """Which workspace this is, and what its backend can do."""
        return self.backend.describe()

    def details(self) -> dict[str, str | None]:
        """The workspace as ``az ml workspace show`` names it: ``name``, ``location`` (the region; ``local``
        for a workspace on this machine) and ``container_registry`` (None where images are not pushed)."""
        info = self.info()
        found = self.backend.workspace_details()
        return {"name": info.name, "location": found.get("location") or "local",
                "container_registry": found.get("container_registry"), "kind": info.kind,
                **{k: v for k, v in found.items() if k not in ("location", "container_registry")}}

    def supports(self, capability: str) -> bool:
        return capability in self.info().capabilities

    def close(self) -> None:
        """Release connections. Running deployments are left running."""
        self.backend.close()

    def local_processes(self) -> LocalProcesses:
        """The serving processes this workspace runs on this machine (a local workspace only)."""
        processes = self.backend.local_processes()
        if processes is None:
            raise InvalidInput("Only a local workspace has local serving processes: leave out the Azure ML options.")
        return processes

    def _audit(self, action: str, target: str, before: Any = None, after: Any = None) -> None:
        self.backend.record(AuditRecord(at=utcnow(), actor=self.actor, action=action, target=target,
                                        before=before, after=after))

    def _announce(self, what: str, progress: Progress) -> None:
        if self.backend.long_running:
            progress(_capital(what), 0.0)

    def _wait(self, op: Operation, what: str, progress: Progress) -> Any:
        """The operation's result, reporting its status every ``progress_every_s`` while it goes on."""
        if not self.backend.long_running:
            return op.result()
        started = time.monotonic()
        while not op.done():
            progress(f"{_capital(what)}: {op.status()} ({time.monotonic() - started:.0f} s)", None)
            op.wait(self.progress_every_s)
        return op.result()

    def _settle(self, op: Operation, what: str, wait: bool, progress: Progress) -> None:
        """Wait for the operation (``wait``), or leave it to the backend and say so."""
        if not self.backend.long_running:
            op.result()
            return
        if not wait:
            progress(f"{_capital(what)}: accepted; {self.backend.service} goes on with it", None)
            return
        self._wait(op, what, progress)
        progress(f"{_capital(what)}: done", 1.0)

    # ------------------------------------------------ reference resolution

    def _versions(self, kind: Kind, name: str) -> list[Any]:
        return sorted(self.backend.list(kind, name), key=lambda a: a.version)

    def _resolve(self, kind: Kind, name: str, version: VersionRef, *, include_archived: bool = False) -> int:
        """A version number: ``latest`` is the highest one not archived (or of all, ``include_archived``)."""
        if isinstance(version, str) and version.strip().lower() == "latest":
            every = self._versions(kind, name)
            live: list[int] = [a.version for a in every if include_archived or not a.archived]
            if not live:
                if every:
                    raise NotFound(f"Every version of {kind} {name!r} is archived.",
                                   hint="Restore one, or name a version.")
                raise NotFound(f"No {kind} named {name!r}.", hint=f"See 'byom {kind} list'.")
            return max(live)
        return rules.validate_version(version, kind)

    def _asset(self, kind: Kind, name: str, number: int) -> Any:
        found = self.backend.get(Ref(kind, name, number))
        if found is None:
            raise NotFound(f"{kind.capitalize()} {name!r} has no version {number}.",
                           hint=f"See 'byom {kind} list --name {name}'.")
        return found

    def _latest_of_each(self, kind: Kind, include_archived: bool) -> list[Any]:
        """The highest version of each name, sorted by name."""
        return self.backend.latest(kind, include_archived)

    def _refuse_taken(self, kind: Kind, name: str, version: int | None) -> None:
        if version is not None and any(a.version == version for a in self.backend.list(kind, name)):
            raise AlreadyExists(f"{kind.capitalize()} {name!r} version {version} already exists.",
                                hint="Leave out --version to get the next one, or pick another.")

    def _update_asset(self, current: A, description: str | None, tags: dict[str, str] | None) -> A:
        """Change description and/or tags, the only mutable fields of a version."""
        new_tags = rules.validate_tags(tags) if tags is not None else None
        changed = current.replace(description=current.description if description is None else description,
                                  tags=current.tags if new_tags is None else new_tags)
        saved: A = self.backend.put(changed).result()
        kind = "model" if isinstance(current, ModelVersion) else "environment"
        self._audit(f"{kind}.update", f"{kind}/{current.name}:{current.version}",
                    {"description": current.description, "tags": current.tags},
                    {"description": saved.description, "tags": saved.tags})
        return saved

    def _set_archived(self, kind: Kind, name: str, version: VersionRef | None, archived: bool) -> list[Any]:
        if version is None:
            rows = self._versions(kind, name)
            if not rows:
                raise NotFound(f"No {kind} named {name!r}.", hint=f"See 'byom {kind} list'.")
        else:
            rows = [self._asset(kind, name, self._resolve(kind, name, version, include_archived=True))]
        verb = "archive" if archived else "restore"
        for row in rows:
            if row.archived != archived:
                self.backend.archive(Ref(kind, name, row.version), archived)
                self._audit(f"{kind}.{verb}", f"{kind}/{name}:{row.version}", {"archived": not archived},
                            {"archived": archived})
        return [self._asset(kind, name, row.version) for row in rows]

    # ------------------------------------------------------------- models

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
        from .model_sources import CUSTOM, prepare_model_source

        rules.validate_asset_name(spec.name, "model")
        tags = rules.validate_tags(spec.tags)
        explicit = rules.validate_version(spec.version, latest_ok=False) if spec.version is not None else None
        remote = is_remote(spec.path) and self.supports(Capability.REMOTE_MODEL_PATHS)
        src = None if remote else check_source(spec.path)
        if src is not None and spec.type == MLFLOW_MODEL:
            check_mlflow_folder(src)
        self._refuse_taken("model", spec.name, explicit)
        source: str | Path
        with self.backend.scratch() as scratch:  # the local backend's is in the home, swept if left
            if src is None:  # registered where it lies: nothing to copy, nothing to hash
                source = origin = rules.check_remote_model_path(spec.path, spec.package)
                fmt, props = CUSTOM, dict[str, str]()
            else:
                source, fmt, props = prepare_model_source(src, package=spec.package, scratch=scratch,
                                                          progress=progress)
                origin = str(src.resolve())
            template = ModelVersion(
                name=spec.name, version=explicit or 0, type=spec.type, format=fmt, description=spec.description,
                tags=tags, properties={**spec.properties, **props}, source=origin, created_by=self.actor,
                created_at=utcnow(),
            )
            model = self.backend.add(template, source, progress)
        assert isinstance(model, ModelVersion)
        self._audit("model.create", f"model/{model.ref}", None, _model_summary(model))
        progress(f"Registered {model.ref}", 1.0)
        return model

    def list_models(self, include_archived: bool = False) -> list[ModelVersion]:
        """The latest version of each model name, sorted by name."""
        return self._latest_of_each("model", include_archived)

    def list_model_versions(self, name: str, include_archived: bool = False) -> list[ModelVersion]:
        """Every version of one model, newest first. NotFound for an unknown name."""
        every = self._versions("model", name)
        if not every:
            raise NotFound(f"No model named {name!r}.", hint="See 'byom model list'.")
        return [m for m in reversed(every) if include_archived or not m.archived]

    def get_model(self, name: str, version: VersionRef = "latest") -> ModelVersion:
        """One version (archived ones too when asked by number)."""
        model: ModelVersion = self._asset("model", name, self._resolve("model", name, version))
        return model

    def update_model(
        self, name: str, version: VersionRef, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> ModelVersion:
        """Change the description and/or replace the tags; nothing else changes."""
        return self._update_asset(self.get_model(name, version), description, tags)

    def promote_model(
        self, name: str, version: VersionRef, stage: str, *, approver: str, note: str = ""
    ) -> ModelVersion:
        """Move a version to another stage (dev → staging → production).

        Production is reachable only from staging; a version may always go
        back to dev. The approver, note and time are recorded in
        ``stage_history``. An empty approver is refused.
        """
        current = self.get_model(name, version)
        rules.check_promotion(current.stage, stage, approver)
        change = StageChange(current.stage, stage, approver.strip(), note, utcnow())
        promoted: ModelVersion = self.backend.put(
            current.replace(stage=stage, stage_history=[*current.stage_history, change])).result()
        self._audit("model.promote", f"model/{current.ref}", {"stage": current.stage},
                    {"stage": stage, "approver": change.approver, "note": note})
        return promoted

    def archive_model(self, name: str, version: VersionRef | None = None) -> list[ModelVersion]:
        """Hide one version (or every version) from lists and from ``latest``."""
        return self._set_archived("model", name, version, True)

    def restore_model(self, name: str, version: VersionRef | None = None) -> list[ModelVersion]:
        """Undo ``archive_model``."""
        return self._set_archived("model", name, version, False)

    def deployments_using(self, model_ref: str) -> list[Deployment]:
        """Every deployment, of every endpoint, that serves the model version ``name:version``."""
        return [d for e in self.backend.list("endpoint") for d in self.backend.list("deployment", e.name)
                if d.model == model_ref]

    def delete_model(self, name: str, version: VersionRef) -> None:
        """Delete one version and its artifacts. InUse while a deployment uses it."""
        model: ModelVersion = self._asset("model", name, self._resolve("model", name, version, include_archived=True))
        users = self.deployments_using(model.ref)
        if users:
            where = ", ".join(f"{d.endpoint_name}/{d.name}" for d in users)
            raise InUse(f"Model {model.ref} is used by deployment(s) {where}.",
                        hint="Delete or update those deployments first.")
        self.backend.delete(Ref("model", name, model.version)).result()
        self._audit("model.delete", f"model/{model.ref}", _model_summary(model), None)

    def download_model(self, name: str, version: VersionRef, dest: str | Path) -> Path:
        """Copy a version's artifacts into ``dest/<name>`` and return that folder.

        Every file is checked against its recorded sha256; a version
        registered from cloud storage has none recorded, and comes as stored.
        """
        model: ModelVersion = self._asset("model", name, self._resolve("model", name, version, include_archived=True))
        target = Path(dest).expanduser() / name
        if not downloadable(model):
            raise Unsupported(f"{model.ref} was registered from {model.path}, which azure-ai-ml cannot download "
                              "(it reads model files from a datastore only).",
                              hint=remote_download_hint(model.source, model.path))
        try:
            if target.exists() and any(target.iterdir()):
                raise InvalidInput(f"{target} already exists and is not empty: choose another --download-path.")
            self.backend.export(model, target)
        except OSError as exc:
            raise InvalidInput(f"Cannot copy {model.ref} into {target}: {exc.strerror or exc}.",
                               hint="Choose a folder you can write to (a new or empty folder, not a file).") from exc
        return target

    # ------------------------------------------------------- environments

    def create_environment(self, spec: EnvironmentSpec, *, progress: Progress = no_progress) -> EnvironmentVersion:
        """Register a version of an environment from a conda YAML (and/or an image).

        The conda file must be YAML with a ``dependencies`` list. The built-in
        ``local-python`` environment cannot be overwritten. ``progress`` hears
        what the backend adds (on Azure ML, the inference server a conda file lacks).
        """
        rules.validate_asset_name(spec.name, "environment")
        rules.refuse_built_in_environment(spec.name, "replaced", ": choose another name")
        tags = rules.validate_tags(spec.tags)
        rules.check_environment_source(spec, docker_builds=self.supports(Capability.DOCKER_BUILDS))
        python: str | None = None
        requirements: list[str] = []
        if spec.conda_file:
            _, python, requirements = parse_conda(spec.conda_file)
        explicit = (rules.validate_version(spec.version, "environment", latest_ok=False)
                    if spec.version is not None else None)
        template = EnvironmentVersion(
            name=spec.name, version=explicit or 0, conda_file=spec.conda_file, image=spec.image,
            description=spec.description, tags=tags, build_context=spec.build_context,
            dockerfile_path=spec.dockerfile_path, python=python, pip_requirements=requirements,
            created_by=self.actor, created_at=utcnow(),
        )
        env = self.backend.add(template, None, progress)
        assert isinstance(env, EnvironmentVersion)
        after: dict[str, Any] = {"image": env.image, "python": env.python, "requirements": env.pip_requirements}
        if env.build_context:
            after["build_context"] = env.build_context
        self._audit("environment.create", f"environment/{env.ref}", None, after)
        return env

    def list_environments(self, include_archived: bool = False) -> list[EnvironmentVersion]:
        """The latest version of each environment name (``local-python`` included)."""
        return [local_python_environment(), *self._latest_of_each("environment", include_archived)]

    def list_environment_versions(self, name: str) -> list[EnvironmentVersion]:
        """Every version of one environment, newest first."""
        if name == LOCAL_PYTHON:
            return [local_python_environment()]
        every = self._versions("environment", name)
        if not every:
            raise NotFound(f"No environment named {name!r}.", hint="See 'byom environment list'.")
        return list(reversed(every))

    def get_environment(self, name: str, version: VersionRef = "latest") -> EnvironmentVersion:
        """One version."""
        if name == LOCAL_PYTHON:
            if str(version) not in ("latest", "1"):
                raise NotFound(f"{LOCAL_PYTHON} has only version 1.")
            return local_python_environment()
        env: EnvironmentVersion = self._asset("environment", name, self._resolve("environment", name, version))
        return env

    def update_environment(
        self, name: str, version: VersionRef, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> EnvironmentVersion:
        """Change the description and/or replace the tags; the spec is immutable."""
        rules.refuse_built_in_environment(name, "changed")
        return self._update_asset(self.get_environment(name, version), description, tags)

    def archive_environment(self, name: str, version: VersionRef | None = None) -> list[EnvironmentVersion]:
        """Hide one version (or every version) from lists and from ``latest``, as ``archive_model`` does.

        Deployments that already use it keep running. ``local-python`` cannot be archived.
        """
        rules.refuse_built_in_environment(name, "archived")
        return self._set_archived("environment", name, version, True)

    def restore_environment(self, name: str, version: VersionRef | None = None) -> list[EnvironmentVersion]:
        """Undo ``archive_environment``."""
        rules.refuse_built_in_environment(name, "restored")
        return self._set_archived("environment", name, version, False)

    def diff_environments(self, name: str, from_version: VersionRef, to_version: VersionRef) -> EnvironmentDiff:
        """Line diff of two versions' conda specs and their resolved requirements."""
        from .environments import diff_environments

        return diff_environments(self.get_environment(name, from_version), self.get_environment(name, to_version))

    def get_environment_build(self, name: str, version: VersionRef = "latest") -> EnvironmentBuild:
        """State, interpreter, installed packages and log of the version's build."""
        return self.backend.build_status(self.get_environment(name, version))

    def build_environment(
        self, name: str, version: VersionRef = "latest", *, force: bool = False, wait: bool = True,
        progress: Progress = no_progress,
    ) -> EnvironmentBuild:
        """Build (or reuse the cached build of) a version. Unsupported where builds are remote.

        ``force`` rebuilds in place, so it is refused (``InUse``) while a
        deployment runs in that build (its own version or one with the same spec).
        """
        env = self.get_environment(name, version)
        if force and not env.built_in:
            self._refuse_rebuild_in_use(env)
        build = self.backend.build(env, force=force, wait=wait, progress=progress)
        if not env.built_in:
            self._audit("environment.build", f"environment/{env.ref}", None, {"state": build.state})
        return build

    def _refuse_rebuild_in_use(self, env: EnvironmentVersion) -> None:
        """A forced rebuild replaces the build in place, under the model servers that run in it: refuse that."""
        target = self.backend.build_id(env)
        if target is None:
            return
        users = []
        for endpoint in self.backend.list("endpoint"):
            for dep in self.backend.list("deployment", endpoint.name):
                name, version = parse_asset_ref(dep.environment or LOCAL_PYTHON, "environment")
                try:
                    other = self.get_environment(name, version)
                except NotFound:
                    continue
                if other.conda_file and not other.built_in and self.backend.build_id(other) == target:
                    users.append(f"{dep.endpoint_name}/{dep.name} ({other.ref})")
        if users:
            raise InUse(
                f"The build of {env.ref} is in use by deployment(s) {', '.join(users)}: a forced rebuild would "
                "replace the environment under their running model servers.",
                hint="Delete those deployments or move them to another environment first, or create a new "
                     "environment version with the changed spec (it builds beside this one).",
            )

    def environment_drift(self, name: str, version: VersionRef = "latest") -> list[DriftEntry]:
        """For each package the spec pins, what is installed where it runs.

        A version with no build yet reports each pin ``not built yet`` (its ``source`` says why): it is
        compared with nothing, since byom's own interpreter is not where it will run.
        """
        env = self.get_environment(name, version)
        installed, source = self.backend.installed(env)
        return drift(env.pip_requirements, installed, source=source, current=installed_packages())

    # ---------------------------------------------------------- endpoints

    def create_endpoint(
        self, endpoint: Endpoint, *, wait: bool = True, progress: Progress = no_progress
    ) -> Endpoint:
        """Create a new endpoint; ``AlreadyExists`` where one has its name (az ml's create never updates)."""
        rules.validate_endpoint_name(endpoint.name)
        existing: Endpoint | None = self.backend.get(Ref("endpoint", endpoint.name))
        if existing is not None:
            raise AlreadyExists(f"Endpoint {existing.name!r} already exists: use update.",
                                hint=f"Run 'byom online-endpoint update -n {existing.name}' to change it.")
        return self.create_or_update_endpoint(endpoint, wait=wait, progress=progress)

    def create_or_update_endpoint(
        self, endpoint: Endpoint, *, wait: bool = True, progress: Progress = no_progress
    ) -> Endpoint:
        """Create an endpoint (auth mode ``key``; two keys are issued) or update it.

        On update, description, tags, traffic and mirror traffic change; the
        traffic rules of :func:`core.rules.validate_traffic` apply.
        """
        rules.validate_endpoint_name(endpoint.name)
        tags = rules.validate_tags(endpoint.tags)
        old: Endpoint | None = self.backend.get(Ref("endpoint", endpoint.name))
        if old is None and endpoint.auth_mode != "key":
            # one made with a token auth mode elsewhere (az ml, Studio) keeps it through updates
            raise InvalidInput(f"Auth mode {endpoint.auth_mode!r} is not supported for a new endpoint: use 'key'.")
        if old is None and endpoint.local and not self.supports(Capability.LOCAL_ENDPOINTS):
            raise Unsupported(f"A local endpoint (--local) runs on this machine, not in a {self.info().kind} "
                              "workspace.", hint="Create it with --local, which uses the local workspace.")
        if (old.local if old is not None else endpoint.local) and (endpoint.traffic or endpoint.mirror_traffic):
            rules.check_traffic_settable(old or endpoint)
        names = [d.name for d in self.backend.list("deployment", endpoint.name)] if old else []
        traffic, mirror = rules.validate_traffic(endpoint.traffic, endpoint.mirror_traffic, names)
        now = utcnow()
        if old is None:
            wanted = endpoint.replace(tags=tags, traffic=traffic, mirror_traffic=mirror, created_by=self.actor,
                                      created_at=now, updated_at=now)
        else:
            wanted = old.replace(description=endpoint.description, tags=tags, traffic=traffic,
                                 mirror_traffic=mirror, updated_at=now)
        verb = "update" if old else "create"
        what = f"{verb} endpoint {endpoint.name!r}"
        self._announce(what, progress)
        self._settle(self.backend.put(wanted, wait=wait, progress=progress), what, wait, progress)
        self._targets.forget(endpoint.name)
        result = self.get_endpoint(endpoint.name)  # Azure's lists every deployment, 0 % included
        self._audit(f"endpoint.{verb}", f"endpoint/{endpoint.name}", _endpoint_summary(old) if old else None,
                    _endpoint_summary(result))
        return result

    def get_endpoint(self, name: str) -> Endpoint:
        """One endpoint, with its traffic, scoring and swagger URIs."""
        endpoint: Endpoint | None = self.backend.get(Ref("endpoint", name))
        if endpoint is None:
            raise NotFound(f"No endpoint named {name!r}.", hint="See 'byom online-endpoint list'.")
        return endpoint

    def list_endpoints(self) -> list[Endpoint]:
        """Every endpoint, sorted by name."""
        return sorted(self.backend.list("endpoint"), key=lambda e: e.name)

    def delete_endpoint(self, name: str, *, wait: bool = True, progress: Progress = no_progress) -> None:
        """Delete an endpoint and every deployment under it."""
        old = self.get_endpoint(name)
        what = f"delete endpoint {name!r}"
        self._announce(what, progress)
        self._settle(self.backend.delete(Ref("endpoint", name)), what, wait, progress)
        self._targets.forget(name)
        self._audit("endpoint.delete", f"endpoint/{name}", _endpoint_summary(old), None)

    def get_keys(self, name: str) -> EndpointKeys:
        """The endpoint's primary and secondary keys. Never written to any log."""
        credentials = self.backend.keys(name)
        if not isinstance(credentials, EndpointKeys):
            raise InvalidInput(f"Endpoint {name!r} authenticates with a token, not with keys.",
                               hint=f"See 'byom online-endpoint get-credentials -n {name}'.")
        return credentials

    def get_credentials(self, name: str) -> EndpointCredentials:
        """What a caller sends as ``Authorization: Bearer``: the two keys, or a token for an endpoint
        whose auth mode is ``aml_token`` or ``aad_token``. Never written to any log."""
        return self.backend.keys(name)

    def regenerate_key(
        self, name: str, key_type: str = "primary", *, wait: bool = True, progress: Progress = no_progress
    ) -> EndpointKeys:
        """Replace one key (``primary`` or ``secondary``); the old value stops working.

        Returns the keys as they are then: without ``wait``, possibly still the old ones.
        """
        if key_type not in ("primary", "secondary"):
            raise InvalidInput(f"Unknown key type {key_type!r}: use primary or secondary.")
        what = f"regenerate the {key_type} key of endpoint {name!r}"
        self._announce(what, progress)
        self._settle(self.backend.regenerate_key(name, key_type), what, wait, progress)
        self._targets.forget(name)
        self._audit("endpoint.regenerate-key", f"endpoint/{name}", None, {"key_type": key_type})
        return self.get_keys(name)

    def set_traffic(
        self, name: str, traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None, *,
        wait: bool = True, progress: Progress = no_progress, note: str = "",
    ) -> Endpoint:
        """Replace the live split (and, when given, the mirror split) in one step.

        Percentages are integers per existing deployment and total exactly 0
        or 100. Mirror traffic names at most one deployment, 1–50 %, that has
        no live traffic. A split that breaks a rule is refused whole. ``note``
        says why, in the audit record (and so in the traffic history).
        """
        old = self.get_endpoint(name)
        rules.check_traffic_settable(old)
        names = [d.name for d in self.backend.list("deployment", name)]
        mirror_in = old.mirror_traffic if mirror_traffic is None else mirror_traffic
        live, mirror = rules.validate_traffic(traffic, mirror_in, names)
        what = f"set the traffic of endpoint {name!r}"
        self._announce(what, progress)
        new = old.replace(traffic=live, mirror_traffic=mirror, updated_at=utcnow())
        self._settle(self.backend.put(new, wait=wait, progress=progress), what, wait, progress)
        result = self.get_endpoint(name)
        self._audit("endpoint.traffic", f"endpoint/{name}",
                    {"traffic": old.traffic, "mirror_traffic": old.mirror_traffic},
                    {"traffic": result.traffic, "mirror_traffic": result.mirror_traffic,
                     **({"note": note} if note else {})})
        return result

    # -------------------------------------------------------- deployments

    def resolve_model_ref(self, ref: str) -> str:
        """What a deployment stores for the model it names: ``name:version``, or a registry model's URI on Azure."""
        registry = registry_ref(ref)
        if registry is not None:
            return self._registry_asset(registry, "model")
        name, version = parse_asset_ref(ref, "model")
        return self.get_model(name, version).ref

    def resolve_environment_ref(self, ref: str) -> str:
        """What a deployment stores for its environment: ``name:version``, or a registry environment's URI on
        Azure; locally a curated environment becomes its local equivalent (registered the first time)."""
        registry = registry_ref(ref or "")
        if registry is not None:
            return self._registry_asset(registry, "environment")
        name, version = parse_asset_ref(ref or LOCAL_PYTHON, "environment")
        return self.get_environment(name, version).ref

    def _registry_asset(self, ref: RegistryRef, kind: str) -> str:
        if ref.kind != kind:
            article = "an" if kind[0] in "aeiou" else "a"
            raise InvalidInput(f"{ref.uri!r} names a {ref.kind} in a registry where {article} {kind} is expected.")
        if self.supports(Capability.REGISTRY_ASSETS):
            return ref.uri
        if kind == "model":
            raise InvalidInput(
                f"{ref.uri!r} is a model in an Azure ML registry, which a local workspace cannot download from.",
                hint=f"Download it where the registry is reachable (az ml model download --registry-name "
                     f"{ref.registry} -n {ref.name} -v VERSION), then 'byom model create -n {ref.name} -p FOLDER' "
                     "and name it as NAME:VERSION.")
        spec = local_equivalent(ref)
        if self._versions("environment", spec.name) and not self._tagged_versions(spec, CURATED_TAG):
            raise InvalidInput(
                f"This workspace has its own environment named {spec.name!r}, so the curated {ref.name!r} "
                "cannot be registered under that name.",
                hint=f"Name your environment as {spec.name}:VERSION, or rename it.")
        return self._environment_once(spec, CURATED_TAG).ref

    def _tagged_versions(self, spec: EnvironmentSpec, tag: str) -> list[EnvironmentVersion]:
        """The versions of ``spec``'s name that byom registered for what ``spec.tags[tag]`` names."""
        return [e for e in self._versions("environment", spec.name) if e.tags.get(tag) == spec.tags[tag]]

    def _environment_once(self, spec: EnvironmentSpec, tag: str) -> EnvironmentVersion:
        """An environment byom registers on the user's behalf: the version it made before with the same conda
        file, else a new one."""
        same = [e for e in self._tagged_versions(spec, tag) if e.conda_file == spec.conda_file]
        return same[-1] if same else self.create_environment(spec)

    def resolve_deployment(self, deployment: Deployment) -> Deployment:
        """A deployment as it is stored: its model and environment as the versions they name
        (``azureml:m@latest`` → ``m:3``), and an MLflow model's given no code (nor an environment but the
        default) as it is scored."""
        deployment = deployment.replace(model=self.resolve_model_ref(deployment.model))
        if deployment.code_path is None and deployment.environment.split(":")[0] in ("", LOCAL_PYTHON):
            if registry_ref(deployment.model) is not None:  # passed through: the registry knows its type
                return deployment.replace(environment="")
            model = self.get_model(*parse_asset_ref(deployment.model, "model"))
            if model.type == MLFLOW_MODEL:
                if self.supports(Capability.MLFLOW_NO_CODE):
                    return deployment.replace(environment="")
                return self._without_code(deployment, model)
        return deployment.replace(environment=self.resolve_environment_ref(deployment.environment))

    def _without_code(self, deployment: Deployment, model: ModelVersion) -> Deployment:
        """An MLflow model's deployment given no code, on a backend that does not score those natively: it runs
        ``scoring/mlflow_no_code/score.py`` in the environment MLflow saved with the model, registered once per
        model version (tagged ``byom.mlflow-model``)."""
        with self.backend.scratch() as scratch:  # only the files that name the environment, not the weights
            wanted = [f for f in model.files if Path(f.path).name in ENVIRONMENT_FILES]
            self.backend.export(model.replace(files=wanted), scratch)
            spec = environment_for(scratch, model.ref)
        environment = self._environment_once(spec, MLFLOW_TAG)
        return deployment.replace(code_path=str(SCORE_FOLDER), scoring_script=SCORE_SCRIPT, environment=environment.ref)

    def create_deployment(
        self, deployment: Deployment, *, wait: bool = True, progress: Progress = no_progress
    ) -> Deployment:
        """Create a new deployment; ``AlreadyExists`` where the endpoint has one of its name (as az ml)."""
        rules.check_deployment(deployment)
        self.get_endpoint(deployment.endpoint_name)
        existing: Deployment | None = self.backend.get(_dep_ref(deployment.endpoint_name, deployment.name))
        if existing is not None:
            raise AlreadyExists(
                f"Deployment {existing.name!r} of endpoint {existing.endpoint_name!r} already exists: use update.",
                hint=f"Run 'byom online-deployment update -n {existing.name} -e {existing.endpoint_name}' "
                     "to change it.")
        return self.create_or_update_deployment(deployment, wait=wait, progress=progress)

    def create_or_update_deployment(
        self, deployment: Deployment, *, wait: bool = True, progress: Progress = no_progress
    ) -> Deployment:
        """Create or update a deployment under an existing endpoint.

        The model and environment must exist. With ``wait`` this blocks until
        the deployment is Succeeded or Failed (the reason in ``state_reason``)
        and reports progress; without, it returns in state Creating/Updating.
        A new deployment receives no traffic until traffic is set.
        """
        existing: Deployment | None = self.backend.get(_dep_ref(deployment.endpoint_name, deployment.name))
        rules.check_deployment(deployment, running_code=existing.code_path if existing else None)
        endpoint = self.get_endpoint(deployment.endpoint_name)
        if endpoint.local:
            rules.check_local_endpoint_deployment(
                endpoint, deployment.name, [d.name for d in self.backend.list("deployment", endpoint.name)])
        resolved = self.resolve_deployment(deployment)
        now = utcnow_after(existing.updated_at if existing else None)
        desired = resolved.replace(
            name=existing.name if existing else deployment.name,
            provisioning_state="Updating" if existing else "Creating", state_reason="",
            created_by=existing.created_by if existing else self.actor,
            created_at=existing.created_at if existing else now, updated_at=now,
        )
        verb = "update" if existing else "create"
        progress(f"{desired.provisioning_state} deployment {desired.name}", 0.0)
        op = self.backend.put(desired, wait=wait, progress=progress)
        self._audit(f"deployment.{verb}", f"deployment/{desired.endpoint_name}/{desired.name}",
                    _deployment_summary(existing), _deployment_summary(desired))
        what = f"{verb} deployment {desired.name!r} of endpoint {desired.endpoint_name!r}"
        return self._outcome(op, desired, what, wait, progress)

    def _outcome(self, op: Operation, desired: Deployment, what: str, wait: bool, progress: Progress) -> Deployment:
        """The deployment once the change is done (or accepted, without ``wait``); its outcome audited."""
        if not self.backend.long_running:
            observed: Deployment = op.result()
            current = self.backend.get(_dep_ref(desired.endpoint_name, desired.name))
            newest = current is not None and current.updated_at == observed.updated_at
            # a newer change reports its own outcome; the local control plane may have audited this one already
            if newest and observed.provisioning_state in TERMINAL and not self._outcome_audited(observed):
                self._audit_outcome(observed)
            return observed
        if not wait:
            return self.get_deployment(desired.endpoint_name, desired.name)
        reason = ""
        try:
            self._wait(op, what, progress)
        except AuthFailed:
            raise
        except ByomError as exc:  # the operation ended Failed: report it on the deployment
            reason = exc.message
        result = self.get_deployment(desired.endpoint_name, desired.name)
        if reason or result.provisioning_state == "Failed":
            result = result.replace(provisioning_state="Failed", state_reason=reason or result.state_reason)
        self._audit_outcome(result)
        progress(f"Deployment {result.name}: {result.provisioning_state}", 1.0)
        return result

    def _outcome_audited(self, deployment: Deployment) -> bool:
        """Whether this very change's outcome has an audit record (one writer of it is enough)."""
        target = f"deployment/{deployment.endpoint_name}/{deployment.name}"
        return any(r.target.lower() == target.lower() and r.action == "deployment.state"
                   and r.at >= deployment.updated_at for r in self.backend.audit_log(5, target))

    def _audit_outcome(self, deployment: Deployment) -> None:
        self._audit("deployment.state", f"deployment/{deployment.endpoint_name}/{deployment.name}", None,
                    {"provisioning_state": deployment.provisioning_state, "reason": deployment.state_reason[-500:]})

    def get_deployment(self, endpoint_name: str, name: str) -> Deployment:
        """One deployment with its provisioning state and instances."""
        deployment: Deployment | None = self.backend.get(_dep_ref(endpoint_name, name))
        if deployment is None:
            self.get_endpoint(endpoint_name)  # NotFound for the endpoint, if that is what is missing
            raise NotFound(f"Endpoint {endpoint_name!r} has no deployment named {name!r}.",
                           hint=f"See 'byom online-deployment list --endpoint-name {endpoint_name}'.")
        return deployment

    def list_deployments(self, endpoint_name: str) -> list[Deployment]:
        """The endpoint's deployments, sorted by name."""
        self.get_endpoint(endpoint_name)
        return sorted(self.backend.list("deployment", endpoint_name), key=lambda d: d.name.lower())

    def delete_deployment(
        self, endpoint_name: str, name: str, *, wait: bool = True, progress: Progress = no_progress
    ) -> None:
        """Stop and delete a deployment. InUse while it has live traffic.

        Mirror traffic to it is removed with it.
        """
        endpoint = self.get_endpoint(endpoint_name)
        old = self.get_deployment(endpoint_name, name)
        rules.check_deployment_deletable(name, endpoint.traffic)
        if endpoint.mirror_traffic.get(name.lower(), 0) > 0:  # Azure refuses to delete a mirrored deployment
            unmirrored = endpoint.replace(mirror_traffic={k: v for k, v in endpoint.mirror_traffic.items()
                                                          if k.lower() != name.lower()})
            what = f"remove the mirror traffic to {name!r}"
            self._announce(what, progress)
            # waited for even with wait=False: Azure refuses the delete until the endpoint has changed
            self._settle(self.backend.put(unmirrored, progress=progress), what, True, progress)
        what = f"delete deployment {name!r} of endpoint {endpoint_name!r}"
        self._announce(what, progress)
        self._settle(self.backend.delete(_dep_ref(endpoint_name, name)), what, wait, progress)
        self._audit("deployment.delete", f"deployment/{endpoint_name}/{old.name}", _deployment_summary(old), None)

    def scale_deployment(
        self, endpoint_name: str, name: str, instance_count: int, *, wait: bool = True,
        progress: Progress = no_progress,
    ) -> Deployment:
        """Change the number of instances (state Scaling until done)."""
        rules.validate_instance_count(instance_count)
        current = self.get_deployment(endpoint_name, name)
        desired = current.replace(instance_count=instance_count, provisioning_state="Scaling", state_reason="",
                                  instances=[], updated_at=utcnow_after(current.updated_at))
        op = self.backend.scale(desired, wait=wait, progress=progress)
        self._audit("deployment.scale", f"deployment/{endpoint_name}/{current.name}",
                    {"instance_count": current.instance_count}, {"instance_count": instance_count})
        what = f"scale deployment {name!r} of endpoint {endpoint_name!r} to {instance_count}"
        return self._outcome(op, desired, what, wait, progress)

    def get_deployment_logs(
        self, endpoint_name: str, name: str, lines: int = 100, container: str = "inference-server"
    ) -> str:
        """The last ``lines`` lines of the deployment's logs."""
        rules.check_log_request(lines, container)
        deployment = self.get_deployment(endpoint_name, name)
        return self.backend.logs(_dep_ref(endpoint_name, deployment.name), lines, container)

    # ---------------------------------------------------------- consumers

    def _consumer_endpoint(self, endpoint_name: str) -> Endpoint:
        """The endpoint, where this workspace has consumers (Unsupported naming API Management where not)."""
        if not self.supports(Capability.CONSUMERS):
            raise Unsupported(NO_CONSUMERS, hint=APIM_HINT)
        return self.get_endpoint(endpoint_name)

    def list_consumers(self, endpoint_name: str) -> list[Consumer]:
        """The endpoint's consumers, sorted by name; their keys are never shown again."""
        self._consumer_endpoint(endpoint_name)
        return sorted(self.backend.consumers(endpoint_name), key=lambda c: c.name.lower())

    def get_consumer(self, endpoint_name: str, name: str) -> Consumer:
        """One consumer of the endpoint (names compared lower-cased)."""
        for consumer in self.list_consumers(endpoint_name):
            if consumer.name.lower() == name.lower():
                return consumer
        raise NotFound(f"Endpoint {endpoint_name!r} has no consumer named {name!r}.",
                       hint=f"See 'byom online-endpoint consumer list -n {endpoint_name}'.")

    def create_consumer(self, endpoint_name: str, name: str, limits: dict[str, int | None] | None = None
                        ) -> IssuedConsumer:
        """A new named key of the endpoint with its limits (``tokens_per_minute``, ``requests_per_minute``,
        ``tokens_per_day``; None or absent: no limit). The key is in the result, and nowhere else ever again:
        only its sha256 is stored. AlreadyExists where the endpoint has a consumer of that name."""
        rules.validate_consumer_name(name)
        wanted = rules.validate_limits(limits or {})
        self._consumer_endpoint(endpoint_name)
        if any(c.name.lower() == name.lower() for c in self.backend.consumers(endpoint_name)):
            raise AlreadyExists(f"Endpoint {endpoint_name!r} already has a consumer named {name!r}.",
                                hint="Change its limits with 'consumer update', or its key with "
                                     "'consumer regenerate-key'.")
        now = utcnow()
        consumer = Consumer(name=name, endpoint_name=endpoint_name, created_by=self.actor, created_at=now,
                            updated_at=now).replace(**wanted)
        key = consumer_keys.new_key()
        self.backend.put_consumer(consumer, consumer_keys.key_sha256(key), new=True)
        self._audit("consumer.create", _consumer_target(consumer), None, consumer.limits())
        return IssuedConsumer(**consumer.to_dict(), key=key)

    def update_consumer(self, endpoint_name: str, name: str, limits: dict[str, int | None]) -> Consumer:
        """Change the limits named in ``limits`` (None removes one); the others and the key stay."""
        wanted = rules.validate_limits(limits)
        if not wanted:
            raise InvalidInput("Nothing to update: pass --tokens-per-minute, --requests-per-minute or "
                               "--tokens-per-day (a number, or none to remove the limit).")
        current = self.get_consumer(endpoint_name, name)
        changed = current.replace(**wanted, updated_at=utcnow_after(current.updated_at))
        self.backend.put_consumer(changed, None)
        self._audit("consumer.update", _consumer_target(current), current.limits(), changed.limits())
        return changed

    def delete_consumer(self, endpoint_name: str, name: str) -> None:
        """Remove a consumer: its key stops working. Its usage stays in the request facts."""
        current = self.get_consumer(endpoint_name, name)
        self.backend.delete_consumer(endpoint_name, current.name)
        self._audit("consumer.delete", _consumer_target(current), current.limits(), None)

    def regenerate_consumer_key(self, endpoint_name: str, name: str) -> IssuedConsumer:
        """A new key for the consumer (shown here, once); the old one stops working. Limits and usage stay."""
        current = self.get_consumer(endpoint_name, name)
        changed = current.replace(updated_at=utcnow_after(current.updated_at))
        key = consumer_keys.new_key()
        self.backend.put_consumer(changed, consumer_keys.key_sha256(key))
        self._audit("consumer.regenerate-key", _consumer_target(current), None, {"key": "regenerated"})
        return IssuedConsumer(**changed.to_dict(), key=key)

    def consumer_usage(self, endpoint_name: str, since: str = "24h", *, consumer: str | None = None,
                       by: str | None = None) -> list[ConsumerUsage]:
        """Requests, input and output tokens and errors per consumer and deployment over the window ``since``
        (``30m``, ``24h``, ``7d``), per ``hour`` or ``day`` where ``by`` says so (:mod:`core.chargeback`).
        A deleted consumer's usage stays reported; a name that is neither a consumer nor in the window is NotFound."""
        window_s = rules.parse_window(since)
        period_s = rules.validate_usage_period(by)
        self._consumer_endpoint(endpoint_name)
        if consumer is not None:
            rules.validate_consumer_name(consumer)
        facts = self.backend.request_facts(endpoint_name, time.time() - window_s)
        rows = chargeback.usage_rows(facts, consumer=consumer, period_s=period_s)
        if consumer is not None and not rows and all(c.name.lower() != consumer.lower()
                                                     for c in self.backend.consumers(endpoint_name)):
            raise NotFound(f"Endpoint {endpoint_name!r} has no consumer named {consumer!r}, and no usage by one "
                           f"in the last {since}.",
                           hint=f"See 'byom online-endpoint consumer list -n {endpoint_name}'.")
        return rows

    # ------------------------------------------------------ mirror report

    def mirror_report(self, endpoint_name: str, deployment: str | None = None, since: str = "1h"
                      ) -> list[MirrorReport]:
        """Per mirrored deployment over the window ``since`` (``30m``, ``1h``, ``7d``): how its answers to
        mirrored requests compare with the primary's (:mod:`core.mirror_report`). ``deployment`` keeps one
        (names compared lower-cased); a name that is neither a deployment nor in the window is NotFound."""
        window_s = rules.parse_window(since)
        if deployment is not None:
            rules.validate_deployment_name(deployment)
        if not self.supports(Capability.MIRROR_REPORTS):
            raise Unsupported(NO_MIRROR_REPORTS, hint=MIRROR_HINT)
        self.get_endpoint(endpoint_name)
        pairs = self.backend.mirrored_answers(endpoint_name, time.time() - window_s)
        rows = mirror_report.reports(pairs, endpoint_name)
        if deployment is None:
            return rows
        rows = [r for r in rows if r.deployment.lower() == deployment.lower()]
        if not rows and all(d.name.lower() != deployment.lower() for d in self.list_deployments(endpoint_name)):
            raise NotFound(f"Endpoint {endpoint_name!r} has no deployment named {deployment!r}, and no mirrored "
                           f"answers from one in the last {since}.",
                           hint=f"See 'byom online-deployment list -e {endpoint_name}'.")
        return rows

    # ------------------------------------------------------------- invoke

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
        the traffic split. The endpoint's primary key (or its token) is used.
        Non-2xx answers are returned, not raised; only an unreachable endpoint
        raises. The scoring URI and credential are kept a while
        (:mod:`core.scoring_targets`), so a prompt costs no management call.
        """
        body = encode_payload(payload)
        target = self._target(endpoint_name)
        answer = self.backend.send(target.endpoint, body, _sent_headers(target, deployment, headers), timeout_s)
        if answer.status_code == 401 and target.cached:  # a key regenerated elsewhere: read it again, once
            self._targets.forget(endpoint_name)
            target = self._target(endpoint_name)
            answer = self.backend.send(target.endpoint, body, _sent_headers(target, deployment, headers), timeout_s)
        return answer

    def invoke_stream(
        self,
        endpoint_name: str,
        payload: dict[str, Any],
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> Generator[StreamEvent, None, None]:
        """Send ``payload`` (a JSON object) with ``"stream": true`` as :meth:`invoke` sends it, and yield the
        answer as it comes: its head first, then each event of the stream (:class:`StreamEvent`).

        Closing the iterator closes the connection, which cancels the generation. Where the endpoint answers
        whole (Azure ML's managed endpoints), the head holds the whole answer, and a 2xx JSON object is its one
        event. ``timeout_s`` bounds the wait for the head and for each piece after it.
        """
        if not isinstance(payload, dict):
            raise InvalidInput('A streamed invoke sends a JSON object (and adds "stream": true to it).')
        return self._stream(endpoint_name, encode_payload({**payload, "stream": True}), deployment, headers,
                            timeout_s)

    def _stream(self, endpoint_name: str, body: bytes, deployment: str | None, headers: dict[str, str] | None,
                timeout_s: float) -> Generator[StreamEvent, None, None]:
        started = time.perf_counter()

        def since() -> float:
            return (time.perf_counter() - started) * 1000

        target = self._target(endpoint_name)
        pieces = self.backend.send_stream(target.endpoint, body, _sent_headers(target, deployment, headers),
                                          timeout_s)
        try:
            head = next(pieces)
            if isinstance(head, InvokeResult) and head.status_code == 401 and target.cached:  # as invoke does
                pieces.close()
                self._targets.forget(endpoint_name)
                target = self._target(endpoint_name)
                pieces = self.backend.send_stream(target.endpoint, body, _sent_headers(target, deployment, headers),
                                                  timeout_s)
                head = next(pieces)
            if not isinstance(head, InvokeResult):
                raise BackendError("The backend sent a stream without its head.")
            yield StreamEvent(since(), head=head)
            content_type = {k.lower(): v for k, v in head.headers.items()}.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                whole = _json_object(head.body) if head.ok else None
                if whole is not None:
                    yield StreamEvent(since(), data=whole)
                return
            events = sse.EventReader()
            for piece in pieces:
                for raw in events.feed(piece) if isinstance(piece, bytes) else ():
                    if (data := sse.event_data(raw)) is not None:
                        yield StreamEvent(since(), data=data)
            if (data := sse.event_data(events.rest())) is not None:
                yield StreamEvent(since(), data=data)
        finally:
            pieces.close()

    def _target(self, endpoint_name: str) -> ScoringTarget:
        def read() -> tuple[Endpoint, EndpointCredentials]:
            return self.get_endpoint(endpoint_name), self.backend.keys(endpoint_name)

        return self._targets.get(endpoint_name, read)

    # ------------------------------------------------------------ metrics

    def get_metrics(self, endpoint_name: str, window_s: int = 3600, bucket_s: int = 60) -> list[DeploymentMetrics]:
        """Per deployment: request and error counts, latency percentiles, and a time series."""
        if window_s < 1 or bucket_s < 1:
            raise InvalidInput("The metrics window and bucket must be at least one second.")
        self.get_endpoint(endpoint_name)
        now = time.time()
        facts = self.backend.request_facts(endpoint_name, now - window_s)
        return summarize(facts, endpoint_name, window_s, bucket_s, now)

    def get_resource_usage(self, endpoint_name: str, window_s: int = 3600) -> list[ResourceSample]:
        """CPU and memory of the endpoint's model-server processes: sampled now, with the samples kept in the window.

        Unsupported where the backend cannot see its deployments' processes.
        """
        self.get_endpoint(endpoint_name)
        return self.backend.resource_usage(endpoint_name, time.time() - window_s)

    # -------------------------------------------------------------- audit

    def record_change(self, action: str, target: str, before: Any = None, after: Any = None) -> None:
        """Audit a change that core made through other operations (a rollout's start and end)."""
        self._audit(action, target, before, after)

    def list_audit(self, limit: int = 100, target_prefix: str | None = None) -> list[AuditRecord]:
        """Changes, newest first; ``target_prefix`` such as ``endpoint/chat``."""
        return self.backend.audit_log(limit, target_prefix)


def _sent_headers(target: ScoringTarget, deployment: str | None, headers: dict[str, str] | None) -> dict[str, str]:
    # A new dict for every request: a deployment header must never outlive its own call.
    sent = {"Content-Type": "application/json", "Authorization": target.authorization, **(headers or {})}
    if deployment:
        sent[DEPLOYMENT_HEADER] = deployment
    return sent


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _dep_ref(endpoint_name: str, name: str) -> Ref:
    return Ref("deployment", name, endpoint=endpoint_name)


def _consumer_target(consumer: Consumer) -> str:
    return f"consumer/{consumer.endpoint_name}/{consumer.name}"


def _capital(what: str) -> str:
    return what[:1].upper() + what[1:]


def _model_summary(model: ModelVersion) -> dict[str, Any]:
    return {"format": model.format, "files": len(model.files), "size_bytes": model.size_bytes,
            "stage": model.stage, "tags": model.tags}


def _endpoint_summary(endpoint: Endpoint) -> dict[str, Any]:
    return {"description": endpoint.description, "tags": endpoint.tags, "traffic": endpoint.traffic,
            "mirror_traffic": endpoint.mirror_traffic}


def _deployment_summary(deployment: Deployment | None) -> dict[str, Any] | None:
    if deployment is None:
        return None
    return {"model": deployment.model, "environment": deployment.environment,
            "instance_type": deployment.instance_type, "instance_count": deployment.instance_count,
            "scoring_script": deployment.scoring_script}

