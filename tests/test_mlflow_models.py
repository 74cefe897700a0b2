"""MLflow models deployed without code: the environment read from the model's own files, the generated script."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from byom.core.entities import Deployment, Endpoint, ModelSpec
from byom.core.environments import parse_conda
from byom.core.errors import InvalidInput
from byom.core.memory import InMemoryWorkspace
from byom.core.mlflow_models import SCORE_FOLDER, SCORE_SCRIPT, environment_for

MODEL = Path(__file__).parent / "integration" / "assets" / "mlflow_model"


@pytest.fixture
def ws(tmp_path) -> InMemoryWorkspace:
    ws = InMemoryWorkspace(seed=0)
    ws.create_or_update_endpoint(Endpoint(name="demo"))
    return ws


def test_the_environment_comes_from_the_models_conda_file_with_mlflow_skinny() -> None:
    spec = environment_for(MODEL, "mlf:2")
    assert spec.name == "mlf-mlflow" and spec.tags == {"byom.mlflow-model": "mlf:2"}
    _, python, requirements = parse_conda(spec.conda_file or "")
    assert python == "3.11"
    assert requirements == ["mlflow-skinny==3.18.0", "pandas"], "the same version, without the tracking server"


def test_requirements_txt_serves_when_there_is_no_conda_file(tmp_path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(MODEL, folder)
    (folder / "conda.yaml").unlink()
    doc = yaml.safe_load((folder / "MLmodel").read_text())
    doc["flavors"]["python_function"]["env"] = {"virtualenv": "python_env.yaml"}
    (folder / "MLmodel").write_text(yaml.safe_dump(doc))
    (folder / "requirements.txt").write_text("mlflow[extras]<4\nscikit-learn==1.5.2\n")
    _, python, requirements = parse_conda(environment_for(folder, "m:1").conda_file or "")
    assert python == "3.11"
    assert requirements == ["mlflow-skinny<4", "scikit-learn==1.5.2", "pandas"], "extras belong to full mlflow"


def test_a_deployment_without_code_runs_the_generated_script_in_the_models_environment(ws) -> None:
    model = ws.create_model(ModelSpec(name="mlf", path=str(MODEL), type="mlflow_model"))
    blue = ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="demo", model=model.ref))
    assert blue.provisioning_state == "Succeeded", blue.state_reason
    assert (blue.code_path, blue.scoring_script) == (str(SCORE_FOLDER), SCORE_SCRIPT)
    assert (SCORE_FOLDER / SCORE_SCRIPT).is_file()
    assert blue.environment == "mlf-mlflow:1"
    assert ws.get_environment("mlf-mlflow", 1).tags["byom.mlflow-model"] == "mlf:1"
    # a second deployment of the same version reuses the environment: no second version
    green = ws.create_or_update_deployment(Deployment(name="green", endpoint_name="demo", model="mlf:1"))
    assert green.environment == "mlf-mlflow:1"
    assert [e.version for e in ws.list_environment_versions("mlf-mlflow")] == [1]


def test_a_model_that_is_not_mlflow_is_not_given_the_mlflow_script(ws, tmp_path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"\x00")
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "model.pkl")))
    blue = ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="demo", model="m:1"))
    assert blue.code_path is None and blue.environment == "local-python:1"
    assert [e.name for e in ws.list_environments()] == ["local-python"]


@pytest.mark.parametrize(("damage", "says"), [
    ("no MLmodel", "has no MLmodel file"),
    ("no pyfunc", "has no python_function flavor"),
])
def test_an_mlflow_model_folder_without_a_pyfunc_model_is_refused_at_registration(
        ws, tmp_path, damage: str, says: str) -> None:
    folder = tmp_path / "model"
    shutil.copytree(MODEL, folder)
    if damage == "no MLmodel":
        (folder / "MLmodel").unlink()
    else:
        (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"sklearn": {"pickled_model": "model.pkl"}}}))
    with pytest.raises(InvalidInput, match=says):
        ws.create_model(ModelSpec(name="mlf", path=str(folder), type="mlflow_model"))
    assert ws.list_models() == []
