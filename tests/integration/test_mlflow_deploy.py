"""An MLflow model deploys without code, as on Azure ML: its own environment built, byom's pyfunc script scoring."""

from __future__ import annotations

import os

import pytest
from byom.core.entities import Deployment, Endpoint, ModelSpec

from .helpers import ASSETS, model_servers

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


def test_an_mlflow_model_without_code_scores_azure_ml_payloads(workspace) -> None:
    model = workspace.create_model(ModelSpec(name="weighted", path=str(ASSETS / "mlflow_model"),
                                             type="mlflow_model"))
    workspace.create_or_update_endpoint(Endpoint(name="mlflow-ep"))
    blue = workspace.create_or_update_deployment(Deployment(name="blue", endpoint_name="mlflow-ep", model=model.ref))
    assert blue.provisioning_state == "Succeeded", blue.state_reason
    build = workspace.get_environment_build("weighted-mlflow", 1)
    assert any(line.startswith("mlflow-skinny==3.18.0") for line in build.packages), build.packages
    assert not any(line.startswith("mlflow==") for line in build.packages), "the full mlflow is not installed"
    servers = model_servers(workspace.home)
    assert [os.path.realpath(f"/proc/{pid}/exe") for pid in servers] == [os.path.realpath(build.interpreter)]

    workspace.set_traffic("mlflow-ep", {"blue": 100})
    split = {"input_data": {"columns": ["a", "b", "c"], "index": [0, 1], "data": [[1, 2, 3], [0, 0, 1]]}}
    answer = workspace.invoke("mlflow-ep", split)
    assert answer.status_code == 200, answer.body
    assert answer.json() == [{"score": 321.0}, {"score": 100.0}]
    records = workspace.invoke("mlflow-ep", {"dataframe_records": [{"a": 2, "b": 0, "c": 0}]})
    assert records.json() == [{"score": 2.0}], "MLflow's own serving body is read too"

    # the script answers 400, which the endpoint passes on as Azure ML does a model's non-2xx: 424, body kept
    wrong = workspace.invoke("mlflow-ep", {"input_data": {"columns": ["a"], "data": [[1]]}})
    assert wrong.status_code == 424 and "missing columns" in wrong.json()["error"], wrong.body
    nothing = workspace.invoke("mlflow-ep", {"rows": []})
    assert nothing.status_code == 424 and "input_data" in nothing.json()["error"], nothing.body
