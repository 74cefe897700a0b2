import pytest
from byom.core.memory import InMemoryWorkspace

from .contract import WorkspaceContract


class TestInMemoryWorkspace(WorkspaceContract):
    @pytest.fixture
    def workspace(self):
        return InMemoryWorkspace(actor="tester", seed=1)

    @pytest.fixture
    def deploy_kwargs(self):
        return {}


def test_a_forced_rebuild_is_refused_while_a_deployment_runs_in_the_build(tmp_path):
    from byom.core.entities import Deployment, Endpoint, EnvironmentSpec, ModelSpec
    from byom.core.errors import InUse

    from .contract import make_model_dir

    ws = InMemoryWorkspace(actor="tester", seed=1)
    conda = "dependencies:\n  - python=3.11\n  - pip:\n    - joblib==1.5.1\n"
    ws.create_environment(EnvironmentSpec(name="sk", conda_file=conda))
    ws.create_environment(EnvironmentSpec(name="other", conda_file=conda.replace("1.5.1", "1.5.0")))
    ws.create_model(ModelSpec(name="m", path=str(make_model_dir(tmp_path / "m"))))
    ws.create_or_update_endpoint(Endpoint(name="ep1"))
    ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="ep1", model="m:1", environment="sk:1"))
    ws.build_environment("sk")  # a plain build reuses the cache: allowed
    with pytest.raises(InUse, match=r"ep1/blue \(sk:1\)"):
        ws.build_environment("sk", force=True)
    assert ws.build_environment("other", force=True).state == "Succeeded"  # another spec, another build
    ws.delete_deployment("ep1", "blue")
    assert ws.build_environment("sk", force=True).state == "Succeeded"
