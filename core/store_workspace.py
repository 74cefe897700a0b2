"""One implementation of the contract's rules over three seams.

``StoreWorkspace`` holds the business rules of the Workspace contract once:
version allocation, stages, in-use checks, traffic rules, keys, the audit
log. What differs between backends is plugged in:

* a :class:`~core.store.Store` for documents and the audit log,
* an :class:`~core.artifacts.ArtifactStore` for model files,
* a :class:`~core.serving.Serving` that runs deployments and routes requests,
* optionally an :class:`~core.builds.EnvironmentBuilder`.

The in-memory workspace and the local backend are both StoreWorkspaces; the
Azure backend implements the contract over azure-ai-ml instead.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import secrets
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from . import rules
from .artifacts import ArtifactStore, check_source
from .builds import EnvironmentBuilder
from .entities import (
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
    ModelSpec,
    ModelVersion,
    StageChange,
    WorkspaceInfo,
    utcnow,
    utcnow_after,
)
from .environments import drift, freeze_to_versions, installed_packages, parse_conda
from .errors import AlreadyExists, InUse, InvalidInput, NotFound, Unsupported
from .metrics import summarize
from .outcome import record_outcome
from .serving import EndpointState, Serving
from .store import Store, Txn
from .workspace import Capability, Progress, VersionRef, Workspace, no_progress


def default_actor() -> str:
    """Who changes things: ``BYOM_ACTOR`` if set, else the OS user."""
    if os.environ.get("BYOM_ACTOR"):
        return os.environ["BYOM_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


BYOM_INTERPRETER = "byom's interpreter"
"""Where drift reads installed versions for an environment that has no build (yet)."""


ASSET_ID = re.compile(r"/(?P<kind>models|environments|codes)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")
"""The tail of an asset's ARM id or azureml:// URI, as ``az ml ... show --query id`` prints it."""


def parse_asset_ref(ref: str, kind: str) -> tuple[str, str]:
    """'name:3', 'azureml:name:3', 'name@latest', 'name', or an ARM id → (name, version ref)."""
    text = ref.strip()
    if "/registries/" in text:
        raise InvalidInput(f"{text!r} is in an Azure ML registry, which byom does not deploy from.",
                           hint=f"Register the {kind} in this workspace and name it as NAME:VERSION.")
    match = ASSET_ID.search(text)
    if match:
        if match.group("kind") != f"{kind}s":
            raise InvalidInput(f"{text!r} is the id of {match.group('kind')}/{match.group('name')}, "
                               f"not of a {kind}: name a {kind} version.")
        return match.group("name"), match.group("version")
    if text.startswith("azureml:"):
        text = text[len("azureml:") :]
    if "@" in text:
        name, label = text.split("@", 1)
        return name, label
    if ":" in text:
        name, version = text.rsplit(":", 1)
        return name, version
    if not text:
        raise InvalidInput(f"No {kind} given: name one as NAME:VERSION.")
    return text, "latest"


def local_python_environment() -> EnvironmentVersion:
    """The built-in environment: the interpreter byom runs in, with byom's own requirements."""
    try:
        requires = [r.split(";")[0].strip() for r in (metadata.requires("byom") or []) if "extra ==" not in r]
    except metadata.PackageNotFoundError:
        requires = []
    return EnvironmentVersion(
        name=LOCAL_PYTHON,
        version=1,
        description="The Python interpreter byom runs in (no build; fastest for development and tests).",
        python=".".join(map(str, sys.version_info[:3])),
        pip_requirements=requires,
        built_in=True,
        created_by="byom",
    )


class StoreWorkspace(Workspace):
    kind = "store"

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        serving: Serving,
        *,
        builder: EnvironmentBuilder | None = None,
        actor: str | None = None,
        name: str = "workspace",
        location: str = "",
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.serving = serving
        self.builder = builder
        self.actor = actor or default_actor()
        self._name = name
        self._location = location

    # ------------------------------------------------------------ general

    def info(self) -> WorkspaceInfo:
        caps = [Capability.MODELS, Capability.ENVIRONMENTS, Capability.ENDPOINTS, Capability.STAGE_APPROVALS]
        caps += list(self.serving.capabilities)
        if self.builder is not None:
            caps.append(Capability.ENVIRONMENT_BUILDS)
        return WorkspaceInfo(kind=self.kind, name=self._name, location=self._location, capabilities=sorted(set(caps)))

    def close(self) -> None:
        self.store.close()

    def _audit(self, txn: Txn, action: str, target: str, before: Any = None, after: Any = None) -> None:
        txn.audit(AuditRecord(at=utcnow(), actor=self.actor, action=action, target=target, before=before, after=after))

    # ------------------------------------------------------------- models

    def _resolve_version(self, txn: Txn, kind: str, name: str, version: VersionRef, include_archived: bool) -> int:
        if isinstance(version, str) and version.strip().lower() == "latest":
            rows = [r for r in txn.list(kind, name) if include_archived or not r.get("archived")]
            if not rows:
                if txn.list(kind, name):
                    raise NotFound(f"Every version of {kind} {name!r} is archived.", hint="Restore one, or name a version.")
                raise NotFound(f"No {kind} named {name!r}.", hint=f"See 'byom {kind} list'.")
            return max(int(r["version"]) for r in rows)
        return rules.validate_version(version, kind)

    def _asset_doc(self, txn: Txn, kind: str, name: str, version: VersionRef) -> dict[str, Any]:
        number = self._resolve_version(txn, kind, name, version, include_archived=False)
        doc = txn.get(kind, name, number)
        if doc is None:
            raise NotFound(f"{kind.capitalize()} {name!r} has no version {number}.",
                           hint=f"See 'byom {kind} list --name {name}'.")
        return doc

    def _model_doc(self, txn: Txn, name: str, version: VersionRef) -> dict[str, Any]:
        return self._asset_doc(txn, "model", name, version)

    def _latest_versions(self, kind: str, include_archived: bool) -> list[dict[str, Any]]:
        """The highest version of each name, sorted by name."""
        with self.store.transaction() as txn:
            latest: dict[str, dict[str, Any]] = {}
            for doc in txn.list(kind):
                if doc.get("archived") and not include_archived:
                    continue
                if doc["name"] not in latest or doc["version"] > latest[doc["name"]]["version"]:
                    latest[doc["name"]] = doc
        return [latest[n] for n in sorted(latest)]

    def _update_asset(
        self, kind: str, name: str, version: VersionRef, description: str | None, tags: dict[str, str] | None
    ) -> dict[str, Any]:
        """Change description and/or tags, the only mutable fields of a version."""
        new_tags = rules.validate_tags(tags) if tags is not None else None
        with self.store.transaction() as txn:
            doc = self._asset_doc(txn, kind, name, version)
            before = {"description": doc["description"], "tags": doc["tags"]}
            if description is not None:
                doc["description"] = description
            if new_tags is not None:
                doc["tags"] = new_tags
            txn.put(kind, name, doc["version"], doc)
            self._audit(txn, f"{kind}.update", f"{kind}/{name}:{doc['version']}", before,
                        {"description": doc["description"], "tags": doc["tags"]})
        return doc

    def create_model(self, spec: ModelSpec, progress: Progress = no_progress) -> ModelVersion:
        from .model_sources import prepare_model_source

        rules.validate_asset_name(spec.name, "model")
        tags = rules.validate_tags(spec.tags)
        explicit = rules.validate_version(spec.version, latest_ok=False) if spec.version is not None else None
        src = check_source(spec.path)
        if explicit is not None:
            with self.store.transaction() as txn:
                if txn.get("model", spec.name, explicit) is not None:
                    raise AlreadyExists(
                        f"Model {spec.name!r} version {explicit} already exists.",
                        hint="Leave out --version to get the next one, or pick another.",
                    )
        with tempfile.TemporaryDirectory(prefix="byom-package-") as scratch:
            source, fmt, props = prepare_model_source(src, package=spec.package, scratch=Path(scratch), progress=progress)
            progress("Copying and hashing files", 0.0)
            staged = self.artifacts.stage(source, progress)
        try:
            with self.store.transaction() as txn:
                if explicit is not None:
                    if txn.get("model", spec.name, explicit) is not None:
                        raise AlreadyExists(f"Model {spec.name!r} version {explicit} already exists.")
                    version = explicit
                else:
                    version = txn.max_version("model", spec.name) + 1
                path = self.artifacts.commit(staged, spec.name, version)
                model = ModelVersion(
                    name=spec.name,
                    version=version,
                    type=spec.type,
                    format=fmt,
                    description=spec.description,
                    tags=tags,
                    properties={**spec.properties, **props},
                    files=staged.files,
                    size_bytes=staged.size,
                    source=str(src.resolve()),
                    path=path,
                    created_by=self.actor,
                    created_at=utcnow(),
                )
                txn.put("model", spec.name, version, model.to_dict())
                self._audit(txn, "model.create", f"model/{model.ref}", None, _model_summary(model))
        except BaseException:
            self.artifacts.discard(staged)
            raise
        progress(f"Registered {model.ref}", 1.0)
        return model

    def list_models(self, include_archived: bool = False) -> list[ModelVersion]:
        return [ModelVersion.from_dict(d) for d in self._latest_versions("model", include_archived)]

    def list_model_versions(self, name: str, include_archived: bool = False) -> list[ModelVersion]:
        with self.store.transaction() as txn:
            docs = txn.list("model", name)
        if not docs:
            raise NotFound(f"No model named {name!r}.", hint="See 'byom model list'.")
        rows = [ModelVersion.from_dict(d) for d in docs if include_archived or not d.get("archived")]
        return sorted(rows, key=lambda m: m.version, reverse=True)

    def get_model(self, name: str, version: VersionRef = "latest") -> ModelVersion:
        with self.store.transaction() as txn:
            return ModelVersion.from_dict(self._model_doc(txn, name, version))

    def update_model(
        self, name: str, version: VersionRef, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> ModelVersion:
        return ModelVersion.from_dict(self._update_asset("model", name, version, description, tags))

    def promote_model(
        self, name: str, version: VersionRef, stage: str, *, approver: str, note: str = ""
    ) -> ModelVersion:
        with self.store.transaction() as txn:
            doc = self._model_doc(txn, name, version)
            rules.check_promotion(doc["stage"], stage, approver)
            change = StageChange(doc["stage"], stage, approver.strip(), note, utcnow())
            doc["stage_history"] = [*doc.get("stage_history", []), change.to_dict()]
            before = {"stage": doc["stage"]}
            doc["stage"] = stage
            txn.put("model", name, doc["version"], doc)
            self._audit(txn, "model.promote", f"model/{name}:{doc['version']}", before,
                        {"stage": stage, "approver": change.approver, "note": note})
        return ModelVersion.from_dict(doc)

    def _set_archived(self, kind: str, name: str, version: VersionRef | None, archived: bool) -> list[dict[str, Any]]:
        with self.store.transaction() as txn:
            if version is None:
                docs = txn.list(kind, name)
                if not docs:
                    raise NotFound(f"No {kind} named {name!r}.")
            else:
                number = self._resolve_version(txn, kind, name, version, include_archived=True)
                doc = txn.get(kind, name, number)
                if doc is None:
                    raise NotFound(f"{kind.capitalize()} {name!r} has no version {number}.")
                docs = [doc]
            for doc in docs:
                if doc.get("archived") != archived:
                    doc["archived"] = archived
                    txn.put(kind, name, doc["version"], doc)
                    self._audit(txn, f"{kind}.{'archive' if archived else 'restore'}",
                                f"{kind}/{name}:{doc['version']}", {"archived": not archived}, {"archived": archived})
        return docs

    def archive_model(self, name: str, version: VersionRef | None = None) -> list[ModelVersion]:
        return [ModelVersion.from_dict(d) for d in self._set_archived("model", name, version, True)]

    def restore_model(self, name: str, version: VersionRef | None = None) -> list[ModelVersion]:
        return [ModelVersion.from_dict(d) for d in self._set_archived("model", name, version, False)]

    def delete_model(self, name: str, version: VersionRef) -> None:
        with self.store.transaction() as txn:
            number = self._resolve_version(txn, "model", name, version, include_archived=True)
            doc = txn.get("model", name, number)
            if doc is None:
                raise NotFound(f"Model {name!r} has no version {number}.")
            users = [d for d in txn.list("deployment") if d["model"] == f"{name}:{number}"]
            if users:
                where = ", ".join(f"{d['endpoint_name']}/{d['name']}" for d in users)
                raise InUse(
                    f"Model {name}:{number} is used by deployment(s) {where}.",
                    hint="Delete or update those deployments first.",
                )
            txn.delete("model", name, number)
            self._audit(txn, "model.delete", f"model/{name}:{number}", _model_summary(ModelVersion.from_dict(doc)), None)
        self.artifacts.delete(doc["path"])

    def download_model(self, name: str, version: VersionRef, dest: str | Path) -> Path:
        with self.store.transaction() as txn:
            number = self._resolve_version(txn, "model", name, version, include_archived=True)
            doc = txn.get("model", name, number)
        if doc is None:
            raise NotFound(f"Model {name!r} has no version {number}.")
        model = ModelVersion.from_dict(doc)
        target = Path(dest).expanduser() / name
        try:
            if target.exists() and any(target.iterdir()):
                raise InvalidInput(f"{target} already exists and is not empty: choose another --download-path.")
            self.artifacts.export(model.path, model.files, target)
        except OSError as exc:
            raise InvalidInput(f"Cannot copy {model.ref} into {target}: {exc.strerror or exc}.",
                               hint="Choose a folder you can write to (a new or empty folder, not a file).") from exc
        return target

    # ------------------------------------------------------- environments

    def create_environment(self, spec: EnvironmentSpec) -> EnvironmentVersion:
        rules.validate_asset_name(spec.name, "environment")
        rules.refuse_built_in_environment(spec.name, "replaced", ": choose another name")
        tags = rules.validate_tags(spec.tags)
        rules.check_environment_source(spec, docker_builds=False)
        python, requirements = None, []
        if spec.conda_file:
            _, python, requirements = parse_conda(spec.conda_file)
        explicit = (rules.validate_version(spec.version, "environment", latest_ok=False)
                    if spec.version is not None else None)
        with self.store.transaction() as txn:
            if explicit is not None and txn.get("environment", spec.name, explicit) is not None:
                raise AlreadyExists(
                    f"Environment {spec.name!r} version {explicit} already exists.",
                    hint="Leave out --version to get the next one, or pick another.",
                )
            version = explicit or txn.max_version("environment", spec.name) + 1
            env = EnvironmentVersion(
                name=spec.name, version=version, conda_file=spec.conda_file, image=spec.image,
                description=spec.description, tags=tags, python=python, pip_requirements=requirements,
                created_by=self.actor, created_at=utcnow(),
            )
            txn.put("environment", spec.name, version, env.to_dict())
            self._audit(txn, "environment.create", f"environment/{env.ref}", None,
                        {"image": env.image, "python": python, "requirements": requirements})
        return env

    def list_environments(self, include_archived: bool = False) -> list[EnvironmentVersion]:
        envs = [EnvironmentVersion.from_dict(d) for d in self._latest_versions("environment", include_archived)]
        return [local_python_environment(), *envs]

    def list_environment_versions(self, name: str) -> list[EnvironmentVersion]:
        if name == LOCAL_PYTHON:
            return [local_python_environment()]
        with self.store.transaction() as txn:
            docs = txn.list("environment", name)
        if not docs:
            raise NotFound(f"No environment named {name!r}.", hint="See 'byom environment list'.")
        return sorted((EnvironmentVersion.from_dict(d) for d in docs), key=lambda e: e.version, reverse=True)

    def get_environment(self, name: str, version: VersionRef = "latest") -> EnvironmentVersion:
        if name == LOCAL_PYTHON:
            if str(version) not in ("latest", "1"):
                raise NotFound(f"{LOCAL_PYTHON} has only version 1.")
            return local_python_environment()
        with self.store.transaction() as txn:
            return EnvironmentVersion.from_dict(self._asset_doc(txn, "environment", name, version))

    def update_environment(
        self, name: str, version: VersionRef, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> EnvironmentVersion:
        rules.refuse_built_in_environment(name, "changed")
        return EnvironmentVersion.from_dict(self._update_asset("environment", name, version, description, tags))

    def archive_environment(self, name: str, version: VersionRef | None = None) -> list[EnvironmentVersion]:
        rules.refuse_built_in_environment(name, "archived")
        return [EnvironmentVersion.from_dict(d) for d in self._set_archived("environment", name, version, True)]

    def restore_environment(self, name: str, version: VersionRef | None = None) -> list[EnvironmentVersion]:
        rules.refuse_built_in_environment(name, "restored")
        return [EnvironmentVersion.from_dict(d) for d in self._set_archived("environment", name, version, False)]

    def _builder(self) -> EnvironmentBuilder:
        if self.builder is None:
            raise Unsupported("This workspace does not build environments.",
                              hint="Deploy with the built-in local-python environment instead.")
        return self.builder

    def get_environment_build(self, name: str, version: VersionRef = "latest") -> EnvironmentBuild:
        env = self.get_environment(name, version)
        if env.built_in:
            return EnvironmentBuild(
                name=env.name, version=env.version, state="Succeeded", interpreter=sys.executable,
                packages=[f"{n}=={v}" for n, v in sorted(installed_packages().items())],
                message="Built in: the interpreter byom runs in; nothing to build.",
            )
        if self.builder is None:
            return EnvironmentBuild(name=env.name, version=env.version, state="NotStarted",
                                    message="This workspace does not build environments.")
        return self.builder.status(env)

    def build_environment(
        self, name: str, version: VersionRef = "latest", *, force: bool = False, wait: bool = True,
        progress: Progress = no_progress,
    ) -> EnvironmentBuild:
        env = self.get_environment(name, version)
        if env.built_in:
            return self.get_environment_build(name, version)
        if force:
            self._refuse_rebuild_in_use(env)
        build = self._builder().build(env, force=force, wait=wait, progress=progress)
        with self.store.transaction() as txn:
            self._audit(txn, "environment.build", f"environment/{env.ref}", None, {"state": build.state})
        return build

    def _refuse_rebuild_in_use(self, env: EnvironmentVersion) -> None:
        """A forced rebuild replaces the build in place, under the model servers that run in it: refuse that."""
        builder = self._builder()
        target = builder.build_id(env)
        with self.store.transaction() as txn:
            deployments = txn.list("deployment")
        users = []
        for doc in deployments:
            name, version = parse_asset_ref(doc.get("environment") or LOCAL_PYTHON, "environment")
            try:
                other = self.get_environment(name, version)
            except NotFound:
                continue
            if other.conda_file and not other.built_in and builder.build_id(other) == target:
                users.append(f"{doc['endpoint_name']}/{doc['name']} ({other.ref})")
        if users:
            raise InUse(
                f"The build of {env.ref} is in use by deployment(s) {', '.join(users)}: a forced rebuild would "
                "replace the environment under their running model servers.",
                hint="Delete those deployments or move them to another environment first, or create a new "
                     "environment version with the changed spec (it builds beside this one).",
            )

    def environment_drift(self, name: str, version: VersionRef = "latest") -> list[DriftEntry]:
        env = self.get_environment(name, version)
        current = installed_packages()
        installed, source = current, BYOM_INTERPRETER
        if not env.built_in and self.builder is not None:
            build = self.builder.status(env)
            if build.state == "Succeeded":
                installed, source = freeze_to_versions(build.packages), "build"
            else:
                source = f"{BYOM_INTERPRETER} (build {build.state})"
        return drift(env.pip_requirements, installed, source=source, current=current)

    # ---------------------------------------------------------- endpoints

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

    def create_or_update_endpoint(
        self, endpoint: Endpoint, *, wait: bool = True, progress: Progress = no_progress
    ) -> Endpoint:
        rules.validate_endpoint_name(endpoint.name)
        if endpoint.auth_mode != "key":
            raise InvalidInput(f"Auth mode {endpoint.auth_mode!r} is not supported: use 'key'.")
        tags = rules.validate_tags(endpoint.tags)
        with self.store.transaction() as txn:
            doc = txn.get("endpoint", endpoint.name)
            deployments = [d["name"] for d in txn.list("deployment") if d["endpoint_name"] == endpoint.name]
            traffic, mirror = rules.validate_traffic(endpoint.traffic, endpoint.mirror_traffic, deployments)
            now = utcnow()
            if doc is None:
                created = endpoint.replace(
                    tags=tags, traffic=traffic, mirror_traffic=mirror, provisioning_state="Succeeded",
                    scoring_uri=self.serving.scoring_uri(endpoint.name),
                    swagger_uri=self.serving.swagger_uri(endpoint.name),
                    created_by=self.actor, created_at=now, updated_at=now,
                )
                txn.put("endpoint", endpoint.name, 0, created.to_dict())
                txn.put("keys", endpoint.name, 0, EndpointKeys(_new_key(), _new_key()).to_dict())
                self._audit(txn, "endpoint.create", f"endpoint/{endpoint.name}", None, _endpoint_summary(created))
                result = created
            else:
                old = Endpoint.from_dict(doc)
                result = old.replace(description=endpoint.description, tags=tags, traffic=traffic,
                                     mirror_traffic=mirror, updated_at=now)
                txn.put("endpoint", endpoint.name, 0, result.to_dict())
                self._audit(txn, "endpoint.update", f"endpoint/{endpoint.name}", _endpoint_summary(old),
                            _endpoint_summary(result))
            state = self._state(txn, endpoint.name)
        self.serving.routes_changed(state)
        return result

    def get_endpoint(self, name: str) -> Endpoint:
        with self.store.transaction() as txn:
            return Endpoint.from_dict(self._endpoint_doc(txn, name))

    def list_endpoints(self) -> list[Endpoint]:
        with self.store.transaction() as txn:
            return [Endpoint.from_dict(d) for d in txn.list("endpoint")]

    def delete_endpoint(self, name: str, *, wait: bool = True, progress: Progress = no_progress) -> None:
        with self.store.transaction() as txn:
            state = self._state(txn, name)
            for dep in state.deployments.values():
                txn.delete("deployment", _dep_key(name, dep.name))
            txn.delete("endpoint", name)
            txn.delete("keys", name)
            self._audit(txn, "endpoint.delete", f"endpoint/{name}", _endpoint_summary(state.endpoint), None)
        for dep in state.deployments.values():
            self.serving.remove(name, dep.name)
        state.endpoint.traffic, state.deployments = {}, {}
        self.serving.routes_changed(state)

    def get_keys(self, name: str) -> EndpointKeys:
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, name)
            return EndpointKeys.from_dict(txn.get("keys", name) or {})

    def regenerate_key(
        self, name: str, key_type: str = "primary", *, wait: bool = True, progress: Progress = no_progress
    ) -> EndpointKeys:
        if key_type not in ("primary", "secondary"):
            raise InvalidInput(f"Unknown key type {key_type!r}: use primary or secondary.")
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, name)
            keys = EndpointKeys.from_dict(txn.get("keys", name) or {})
            keys = keys.replace(**{f"{key_type}_key": _new_key()})
            txn.put("keys", name, 0, keys.to_dict())
            self._audit(txn, "endpoint.regenerate-key", f"endpoint/{name}", None, {"key_type": key_type})
            state = self._state(txn, name)
        self.serving.routes_changed(state)
        return keys

    def set_traffic(
        self, name: str, traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None, *,
        wait: bool = True, progress: Progress = no_progress,
    ) -> Endpoint:
        with self.store.transaction() as txn:
            doc = self._endpoint_doc(txn, name)
            old = Endpoint.from_dict(doc)
            deployments = [d["name"] for d in txn.list("deployment") if d["endpoint_name"] == name]
            mirror_in = old.mirror_traffic if mirror_traffic is None else mirror_traffic
            live, mirror = rules.validate_traffic(traffic, mirror_in, deployments)
            new = old.replace(traffic=live, mirror_traffic=mirror, updated_at=utcnow())
            txn.put("endpoint", name, 0, new.to_dict())
            self._audit(txn, "endpoint.traffic", f"endpoint/{name}",
                        {"traffic": old.traffic, "mirror_traffic": old.mirror_traffic},
                        {"traffic": live, "mirror_traffic": mirror})
            state = self._state(txn, name)
        self.serving.routes_changed(state)
        return new

    # -------------------------------------------------------- deployments

    def _resolve_model_ref(self, txn: Txn, ref: str) -> str:
        name, version = parse_asset_ref(ref, "model")
        doc = self._model_doc(txn, name, version)
        return f"{doc['name']}:{doc['version']}"

    def _resolve_environment_ref(self, ref: str) -> str:
        name, version = parse_asset_ref(ref or LOCAL_PYTHON, "environment")
        return self.get_environment(name, version).ref

    def create_or_update_deployment(
        self, deployment: Deployment, *, wait: bool = True, progress: Progress = no_progress
    ) -> Deployment:
        rules.validate_deployment_name(deployment.name)
        rules.validate_instance_count(deployment.instance_count)
        environment = self._resolve_environment_ref(deployment.environment)
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
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, deployment.endpoint_name)
            model = self._resolve_model_ref(txn, deployment.model)
            key = _dep_key(deployment.endpoint_name, deployment.name)
            existing = txn.get("deployment", key)
            now = utcnow_after(existing["updated_at"] if existing else None)
            desired = deployment.replace(
                name=existing["name"] if existing else deployment.name,
                model=model, environment=environment,
                provisioning_state="Updating" if existing else "Creating", state_reason="",
                created_by=existing["created_by"] if existing else self.actor,
                created_at=existing["created_at"] if existing else now, updated_at=now,
            )
            txn.put("deployment", key, 0, desired.to_dict())
            self._audit(txn, "deployment.update" if existing else "deployment.create",
                        f"deployment/{deployment.endpoint_name}/{desired.name}",
                        _deployment_summary(existing), _deployment_summary(desired.to_dict()))
            state = self._state(txn, deployment.endpoint_name)
        progress(f"{desired.provisioning_state} deployment {desired.name}", 0.0)
        observed = self.serving.apply(state, desired, progress, wait)
        return self._record_observed(observed)

    def _record_observed(self, observed: Deployment) -> Deployment:
        with self.store.transaction() as txn:
            current = record_outcome(txn, observed.endpoint_name, observed.name, observed.updated_at,
                                     observed.provisioning_state, observed.state_reason, self.actor)
        if current is None:  # deleted meanwhile, or changed since: the newer change decides
            return observed
        return Deployment.from_dict(current).replace(instances=observed.instances)

    def get_deployment(self, endpoint_name: str, name: str) -> Deployment:
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, endpoint_name)
            doc = txn.get("deployment", _dep_key(endpoint_name, name))
        if doc is None:
            raise NotFound(f"Endpoint {endpoint_name!r} has no deployment named {name!r}.",
                           hint=f"See 'byom online-deployment list --endpoint-name {endpoint_name}'.")
        return self.serving.observe(Deployment.from_dict(doc))

    def list_deployments(self, endpoint_name: str) -> list[Deployment]:
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, endpoint_name)
            docs = [d for d in txn.list("deployment") if d["endpoint_name"] == endpoint_name]
        return [self.serving.observe(Deployment.from_dict(d)) for d in sorted(docs, key=lambda d: d["name"].lower())]

    def delete_deployment(
        self, endpoint_name: str, name: str, *, wait: bool = True, progress: Progress = no_progress
    ) -> None:
        with self.store.transaction() as txn:
            endpoint = Endpoint.from_dict(self._endpoint_doc(txn, endpoint_name))
            key = _dep_key(endpoint_name, name)
            doc = txn.get("deployment", key)
            if doc is None:
                raise NotFound(f"Endpoint {endpoint_name!r} has no deployment named {name!r}.")
            rules.check_deployment_deletable(name, endpoint.traffic)
            if name.lower() in endpoint.mirror_traffic or name.lower() in endpoint.traffic:
                endpoint.mirror_traffic.pop(name.lower(), None)
                endpoint.traffic.pop(name.lower(), None)
                txn.put("endpoint", endpoint_name, 0, endpoint.to_dict())
            txn.delete("deployment", key)
            self._audit(txn, "deployment.delete", f"deployment/{endpoint_name}/{doc['name']}", _deployment_summary(doc), None)
            state = self._state(txn, endpoint_name)
        self.serving.routes_changed(state)
        self.serving.remove(endpoint_name, doc["name"])

    def scale_deployment(
        self, endpoint_name: str, name: str, instance_count: int, *, wait: bool = True, progress: Progress = no_progress
    ) -> Deployment:
        rules.validate_instance_count(instance_count)
        with self.store.transaction() as txn:
            self._endpoint_doc(txn, endpoint_name)
            key = _dep_key(endpoint_name, name)
            doc = txn.get("deployment", key)
            if doc is None:
                raise NotFound(f"Endpoint {endpoint_name!r} has no deployment named {name!r}.")
            before = doc["instance_count"]
            doc.update(instance_count=instance_count, provisioning_state="Scaling",
                       updated_at=utcnow_after(doc["updated_at"]))
            txn.put("deployment", key, 0, doc)
            self._audit(txn, "deployment.scale", f"deployment/{endpoint_name}/{doc['name']}",
                        {"instance_count": before}, {"instance_count": instance_count})
            state = self._state(txn, endpoint_name)
        observed = self.serving.apply(state, Deployment.from_dict(doc), progress, wait)
        return self._record_observed(observed)

    def get_deployment_logs(
        self, endpoint_name: str, name: str, lines: int = 100, container: str = "inference-server"
    ) -> str:
        if container not in ("inference-server", "storage-initializer"):
            raise InvalidInput(f"Unknown container {container!r}: use inference-server or storage-initializer.")
        if lines < 1:
            raise InvalidInput("--lines must be at least 1.")
        dep = self.get_deployment(endpoint_name, name)
        return self.serving.logs(endpoint_name, dep.name, lines, container)

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
        with self.store.transaction() as txn:
            state = self._state(txn, endpoint_name)
        if isinstance(payload, bytes):
            body = payload
        elif isinstance(payload, str):
            body = payload.encode("utf-8")
        else:
            body = json.dumps(payload).encode("utf-8")
        sent = {"Content-Type": "application/json", "Authorization": f"Bearer {state.keys.primary_key}", **(headers or {})}
        return self.serving.invoke(state, body, deployment=deployment, headers=sent, timeout_s=timeout_s)

    # ------------------------------------------------------------ metrics

    def get_metrics(self, endpoint_name: str, window_s: int = 3600, bucket_s: int = 60) -> list[DeploymentMetrics]:
        if window_s < 1 or bucket_s < 1:
            raise InvalidInput("The metrics window and bucket must be at least one second.")
        self.get_endpoint(endpoint_name)
        now = time.time()
        facts = self.serving.request_facts(endpoint_name, now - window_s)
        return summarize(facts, endpoint_name, window_s, bucket_s, now)

    # -------------------------------------------------------------- audit

    def list_audit(self, limit: int = 100, target_prefix: str | None = None) -> list[AuditRecord]:
        return self.store.list_audit(limit, target_prefix)


def _dep_key(endpoint_name: str, deployment_name: str) -> str:
    return f"{endpoint_name}/{deployment_name.lower()}"


def _new_key() -> str:
    return secrets.token_urlsafe(32)


def _model_summary(model: ModelVersion) -> dict[str, Any]:
    return {"format": model.format, "files": len(model.files), "size_bytes": model.size_bytes,
            "stage": model.stage, "tags": model.tags}


def _endpoint_summary(endpoint: Endpoint) -> dict[str, Any]:
    return {"description": endpoint.description, "tags": endpoint.tags, "traffic": endpoint.traffic,
            "mirror_traffic": endpoint.mirror_traffic}


def _deployment_summary(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {k: doc.get(k) for k in ("model", "environment", "instance_type", "instance_count", "scoring_script")}

