"""The Workspace contract on an Azure ML workspace, through azure-ai-ml's ``MLClient``.

Azure ML holds the state; this class translates (``translate``), checks the
shared rules before anything is sent (``core.rules``), turns every SDK error
into a core error at one boundary (``errors.azure_errors``) and keeps a local
audit log of the changes made through byom (Azure's activity log has the
rest). How Azure differs from the local backend:

* Stages and approvals live in model tags; per-file sha256 in model
  properties (``translate``).
* Version numbers are allocated here (highest existing + 1) under a lock per
  name, so threads of one process get distinct versions; two processes
  registering one name at the same moment can still collide, and the second
  PUT is then refused by Azure (assets are immutable) or updates the first.
* Environment builds happen in Azure when a deployment first uses an
  environment; the SDK exposes no build status, so a build's state is
  ``Unknown`` and starting a build or a drift report is Unsupported, each
  with the place in Studio to look instead.
* Every change to an endpoint or deployment is a long-running operation:
  with ``wait`` its status is reported every ``progress_every_s`` until it
  is done; without, the call returns once Azure has accepted it.
* A wrong workspace name makes every call answer 404: on the first NotFound
  the workspace itself is read once, and the error then names it.
* Metrics are in Azure Monitor, which azure-ai-ml does not read: Unsupported.
* ``local-python`` becomes an Azure environment (``byom-local-python``) with
  byom's own requirements when a deployment names it.
* Invocations go to the endpoint's ``scoring_uri`` with a fresh header dict per
  request, not ``online_endpoints.invoke`` (see DESIGN.md).
* The SDK's long-running pollers print a dot to stdout on every status read,
  from their own thread, which goes on after a ``wait=False`` call has
  returned: the dot is turned off (``_no_poller_dots``), and stdout goes to
  stderr while a call runs, so that ``-o json`` output stays clean.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import rules
from ..artifacts import (
    check_source,
    copy_verified,
    downloadable,
    is_remote,
    iter_source_files,
    refuse_asset_reference,
    sha256_file,
)
from ..entities import (
    LOCAL_PYTHON,
    AuditRecord,
    Deployment,
    DeploymentMetrics,
    DriftEntry,
    Endpoint,
    EndpointKeys,
    EnvironmentBuild,
    EnvironmentSpec,
    EnvironmentVersion,
    InvokeResult,
    ModelFile,
    ModelSpec,
    ModelVersion,
    StageChange,
    WorkspaceInfo,
    utcnow,
)
from ..environments import parse_conda, with_inference_server
from ..errors import AlreadyExists, AuthFailed, BackendError, ByomError, InUse, InvalidInput, NotFound, Unsupported
from ..store_workspace import default_actor, local_python_environment, parse_asset_ref
from ..workspace import Capability, Progress, VersionRef, Workspace, no_progress
from . import translate as tr
from .errors import azure_errors

log = logging.getLogger(__name__)

DEFAULT_INSTANCE_TYPE = "Standard_DS3_v2"
LOCAL_PYTHON_ON_AZURE = "byom-local-python"
SPEC_TAG = "byom.spec_sha256"


class _StdoutToStderr:
    """Reference-counted ``sys.stdout`` → ``sys.stderr`` swap, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: Any = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved, sys.stdout = sys.stdout, sys.stderr
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    sys.stdout = self._saved


_quiet_stdout = _StdoutToStderr()


class AzureWorkspace(Workspace):
    kind = "azure"

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
        from ..home import default_home
        from ..local.sqlite_store import SqliteStore

        self.ml = ml_client
        self._actor = actor
        self.default_instance_type = default_instance_type
        self.progress_every_s = progress_every_s
        self._transport = transport
        self._http: Any = None
        home = Path(audit_home) if audit_home else default_home() / "azure" / ml_client.workspace_name
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"Cannot create the audit folder {home}: {exc.strerror}.",
                               hint="Point BYOM_HOME at a writable folder.") from exc
        self.audit_store = SqliteStore(home / "audit.db")
        self._name_locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._workspace_seen = False  # reached once: a NotFound is then about what was asked for

    # ------------------------------------------------------------ general

    @property
    def resource_id(self) -> str:
        return (f"/subscriptions/{self.ml.subscription_id}/resourceGroups/{self.ml.resource_group_name}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{self.ml.workspace_name}")

    def studio_url(self, page: str) -> str:
        wsid = (f"/subscriptions/{self.ml.subscription_id}/resourcegroups/{self.ml.resource_group_name}"
                f"/workspaces/{self.ml.workspace_name}")
        return f"https://ml.azure.com/{page}?wsid={wsid}"

    def info(self) -> WorkspaceInfo:
        caps = [Capability.MODELS, Capability.ENVIRONMENTS, Capability.ENDPOINTS, Capability.DEPLOYMENTS,
                Capability.REMOTE_MODEL_PATHS, Capability.DOCKER_BUILDS]
        return WorkspaceInfo(kind=self.kind, name=self.ml.workspace_name, location=self.resource_id,
                             capabilities=sorted(caps))

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self.audit_store.close()

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        try:
            with azure_errors(what), _quiet_stdout():
                yield
        except NotFound as exc:
            missing = self._missing_workspace()
            if missing is not None:
                raise missing from exc
            raise

    def _missing_workspace(self) -> NotFound | None:
        """With a wrong workspace name every call answers 404: say so instead of "no model 'x'".

        The workspace is read once, on the first NotFound only, so that the CLI pays nothing for it
        on the way where everything exists.
        """
        if self._workspace_seen:
            return None
        from .connect import check_workspace

        try:
            check_workspace(self.ml)
        except NotFound as exc:
            return exc
        except ByomError:
            return None  # not a verdict on the workspace: the first error stands
        self._workspace_seen = True
        return None

    @property
    def actor(self) -> str:
        """Who the audit log names: the one given, else ``BYOM_ACTOR``, else the identity signed in to Azure.

        The identity is read from the claims of the access token azure-ai-ml uses (the credential
        caches it); the OS user stands in when the token says nothing readable.
        """
        if self._actor is None:
            self._actor = os.environ.get("BYOM_ACTOR") or signed_in_identity(self.ml) or default_actor()
        return self._actor

    def _lock_for(self, kind: str, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._name_locks.setdefault((kind, name), threading.Lock())

    def _audit(self, action: str, target: str, before: Any = None, after: Any = None) -> None:
        with self.audit_store.transaction() as txn:
            txn.audit(AuditRecord(at=utcnow(), actor=self.actor, action=action, target=target,
                                  before=before, after=after))

    def _begin(self, what: str, start: Any) -> Any:
        """Start a long-running operation (``start`` calls a ``begin_*``) and return its poller."""
        _no_poller_dots()
        with self._call(what):
            return start()

    def _wait(self, poller: Any, what: str, progress: Progress) -> Any:
        """Block on a begin_* poller, reporting its status every ``progress_every_s``."""
        started = time.monotonic()
        with self._call(what):
            while not poller.done():
                progress(f"{_capital(what)}: {poller.status()} ({time.monotonic() - started:.0f} s)", None)
                poller.wait(self.progress_every_s)
            return poller.result()

    def _settle(self, poller: Any, what: str, wait: bool, progress: Progress) -> None:
        """Wait for a begin_* poller (``wait``), or leave it to Azure and say so."""
        if not wait:
            progress(f"{_capital(what)}: accepted; Azure ML goes on with it", None)
            return
        self._wait(poller, what, progress)
        progress(f"{_capital(what)}: done", 1.0)

    # ------------------------------------------------------------- models

    def _sdk_versions(self, ops: Any, kind: str, name: str, view: str = "ALL") -> list[Any]:
        from azure.ai.ml.constants import ListViewType

        with self._call(f"list the versions of {kind} {name!r}"):
            return [v for v in ops.list(name=name, list_view_type=getattr(ListViewType, view))
                    if str(v.version).isdigit()]

    def _archived(self, ops: Any, kind: str, name: str) -> set[int]:
        return {int(v.version) for v in self._sdk_versions(ops, kind, name, "ARCHIVED_ONLY")}

    def _resolve(self, ops: Any, kind: str, name: str, version: VersionRef, *, include_archived: bool = False) -> int:
        if isinstance(version, str) and version.strip().lower() == "latest":
            every = self._sdk_versions(ops, kind, name)
            archived = self._archived(ops, kind, name) if every else set()
            live = [int(v.version) for v in every if include_archived or int(v.version) not in archived]
            if not live:
                if every:
                    raise NotFound(f"Every version of {kind} {name!r} is archived.", hint="Restore one, or name a version.")
                raise NotFound(f"No {kind} named {name!r}.", hint=f"See 'byom {kind} list'.")
            return max(live)
        return rules.validate_version(version, kind)

    def _get_sdk_model(self, name: str, number: int) -> Any:
        with self._call(f"get model {name}:{number}"):
            return self.ml.models.get(name=name, version=str(number))

    def _model(self, name: str, number: int) -> ModelVersion:
        sdk = self._get_sdk_model(name, number)
        return tr.model_from_sdk(sdk, archived=number in self._archived(self.ml.models, "model", name))

    def create_model(self, spec: ModelSpec, progress: Progress = no_progress) -> ModelVersion:
        from ..model_sources import prepare_model_source

        rules.validate_asset_name(spec.name, "model")
        tags = rules.validate_tags(spec.tags)
        if any(k.startswith(tr.PREFIX) for k in tags):
            raise InvalidInput(f"Tags starting with {tr.PREFIX!r} are byom's own: rename them.")
        explicit = rules.validate_version(spec.version) if spec.version is not None else None
        with tempfile.TemporaryDirectory(prefix="byom-package-") as scratch:
            if is_remote(spec.path):  # registered where it lies: nothing to copy, nothing to hash
                origin = source = _remote_model_path(spec)
                fmt, props, files = "files", {}, []
            else:
                src = check_source(spec.path)
                local, fmt, props = prepare_model_source(src, package=spec.package, scratch=Path(scratch),
                                                         progress=progress)
                progress("Hashing files", 0.0)
                files = [ModelFile(rel, full.stat().st_size, sha256_file(full))
                         for full, rel in iter_source_files(local)]
                origin, source = str(src.resolve()), str(local)
            with self._lock_for("model", spec.name):
                existing = {int(v.version) for v in self._sdk_versions(self.ml.models, "model", spec.name)}
                if explicit is not None and explicit in existing:
                    raise AlreadyExists(f"Model {spec.name!r} version {explicit} already exists.",
                                        hint="Leave out --version to get the next one, or pick another.")
                version = explicit or max(existing, default=0) + 1
                model = ModelVersion(
                    name=spec.name, version=version, type=spec.type, format=fmt, description=spec.description,
                    tags=tags, properties={**spec.properties, **props}, files=files,
                    size_bytes=sum(f.size for f in files), source=origin,
                )
                progress(f"Uploading {len(files)} file(s) and registering {model.ref}" if files
                         else f"Registering {model.ref} from {source}", 0.1)
                with self._call(f"register model {model.ref}"):
                    created = self.ml.models.create_or_update(tr.model_to_sdk(model, local_path=source))
        result = tr.model_from_sdk(created)
        self._audit("model.create", f"model/{result.ref}", None, _model_summary(result))
        progress(f"Registered {result.ref}", 1.0)
        return result

    def _latest_of_each(self, ops: Any, kind: str, include_archived: bool) -> list[tuple[str, int, set[int]]]:
        from azure.ai.ml.constants import ListViewType

        with self._call(f"list {kind}s"):
            names = sorted({c.name for c in ops.list(list_view_type=ListViewType.ALL)})
        out = []
        for name in names:
            every = {int(v.version) for v in self._sdk_versions(ops, kind, name)}
            archived = self._archived(ops, kind, name) if every else set()
            candidates = every if include_archived else every - archived
            if candidates:
                out.append((name, max(candidates), archived))
        return out

    def list_models(self, include_archived: bool = False) -> list[ModelVersion]:
        return [tr.model_from_sdk(self._get_sdk_model(name, number), archived=number in archived)
                for name, number, archived in self._latest_of_each(self.ml.models, "model", include_archived)]

    def list_model_versions(self, name: str, include_archived: bool = False) -> list[ModelVersion]:
        every = self._sdk_versions(self.ml.models, "model", name)
        if not every:
            raise NotFound(f"No model named {name!r}.", hint="See 'byom model list'.")
        archived = self._archived(self.ml.models, "model", name)
        rows = [tr.model_from_sdk(v, archived=int(v.version) in archived) for v in every
                if include_archived or int(v.version) not in archived]
        return sorted(rows, key=lambda m: m.version, reverse=True)

    def get_model(self, name: str, version: VersionRef = "latest") -> ModelVersion:
        return self._model(name, self._resolve(self.ml.models, "model", name, version))

    def _put_version(self, versions: Any, sdk: Any, archived: bool, what: str) -> Any:
        """PUT a changed model or environment version, its archived flag kept in that one request.

        ``create_or_update`` always sends ``isArchived: false``: an archived version would show in
        lists and as ``latest`` until a second PUT archived it again. ``versions`` is the SDK's
        private REST operation group for that kind. Returns the REST object saved.
        """
        body = sdk._to_rest_object()
        body.properties.is_archived = archived
        with self._call(what):
            return versions.create_or_update(
                name=sdk.name, version=str(sdk.version), body=body,
                resource_group_name=self.ml.resource_group_name, workspace_name=self.ml.workspace_name,
            )

    def _save_model(self, sdk: Any, archived: bool, what: str) -> ModelVersion:
        from azure.ai.ml.entities import Model

        saved = self._put_version(self.ml.models._model_versions_operation, sdk, archived, what)
        return tr.model_from_sdk(Model._from_rest_object(saved), archived=archived)

    def update_model(
        self, name: str, version: VersionRef, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> ModelVersion:
        new_tags = rules.validate_tags(tags) if tags is not None else None
        number = self._resolve(self.ml.models, "model", name, version)
        current = self._model(name, number)
        sdk = self._get_sdk_model(name, number)
        before = {"description": current.description, "tags": current.tags}
        if description is not None:
            sdk.description = description
        if new_tags is not None:
            sdk.tags = {**new_tags, **{k: v for k, v in (sdk.tags or {}).items() if k.startswith(tr.PREFIX)}}
        updated = self._save_model(sdk, current.archived, f"update model {name}:{number}")
        self._audit("model.update", f"model/{name}:{number}", before,
                    {"description": updated.description, "tags": updated.tags})
        return updated

    def promote_model(
        self, name: str, version: VersionRef, stage: str, *, approver: str, note: str = ""
    ) -> ModelVersion:
        number = self._resolve(self.ml.models, "model", name, version)
        current = self._model(name, number)
        rules.check_promotion(current.stage, stage, approver)
        change = StageChange(current.stage, stage, approver.strip(), note, utcnow())
        promoted = current.replace(stage=stage, stage_history=[*current.stage_history, change])
        sdk = self._get_sdk_model(name, number)
        sdk.tags = {**(sdk.tags or {}), **tr.stage_to_tags(promoted)}
        result = self._save_model(sdk, current.archived, f"promote model {name}:{number}")
        self._audit("model.promote", f"model/{name}:{number}", {"stage": current.stage},
                    {"stage": stage, "approver": change.approver, "note": note})
        return result

    def _set_archived(self, ops: Any, kind: str, name: str, version: VersionRef | None, archived: bool,
                      read: Callable[[str, int], Any]) -> list[Any]:
        if version is None:
            numbers = [int(v.version) for v in self._sdk_versions(ops, kind, name)]
            if not numbers:
                raise NotFound(f"No {kind} named {name!r}.", hint=f"See 'byom {kind} list'.")
        else:
            numbers = [self._resolve(ops, kind, name, version, include_archived=True)]
            read(name, numbers[0])  # NotFound for a version that does not exist
        already = self._archived(ops, kind, name)
        verb = "archive" if archived else "restore"
        for number in sorted(numbers):
            if (number in already) != archived:
                with self._call(f"{verb} {kind} {name}:{number}"):
                    getattr(ops, verb)(name=name, version=str(number))
                self._audit(f"{kind}.{verb}", f"{kind}/{name}:{number}", {"archived": not archived},
                            {"archived": archived})
        return [read(name, n) for n in sorted(numbers)]

    def archive_model(self, name: str, version: VersionRef | None = None) -> list[ModelVersion]:
        return self._set_archived(self.ml.models, "model", name, version, True, self._model)

    def restore_model(self, name: str, version: VersionRef | None = None) -> list[ModelVersion]:
        return self._set_archived(self.ml.models, "model", name, version, False, self._model)

    def _deployments_using(self, ref: str) -> list[str]:
        users = []
        for endpoint in self.list_endpoints():
            users += [f"{endpoint.name}/{d.name}" for d in self.list_deployments(endpoint.name) if d.model == ref]
        return users

    def delete_model(self, name: str, version: VersionRef) -> None:
        number = self._resolve(self.ml.models, "model", name, version, include_archived=True)
        model = self._model(name, number)
        users = self._deployments_using(model.ref)
        if users:
            raise InUse(f"Model {model.ref} is used by deployment(s) {', '.join(users)}.",
                        hint="Delete or update those deployments first.")
        with self._call(f"delete model {model.ref}"):
            # azure-ai-ml has no public delete for model versions (it archives); the REST operation exists.
            self.ml.models._model_versions_operation.delete(
                name=name, version=str(number), resource_group_name=self.ml.resource_group_name,
                workspace_name=self.ml.workspace_name,
            )
        self._audit("model.delete", f"model/{model.ref}", _model_summary(model), None)

    def download_model(self, name: str, version: VersionRef, dest: str | Path) -> Path:
        number = self._resolve(self.ml.models, "model", name, version, include_archived=True)
        model = self._model(name, number)
        target = Path(dest).expanduser() / name
        if not downloadable(model):
            raise Unsupported(f"{model.ref} was registered from {model.path}, which azure-ai-ml cannot download "
                              "(it reads model files from a datastore only).",
                              hint=_remote_download_hint(model.source, model.path))
        try:
            if target.exists() and any(target.iterdir()):
                raise InvalidInput(f"{target} already exists and is not empty: choose another --download-path.")
            with tempfile.TemporaryDirectory(prefix="byom-download-") as scratch:
                with self._call(f"download model {model.ref}"):
                    self.ml.models.download(name=name, version=str(number), download_path=scratch)
                root = _downloaded_root(Path(scratch) / name, model)
                if model.files:
                    copy_verified(root, model.files, target)
                else:  # registered from cloud storage: no hashes were recorded to check against
                    shutil.copytree(root, target, dirs_exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"Cannot copy {model.ref} into {target}: {exc.strerror or exc}.",
                               hint="Choose a folder you can write to (a new or empty folder, not a file).") from exc
        return target

    # ------------------------------------------------------- environments

    def create_environment(self, spec: EnvironmentSpec) -> EnvironmentVersion:
        rules.validate_asset_name(spec.name, "environment")
        rules.refuse_built_in_environment(spec.name, "replaced", ": choose another name")
        rules.validate_tags(spec.tags)
        rules.check_environment_source(spec, docker_builds=True)
        if spec.conda_file:
            parse_conda(spec.conda_file)
        explicit = rules.validate_version(spec.version, "environment") if spec.version is not None else None
        with self._lock_for("environment", spec.name):
            existing = {int(v.version) for v in self._sdk_versions(self.ml.environments, "environment", spec.name)}
            if explicit is not None and explicit in existing:
                raise AlreadyExists(f"Environment {spec.name!r} version {explicit} already exists.",
                                    hint="Leave out --version to get the next one, or pick another.")
            version = explicit or max(existing, default=0) + 1
            with self._call(f"create environment {spec.name}:{version}"):
                created = self.ml.environments.create_or_update(tr.environment_to_sdk(spec, version))
        env = tr.environment_from_sdk(created)
        self._audit("environment.create", f"environment/{env.ref}", None,
                    {"image": env.image, "build_context": env.build_context, "python": env.python,
                     "requirements": env.pip_requirements})
        return env

    def list_environments(self, include_archived: bool = False) -> list[EnvironmentVersion]:
        envs = [tr.environment_from_sdk(self._get_sdk_environment(name, number), archived=number in archived)
                for name, number, archived in self._latest_of_each(self.ml.environments, "environment", include_archived)]
        return [local_python_environment(), *envs]

    def list_environment_versions(self, name: str) -> list[EnvironmentVersion]:
        if name == LOCAL_PYTHON:
            return [local_python_environment()]
        every = self._sdk_versions(self.ml.environments, "environment", name)
        if not every:
            raise NotFound(f"No environment named {name!r}.", hint="See 'byom environment list'.")
        archived = self._archived(self.ml.environments, "environment", name)
        rows = [tr.environment_from_sdk(v, archived=int(v.version) in archived) for v in every]
        return sorted(rows, key=lambda e: e.version, reverse=True)

    def _get_sdk_environment(self, name: str, number: int) -> Any:
        with self._call(f"get environment {name}:{number}"):
            return self.ml.environments.get(name=name, version=str(number))

    def get_environment(self, name: str, version: VersionRef = "latest") -> EnvironmentVersion:
        if name == LOCAL_PYTHON:
            if str(version) not in ("latest", "1"):
                raise NotFound(f"{LOCAL_PYTHON} has only version 1.")
            return local_python_environment()
        return self._environment(name, self._resolve(self.ml.environments, "environment", name, version))

    def _environment(self, name: str, number: int) -> EnvironmentVersion:
        sdk = self._get_sdk_environment(name, number)
        return tr.environment_from_sdk(sdk, archived=number in self._archived(self.ml.environments, "environment", name))

    def update_environment(
        self, name: str, version: VersionRef, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> EnvironmentVersion:
        rules.refuse_built_in_environment(name, "changed")
        new_tags = rules.validate_tags(tags) if tags is not None else None
        from azure.ai.ml.entities import Environment

        number = self._resolve(self.ml.environments, "environment", name, version)
        current = self._environment(name, number)
        sdk = self._get_sdk_environment(name, number)
        before = {"description": current.description, "tags": current.tags}
        if description is not None:
            sdk.description = description
        if new_tags is not None:
            sdk.tags = {**new_tags, **{k: v for k, v in (sdk.tags or {}).items() if k.startswith(tr.PREFIX)}}
        rest = self._put_version(self.ml.environments._version_operations, sdk, current.archived,
                                 f"update environment {name}:{number}")
        saved = tr.environment_from_sdk(Environment._from_rest_object(rest), archived=current.archived)
        self._audit("environment.update", f"environment/{name}:{number}", before,
                    {"description": saved.description, "tags": saved.tags})
        return saved

    def archive_environment(self, name: str, version: VersionRef | None = None) -> list[EnvironmentVersion]:
        rules.refuse_built_in_environment(name, "archived")
        return self._set_archived(self.ml.environments, "environment", name, version, True, self._environment)

    def restore_environment(self, name: str, version: VersionRef | None = None) -> list[EnvironmentVersion]:
        rules.refuse_built_in_environment(name, "restored")
        return self._set_archived(self.ml.environments, "environment", name, version, False, self._environment)

    def get_environment_build(self, name: str, version: VersionRef = "latest") -> EnvironmentBuild:
        env = self.get_environment(name, version)
        if env.built_in:
            return EnvironmentBuild(name=env.name, version=env.version, state="Succeeded",
                                    message="Built in: on Azure ML it becomes the environment "
                                            f"{LOCAL_PYTHON_ON_AZURE!r} when a deployment first uses it.")
        return EnvironmentBuild(
            name=env.name, version=env.version, state="Unknown",
            message=("Azure ML builds this environment's image when a deployment first uses it, and azure-ai-ml "
                     "does not report build status. See the build log in Studio: "
                     f"{self.studio_url(f'environments/{env.name}/version/{env.version}')}"),
        )

    def build_environment(
        self, name: str, version: VersionRef = "latest", *, force: bool = False, wait: bool = True,
        progress: Progress = no_progress,
    ) -> EnvironmentBuild:
        self.get_environment(name, version)
        raise Unsupported("Azure ML builds an environment's image when a deployment first uses it; "
                          "azure-ai-ml cannot start or watch a build.",
                          hint="Deploy with the environment and follow the build log in Studio.")

    def environment_drift(self, name: str, version: VersionRef = "latest") -> list[DriftEntry]:
        self.get_environment(name, version)
        raise Unsupported("What is installed in an Azure ML environment's image is not visible through azure-ai-ml.",
                          hint="Compare against a local build with the local workspace (byom environment drift).")

    def _local_python_on_azure(self) -> str:
        """``azureml:byom-local-python:N``: byom's own requirements as an Azure environment, created once."""
        env = local_python_environment()
        python = ".".join((env.python or "3.11").split(".")[:2])
        conda = yaml_dump({"name": LOCAL_PYTHON_ON_AZURE, "channels": ["conda-forge"],
                           "dependencies": [f"python={python}", "pip", {"pip": with_inference_server(env.pip_requirements)}]})
        digest = hashlib.sha256(conda.encode()).hexdigest()[:16]
        with self._lock_for("environment", LOCAL_PYTHON_ON_AZURE):
            for v in self._sdk_versions(self.ml.environments, "environment", LOCAL_PYTHON_ON_AZURE):
                if (v.tags or {}).get(SPEC_TAG) == digest:
                    return f"azureml:{LOCAL_PYTHON_ON_AZURE}:{v.version}"
        spec = EnvironmentSpec(name=LOCAL_PYTHON_ON_AZURE, conda_file=conda, tags={SPEC_TAG: digest},
                               description="byom's built-in local-python environment, as an Azure ML environment.")
        return f"azureml:{self.create_environment(spec).ref}"

    # ---------------------------------------------------------- endpoints

    def _get_sdk_endpoint(self, name: str) -> Any:
        with self._call(f"get endpoint {name!r}"):
            return self.ml.online_endpoints.get(name=name)

    def _deployment_names(self, endpoint_name: str) -> list[str]:
        with self._call(f"list the deployments of endpoint {endpoint_name!r}"):
            return [d.name for d in self.ml.online_deployments.list(endpoint_name=endpoint_name)]

    def _put_endpoint(self, sdk: Any, what: str, *, wait: bool = True, progress: Progress = no_progress) -> Endpoint:
        progress(_capital(what), 0.0)
        poller = self._begin(what, lambda: self.ml.online_endpoints.begin_create_or_update(sdk))
        self._settle(poller, what, wait, progress)
        return self.get_endpoint(sdk.name)  # the SDK's get lists every deployment, 0 % included

    def create_or_update_endpoint(
        self, endpoint: Endpoint, *, wait: bool = True, progress: Progress = no_progress
    ) -> Endpoint:
        rules.validate_endpoint_name(endpoint.name)
        if endpoint.auth_mode != "key":
            raise InvalidInput(f"Auth mode {endpoint.auth_mode!r} is not supported: use 'key'.")
        tags = rules.validate_tags(endpoint.tags)
        try:
            old: Endpoint | None = tr.endpoint_from_sdk(self._get_sdk_endpoint(endpoint.name))
            names = self._deployment_names(endpoint.name)
        except NotFound:
            old, names = None, []
        traffic, mirror = rules.validate_traffic(endpoint.traffic, endpoint.mirror_traffic, names)
        wanted = endpoint.replace(tags=tags, traffic=traffic, mirror_traffic=mirror)
        verb = "update" if old else "create"
        result = self._put_endpoint(tr.endpoint_to_sdk(wanted), f"{verb} endpoint {endpoint.name!r}",
                                    wait=wait, progress=progress)
        self._audit(f"endpoint.{verb}", f"endpoint/{endpoint.name}", _endpoint_summary(old) if old else None,
                    _endpoint_summary(result))
        return result

    def get_endpoint(self, name: str) -> Endpoint:
        return tr.endpoint_from_sdk(self._get_sdk_endpoint(name))

    def list_endpoints(self) -> list[Endpoint]:
        with self._call("list endpoints"):
            endpoints = [tr.endpoint_from_sdk(e) for e in self.ml.online_endpoints.list()]
        return sorted(endpoints, key=lambda e: e.name)

    def delete_endpoint(self, name: str, *, wait: bool = True, progress: Progress = no_progress) -> None:
        old = self.get_endpoint(name)
        what = f"delete endpoint {name!r}"
        progress(_capital(what), 0.0)
        poller = self._begin(what, lambda: self.ml.online_endpoints.begin_delete(name=name))
        self._settle(poller, what, wait, progress)
        self._audit("endpoint.delete", f"endpoint/{name}", _endpoint_summary(old), None)

    def get_keys(self, name: str) -> EndpointKeys:
        with self._call(f"get the keys of endpoint {name!r}"):
            return tr.keys_from_sdk(self.ml.online_endpoints.get_keys(name=name))

    def regenerate_key(
        self, name: str, key_type: str = "primary", *, wait: bool = True, progress: Progress = no_progress
    ) -> EndpointKeys:
        if key_type not in ("primary", "secondary"):
            raise InvalidInput(f"Unknown key type {key_type!r}: use primary or secondary.")
        what = f"regenerate the {key_type} key of endpoint {name!r}"
        progress(_capital(what), 0.0)
        poller = self._begin(what, lambda: self.ml.online_endpoints.begin_regenerate_keys(name=name, key_type=key_type))
        self._settle(poller, what, wait, progress)
        self._audit("endpoint.regenerate-key", f"endpoint/{name}", None, {"key_type": key_type})
        return self.get_keys(name)

    def set_traffic(
        self, name: str, traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None, *,
        wait: bool = True, progress: Progress = no_progress,
    ) -> Endpoint:
        sdk = self._get_sdk_endpoint(name)
        old = tr.endpoint_from_sdk(sdk)
        names = self._deployment_names(name)
        mirror_in = old.mirror_traffic if mirror_traffic is None else mirror_traffic
        live, mirror = rules.validate_traffic(traffic, mirror_in, names)
        sdk.traffic, sdk.mirror_traffic = live, mirror  # lower-cased, as azure-ai-ml sends them anyway
        result = self._put_endpoint(sdk, f"set the traffic of endpoint {name!r}", wait=wait, progress=progress)
        self._audit("endpoint.traffic", f"endpoint/{name}",
                    {"traffic": old.traffic, "mirror_traffic": old.mirror_traffic},
                    {"traffic": result.traffic, "mirror_traffic": result.mirror_traffic})
        return result

    # -------------------------------------------------------- deployments

    def _asset_id(self, ref: str, kind: str) -> str:
        name, version = parse_asset_ref(ref, kind)
        if kind == "environment":
            if name == LOCAL_PYTHON:
                return self._local_python_on_azure()
            return f"azureml:{self.get_environment(name, version).ref}"
        return f"azureml:{self.get_model(name, version).ref}"

    def _get_sdk_deployment(self, endpoint_name: str, name: str) -> Any:
        with self._call(f"get deployment {name!r} of endpoint {endpoint_name!r}"):
            return self.ml.online_deployments.get(name=name, endpoint_name=endpoint_name)

    def create_or_update_deployment(
        self, deployment: Deployment, *, wait: bool = True, progress: Progress = no_progress
    ) -> Deployment:
        rules.validate_deployment_name(deployment.name)
        rules.validate_instance_count(deployment.instance_count)
        if deployment.code_path is not None:
            code = Path(deployment.code_path).expanduser()
            if not code.is_dir():
                raise InvalidInput(f"Code folder {str(code)!r} does not exist: point code_configuration.code at a folder.")
            script = deployment.scoring_script or ""
            if not script or not (code / script).is_file():
                raise InvalidInput(f"Scoring script {script!r} is not in {str(code)!r}: check code_configuration.scoring_script.")
        settings = deployment.request_settings
        if settings.request_timeout_ms < 1 or settings.max_concurrent_requests_per_instance < 1:
            raise InvalidInput("request_settings must be positive: request_timeout_ms ≥ 1 and max_concurrent_requests_per_instance ≥ 1.")
        self.get_endpoint(deployment.endpoint_name)
        model_id = self._asset_id(deployment.model, "model")
        environment_id = self._asset_id(deployment.environment, "environment")
        try:
            existing: Deployment | None = self.get_deployment(deployment.endpoint_name, deployment.name)
        except NotFound:
            existing = None
        instance_type = deployment.instance_type
        if instance_type in ("", "local"):
            instance_type = existing.instance_type if existing else self.default_instance_type
        sdk = tr.deployment_to_sdk(deployment, model_id=model_id, environment_id=environment_id,
                                   instance_type=instance_type)
        verb = "update" if existing else "create"
        what = f"{verb} deployment {deployment.name!r} of endpoint {deployment.endpoint_name!r}"
        progress(f"{'Updating' if existing else 'Creating'} deployment {deployment.name} (uploading code)", 0.0)
        poller = self._begin(what, lambda: self.ml.online_deployments.begin_create_or_update(sdk))
        desired = tr.deployment_from_sdk(sdk, deployment.endpoint_name)
        self._audit(f"deployment.{verb}", f"deployment/{deployment.endpoint_name}/{deployment.name}",
                    _deployment_summary(existing), _deployment_summary(desired))
        return self._finish(poller, deployment.endpoint_name, deployment.name, what, wait, progress)

    def _finish(self, poller: Any, endpoint_name: str, name: str, what: str, wait: bool,
                progress: Progress) -> Deployment:
        if not wait:
            return self.get_deployment(endpoint_name, name)
        reason = ""
        try:
            self._wait(poller, what, progress)
        except AuthFailed:
            raise
        except ByomError as exc:  # the operation ended Failed: report it on the deployment
            reason = exc.message
        result = self.get_deployment(endpoint_name, name)
        if reason or result.provisioning_state == "Failed":
            result = result.replace(provisioning_state="Failed", state_reason=reason or result.state_reason)
        self._audit("deployment.state", f"deployment/{endpoint_name}/{name}", None,
                    {"provisioning_state": result.provisioning_state, "reason": result.state_reason[-500:]})
        progress(f"Deployment {name}: {result.provisioning_state}", 1.0)
        return result

    def get_deployment(self, endpoint_name: str, name: str) -> Deployment:
        return tr.deployment_from_sdk(self._get_sdk_deployment(endpoint_name, name), endpoint_name)

    def list_deployments(self, endpoint_name: str) -> list[Deployment]:
        self.get_endpoint(endpoint_name)
        with self._call(f"list the deployments of endpoint {endpoint_name!r}"):
            rows = [tr.deployment_from_sdk(d, endpoint_name)
                    for d in self.ml.online_deployments.list(endpoint_name=endpoint_name)]
        return sorted(rows, key=lambda d: d.name.lower())

    def delete_deployment(
        self, endpoint_name: str, name: str, *, wait: bool = True, progress: Progress = no_progress
    ) -> None:
        sdk_endpoint = self._get_sdk_endpoint(endpoint_name)
        endpoint = tr.endpoint_from_sdk(sdk_endpoint)
        old = self.get_deployment(endpoint_name, name)
        rules.check_deployment_deletable(name, endpoint.traffic)
        if endpoint.mirror_traffic.get(name.lower(), 0) > 0:  # Azure refuses to delete a mirrored deployment
            sdk_endpoint.mirror_traffic = {k: v for k, v in (sdk_endpoint.mirror_traffic or {}).items()
                                           if k.lower() != name.lower()}
            # waited for even with wait=False: Azure refuses the delete until the endpoint has changed
            self._put_endpoint(sdk_endpoint, f"remove the mirror traffic to {name!r}", progress=progress)
        what = f"delete deployment {name!r} of endpoint {endpoint_name!r}"
        progress(_capital(what), 0.0)
        poller = self._begin(what, lambda: self.ml.online_deployments.begin_delete(name=name,
                                                                                   endpoint_name=endpoint_name))
        self._settle(poller, what, wait, progress)
        self._audit("deployment.delete", f"deployment/{endpoint_name}/{old.name}", _deployment_summary(old), None)

    def scale_deployment(
        self, endpoint_name: str, name: str, instance_count: int, *, wait: bool = True,
        progress: Progress = no_progress,
    ) -> Deployment:
        rules.validate_instance_count(instance_count)
        sdk = self._get_sdk_deployment(endpoint_name, name)
        before = sdk.instance_count
        sdk.instance_count = instance_count
        what = f"scale deployment {name!r} of endpoint {endpoint_name!r} to {instance_count}"
        poller = self._begin(what, lambda: self.ml.online_deployments.begin_create_or_update(sdk))
        self._audit("deployment.scale", f"deployment/{endpoint_name}/{sdk.name}",
                    {"instance_count": before}, {"instance_count": instance_count})
        return self._finish(poller, endpoint_name, sdk.name, what, wait, progress)

    def get_deployment_logs(
        self, endpoint_name: str, name: str, lines: int = 100, container: str = "inference-server"
    ) -> str:
        if container not in ("inference-server", "storage-initializer"):
            raise InvalidInput(f"Unknown container {container!r}: use inference-server or storage-initializer.")
        if lines < 1:
            raise InvalidInput("--lines must be at least 1.")
        with self._call(f"get the logs of deployment {name!r}"):
            return self.ml.online_deployments.get_logs(name=name, endpoint_name=endpoint_name, lines=lines,
                                                       container_type=container) or ""

    # ------------------------------------------------------------- invoke

    def _http_client(self) -> Any:
        if self._http is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import HeadersPolicy

            # No retry policy: a test prompt is sent once, and its latency is the request's own.
            self._http = PipelineClient(base_url="", transport=self._transport, policies=[HeadersPolicy()])
        return self._http

    def invoke(
        self,
        endpoint_name: str,
        payload: Any,
        *,
        deployment: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> InvokeResult:
        from azure.core.rest import HttpRequest

        endpoint = self.get_endpoint(endpoint_name)
        keys = self.get_keys(endpoint_name)
        if isinstance(payload, bytes):
            body = payload
        elif isinstance(payload, str):
            body = payload.encode("utf-8")
        else:
            body = json.dumps(payload).encode("utf-8")
        # A new dict for every request: a deployment header must never outlive its own call.
        sent = {"Content-Type": "application/json", "Authorization": f"Bearer {keys.primary_key}", **(headers or {})}
        if deployment:
            sent["azureml-model-deployment"] = deployment
        started = time.perf_counter()
        with self._call(f"invoke endpoint {endpoint_name!r}"):
            response = self._http_client().send_request(
                HttpRequest("POST", endpoint.scoring_uri, headers=sent, content=body),
                connection_timeout=min(timeout_s, 30.0), read_timeout=timeout_s,
            )
            text = response.text()
        latency_ms = (time.perf_counter() - started) * 1000
        answer = {k.lower(): v for k, v in response.headers.items()}
        return InvokeResult(
            status_code=response.status_code, body=text, headers=answer,
            deployment=answer.get("azureml-model-deployment"), latency_ms=latency_ms,
            request_id=answer.get("x-request-id", answer.get("x-ms-request-id", "")),
        )

    # ------------------------------------------------------------ metrics

    def get_metrics(self, endpoint_name: str, window_s: int = 3600, bucket_s: int = 60) -> list[DeploymentMetrics]:
        self.get_endpoint(endpoint_name)
        raise Unsupported(
            "Azure ML keeps request counts and latencies in Azure Monitor, which azure-ai-ml does not read.",
            hint=f"See the endpoint's Monitoring tab in Studio: {self.studio_url(f'endpoints/realtime/{endpoint_name}/detail')}",
        )

    # -------------------------------------------------------------- audit

    def list_audit(self, limit: int = 100, target_prefix: str | None = None) -> list[AuditRecord]:
        return self.audit_store.list_audit(limit, target_prefix)


def _no_poller_dots() -> None:
    """Turn off the dot azure-ai-ml's ``AzureMLPolling`` prints to stdout at each status read.

    It is printed from the poller's own thread, which goes on after a
    ``wait=False`` call has returned (and may be inside a status read when it
    does), where no redirection of ``sys.stdout`` around the call reaches it:
    so the class goes back to ``ARMPolling``'s ``update_status``, the same
    without the dot, before any poller starts.
    """
    try:
        from azure.ai.ml._utils._azureml_polling import AzureMLPolling
        from azure.mgmt.core.polling.arm_polling import ARMPolling
    except ImportError:  # pragma: no cover - another azure-ai-ml: the call's stdout redirection still applies
        return
    if AzureMLPolling.update_status is not ARMPolling.update_status:
        AzureMLPolling.update_status = ARMPolling.update_status  # type: ignore[method-assign]


def signed_in_identity(ml_client: Any) -> str | None:
    """The user (upn) or application (``app:<id>``) an MLClient's credential signs in as; None if unreadable.

    The token is only decoded to read a name for the audit log, never trusted for anything else.
    """
    try:
        token = ml_client._credential.get_token("https://management.azure.com/.default").token
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except Exception:  # noqa: BLE001 - any failure means: no name from Azure
        log.debug("The signed-in identity could not be read from the access token.")
        return None
    if not isinstance(claims, dict):
        return None
    for claim in ("upn", "unique_name", "preferred_username", "email"):
        if isinstance(claims.get(claim), str) and claims[claim]:
            return claims[claim]
    for claim in ("appid", "azp", "oid"):
        if isinstance(claims.get(claim), str) and claims[claim]:
            return f"{'app' if claim != 'oid' else 'oid'}:{claims[claim]}"
    return None


def _capital(what: str) -> str:
    return what[:1].upper() + what[1:]


def yaml_dump(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def _remote_model_path(spec: ModelSpec) -> str:
    """A model path in cloud storage, as the workspace's model registry takes it."""
    path = spec.path.strip()
    refuse_asset_reference(path)
    if spec.package:
        raise InvalidInput(f"--package converts a GGUF file on this machine, and {path!r} is in remote storage.",
                           hint="Download the file first and register it with --package, or register it as it is.")
    if path.lower().startswith("azureml://registries/"):
        raise InvalidInput(f"{path!r} is in an Azure ML registry, not in this workspace's storage.",
                           hint="Deploy the registry's model by its id, or download it and register the files.")
    return path


def _remote_download_hint(*paths: str) -> str:
    """What to run instead; ``paths``: where byom registered the version from, and where Azure keeps it."""
    job = next((m for p in paths if (m := re.match(r"azureml://jobs/([^/]+)/", p, flags=re.IGNORECASE))), None)
    if job:
        return f"Download the job's outputs instead: az ml job download --name {job.group(1)} --all."
    return "Download the files from where they lie (Studio, azcopy or az storage blob download-batch)."


def _downloaded_root(folder: Path, model: ModelVersion) -> Path:
    """Where the SDK put the files: ``<name>/<folder>/`` for a folder, ``<name>/`` for one file."""
    if not model.files:  # nothing recorded to look for: the folder named after the path's last part
        nested = folder / Path(model.path.rstrip("/")).name
        root = nested if nested.is_dir() else folder
        if root.is_dir() and any(p.is_file() for p in root.rglob("*")):
            return root
        raise BackendError(f"The download of {model.ref} brought no files from {model.path}.",
                           hint="Check in Studio that the files are still there.")
    candidates = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())] if folder.is_dir() else []
    for root in candidates:
        if all((root / f.path).is_file() for f in model.files):
            return root
    missing = ", ".join(f.path for f in model.files[:3])
    raise BackendError(f"The download of {model.ref} is missing files ({missing}).",
                       hint="Try again; if it persists, check the model's files in Studio.")


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

