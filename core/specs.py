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


def _load(loader_name: str, file: Path, what: str) -> Any:
    import azure.ai.ml as aml  # slow to import: only when a YAML file is given

    try:
        return getattr(aml, loader_name)(source=str(file))
    except Exception as exc:  # the SDK raises ValidationException, MarshmallowError, YAMLError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"{file} is not a valid Azure ML {what} file: {first}") from None


def _beside(file: Path, path: str) -> str:
    """A path as a YAML file names it: a cloud URI as it is, a local path relative to the file's folder."""
    return path if is_remote(path) or Path(path).is_absolute() else str((file.parent / path).resolve())


def model_spec_from_yaml(path: str | Path, overrides: dict[str, Any] | None = None) -> ModelSpec:
    file = _check_file(path, "Model")
    model = _load("load_model", file, "model")
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


def environment_spec_from_yaml(path: str | Path, overrides: dict[str, Any] | None = None) -> EnvironmentSpec:
    file = _check_file(path, "Environment")
    env = _load("load_environment", file, "environment")
    # whether the workspace can build a Docker context is the backend's to say
    build_context = _beside(file, str(env.build.path)) if env.build is not None else None
    raw = yaml.safe_load(file.read_text()) or {}
    conda_text = None
    conda_ref = raw.get("conda_file")
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
