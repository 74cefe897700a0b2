"""Assets named in Azure ML registries, on a workspace without them: curated environments get a local equivalent."""

from __future__ import annotations

import pytest
from byom.core.entities import Deployment, Endpoint, EnvironmentSpec, ModelSpec
from byom.core.environments import parse_conda
from byom.core.errors import InvalidInput
from byom.core.memory import InMemoryWorkspace

SKLEARN = "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"


@pytest.fixture
def ws(tmp_path) -> InMemoryWorkspace:
    (tmp_path / "model.pkl").write_bytes(b"\x00")
    ws = InMemoryWorkspace(seed=0)
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "model.pkl")))
    ws.create_or_update_endpoint(Endpoint(name="demo"))
    return ws


def deploy(ws: InMemoryWorkspace, name: str, environment: str) -> Deployment:
    return ws.create_or_update_deployment(Deployment(name=name, endpoint_name="demo", model="m:1",
                                                     environment=environment))


def test_a_curated_environment_runs_in_its_local_equivalent_registered_once(ws: InMemoryWorkspace) -> None:
    blue = deploy(ws, "blue", SKLEARN)
    assert blue.provisioning_state == "Succeeded" and blue.environment == "sklearn-1.5:1"
    env = ws.get_environment("sklearn-1.5", 1)
    _, _, requirements = parse_conda(env.conda_file or "")
    assert "scikit-learn==1.5.*" in requirements and "azureml-inference-server-http" in requirements
    assert env.tags["byom.curated"] == "azureml://registries/azureml/environments/sklearn-1.5"
    assert "curated environment sklearn-1.5" in env.description
    # another deployment, another way of naming a version: the same local environment, no second version
    green = deploy(ws, "green", "azureml://registries/azureml/environments/sklearn-1.5/versions/52")
    assert green.environment == "sklearn-1.5:1"
    assert [e.version for e in ws.list_environment_versions("sklearn-1.5")] == [1]
    assert [r.action for r in ws.list_audit(target_prefix="environment/sklearn-1.5")] == ["environment.create"]


@pytest.mark.parametrize(("uri", "says"), [
    ("azureml://registries/azureml/environments/acpt-pytorch-2.2-cuda12.1/labels/latest", "it is a GPU image"),
    ("azureml://registries/azureml/environments/no-such-env/versions/1", "known here are lightgbm-3.3"),
    ("azureml://registries/team-registry/environments/sklearn-1.5/versions/1", "cannot reach"),
    ("azureml://registries/azureml/environments", "not a registry asset URI"),
])
def test_an_environment_without_a_local_equivalent_is_refused_naming_what_to_do(
        ws: InMemoryWorkspace, uri: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as refused:
        deploy(ws, "blue", uri)
    assert ws.list_deployments("demo") == []
    assert [e.name for e in ws.list_environments()] == ["local-python"]  # nothing half-registered
    if "cannot reach" in says or "GPU" in says:
        assert "--conda-file" in (refused.value.hint or "")


def test_a_registry_model_is_refused_locally_with_how_to_bring_it(ws: InMemoryWorkspace) -> None:
    with pytest.raises(InvalidInput, match="cannot download from") as refused:
        ws.create_or_update_deployment(Deployment(
            name="blue", endpoint_name="demo", model="azureml://registries/azureml/models/phi-3/versions/2"))
    assert "az ml model download --registry-name azureml -n phi-3" in (refused.value.hint or "")
    with pytest.raises(InvalidInput, match="names a model in a registry where an environment is expected"):
        deploy(ws, "blue", "azureml://registries/azureml/models/phi-3/versions/2")


def test_an_own_environment_of_the_same_name_is_never_given_a_curated_version(ws: InMemoryWorkspace) -> None:
    ws.create_environment(EnvironmentSpec(name="sklearn-1.5", conda_file="dependencies:\n  - scikit-learn=1.5.2\n"))
    with pytest.raises(InvalidInput, match="has its own environment named 'sklearn-1.5'"):
        deploy(ws, "blue", SKLEARN)
    assert [e.version for e in ws.list_environment_versions("sklearn-1.5")] == [1]
