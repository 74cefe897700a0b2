"""Azure ML CLI v2 YAML files → core specs.

Model and environment files are read with azure-ai-ml's own loaders
(``load_model``, ``load_environment``), so a file that az ml accepts is read
the same way here; their errors become ``InvalidInput``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .artifacts import is_remote
from .entities import EnvironmentSpec, ModelSpec
from .errors import InvalidInput


def _check_file(path: str | Path, what: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidInput(f"{what} file {str(file)!r} does not exist: pass the path of a YAML file with -f.")
    return file


Overrides = list[dict[str, Any]]


def _load(loader_name: str, file: Path | None, what: str, overrides: Overrides | None = None,
          data: dict[str, Any] | None = None, origin: Path | None = None) -> Any:
    """The SDK entity a file (or, without one, ``data`` as if it were a file in ``origin``, default here)
    describes.

    ``overrides`` are az ml's ``--set PATH=VALUE`` pairs as ``params_override``: applied to the YAML before
    it is read, so they are checked as the file's own fields are.
    """
    import io

    import azure.ai.ml as aml  # slow to import: only when a YAML file is given

    source: Any = str(file) if file is not None else io.StringIO(yaml.safe_dump(data or {}, sort_keys=False))
    # the SDK reads paths relative to the folder of the file it is told it read
    base = None if file is not None else str((origin or Path.cwd()) / "command-line.yml")
    name = str(file) if file is not None else "The command line"
    try:
        return getattr(aml, loader_name)(source=source, relative_origin=base, params_override=overrides or [])
    except Exception as exc:  # the SDK raises ValidationException, MarshmallowError, YAMLError...
        raise InvalidInput(f"{name} is not a valid Azure ML {what} file: {field_errors(exc)}",
                           hint=_SET_HINT if overrides else None) from None


_SET_HINT = "Check the --set paths and values too: they are applied to the file before it is read."


def field_errors(exc: BaseException) -> str:
    """What an SDK load error says, field by field (``request_settings.request_timeout_ms: Not a valid
    integer.``): its first line alone does not name them."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        messages = getattr(candidate, "messages", None)
        if isinstance(messages, dict):
            return " ".join(_flatten(messages))
    text = str(exc).strip()
    start = text.find("{")
    if start >= 0:  # the SDK's text embeds the fields as a JSON object
        import json

        try:
            found, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            found = None
        if isinstance(found, dict):
            return " ".join(_flatten(found))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:6]) if lines else type(exc).__name__


def _flatten(messages: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in messages.items():
        # marshmallow files errors of a whole object (a union's alternatives) under "_schema"
        path = prefix if key == "_schema" and prefix else (f"{prefix}.{key}" if prefix else str(key))
        out += [line for line in _reasons(value, path) if line not in out]
    return out


def _reasons(value: Any, path: str) -> list[str]:
    if isinstance(value, dict):
        return _flatten(value, path)
    items = value if isinstance(value, list) else [value]
    texts = [" ".join(str(item).split())[:600].rstrip(".:") + "." for item in items
             if not isinstance(item, (dict, list))]
    nested = [line for item in items if isinstance(item, (dict, list)) for line in _reasons(item, path)]
    return ([f"{path}: {' '.join(texts)}"] if texts else []) + nested


def _beside(file: Path, path: str) -> str:
    """A path as a YAML file names it: a cloud URI as it is, a local path relative to the file's folder."""
    return path if is_remote(path) or Path(path).is_absolute() else str((file.parent / path).resolve())


def model_spec_from_yaml(path: str | Path, overrides: dict[str, Any] | None = None, *,
                         params_override: Overrides | None = None) -> ModelSpec:
    file = _check_file(path, "Model")
    model = _load("load_model", file, "model", params_override)
    if not model.path:
        raise InvalidInput(f"{file} has no 'path': say where the model's files are.")
    spec = ModelSpec(
        name=model.name or "",
        path=_beside(file, str(model.path)),
        version=int(model.version) if model.version else None,
        description=model.description or "",
        tags={k: str(v) for k, v in (model.tags or {}).items()},
        type=model.type or "custom_model",
        properties={k: str(v) for k, v in (model.properties or {}).items()},
    )
    return spec.replace(**(overrides or {}))


def refuse_custom_container(env: Any, where: str) -> None:
    """An environment with ``inference_config`` is a custom container: its own server, routes and ports. byom
    neither runs one on this machine nor registers one on Azure ML (it would be dropped there in silence)."""
    if getattr(env, "inference_config", None):
        raise InvalidInput(
            f"{where}: the environment is a custom container (inference_config): byom runs Azure ML's inference "
            "server with your scoring script, not a container's own server, and does not register one.",
            hint="On Azure ML, create it with 'az ml environment create -f FILE' and name it in the deployment "
                 "(azureml:NAME:VERSION); locally, give the deployment an environment with a conda file.")


def environment_spec_from_yaml(path: str | Path, overrides: dict[str, Any] | None = None, *,
                               params_override: Overrides | None = None) -> EnvironmentSpec:
    file = _check_file(path, "Environment")
    env = _load("load_environment", file, "environment", params_override)
    refuse_custom_container(env, str(file))
    # whether the workspace can build a Docker context is the backend's to say
    build_context = _beside(file, str(env.build.path)) if env.build is not None else None
    raw = yaml.safe_load(file.read_text()) or {}
    conda_ref = raw.get("conda_file")
    for override in params_override or []:
        conda_ref = override.get("conda_file", conda_ref)
    conda_text = None
    if isinstance(conda_ref, str) and (file.parent / conda_ref).is_file():
        conda_text = (file.parent / conda_ref).read_text()
    elif env.conda_file:
        conda_text = yaml.safe_dump(env.conda_file, sort_keys=False)
    spec = EnvironmentSpec(
        name=env.name or "",
        conda_file=conda_text,
        image=env.image,
        build_context=build_context,
        dockerfile_path=env.build.dockerfile_path if env.build is not None else None,
        version=int(env.version) if env.version else None,
        description=env.description or "",
        tags={k: str(v) for k, v in (env.tags or {}).items()},
    )
    return spec.replace(**(overrides or {}))


def read_conda_file(path: str | Path) -> str:
    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidInput(f"Conda file {str(file)!r} does not exist: pass an existing file with --conda-file.")
    text = file.read_text()
    if not text.strip():
        raise InvalidInput(f"Conda file {str(file)!r} is empty: it needs a 'dependencies:' list.")
    return text
