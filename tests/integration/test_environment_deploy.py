"""A deployment runs in the environment it names: built from its conda spec, cached, and scored through the endpoint."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import joblib
import numpy
import pytest
from byom.core.entities import Deployment, Endpoint, EnvironmentSpec, ModelSpec
from sklearn.linear_model import LinearRegression

from .helpers import ASSETS, model_servers

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


def conda_spec() -> str:
    # the versions this interpreter has, so that the pickle loads the same way in the built environment
    pins = {name: metadata.version(name) for name in ("numpy", "scikit-learn", "joblib", "scipy")}
    server = metadata.version("azureml-inference-server-http")
    return (
        "name: sklearn-scoring\n"
        "dependencies:\n"
        "  - python=3.11\n"
        f"  - numpy={pins['numpy']}\n"
        f"  - scikit-learn={pins['scikit-learn']}\n"
        "  - pip\n"
        "  - pip:\n"
        f"      - joblib=={pins['joblib']}\n"
        f"      - scipy=={pins['scipy']}\n"
        f"      - azureml-inference-server-http=={server}\n"
    )


def test_sklearn_model_scores_in_its_built_environment(workspace, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    features = numpy.random.default_rng(0).normal(size=(40, 10))
    joblib.dump(LinearRegression().fit(features, features.sum(axis=1) * 3.0), folder / "sklearn_regression_model.pkl")
    model = workspace.create_model(ModelSpec(name="regressor", path=str(folder)))
    env = workspace.create_environment(EnvironmentSpec(name="sklearn-env", conda_file=conda_spec()))
    workspace.create_or_update_endpoint(Endpoint(name="sk-endpoint"))

    seen: list[str] = []
    blue = workspace.create_or_update_deployment(Deployment(
        name="blue", endpoint_name="sk-endpoint", model=model.ref, environment=env.ref,
        code_path=str(ASSETS / "sklearn_scoring"), scoring_script="score.py"),
        progress=lambda message, fraction=None: seen.append(message))
    assert blue.provisioning_state == "Succeeded", blue.state_reason
    # while the environment builds, the caller hears how far it is
    assert any(m.startswith(f"Environment {env.ref}: Installing") for m in seen), seen
    build = workspace.get_environment_build("sklearn-env", env.version)
    assert build.state == "Succeeded"
    assert any(line.startswith("scikit-learn==") for line in build.packages)

    # the model server runs the environment's interpreter, not byom's
    servers = model_servers(workspace.home)
    assert len(servers) == 1
    exe = os.path.realpath(f"/proc/{servers[0]}/exe")
    venv_python = os.path.realpath(build.interpreter)
    assert exe == venv_python, (exe, venv_python)

    workspace.set_traffic("sk-endpoint", {"blue": 100})
    row = list(range(1, 11))
    answer = workspace.invoke("sk-endpoint", {"data": [row]})
    assert answer.status_code == 200, answer.body
    assert answer.json()[0] == pytest.approx(3.0 * sum(row), rel=1e-6)

    # a second version with the same spec shares the build: green comes up without building again
    same = workspace.create_environment(EnvironmentSpec(name="sklearn-env", conda_file=conda_spec()))
    green = workspace.create_or_update_deployment(Deployment(
        name="green", endpoint_name="sk-endpoint", model=model.ref, environment=same.ref,
        code_path=str(ASSETS / "sklearn_scoring"), scoring_script="score.py"))
    assert green.provisioning_state == "Succeeded", green.state_reason
    assert workspace.get_environment_build("sklearn-env", same.version).interpreter == build.interpreter
    assert workspace.invoke("sk-endpoint", {"data": [row]}, deployment="green").status_code == 200


def test_a_deployment_whose_environment_fails_to_build_fails_with_the_reason(workspace, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"0")
    model = workspace.create_model(ModelSpec(name="any", path=str(folder)))
    conda = "dependencies:\n  - python=3.11\n  - pip:\n    - byom-surely-not-a-package==1.0\n"
    env = workspace.create_environment(EnvironmentSpec(name="broken", conda_file=conda))
    workspace.create_or_update_endpoint(Endpoint(name="broken-env"))
    dep = workspace.create_or_update_deployment(Deployment(
        name="blue", endpoint_name="broken-env", model=model.ref, environment=env.ref,
        code_path=str(ASSETS / "echo"), scoring_script="score.py"))
    assert dep.provisioning_state == "Failed"
    assert "byom-surely-not-a-package" in dep.state_reason
    assert workspace.get_deployment("broken-env", "blue").provisioning_state == "Failed"
    assert model_servers(workspace.home) == []
