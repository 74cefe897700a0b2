"""Azure ML CLI v2 endpoint and deployment YAML → core entities.

The files are read with azure-ai-ml's own loaders (``load_online_endpoint``,
``load_online_deployment``), so what az ml accepts is read the same way.
As az ml does, a deployment file may define its model and environment
inline (they are registered first, as anonymous assets) and names paths
relative to itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from .entities import (
    Deployment,
    Endpoint,
    EndpointIdentity,
    EnvironmentSpec,
    ModelSpec,
    ProbeSettings,
    RequestSettings,
)
from .errors import InvalidInput, NotFound
from .specs import Overrides, _check_file, _load, refuse_custom_container
from .workspace import Progress, Workspace, no_progress

ANONYMOUS_ENVIRONMENT = "CliV2AnonymousEnvironment"
AZUREML_PREFIX = "azureml:"


def identity_from_sdk(identity: Any) -> EndpointIdentity | None:
    """azure-ai-ml's ``IdentityConfiguration`` (from a YAML file or from Azure) as byom's; None when absent."""
    if identity is None or not getattr(identity, "type", None):
        return None
    kind = str(identity.type).lower().replace(" ", "")
    kind = {"systemassigned": "system_assigned", "userassigned": "user_assigned",
            "systemassigned,userassigned": "system_assigned,user_assigned"}.get(kind, kind)
    ids = [str(getattr(i, "resource_id", None) or i) for i in (identity.user_assigned_identities or [])]
    return EndpointIdentity(type=kind, user_assigned_identities=ids)


def endpoint_from_yaml(path: str | Path | None, *, params_override: Overrides | None = None,
                       data: dict[str, Any] | None = None) -> Endpoint:
    """An endpoint file (or ``data``, the fields a file would hold), az ml's ``--set`` applied first."""
    file = _check_file(path, "Endpoint") if path is not None and data is None else None
    loaded = _load("load_online_endpoint", file, "online endpoint", params_override, data)
    return Endpoint(  # a token auth mode is the Workspace's to refuse: on a new endpoint only
        name=loaded.name or "",
        auth_mode=(loaded.auth_mode or "key").lower(),
        public_network_access=str(loaded.public_network_access or "enabled").lower(),
        identity=identity_from_sdk(loaded.identity),
        description=loaded.description or "",
        tags={k: str(v) for k, v in (loaded.tags or {}).items()},
        traffic={k: int(v) for k, v in (loaded.traffic or {}).items()},
        mirror_traffic={k: int(v) for k, v in (loaded.mirror_traffic or {}).items()},
    )


Settings = TypeVar("Settings", ProbeSettings, RequestSettings)


def _settings(kind: type[Settings], loaded: Any) -> Settings:
    """byom's settings from the SDK's object: the fields it sets, Azure ML's defaults for the rest."""
    given: dict[str, Any] = {f.name: getattr(loaded, f.name, None) for f in dataclasses.fields(kind)}
    return dataclasses.replace(kind(), **{name: value for name, value in given.items() if value is not None})


def _probe(loaded: Any) -> ProbeSettings:
    return _settings(ProbeSettings, loaded)


def _request_settings(loaded: Any) -> RequestSettings:
    return _settings(RequestSettings, loaded)


def _model_ref(ws: Workspace, model: Any, progress: Progress) -> str:
    if model is None:
        raise InvalidInput("The deployment names no model: add 'model: azureml:NAME:VERSION' or an inline model.")
    if isinstance(model, str):
        return model
    if model.path is None:
        raise InvalidInput("The inline model has no 'path': say where its files are.")
    if not getattr(model, "_is_anonymous", False) and model.name and model.version:
        try:
            return ws.get_model(model.name, model.version).ref
        except NotFound:
            pass
    name = model.name
    if getattr(model, "_is_anonymous", False):
        try:  # anonymous models are named after their content: registered once
            return ws.get_model(name, 1).ref
        except NotFound:
            pass
    spec = ModelSpec(name=name, path=str(model.path), version=int(model.version) if model.version else None,
                     description=model.description or "", type=model.type or "custom_model")
    return ws.create_model(spec, progress).ref


def _environment_ref(ws: Workspace, environment: Any) -> str:
    if environment is None or isinstance(environment, str):
        return environment or ""
    refuse_custom_container(environment, "The deployment's inline environment")
    if environment.build is not None:
        raise InvalidInput("The inline environment builds from a Docker context, "
                           "which the local workspace cannot build.",
                           hint="Use a conda_file (and an image name) instead.")
    import yaml

    conda = yaml.safe_dump(environment.conda_file, sort_keys=False) if environment.conda_file else None
    anonymous = getattr(environment, "_is_anonymous", False)
    name = ANONYMOUS_ENVIRONMENT if anonymous or not environment.name else environment.name
    try:
        for version in ws.list_environment_versions(name):
            if version.conda_file == conda and version.image == environment.image:
                return version.ref  # the same inline environment as last time
    except NotFound:
        pass
    return ws.create_environment(EnvironmentSpec(name=name, conda_file=conda, image=environment.image)).ref


def deployment_from_yaml(ws: Workspace, path: str | Path | None, *, progress: Progress = no_progress,
                         params_override: Overrides | None = None, data: dict[str, Any] | None = None,
                         origin: Path | None = None) -> Deployment:
    """Read a deployment file (or ``data``, the fields a file in ``origin`` would hold) with az ml's ``--set``
    applied first, registering its inline model and environment if it has them."""
    file = _check_file(path, "Deployment") if path is not None else None
    loaded = _load("load_online_deployment", file, "online deployment", params_override, data, origin)
    code_path = scoring_script = None
    if loaded.code_configuration is not None:
        given = str(loaded.code_configuration.code)
        if given.startswith(AZUREML_PREFIX):  # a registered code asset (what Azure runs), not a folder
            code_path = given.removeprefix(AZUREML_PREFIX)
        else:
            code = Path(given)
            base = file.parent if file is not None else (origin or Path.cwd())
            code_path = str(code if code.is_absolute() else (base / code).resolve())
        scoring_script = loaded.code_configuration.scoring_script
    return Deployment(
        name=loaded.name or "",
        endpoint_name=loaded.endpoint_name or "",
        model=_model_ref(ws, loaded.model, progress),
        environment=_environment_ref(ws, loaded.environment),
        code_path=code_path,
        scoring_script=scoring_script,
        instance_type=loaded.instance_type or "local",
        instance_count=loaded.instance_count if loaded.instance_count is not None else 1,
        request_settings=_request_settings(loaded.request_settings),
        liveness_probe=_probe(loaded.liveness_probe),
        readiness_probe=_probe(loaded.readiness_probe),
        environment_variables={k: str(v) for k, v in (loaded.environment_variables or {}).items()},
        description=loaded.description or "",
        tags={k: str(v) for k, v in (loaded.tags or {}).items()},
    )
