"""The contract suite on the Azure ML backend, over a replay of Azure ML's REST API.

azure-ai-ml's real ``MLClient`` (its serializers, pollers and blob upload
code) talks to ``tests.azure_replay``, a small stateful fake of one
workspace's ARM resources, storage account and scoring hosts, which refuses
requests the service would refuse. What Azure ML cannot do through the SDK
is declared in capabilities and skipped, or overridden here to check that
the backend says so; what only Azure ML does (register cloud paths in place,
build Docker contexts) is overridden with what it does.
"""

import json
from pathlib import Path

import pytest
from byom.core.entities import EnvironmentSpec, ModelSpec
from byom.core.errors import Unsupported

from tests.azure_replay.sdk import replay_workspace
from tests.azure_replay.service import FakeAzureML
from tests.azure_replay.storage import HOST

from .contract import CONDA, WorkspaceContract

ASSETS = Path(__file__).parent / "assets"
JOB_OUTPUT = "azureml://jobs/train-42/outputs/artifacts/paths/model/"


class TestAzureWorkspace(WorkspaceContract):
    @pytest.fixture
    def service(self):
        service = FakeAzureML(seed=1)
        yield service
        assert service.unrouted == [], "the backend sent requests Azure ML has no route for"
        assert service.refused == [], "the backend sent requests Azure ML refuses"

    @pytest.fixture
    def workspace(self, service, tmp_path, monkeypatch):
        ws = replay_workspace(service, monkeypatch, tmp_path / "audit", actor="tester")
        yield ws
        ws.close()

    @pytest.fixture
    def deploy_kwargs(self):
        return {"code_path": str(ASSETS), "scoring_script": "echo_score.py"}

    @pytest.fixture
    def settle(self, service):
        return service.run_pending

    def test_environment_drift_reports_each_pin(self, workspace):
        """Azure ML does not show what its images hold: the backend says so instead of guessing."""
        workspace.create_environment(EnvironmentSpec(name="d", conda_file=CONDA))
        with pytest.raises(Unsupported) as raised:
            workspace.environment_drift("d")
        assert raised.value.hint

    def test_cloud_model_paths_as_the_backend_declares(self, workspace, service, tmp_path):
        """A job's outputs are registered where they lie: nothing uploaded, nothing hashed."""
        service.storage.put("ExperimentRun/dcid.train-42/model/model.pkl", b"trained")
        model = workspace.create_model(ModelSpec(name="trained", path=JOB_OUTPUT, type="custom_model"))
        put = json.loads(service.sent("PUT", r"/models/trained/versions/1$")[-1].body)["properties"]
        assert put["modelUri"] == JOB_OUTPUT, "the job's URI is registered as it is"
        assert not any(c.host == HOST and c.method == "PUT" for c in service.calls), "nothing is uploaded"
        assert (model.version, model.files, model.source, model.path) == (1, [], JOB_OUTPUT, JOB_OUTPUT)
        assert workspace.get_model("trained").source == JOB_OUTPUT
        with pytest.raises(Unsupported) as raised:
            workspace.download_model("trained", 1, tmp_path / "dl")
        assert "az ml job download --name train-42" in raised.value.hint
        assert not (tmp_path / "dl").exists()

    def test_docker_contexts_as_the_backend_declares(self, workspace, service, tmp_path):
        """The context is uploaded with the environment, for Azure ML to build."""
        context = tmp_path / "docker-context"
        context.mkdir()
        (context / "serve.Dockerfile").write_text("FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04\n")
        env = workspace.create_environment(EnvironmentSpec(name="docker", build_context=str(context),
                                                           dockerfile_path="serve.Dockerfile"))
        put = json.loads(service.sent("PUT", r"/environments/docker/versions/1$")[-1].body)["properties"]
        assert "image" not in put and put["build"]["dockerfilePath"] == "serve.Dockerfile"
        container, prefix = service._blob_location(put["build"]["contextUri"])
        assert list(service.storage.files_under(prefix, container).values()) == [
            b"FROM mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04\n"], "the context's files are uploaded"
        assert env.build_context == put["build"]["contextUri"] and env.image is None
        shown = workspace.get_environment("docker")
        assert (shown.build_context, shown.dockerfile_path) == (env.build_context, "serve.Dockerfile")
        (context / "Dockerfile").write_text("FROM python:3.11-slim\n")
        workspace.create_environment(EnvironmentSpec(name="docker", build_context=str(context)))
        before, after = workspace.diff_environments("docker", 1, 2).build
        assert before.endswith("(serve.Dockerfile)") and after.endswith("(Dockerfile)")
