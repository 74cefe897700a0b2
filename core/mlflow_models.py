"""MLflow models deployed without code, as Azure ML deploys them: the model's own environment, a generated script.

An ``mlflow_model`` folder holds an ``MLmodel`` file whose ``python_function``
flavor names the environment the model was saved in (``conda.yaml``, or
``requirements.txt`` beside ``python_env.yaml``). Azure ML builds an image
from it and scores with a script of its own over ``mlflow.pyfunc``; locally
the same environment is built with pip, with ``mlflow`` swapped for
``mlflow-skinny`` (the distribution without the tracking server and UI,
which loads pyfunc models; pandas, which pyfunc imports, added when
missing), and ``scoring/mlflow_no_code/score.py`` is the script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .entities import EnvironmentSpec
from .environments import parse_conda, requirement_name
from .errors import InvalidInput

MLMODEL = "MLmodel"
MLFLOW_MODEL = "mlflow_model"
# not "mlflow": the folder is copied under its name into the app root, on the instance's sys.path beside the package
SCORE_FOLDER = Path(__file__).resolve().parent.parent / "scoring" / "mlflow_no_code"
SCORE_SCRIPT = "score.py"
ENVIRONMENT_FILES = (MLMODEL, "conda.yaml", "requirements.txt", "python_env.yaml")
"""The files of an MLflow model that say what it needs; no weights are read to build its environment."""
MLFLOW_TAG = "byom.mlflow-model"
"""Tags an environment built from a model's own files with that model's ``name:version``."""


def find_mlmodel(folder: Path) -> Path | None:
    """The MLmodel file of a model folder: at its top, or in its one subfolder (as AZUREML_MODEL_DIR mounts it)."""
    if (folder / MLMODEL).is_file():
        return folder / MLMODEL
    found = sorted(folder.glob(f"*/{MLMODEL}"))
    return found[0] if len(found) == 1 else None


def check_mlflow_folder(folder: Path) -> None:
    """An ``mlflow_model`` must be a folder with an MLmodel file that has a python_function flavor."""
    mlmodel = find_mlmodel(folder) if folder.is_dir() else None
    if mlmodel is None:
        raise InvalidInput(f"{str(folder)!r} has no {MLMODEL} file: an mlflow_model is the folder "
                           "mlflow.<flavor>.save_model writes, with MLmodel at its top.",
                           hint="Point --path at that folder, or register it as --type custom_model.")
    _pyfunc(mlmodel)


def _pyfunc(mlmodel: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(mlmodel.read_text())
    except yaml.YAMLError:
        raise InvalidInput(f"{mlmodel} is not YAML: it is not an MLflow model file.") from None
    flavor = (doc.get("flavors") or {}).get("python_function") if isinstance(doc, dict) else None
    if not isinstance(flavor, dict):
        raise InvalidInput(f"{mlmodel} has no python_function flavor: a model deploys without code only "
                           "through mlflow.pyfunc.", hint="Add a scoring script and an environment.")
    return flavor


def environment_for(model_dir: Path, model_ref: str) -> EnvironmentSpec:
    """The environment a no-code deployment of the MLflow model ``model_ref``, whose files are in ``model_dir``,
    runs in: named after the model, tagged with it."""
    mlmodel = find_mlmodel(model_dir)
    if mlmodel is None:
        raise InvalidInput(f"Model {model_ref} has no {MLMODEL} file: it is not an MLflow model folder.",
                           hint="Deploy it with code_configuration and an environment.")
    flavor, root = _pyfunc(mlmodel), mlmodel.parent
    env = flavor.get("env")
    conda = env.get("conda") if isinstance(env, dict) else env  # MLflow < 2 wrote the conda file's name alone
    python = flavor.get("python_version")
    if isinstance(conda, str) and (root / conda).is_file():
        _, conda_python, requirements = parse_conda((root / conda).read_text())
        python = conda_python or python
    elif (root / "requirements.txt").is_file():
        lines = (root / "requirements.txt").read_text().splitlines()
        requirements = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        python = _python_env(root) or python
    else:
        raise InvalidInput(f"The MLflow model {model_ref} names no environment (no conda.yaml, no requirements.txt).",
                           hint="Save it again with mlflow, or name an environment for the deployment.")
    python = ".".join(str(python).split(".")[:2]) if python else None
    packages = [_skinny(r) for r in requirements]
    if not any(requirement_name(r) == "pandas" for r in packages):
        packages.append("pandas")
    name = f"{model_ref.split(':')[0]}-mlflow"
    conda_file = yaml.safe_dump({"name": name, "dependencies": [*([f"python={python}"] if python else []), "pip",
                                                                {"pip": packages}]}, sort_keys=False)
    return EnvironmentSpec(name=name, conda_file=conda_file, tags={MLFLOW_TAG: model_ref},
                           description=f"The environment MLflow saved with model {model_ref}, with mlflow-skinny "
                                       "for mlflow: what its deployments without code run in.")


def _python_env(root: Path) -> str | None:
    try:
        doc = yaml.safe_load((root / "python_env.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    return str(doc["python"]) if isinstance(doc, dict) and doc.get("python") else None


def _skinny(requirement: str) -> str:
    """``mlflow==2.9.2`` → ``mlflow-skinny==2.9.2``: the same version, without the server it never runs here."""
    if requirement_name(requirement) != "mlflow":
        return requirement
    rest = requirement.strip()[len("mlflow"):]
    if rest.startswith("["):  # extras belong to the full distribution
        rest = rest[rest.index("]") + 1:]
    return "mlflow-skinny" + rest
