"""The store-backed Backend: documents in a Store, files in an ArtifactStore, deployments run by a Serving.

The same body serves two configurations: local (SQLite, a folder of
artifacts, model servers behind the local gateway; :mod:`core.local.workspace`)
and in memory (dicts, bytes, a fake responder; :mod:`core.memory`). It holds
no rule of the Workspace: it keeps documents, allocates version numbers in
the transaction that writes them, and tells its Serving what changed.

Document kinds in the store: ``model`` and ``environment`` (by name and
version), ``endpoint``, ``keys`` and ``rollout`` (an endpoint's latest traffic rollout; by endpoint
name), ``capture`` (a request capture's record, by id; its bodies are the Serving's), ``deployment`` and
``consumer`` (by ``endpoint/name``, lower-cased). A deployment's document is its desired state, with the
provisioning state its last change ended in.
"""

from __future__ import annotations

import builtins
import secrets
import sys
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..artifacts import ArtifactStore
from ..backend import Asset, Backend, Completed, Document, Kind, LocalProcesses, Operation, Ref
from ..builds import EnvironmentBuilder
from ..consumer_keys import STORED
from ..entities import (
    AuditRecord,
    Capture,
    CapturedRequest,
    Consumer,
    Deployment,
    Endpoint,
    EndpointKeys,
    EnvironmentBuild,
    EnvironmentVersion,
    InvokeResult,
    MirroredAnswers,
    ModelVersion,
    RequestFact,
    TrafficRollout,
    WorkspaceInfo,
)
from ..environments import BYOM_INTERPRETER, NOT_BUILT, freeze_to_versions, installed_packages
from ..errors import AlreadyExists, InvalidInput, NotFound, Unsupported
from ..metrics_series import ResourceSample
from ..outcome import record_outcome
from ..progress import Progress, no_progress
from ..serving import EndpointState, Serving
from .documents import Store, Txn

ASSET_TYPES: dict[str, type[ModelVersion] | type[EnvironmentVersion]] = {
    "model": ModelVersion, "environment": EnvironmentVersion,
}
BASE_CAPABILITIES = ("models", "environments", "endpoints", "stage-approvals", "local-endpoints")


class StoreBackend(Backend):
    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        serving: Serving,
        *,
        builder: EnvironmentBuilder | None = None,
        kind: str = "store",
        name: str = "workspace",
        location: str = "",
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.serving = serving
        self.builder = builder
        self.kind = kind
        self._name = name
        self._location = location

    def describe(self) -> WorkspaceInfo:
        caps = [*BASE_CAPABILITIES, *self.serving.capabilities]
        if self.builder is not None:
            caps.append("environment-builds")
        return WorkspaceInfo(kind=self.kind, name=self._name, location=self._location, capabilities=sorted(set(caps)))

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------ documents

    def names(self, kind: Kind) -> list[str]:
        with self.store.transaction() as txn:
            return sorted({d["name"] for d in txn.list(kind)})

    def list(self, kind: Kind, scope: str = "") -> list[Any]:
        with self.store.transaction() as txn:
            if kind in ASSET_TYPES:
                return [ASSET_TYPES[kind].from_dict(d) for d in txn.list(kind, scope)]
            if kind == "endpoint":
                return [Endpoint.from_dict(d) for d in txn.list("endpoint")]
            docs = [d for d in txn.list("deployment") if d["endpoint_name"] == scope]
        return [self.serving.observe(Deployment.from_dict(d)) for d in docs]

    def get(self, ref: Ref) -> Any:
        with self.store.transaction() as txn:
            doc = txn.get(ref.kind, _key(ref), ref.version)
        if doc is None:
            return None
        if ref.kind in ASSET_TYPES:
            return ASSET_TYPES[ref.kind].from_dict(doc)
        if ref.kind == "endpoint":
            return Endpoint.from_dict(doc)
        return self.serving.observe(Deployment.from_dict(doc))

    def add(self, asset: Asset, source: str | Path | None, progress: Progress) -> Asset:
        kind = "model" if isinstance(asset, ModelVersion) else "environment"
        staged = None
        if isinstance(asset, ModelVersion):
            assert source is not None, "a model version is registered from its files"
            progress("Copying and hashing files", 0.0)
            staged = self.artifacts.stage(Path(source), progress)
        try:
            with self.store.transaction() as txn:
                if asset.version and txn.get(kind, asset.name, asset.version) is not None:
                    raise AlreadyExists(f"{kind.capitalize()} {asset.name!r} version {asset.version} already exists.")
                version = asset.version or txn.max_version(kind, asset.name) + 1
                stored: Asset = asset.replace(version=version)
                if isinstance(stored, ModelVersion) and staged is not None:
                    stored = stored.replace(files=staged.files, size_bytes=staged.size,
                                            path=self.artifacts.commit(staged, asset.name, version))
                txn.put(kind, asset.name, version, stored.to_dict())
        except BaseException:
            if staged is not None:
                self.artifacts.discard(staged)
            raise
        return stored

    def put(self, doc: Document, *, wait: bool = True, progress: Progress = no_progress) -> Operation:
        if isinstance(doc, (ModelVersion, EnvironmentVersion)):
            kind = "model" if isinstance(doc, ModelVersion) else "environment"
            with self.store.transaction() as txn:
                if txn.get(kind, doc.name, doc.version) is None:
                    raise NotFound(f"{kind.capitalize()} {doc.name!r} has no version {doc.version}.")
                txn.put(kind, doc.name, doc.version, doc.to_dict())
            return Completed(doc)
        if isinstance(doc, Endpoint):
            return Completed(self._put_endpoint(doc))
        return self._apply(doc, wait, progress)

    def _put_endpoint(self, endpoint: Endpoint) -> Endpoint:
        with self.store.transaction() as txn:
            if txn.get("endpoint", endpoint.name) is None:
                endpoint = endpoint.replace(provisioning_state="Succeeded",
                                            scoring_uri=self.serving.scoring_uri(endpoint.name),
                                            swagger_uri=self.serving.swagger_uri(endpoint.name))
                txn.put("keys", endpoint.name, 0, EndpointKeys(_new_key(), _new_key()).to_dict())
            txn.put("endpoint", endpoint.name, 0, endpoint.to_dict())
            state = self._state(txn, endpoint.name)
        self.serving.routes_changed(state)
        return endpoint

    def _apply(self, desired: Deployment, wait: bool, progress: Progress) -> Operation:
        """Write the desired state now; ``result()`` runs it (so the change is audited before it runs)."""
        desired = desired.replace(instances=[])
        with self.store.transaction() as txn:
            txn.put("deployment", _key(Ref("deployment", desired.name, endpoint=desired.endpoint_name)), 0,
                    desired.to_dict())
            state = self._state(txn, desired.endpoint_name)
        return Completed(run=lambda: self._record_observed(self.serving.apply(state, desired, progress, wait)))

    def _record_observed(self, observed: Deployment) -> Deployment:
        with self.store.transaction() as txn:
            current = record_outcome(txn, observed.endpoint_name, observed.name, observed.updated_at,
                                     observed.provisioning_state, observed.state_reason, actor=None)
        if current is None:  # deleted meanwhile, or changed since: the newer change decides
            return observed
        return Deployment.from_dict(current).replace(instances=observed.instances)

    def scale(self, deployment: Deployment, *, wait: bool = True, progress: Progress = no_progress) -> Operation:
        return self._apply(deployment, wait, progress)

    def archive(self, ref: Ref, archived: bool) -> None:
        with self.store.transaction() as txn:
            doc = txn.get(ref.kind, ref.name, ref.version)
            if doc is None:
                raise NotFound(f"{ref.kind.capitalize()} {ref.name!r} has no version {ref.version}.")
            doc["archived"] = archived
            txn.put(ref.kind, ref.name, ref.version, doc)

    def delete(self, ref: Ref) -> Operation:
        if ref.kind == "model":
            with self.store.transaction() as txn:
                doc = txn.get("model", ref.name, ref.version)
                txn.delete("model", ref.name, ref.version)
            if doc is not None:
                self.artifacts.delete(doc["path"])
        elif ref.kind == "endpoint":
            self._delete_endpoint(ref.name)
        elif ref.kind == "deployment":
            self._delete_deployment(ref.endpoint, ref.name)
        else:
            raise Unsupported(f"A {ref.kind} version cannot be deleted: archive it instead.")
        return Completed()

    def _delete_endpoint(self, name: str) -> None:
        with self.store.transaction() as txn:
            state = self._state(txn, name)
            for dep in state.deployments.values():
                txn.delete("deployment", _key(Ref("deployment", dep.name, endpoint=name)))
            txn.delete("endpoint", name)
            txn.delete("keys", name)
            for consumer in txn.list("consumer"):
                if consumer["endpoint_name"] == name:
                    txn.delete("consumer", consumer_key(name, consumer["name"]))
            captured = [doc["id"] for doc in txn.list("capture") if doc["endpoint"] == name]
            for capture_id in captured:
                txn.delete("capture", capture_id)
        for dep in state.deployments.values():
            self.serving.remove(name, dep.name)
        if captured:  # their bodies go with them (a new endpoint of that name starts with none)
            bodies = self.serving.capture_bodies()
            for capture_id in captured:
                bodies.delete(capture_id)
        state.endpoint.traffic, state.deployments = {}, {}
        self.serving.routes_changed(state)

    def _delete_deployment(self, endpoint_name: str, name: str) -> None:
        with self.store.transaction() as txn:
            endpoint = Endpoint.from_dict(self._endpoint_doc(txn, endpoint_name))
            key = _key(Ref("deployment", name, endpoint=endpoint_name))
            doc = txn.get("deployment", key)
            if doc is None:
                raise NotFound(f"Endpoint {endpoint_name!r} has no deployment named {name!r}.")
            if name.lower() in endpoint.mirror_traffic or name.lower() in endpoint.traffic:
                endpoint.mirror_traffic.pop(name.lower(), None)
                endpoint.traffic.pop(name.lower(), None)
                txn.put("endpoint", endpoint_name, 0, endpoint.to_dict())
            txn.delete("deployment", key)
            state = self._state(txn, endpoint_name)
        self.serving.routes_changed(state)
        self.serving.remove(endpoint_name, doc["name"])

    # ------------------------------------------------------------ artifacts

    def export(self, model: ModelVersion, target: Path) -> None:
        self.artifacts.export(model.path, model.files, target)

    def scratch(self) -> AbstractContextManager[Path]:
        return self.artifacts.scratch()

    # -------------------------------------------------------------- serving

    def _endpoint_doc(self, txn: Txn, name: str) -> dict[str, Any]:
        doc = txn.get("endpoint", name)
        if doc is None:
            raise NotFound(f"No endpoint named {name!r}.", hint="See 'byom online-endpoint list'.")
        return doc

    def _state(self, txn: Txn, name: str) -> EndpointState:
        endpoint = Endpoint.from_dict(self._endpoint_doc(txn, name))
        keys = EndpointKeys.from_dict(txn.get("keys", name) or {"primary_key": "", "secondary_key": ""})
        deployments = {d["name"].lower(): Deployment.from_dict(d) for d in txn.list("deployment")
                       if d["endpoint_name"] == name}
        return EndpointState(endpoint, keys, deployments)

    def keys(self, endpoint: str) -> EndpointKeys:
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, endpoint)
            return EndpointKeys.from_dict(txn.get("keys", endpoint) or {})

    def regenerate_key(self, endpoint: str, key_type: str) -> Operation:
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, endpoint)
            keys = EndpointKeys.from_dict(txn.get("keys", endpoint) or {})
            txn.put("keys", endpoint, 0, keys.replace(**{f"{key_type}_key": _new_key()}).to_dict())
            state = self._state(txn, endpoint)
        self.serving.routes_changed(state)
        return Completed()

    def consumers(self, endpoint: str) -> builtins.list[Consumer]:
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, endpoint)
            docs = txn.list("consumer")
        return [Consumer.from_dict(d) for d in docs if d["endpoint_name"] == endpoint]

    def put_consumer(self, consumer: Consumer, key_sha256: str | None, *, new: bool = False) -> None:
        key = consumer_key(consumer.endpoint_name, consumer.name)
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, consumer.endpoint_name)
            stored = txn.get("consumer", key)
            if new and stored is not None:
                raise AlreadyExists(f"Endpoint {consumer.endpoint_name!r} already has a consumer named "
                                    f"{stored['name']!r}.")
            if not new and stored is None:
                raise NotFound(f"Endpoint {consumer.endpoint_name!r} has no consumer named {consumer.name!r}.")
            digest = key_sha256 if key_sha256 is not None else (stored or {}).get(STORED, "")
            txn.put("consumer", key, 0, {**consumer.to_dict(), STORED: digest})
            state = self._state(txn, consumer.endpoint_name)
        self.serving.routes_changed(state)

    def delete_consumer(self, endpoint: str, name: str) -> None:
        with self.store.transaction() as txn:
            txn.delete("consumer", consumer_key(endpoint, name))
            state = self._state(txn, endpoint)
        self.serving.routes_changed(state)

    def send(self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timeout_s: float) -> InvokeResult:
        with self.store.transaction() as txn:
            state = self._state(txn, endpoint.name)
        return self.serving.invoke(state, body, deployment=None, headers=headers, timeout_s=timeout_s)

    def send_stream(self, endpoint: Endpoint, body: bytes, headers: dict[str, str],
                    timeout_s: float) -> Generator[InvokeResult | bytes, None, None]:
        with self.store.transaction() as txn:
            state = self._state(txn, endpoint.name)
        return self.serving.invoke_stream(state, body, headers=headers, timeout_s=timeout_s)

    def logs(self, ref: Ref, lines: int, container: str) -> str:
        return self.serving.logs(ref.endpoint, ref.name, lines, container)

    def request_facts(self, endpoint: str, since: float) -> builtins.list[RequestFact]:
        return self.serving.request_facts(endpoint, since)

    def mirrored_answers(self, endpoint: str, since: float) -> builtins.list[MirroredAnswers]:
        return self.serving.mirrored_answers(endpoint, since)

    def local_processes(self) -> LocalProcesses | None:
        return self.serving if isinstance(self.serving, LocalProcesses) else None

    def resource_usage(self, endpoint: str, since: float) -> builtins.list[ResourceSample]:
        return self.serving.resource_usage(endpoint, since)

    # ------------------------------------------------------------- rollouts

    def rollouts_unsupported(self) -> Unsupported:
        return self.serving.rollouts_unsupported()

    def traffic_rollout(self, endpoint: str) -> TrafficRollout | None:
        with self.store.transaction() as txn:
            doc = txn.get("rollout", endpoint)
        return TrafficRollout.from_dict(doc) if doc is not None else None

    def change_traffic_rollout(self, endpoint: str,
                               change: Callable[[TrafficRollout | None], TrafficRollout]) -> TrafficRollout:
        with self.store.transaction() as txn:
            doc = txn.get("rollout", endpoint)
            changed = change(TrafficRollout.from_dict(doc) if doc is not None else None)
            txn.put("rollout", endpoint, 0, changed.to_dict())
        return changed

    def drive_traffic_rollouts(self) -> None:
        self.serving.drive_rollouts()

    # ------------------------------------------------------------- captures

    def captures_unsupported(self) -> Unsupported:
        return self.serving.captures_unsupported()

    def captures(self, endpoint: str | None) -> builtins.list[Capture]:
        with self.store.transaction() as txn:
            docs = [d for d in txn.list("capture") if endpoint is None or d["endpoint"] == endpoint]
        counts = self.serving.capture_bodies().counts([d["id"] for d in docs]) if docs else {}
        return [Capture.from_dict(d).replace(requests=counts.get(d["id"], (0, 0))[0],
                                             bytes=counts.get(d["id"], (0, 0))[1]) for d in docs]

    def change_captures(self, endpoint: str, change: Callable[[builtins.list[Capture]], Capture]) -> Capture:
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, endpoint)
            changed = change([Capture.from_dict(d) for d in txn.list("capture") if d["endpoint"] == endpoint])
            txn.put("capture", changed.id, 0, changed.replace(requests=0, bytes=0).to_dict())
            state = self._state(txn, endpoint)
        self.serving.routes_changed(state)
        if not changed.capturing:
            self.serving.capture_bodies()  # what the gateway buffered before it heard is written
        return changed

    def save_captured(self, capture: Capture, requests: builtins.list[CapturedRequest]) -> Capture:
        bodies = self.serving.capture_bodies()
        kept = bodies.add(capture.id, requests, capture.max_requests, capture.max_bytes)
        try:
            if kept != len(requests):
                raise InvalidInput(f"Only {kept} of the {len(requests)} requests fit the capture's bounds.")
            with self.store.transaction() as txn:
                self._endpoint_doc(txn, capture.endpoint)
                txn.put("capture", capture.id, 0, capture.replace(requests=0, bytes=0).to_dict())
        except BaseException:
            bodies.delete(capture.id)
            raise
        return capture.replace(requests=kept, bytes=sum(len(r.body.encode("utf-8")) for r in requests))

    def captured_requests(self, capture_id: str) -> builtins.list[CapturedRequest]:
        return self.serving.capture_bodies().requests(capture_id)

    def delete_capture(self, capture_id: str) -> None:
        with self.store.transaction() as txn:
            txn.delete("capture", capture_id)
        self.serving.capture_bodies().delete(capture_id)

    # ---------------------------------------------------------------- audit

    def record(self, record: AuditRecord) -> None:
        with self.store.transaction() as txn:
            txn.audit(record)

    def audit_log(self, limit: int, target_prefix: str | None) -> builtins.list[AuditRecord]:
        return self.store.list_audit(limit, target_prefix)

    # --------------------------------------------------------------- builds

    def build_status(self, env: EnvironmentVersion) -> EnvironmentBuild:
        if env.built_in:
            return EnvironmentBuild(
                name=env.name, version=env.version, state="Succeeded", interpreter=sys.executable,
                packages=[f"{n}=={v}" for n, v in sorted(installed_packages().items())],
                message="Built in: the interpreter byom runs in; nothing to build.",
            )
        if self.builder is None:
            return super().build_status(env)
        return self.builder.status(env)

    def build(self, env: EnvironmentVersion, *, force: bool, wait: bool, progress: Progress) -> EnvironmentBuild:
        if env.built_in:
            return self.build_status(env)
        if self.builder is None:
            return super().build(env, force=force, wait=wait, progress=progress)
        return self.builder.build(env, force=force, wait=wait, progress=progress)

    def build_id(self, env: EnvironmentVersion) -> str | None:
        return self.builder.build_id(env) if self.builder is not None else None

    def installed(self, env: EnvironmentVersion) -> tuple[dict[str, str] | None, str]:
        if env.built_in or self.builder is None:
            return installed_packages(), BYOM_INTERPRETER
        build = self.builder.status(env)
        if build.state == "Succeeded":
            return freeze_to_versions(build.packages), "build"
        why = {"Running": "the build is running", "Failed": "the last build failed"}.get(build.state)
        return None, f"{NOT_BUILT} ({why})" if why else NOT_BUILT


def _key(ref: Ref) -> str:
    return f"{ref.endpoint}/{ref.name.lower()}" if ref.kind == "deployment" else ref.name


def consumer_key(endpoint: str, name: str) -> str:
    """A consumer document's name: ``endpoint/consumer``, the consumer lower-cased."""
    return f"{endpoint}/{name.lower()}"


def _new_key() -> str:
    return secrets.token_urlsafe(32)
