"""Core entities ↔ azure-ai-ml entities.

What Azure ML has no field for is kept in the asset's own metadata, under
``byom.`` keys that the translation hides again on the way back:

* model **properties** (immutable once registered, like the artifacts):
  ``byom.format``, ``byom.files`` (path, size, sha256 of each file),
  ``byom.size_bytes``, ``byom.source`` (a remote URI, or a local folder's name only);
* model **tags** (mutable): ``byom.stage`` and ``byom.stage_history``, since
  Azure ML has no approval workflow.

``request_settings.max_queue_wait_ms`` is deprecated for managed online
endpoints (azure-ai-ml 1.35.2 also reads sub-second values back as 0): what
Azure answers is replaced by byom's default rather than shown as 0.

Versions are whole numbers in byom; an Azure asset whose version is not one
is skipped by the workspace rather than shown wrongly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..artifacts import is_remote
from ..asset_refs import ASSET_ID
from ..endpoint_specs import identity_from_sdk
from ..entities import (
    Deployment,
    Endpoint,
    EndpointCredentials,
    EndpointKeys,
    EndpointToken,
    EnvironmentSpec,
    EnvironmentVersion,
    ModelFile,
    ModelVersion,
    ProbeSettings,
    RequestSettings,
    StageChange,
)
from ..environments import parse_conda

PREFIX = "byom."
STAGE_TAG = "byom.stage"
HISTORY_TAG = "byom.stage_history"
DEFAULT_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
"""Base image for an environment given only a conda file: Azure ML needs an image."""


def _text(value: Any) -> str:
    """An SDK enum or string as its plain value ("Succeeded", not the enum's repr)."""
    return "" if value is None else str(getattr(value, "value", value))


def _user(mapping: dict[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (mapping or {}).items() if not k.startswith(PREFIX)}


def _created(entity: Any) -> tuple[str, str]:
    context = getattr(entity, "creation_context", None)
    if context is None:
        return "", ""
    at = context.created_at
    return context.created_by or "", at.isoformat() if hasattr(at, "isoformat") else str(at or "")


def asset_ref(arm_id: str | None) -> str:
    """An asset's ARM id (or azureml: reference) → ``name:version``; a registry asset's URI as it is."""
    if not arm_id:
        return ""
    if arm_id.startswith("azureml://registries/"):  # a registry's asset keeps its whole address
        return arm_id
    match = ASSET_ID.search(arm_id)
    if match:
        return f"{match.group('name')}:{match.group('version')}"
    return arm_id.removeprefix("azureml:")


# ------------------------------------------------------------------ models


def model_to_sdk(
    model: ModelVersion, local_path: str | None = None, *, stage_tags: dict[str, str] | None = None
) -> Any:
    """A core model version → ``azure.ai.ml.entities.Model``.

    ``local_path`` is the folder or file to upload for a new version; an
    existing version keeps its ``path`` (its azureml:// URI).
    """
    from azure.ai.ml.entities import Model

    properties = {
        **model.properties,
        "byom.format": model.format,
        "byom.files": json.dumps([f.to_dict() for f in model.files], separators=(",", ":")),
        "byom.size_bytes": str(model.size_bytes),
        # where a remote version lies; of a local one only its name: a path on one machine says nothing to
        # the workspace's other users, and may say more than its owner meant to share
        "byom.source": model.source if is_remote(model.source) else Path(model.source).name,
    }
    tags = {**model.tags, **(stage_tags if stage_tags is not None else stage_to_tags(model))}
    return Model(
        name=model.name,
        version=str(model.version),
        path=local_path or model.path,
        type=model.type,
        description=model.description or None,
        tags=tags,
        properties=properties,
    )


def stage_to_tags(model: ModelVersion) -> dict[str, str]:
    return {
        STAGE_TAG: model.stage,
        HISTORY_TAG: json.dumps([c.to_dict() for c in model.stage_history], separators=(",", ":")),
    }


def model_from_sdk(model: Any, *, archived: bool = False) -> ModelVersion:
    props = {k: str(v) for k, v in (model.properties or {}).items()}
    tags = model.tags or {}
    created_by, created_at = _created(model)
    files = [ModelFile.from_dict(f) for f in json.loads(props.get("byom.files") or "[]")]
    history = [StageChange.from_dict(c) for c in json.loads(tags.get(HISTORY_TAG) or "[]")]
    return ModelVersion(
        name=model.name,
        version=int(model.version),
        type=_text(model.type) or "custom_model",
        format=props.get("byom.format", "custom"),
        description=model.description or "",
        tags=_user(tags),
        properties=_user(props),
        stage=tags.get(STAGE_TAG, "dev"),
        archived=archived,
        files=files,
        size_bytes=int(props.get("byom.size_bytes") or sum(f.size for f in files)),
        source=props.get("byom.source", ""),
        path=model.path or "",
        created_by=created_by,
        created_at=created_at,
        stage_history=history,
    )


# ------------------------------------------------------------ environments


def environment_to_sdk(spec: EnvironmentSpec, version: int) -> Any:
    from azure.ai.ml.entities import BuildContext, Environment

    build = (BuildContext(path=str(_local_or_uri(spec.build_context)), dockerfile_path=spec.dockerfile_path)
             if spec.build_context else None)
    return Environment(
        name=spec.name,
        version=str(version),
        image=None if build else spec.image or DEFAULT_IMAGE,
        build=build,
        conda_file=yaml.safe_load(spec.conda_file) if spec.conda_file else None,
        description=spec.description or None,
        tags=dict(spec.tags),
    )


def _local_or_uri(path: str) -> str | Path:
    """A build context as the SDK takes it: a URI as it is, a folder here made absolute (it is uploaded)."""
    return path if is_remote(path) else Path(path).expanduser().resolve()


def environment_from_sdk(env: Any, *, archived: bool = False) -> EnvironmentVersion:
    conda = env.conda_file
    conda_text = yaml.safe_dump(conda, sort_keys=False) if isinstance(conda, dict) else conda
    python: str | None = None
    requirements: list[str] = []
    if conda_text:
        _, python, requirements = parse_conda(conda_text)
    created_by, created_at = _created(env)
    return EnvironmentVersion(
        name=env.name,
        version=int(env.version),
        conda_file=conda_text,
        image=env.image,
        description=env.description or "",
        tags=_user(env.tags),
        build_context=env.build.path if env.build else None,
        dockerfile_path=env.build.dockerfile_path if env.build else None,
        python=python,
        pip_requirements=requirements,
        archived=archived,
        created_by=created_by,
        created_at=created_at,
    )


# --------------------------------------------------------------- endpoints


def endpoint_to_sdk(endpoint: Endpoint) -> Any:
    from azure.ai.ml.entities import IdentityConfiguration, ManagedIdentityConfiguration, ManagedOnlineEndpoint

    identity = None
    if endpoint.identity is not None:
        identity = IdentityConfiguration(
            type=endpoint.identity.type,
            user_assigned_identities=[ManagedIdentityConfiguration(resource_id=i)
                                      for i in endpoint.identity.user_assigned_identities] or None)
    return ManagedOnlineEndpoint(
        name=endpoint.name,
        auth_mode="key",
        description=endpoint.description or None,
        tags=dict(endpoint.tags),
        traffic=dict(endpoint.traffic),
        mirror_traffic=dict(endpoint.mirror_traffic),
        public_network_access=endpoint.public_network_access,
        identity=identity,
    )


def endpoint_from_sdk(endpoint: Any) -> Endpoint:
    """Azure drops 0 % entries; ``online_endpoints.get`` puts them back for deployments that are not
    mirrored, and this puts them back for the mirrored one, so every deployment has a live share."""
    traffic = {k.lower(): int(v) for k, v in (endpoint.traffic or {}).items()}
    mirror = {k.lower(): int(v) for k, v in (endpoint.mirror_traffic or {}).items()}
    for name in mirror:
        traffic.setdefault(name, 0)
    return Endpoint(
        name=endpoint.name,
        auth_mode=_text(endpoint.auth_mode).lower() or "key",
        description=endpoint.description or "",
        tags=dict(endpoint.tags or {}),
        traffic=traffic,
        mirror_traffic=mirror,
        scoring_uri=endpoint.scoring_uri or "",
        swagger_uri=endpoint.openapi_uri or "",
        public_network_access=_text(getattr(endpoint, "public_network_access", None)).lower() or "enabled",
        identity=identity_from_sdk(getattr(endpoint, "identity", None)),
        provisioning_state=_text(endpoint.provisioning_state),
    )


def credentials_from_sdk(credentials: Any) -> EndpointCredentials:
    """What ``online_endpoints.get_keys`` returns: keys, an Azure ML token, or an Entra ID (AAD) token."""
    if hasattr(credentials, "primary_key"):
        return EndpointKeys(primary_key=credentials.primary_key or "", secondary_key=credentials.secondary_key or "")
    return EndpointToken(
        access_token=credentials.access_token or "",
        expires_at=float(credentials.expiry_time_utc or 0),
        refresh_after=float(getattr(credentials, "refresh_after_time_utc", 0) or 0),
        token_type=getattr(credentials, "token_type", None) or "Bearer",
    )


# ------------------------------------------------------------- deployments


def deployment_to_sdk(deployment: Deployment, *, model_id: str, environment_id: str | None, instance_type: str,
                      code: str | None = None) -> Any:
    """``code`` is a local folder to upload, or a code asset's ARM id to reuse."""
    from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment, OnlineRequestSettings
    from azure.ai.ml.entities import ProbeSettings as SdkProbe

    def probe(p: ProbeSettings) -> Any:
        return SdkProbe(failure_threshold=p.failure_threshold, success_threshold=p.success_threshold,
                        timeout=p.timeout, period=p.period, initial_delay=p.initial_delay)

    settings = deployment.request_settings
    code = code or deployment.code_path
    return ManagedOnlineDeployment(
        name=deployment.name,
        endpoint_name=deployment.endpoint_name,
        model=model_id,
        environment=environment_id,
        code_configuration=CodeConfiguration(code=code, scoring_script=deployment.scoring_script) if code else None,
        instance_type=instance_type,
        instance_count=deployment.instance_count,
        request_settings=OnlineRequestSettings(
            request_timeout_ms=settings.request_timeout_ms,
            max_concurrent_requests_per_instance=settings.max_concurrent_requests_per_instance,
            max_queue_wait_ms=settings.max_queue_wait_ms,
        ),
        liveness_probe=probe(deployment.liveness_probe),
        readiness_probe=probe(deployment.readiness_probe),
        environment_variables=dict(deployment.environment_variables),
        description=deployment.description or None,
        tags=dict(deployment.tags),
    )


# What deployment_to_sdk sets: on an update, everything else is kept as Azure has it.
BYOM_DEPLOYMENT_FIELDS = ("model", "environment", "code_configuration", "instance_type", "instance_count",
                          "request_settings", "liveness_probe", "readiness_probe", "environment_variables",
                          "description", "tags")


def carry_over(existing: Any, wanted: Any) -> Any:
    """``existing`` (an SDK deployment read from Azure) with byom's fields taken from ``wanted``."""
    for name in BYOM_DEPLOYMENT_FIELDS:
        setattr(existing, name, getattr(wanted, name))
    return existing


def _id_of(asset: Any) -> str | None:
    """An SDK asset field: an id string already, or an inline asset object with its id."""
    return asset if isinstance(asset, str) else getattr(asset, "id", None)


def deployment_from_sdk(deployment: Any, endpoint_name: str) -> Deployment:
    def probe(p: Any) -> ProbeSettings:
        if p is None:
            return ProbeSettings()
        default = ProbeSettings()
        return ProbeSettings(
            initial_delay=p.initial_delay if p.initial_delay is not None else default.initial_delay,
            period=p.period if p.period is not None else default.period,
            timeout=p.timeout if p.timeout is not None else default.timeout,
            success_threshold=p.success_threshold if p.success_threshold is not None else default.success_threshold,
            failure_threshold=p.failure_threshold if p.failure_threshold is not None else default.failure_threshold,
        )

    rs = deployment.request_settings
    default_rs = RequestSettings()
    code = deployment.code_configuration
    return Deployment(
        name=deployment.name,
        endpoint_name=endpoint_name,
        model=asset_ref(_id_of(deployment.model)),
        environment=asset_ref(_id_of(deployment.environment)),
        code_path=(asset_ref(code.code) if isinstance(code.code, str) else None) if code else None,
        scoring_script=code.scoring_script if code else None,
        instance_type=deployment.instance_type or "",
        instance_count=int(deployment.instance_count or 0),
        request_settings=RequestSettings(
            request_timeout_ms=(
                rs.request_timeout_ms if rs and rs.request_timeout_ms else default_rs.request_timeout_ms
            ),
            max_concurrent_requests_per_instance=(
                rs.max_concurrent_requests_per_instance
                if rs and rs.max_concurrent_requests_per_instance else default_rs.max_concurrent_requests_per_instance
            ),
            max_queue_wait_ms=(rs.max_queue_wait_ms if rs and rs.max_queue_wait_ms else default_rs.max_queue_wait_ms),
        ),
        liveness_probe=probe(deployment.liveness_probe),
        readiness_probe=probe(deployment.readiness_probe),
        environment_variables={k: str(v) for k, v in (deployment.environment_variables or {}).items()},
        description=deployment.description or "",
        tags=dict(deployment.tags or {}),
        provisioning_state=_text(deployment.provisioning_state) or "Creating",
    )
