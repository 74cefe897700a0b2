"""What a deployment generation runs: its id, its code snapshot and its model folder, as Azure ML lays them out.

A generation is the deployment as created or updated; every instance of one
is started with the same :class:`~core.local.model_server.InstanceSpec`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ...entities import Deployment
from ...home import open_private
from ..artifacts import DirectoryArtifacts
from ..model_server import InstanceSpec, resolve_interpreter
from ..serving_files import ServingFiles


class GenerationFailed(Exception):
    """The generation cannot start (a missing model, code folder or scoring script): the deployment fails."""


def generation_id(dep: Deployment) -> str:
    fields = [dep.model, dep.environment, dep.code_path, dep.scoring_script, dep.environment_variables, dep.updated_at]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]


def append_line(path: Path, line: str) -> None:
    with open_private(path, "a") as fh:
        fh.write(line.rstrip("\n") + "\n")


class Generations:
    def __init__(self, files: ServingFiles) -> None:
        self.files = files
        self.artifacts_root = files.home / "artifacts"

    def prepare(self, dep: Deployment, model: dict[str, Any] | None, gen: str) -> InstanceSpec:
        """The spec of generation ``gen``, its files in place; each step is told in the storage-initializer log.

        Raises :class:`GenerationFailed`, or ``EnvironmentBuilding`` while the environment is being built.
        """
        storage_log = self.files.storage_log(dep.endpoint_name, dep.name)
        storage_log.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._prepare(dep, model, gen, storage_log)
        except (LookupError, OSError, ValueError) as exc:
            append_line(storage_log, f"Failed: {exc}")
            raise GenerationFailed(str(exc)) from exc

    def _prepare(self, dep: Deployment, model: dict[str, Any] | None, gen: str, storage_log: Path) -> InstanceSpec:
        interpreter = resolve_interpreter(self.files.home, dep.environment)
        if model is None:
            raise LookupError(f"Model {dep.model} is not registered in this workspace.")
        model_dir = self.mount_model(model)
        append_line(storage_log, f"Model {dep.model}: {model_dir}")
        if not dep.code_path or not dep.scoring_script:
            raise ValueError("A local deployment needs code_configuration (a code folder and its scoring_script) "
                             "unless its model is an mlflow_model.")
        source = Path(dep.code_path).expanduser()
        if not (source / dep.scoring_script).is_file():
            raise LookupError(f"Scoring script {dep.scoring_script!r} is not in the code folder {source}.")
        # as on Azure ML: AML_APP_ROOT holds the code folder, AZUREML_ENTRY_SCRIPT is relative to it
        app_root = self.files.code_snapshot(dep.endpoint_name, dep.name, gen)
        folder = source.resolve().name or "code"
        if not app_root.exists():
            staging = app_root.with_name(f".{gen}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(source, staging / folder, ignore=shutil.ignore_patterns("__pycache__", ".git"))
            os.replace(staging, app_root)
        append_line(storage_log, f"Code {source} copied to {app_root / folder}")
        return InstanceSpec(
            interpreter=interpreter, model_dir=str(model_dir), app_root=str(app_root),
            entry_script=f"{folder}/{dep.scoring_script}", environment_variables=dict(dep.environment_variables),
        )

    def mount_model(self, model: dict[str, Any]) -> Path:
        """The folder AZUREML_MODEL_DIR names, laid out as Azure ML lays it out.

        A model registered from a folder appears as ``$AZUREML_MODEL_DIR/<folder name>/...``
        (Azure's samples join ``"model/..."`` to it); one registered from a single file
        appears as ``$AZUREML_MODEL_DIR/<file name>``.
        """
        files = DirectoryArtifacts(self.artifacts_root).local_path(model["path"])
        if not files.is_dir():
            raise LookupError(f"The files of model {model['name']}:{model['version']} are missing from {files}.")
        source = Path(model.get("source") or model["name"])
        entries = model.get("files") or []
        if len(entries) == 1 and entries[0]["path"] == source.name:
            return files
        folder = source.stem if source.suffix == ".gguf" else source.name
        mount = self.files.run / "models" / str(model["name"]) / str(model["version"])
        link = mount / (folder or model["name"])
        if not link.is_symlink():
            mount.mkdir(parents=True, exist_ok=True)
            link.symlink_to(files, target_is_directory=True)
        return mount

    def forget(self, endpoint: str, deployment: str) -> None:
        """A deleted deployment's code snapshots."""
        shutil.rmtree(self.files.code / endpoint / deployment, ignore_errors=True)
