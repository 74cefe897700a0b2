"""The Backend on an Azure ML workspace, through azure-ai-ml's ``MLClient``.

Azure ML holds the state; this class translates (``translate``), turns every
SDK error into a core error at one boundary (``errors.azure_errors``) and
keeps an audit log of its own of the changes made through byom (Azure's
activity log has the rest). The rules are the Workspace's; what is Azure's
own:

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
* Every change to an endpoint or deployment is a long-running operation
  (``long_running``): the Workspace reports and waits for the poller.
* A wrong workspace name makes every call answer 404: on the first NotFound
  the workspace itself is read once, and the error then names it.
* Metrics are in Azure Monitor, which azure-ai-ml does not read: Unsupported, and so are progressive
  rollouts (their checks need those metrics).
* ``local-python`` becomes an Azure environment (``byom-local-python``) with
  byom's own requirements when a deployment names it.
* Invocations go to the endpoint's ``scoring_uri`` with the Workspace's fresh
  header dict, not ``online_endpoints.invoke`` (see DESIGN.md).
* The SDK's long-running pollers print a dot to stdout on every status read,
  from their own thread, which goes on after a ``wait=False`` call has
  returned: the dot is turned off (``_no_poller_dots``), and stdout goes to
  stderr while a call runs, so that ``-o json`` output stays clean.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..artifacts import copy_verified, iter_source_files, sha256_file
from ..audit_log import SqliteAuditLog
from ..backend import Asset, Backend, Completed, Document, Kind, Operation, Ref
from ..entities import (
    LOCAL_PYTHON,
    AuditRecord,
    Deployment,
    Endpoint,
    EndpointCredentials,
    EnvironmentBuild,
    EnvironmentSpec,
    EnvironmentVersion,
    InvokeResult,
    ModelFile,
    ModelVersion,
    RequestFact,
    WorkspaceInfo,
)
from ..environments import INFERENCE_SERVER, local_python_environment, serves, with_inference_server
from ..errors import AlreadyExists, BackendError, ByomError, InvalidInput, NotFound, Unsupported
from ..metrics_series import ResourceSample
from ..progress import Progress, no_progress
from . import translate as tr
from .errors import azure_errors

log = logging.getLogger(__name__)

DEFAULT_INSTANCE_TYPE = "Standard_DS3_v2"
LOCAL_PYTHON_ON_AZURE = "byom-local-python"
SPEC_TAG = "byom.spec_sha256"
CAPABILITIES = ("models", "environments", "endpoints", "deployments", "remote-model-paths", "docker-builds",
                "registry-assets", "mlflow-no-code")
T = TypeVar("T")


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


class _Poller:
    """A ``begin_*`` poller whose every call is translated at the backend's error boundary."""

    def __init__(self, poller: Any, call: Callable[[], Any]) -> None:
        self._poller, self._call = poller, call

    def done(self) -> bool:
        with self._call():
            return bool(self._poller.done())

    def status(self) -> str:
        with self._call():
            return str(self._poller.status())

    def wait(self, timeout: float | None = None) -> None:
        with self._call():
            self._poller.wait(timeout)

    def result(self) -> Any:
        with self._call():
            return self._poller.result()


class AzureBackend(Backend):
    long_running = True
    service = "Azure ML"

    def __init__(
        self,
        ml_client: Any,
        *,
        audit_home: str | Path | None = None,
        transport: Any = None,
        default_instance_type: str = DEFAULT_INSTANCE_TYPE,
    ) -> None:
        from ..home import default_home

        self.ml = ml_client
        self.default_instance_type = default_instance_type
        self._transport = transport
        self._http: Any = None
        home = Path(audit_home) if audit_home else default_home() / "azure" / ml_client.workspace_name
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"Cannot create the audit folder {home}: {exc.strerror}.",
                               hint="Point BYOM_HOME at a writable folder.") from exc
        self.audit = SqliteAuditLog(home / "audit.db")
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

    def describe(self) -> WorkspaceInfo:
        return WorkspaceInfo(kind="azure", name=self.ml.workspace_name, location=self.resource_id,
                             capabilities=sorted(CAPABILITIES))

    def identity(self) -> str | None:
        return signed_in_identity(self.ml)

    def workspace_details(self) -> dict[str, str | None]:
        with self._call(f"read the Azure ML workspace {self.ml.workspace_name!r}"):
            found = self.ml.workspaces.get(self.ml.workspace_name)
        return {"location": found.location, "container_registry": found.container_registry,
                "id": found.id, "resource_group": found.resource_group,
                "display_name": found.display_name, "discovery_url": found.discovery_url,
                "mlflow_tracking_uri": found.mlflow_tracking_uri, "storage_account": found.storage_account}

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self.audit.close()

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

    def _or_none(self, what: str, read: Callable[[], T]) -> T | None:
        """``read()``, or None where Azure answers that there is no such thing (in a workspace that exists)."""
        try:
            with azure_errors(what), _quiet_stdout():
                return read()
        except NotFound as exc:
            missing = self._missing_workspace()
            if missing is not None:
                raise missing from exc
            return None

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

    def _lock_for(self, kind: str, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._name_locks.setdefault((kind, name), threading.Lock())

    def _begin(self, what: str, start: Callable[[], Any]) -> Operation:
        """Start a long-running operation (``start`` calls a ``begin_*``) and return its poller."""
        _no_poller_dots()
        with self._call(what):
            poller = start()
        return _Poller(poller, lambda: self._call(what))

    # ------------------------------------------------------------ documents

    def _ops(self, kind: Kind) -> Any:
        return self.ml.models if kind == "model" else self.ml.environments

    def _sdk_versions(self, kind: Kind, name: str, view: str = "ALL") -> list[Any]:
        from azure.ai.ml.constants import ListViewType

        with self._call(f"list the versions of {kind} {name!r}"):
            return [v for v in self._ops(kind).list(name=name, list_view_type=getattr(ListViewType, view))
                    if str(v.version).isdigit()]

    def _archived(self, kind: Kind, name: str) -> set[int]:
        return {int(v.version) for v in self._sdk_versions(kind, name, "ARCHIVED_ONLY")}

    def _from_sdk(self, kind: Kind, sdk: Any, archived: bool) -> Asset:
        if kind == "model":
            return tr.model_from_sdk(sdk, archived=archived)
        return tr.environment_from_sdk(sdk, archived=archived)

    def names(self, kind: Kind) -> list[str]:
        from azure.ai.ml.constants import ListViewType

        with self._call(f"list {kind}s"):
            return sorted({c.name for c in self._ops(kind).list(list_view_type=ListViewType.ALL)})

    def latest(self, kind: Kind, include_archived: bool) -> list[Any]:
        """One call for the names and one per name: the versions not archived hold the latest, each as whole
        as a get (only the archived flag needs a second listing, when archived ones are asked for)."""
        if include_archived:
            return super().latest(kind, include_archived)
        out = []
        for name in self.names(kind):
            active = self._sdk_versions(kind, name, "ACTIVE_ONLY")
            if active:
                out.append(self._from_sdk(kind, max(active, key=lambda v: int(v.version)), False))
        return out

    def list(self, kind: Kind, scope: str = "") -> list[Any]:
        if kind in ("model", "environment"):
            every = self._sdk_versions(kind, scope)
            archived = self._archived(kind, scope) if every else set()
            return [self._from_sdk(kind, v, int(v.version) in archived) for v in every]
        if kind == "endpoint":
            with self._call("list endpoints"):
                return [tr.endpoint_from_sdk(e) for e in self.ml.online_endpoints.list()]
        with self._call(f"list the deployments of endpoint {scope!r}"):
            return [tr.deployment_from_sdk(d, scope) for d in self.ml.online_deployments.list(endpoint_name=scope)]

    def _get_sdk(self, ref: Ref) -> Any:
        if ref.kind in ("model", "environment"):
            return self._or_none(f"get {ref.kind} {ref.name}:{ref.version}",
                                 lambda: self._ops(ref.kind).get(name=ref.name, version=str(ref.version)))
        if ref.kind == "endpoint":
            return self._or_none(f"get endpoint {ref.name!r}", lambda: self.ml.online_endpoints.get(name=ref.name))
        return self._or_none(f"get deployment {ref.name!r} of endpoint {ref.endpoint!r}",
                             lambda: self.ml.online_deployments.get(name=ref.name, endpoint_name=ref.endpoint))

    def get(self, ref: Ref) -> Any:
        sdk = self._get_sdk(ref)
        if sdk is None:
            return None
        if ref.kind in ("model", "environment"):
            return self._from_sdk(ref.kind, sdk, ref.version in self._archived(ref.kind, ref.name))
        if ref.kind == "endpoint":
            return tr.endpoint_from_sdk(sdk)  # the SDK's get lists every deployment, 0 % included
        return tr.deployment_from_sdk(sdk, ref.endpoint)

    def add(self, asset: Asset, source: str | Path | None, progress: Progress) -> Asset:
        if isinstance(asset, ModelVersion):
            return self._add_model(asset, source, progress)
        return self._add_environment(asset, progress)

    def _next_version(self, kind: Kind, name: str, wanted: int) -> int:
        existing = {int(v.version) for v in self._sdk_versions(kind, name)}
        if wanted and wanted in existing:
            raise AlreadyExists(f"{kind.capitalize()} {name!r} version {wanted} already exists.",
                                hint="Leave out --version to get the next one, or pick another.")
        return wanted or max(existing, default=0) + 1

    def _add_model(self, model: ModelVersion, source: str | Path | None, progress: Progress) -> ModelVersion:
        if any(k.startswith(tr.PREFIX) for k in model.tags):
            raise InvalidInput(f"Tags starting with {tr.PREFIX!r} are byom's own: rename them.")
        files: builtins.list[ModelFile] = []
        if isinstance(source, Path):  # a local folder or file; a cloud path (str) is registered where it lies
            progress("Hashing files", 0.0)
            files = [ModelFile(rel, full.stat().st_size, sha256_file(full)) for full, rel in iter_source_files(source)]
        with self._lock_for("model", model.name):
            version = self._next_version("model", model.name, model.version)
            model = model.replace(version=version, files=files, size_bytes=sum(f.size for f in files))
            progress(f"Uploading {len(files)} file(s) and registering {model.ref}" if files
                     else f"Registering {model.ref} from {source}", 0.1)
            with self._call(f"register model {model.ref}"):
                created = self.ml.models.create_or_update(tr.model_to_sdk(model, local_path=str(source)))
        return tr.model_from_sdk(created)

    def _add_environment(self, env: EnvironmentVersion, progress: Progress) -> EnvironmentVersion:
        if env.conda_file and not env.build_context and not serves(env.pip_requirements):
            # locally every build gets the server; on Azure the conda file is all that is built
            progress(f"Warning: environment {env.name} has no {INFERENCE_SERVER} in its conda file: a deployment "
                     f"that uses it on Azure ML cannot start; add {INFERENCE_SERVER} to its pip list", None)
        spec = EnvironmentSpec(name=env.name, conda_file=env.conda_file, image=env.image,
                               build_context=env.build_context, dockerfile_path=env.dockerfile_path,
                               description=env.description, tags=env.tags)
        with self._lock_for("environment", env.name):
            version = self._next_version("environment", env.name, env.version)
            with self._call(f"create environment {env.name}:{version}"):
                created = self.ml.environments.create_or_update(tr.environment_to_sdk(spec, version))
        return tr.environment_from_sdk(created)

    def put(self, doc: Document, *, wait: bool = True, progress: Progress = no_progress) -> Operation:
        if isinstance(doc, ModelVersion):
            return Completed(self._save_model(doc))
        if isinstance(doc, EnvironmentVersion):
            return Completed(self._save_environment(doc))
        if isinstance(doc, Endpoint):
            return self._put_endpoint(doc)
        return self._put_deployment(doc)

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

    def _own_tags(self, sdk: Any) -> dict[str, str]:
        return {k: v for k, v in (sdk.tags or {}).items() if k.startswith(tr.PREFIX)}

    def _save_model(self, model: ModelVersion) -> ModelVersion:
        from azure.ai.ml.entities import Model

        sdk = self._get_sdk(Ref("model", model.name, model.version))
        if sdk is None:
            raise NotFound(f"Model {model.name!r} has no version {model.version}.")
        current = tr.model_from_sdk(sdk)
        if model.description != current.description:
            sdk.description = model.description
        if model.tags != current.tags:
            sdk.tags = {**model.tags, **self._own_tags(sdk)}
        if (model.stage, model.stage_history) != (current.stage, current.stage_history):
            sdk.tags = {**(sdk.tags or {}), **tr.stage_to_tags(model)}
        saved = self._put_version(self.ml.models._model_versions_operation, sdk, model.archived,
                                  f"update model {model.ref}")
        return tr.model_from_sdk(Model._from_rest_object(saved), archived=model.archived)

    def _save_environment(self, env: EnvironmentVersion) -> EnvironmentVersion:
        from azure.ai.ml.entities import Environment

        sdk = self._get_sdk(Ref("environment", env.name, env.version))
        if sdk is None:
            raise NotFound(f"Environment {env.name!r} has no version {env.version}.")
        current = tr.environment_from_sdk(sdk)
        if env.description != current.description:
            sdk.description = env.description
        if env.tags != current.tags:
            sdk.tags = {**env.tags, **self._own_tags(sdk)}
        rest = self._put_version(self.ml.environments._version_operations, sdk, env.archived,
                                 f"update environment {env.ref}")
        return tr.environment_from_sdk(Environment._from_rest_object(rest), archived=env.archived)

    def archive(self, ref: Ref, archived: bool) -> None:
        verb = "archive" if archived else "restore"
        with self._call(f"{verb} {ref.kind} {ref.name}:{ref.version}"):
            getattr(self._ops(ref.kind), verb)(name=ref.name, version=str(ref.version))

    def delete(self, ref: Ref) -> Operation:
        if ref.kind == "model":
            with self._call(f"delete model {ref.name}:{ref.version}"):
                # azure-ai-ml has no public delete for model versions (it archives); the REST operation exists.
                self.ml.models._model_versions_operation.delete(
                    name=ref.name, version=str(ref.version), resource_group_name=self.ml.resource_group_name,
                    workspace_name=self.ml.workspace_name,
                )
            return Completed()
        if ref.kind == "endpoint":
            return self._begin(f"delete endpoint {ref.name!r}",
                               lambda: self.ml.online_endpoints.begin_delete(name=ref.name))
        if ref.kind == "deployment":
            return self._begin(f"delete deployment {ref.name!r} of endpoint {ref.endpoint!r}",
                               lambda: self.ml.online_deployments.begin_delete(name=ref.name,
                                                                               endpoint_name=ref.endpoint))
        raise Unsupported("Azure ML does not delete environment versions: archive them instead.")

    # ------------------------------------------------------------ artifacts

    def export(self, model: ModelVersion, target: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="byom-download-") as scratch:
            with self._call(f"download model {model.ref}"):
                self.ml.models.download(name=model.name, version=str(model.version), download_path=scratch)
            root = _downloaded_root(Path(scratch) / model.name, model)
            if model.files:
                copy_verified(root, model.files, target)
            else:  # registered from cloud storage: no hashes were recorded to check against
                shutil.copytree(root, target, dirs_exist_ok=True)

    # ------------------------------------------------------------ endpoints

    def _put_endpoint(self, endpoint: Endpoint) -> Operation:
        existing = self._get_sdk(Ref("endpoint", endpoint.name))
        if existing is None:
            sdk = tr.endpoint_to_sdk(endpoint)
        else:  # the endpoint as Azure has it, with what byom changes
            sdk = existing
            sdk.description = endpoint.description or None
            sdk.tags = dict(endpoint.tags)
            # lower-cased, as azure-ai-ml sends them anyway
            sdk.traffic, sdk.mirror_traffic = dict(endpoint.traffic), dict(endpoint.mirror_traffic)
        verb = "update" if existing is not None else "create"
        return self._begin(f"{verb} endpoint {endpoint.name!r}",
                           lambda: self.ml.online_endpoints.begin_create_or_update(sdk))

    def keys(self, endpoint: str) -> EndpointCredentials:
        with self._call(f"get the credentials of endpoint {endpoint!r}"):
            return tr.credentials_from_sdk(self.ml.online_endpoints.get_keys(name=endpoint))

    def regenerate_key(self, endpoint: str, key_type: str) -> Operation:
        return self._begin(f"regenerate the {key_type} key of endpoint {endpoint!r}",
                           lambda: self.ml.online_endpoints.begin_regenerate_keys(name=endpoint, key_type=key_type))

    # ---------------------------------------------------------- deployments

    def _asset_id(self, ref: str, kind: str) -> str:
        """``name:version`` (resolved by the Workspace) as the asset id Azure takes."""
        if kind == "environment" and ref.split(":")[0] == LOCAL_PYTHON:
            return self._local_python_on_azure()
        if ref.startswith("azureml://registries/"):  # passed through by the Workspace, as az ml sends it
            return ref
        return f"azureml:{ref}"

    def _put_deployment(self, deployment: Deployment) -> Operation:
        existing = self._get_sdk(Ref("deployment", deployment.name, endpoint=deployment.endpoint_name))
        instance_type = deployment.instance_type
        if instance_type in ("", "local"):
            instance_type = existing.instance_type if existing is not None else self.default_instance_type
        running = existing.code_configuration if existing is not None else None
        kept_code = running.code if running is not None and tr.asset_ref(running.code) == deployment.code_path \
            else None
        sdk = tr.deployment_to_sdk(deployment, model_id=self._asset_id(deployment.model, "model"),
                                   environment_id=self._asset_id(deployment.environment, "environment")
                                   if deployment.environment else None,
                                   instance_type=instance_type, code=kept_code)
        if existing is not None:  # what byom does not manage (egress, app insights, data collection, ...) stays
            sdk = tr.carry_over(existing, sdk)
        verb = "update" if existing is not None else "create"
        return self._begin(f"{verb} deployment {deployment.name!r} of endpoint {deployment.endpoint_name!r}",
                           lambda: self.ml.online_deployments.begin_create_or_update(sdk))

    def scale(self, deployment: Deployment, *, wait: bool = True, progress: Progress = no_progress) -> Operation:
        ref = Ref("deployment", deployment.name, endpoint=deployment.endpoint_name)
        sdk = self._get_sdk(ref)
        if sdk is None:
            raise NotFound(f"Endpoint {ref.endpoint!r} has no deployment named {ref.name!r}.")
        sdk.instance_count = deployment.instance_count
        what = f"scale deployment {ref.name!r} of endpoint {ref.endpoint!r} to {deployment.instance_count}"
        return self._begin(what, lambda: self.ml.online_deployments.begin_create_or_update(sdk))

    def logs(self, ref: Ref, lines: int, container: str) -> str:
        with self._call(f"get the logs of deployment {ref.name!r}"):
            text = self.ml.online_deployments.get_logs(name=ref.name, endpoint_name=ref.endpoint, lines=lines,
                                                       container_type=container)
        return str(text or "")

    # ------------------------------------------------------------- invoke

    def _http_client(self) -> Any:
        if self._http is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import HeadersPolicy

            # No retry policy: a test prompt is sent once, and its latency is the request's own.
            self._http = PipelineClient(base_url="", transport=self._transport, policies=[HeadersPolicy()])
        return self._http

    def send(self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timeout_s: float) -> InvokeResult:
        from azure.core.rest import HttpRequest

        started = time.perf_counter()
        with self._call(f"invoke endpoint {endpoint.name!r}"):
            response = self._http_client().send_request(
                HttpRequest("POST", endpoint.scoring_uri, headers=headers, content=body),
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

    def request_facts(self, endpoint: str, since: float) -> builtins.list[RequestFact]:
        raise Unsupported(
            "Azure ML keeps request counts and latencies in Azure Monitor, which azure-ai-ml does not read.",
            hint="See the endpoint's Monitoring tab in Studio: "
                 f"{self.studio_url(f'endpoints/realtime/{endpoint}/detail')}",
        )

    def rollouts_unsupported(self) -> Unsupported:
        return Unsupported(
            "Progressive rollouts with automatic rollback run on a local workspace only for now: on Azure ML "
            "byom cannot yet read the error rate and latency a step needs (they are in Azure Monitor).",
            hint="Move traffic in steps with 'online-endpoint update --traffic' and watch the endpoint's "
                 f"Monitoring tab: {self.studio_url('endpoints/realtime')}",
        )

    def captures_unsupported(self) -> Unsupported:
        return Unsupported(
            "Azure ML managed online endpoints have no request capture or replay: byom captures at its local "
            "gateway, which sees every request; the capability is absent from this workspace.",
            hint="A deployment's data collector (data_collector in its YAML) logs request payloads to the "
                 "workspace's blob storage; replay them with 'online-endpoint invoke'.",
        )

    def resource_usage(self, endpoint: str, since: float) -> builtins.list[ResourceSample]:
        raise Unsupported(
            "Azure ML keeps the CPU and memory of a deployment's instances in Azure Monitor, which azure-ai-ml "
            "does not read.",
            hint="See the deployment's Metrics in Studio: "
                 f"{self.studio_url(f'endpoints/realtime/{endpoint}/detail')}",
        )

    # -------------------------------------------------------------- audit

    def record(self, record: AuditRecord) -> None:
        self.audit.write(record)

    def audit_log(self, limit: int, target_prefix: str | None) -> builtins.list[AuditRecord]:
        return self.audit.read(limit, target_prefix)

    # ------------------------------------------------------------- builds

    def build_status(self, env: EnvironmentVersion) -> EnvironmentBuild:
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

    def build(self, env: EnvironmentVersion, *, force: bool, wait: bool, progress: Progress) -> EnvironmentBuild:
        raise Unsupported("Azure ML builds an environment's image when a deployment first uses it; "
                          "azure-ai-ml cannot start or watch a build.",
                          hint="Deploy with the environment and follow the build log in Studio.")

    def installed(self, env: EnvironmentVersion) -> tuple[dict[str, str] | None, str]:
        raise Unsupported("What is installed in an Azure ML environment's image is not visible through azure-ai-ml.",
                          hint="Compare against a local build with the local workspace (byom environment drift).")

    def _local_python_on_azure(self) -> str:
        """``azureml:byom-local-python:N``: byom's own requirements as an Azure environment, created once."""
        env = local_python_environment()
        python = ".".join((env.python or "3.11").split(".")[:2])
        conda = yaml_dump({"name": LOCAL_PYTHON_ON_AZURE, "channels": ["conda-forge"],
                           "dependencies": [f"python={python}", "pip",
                                            {"pip": with_inference_server(env.pip_requirements)}]})
        digest = hashlib.sha256(conda.encode()).hexdigest()[:16]
        with self._lock_for("environment", LOCAL_PYTHON_ON_AZURE):
            for v in self._sdk_versions("environment", LOCAL_PYTHON_ON_AZURE):
                if (v.tags or {}).get(SPEC_TAG) == digest:
                    return f"azureml:{LOCAL_PYTHON_ON_AZURE}:{v.version}"
        created = self._add_environment(EnvironmentVersion(
            name=LOCAL_PYTHON_ON_AZURE, version=0, conda_file=conda, tags={SPEC_TAG: digest},
            description="byom's built-in local-python environment, as an Azure ML environment."), no_progress)
        return f"azureml:{created.ref}"


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
        AzureMLPolling.update_status = ARMPolling.update_status  # type: ignore[method-assign]  # on purpose: above


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
            return str(claims[claim])
    for claim in ("appid", "azp", "oid"):
        if isinstance(claims.get(claim), str) and claims[claim]:
            return f"{'app' if claim != 'oid' else 'oid'}:{claims[claim]}"
    return None


def yaml_dump(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


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


