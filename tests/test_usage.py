"""core.usage: which deployments use a model or an environment version."""

from byom.core import usage
from byom.core.entities import Deployment, Endpoint, ModelSpec
from byom.core.memory import InMemoryWorkspace


def test_usage_maps_name_each_user_by_endpoint_and_deployment(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"\x00")
    ws = InMemoryWorkspace(seed=0)
    for _ in range(2):
        ws.create_model(ModelSpec(name="m", path=str(tmp_path / "model.pkl")))
    for endpoint, model in (("alpha", "m:1"), ("beta", "m:2")):
        ws.create_or_update_endpoint(Endpoint(name=endpoint))
        ws.create_or_update_deployment(Deployment(name="blue", endpoint_name=endpoint, model=model))
    ws.create_or_update_deployment(Deployment(name="green", endpoint_name="beta", model="m:1"))
    deployments = usage.all_deployments(ws)
    assert sorted(f"{d.endpoint_name}/{d.name}" for d in deployments) == ["alpha/blue", "beta/blue", "beta/green"]
    assert usage.model_usage(deployments) == {"m:1": ["alpha/blue", "beta/green"], "m:2": ["beta/blue"]}
    environments = usage.environment_usage(deployments)
    assert sorted(u for users in environments.values() for u in users) == ["alpha/blue", "beta/blue", "beta/green"]


def test_environment_users_count_every_version_of_a_name():
    users = {"scoring:1": ["a/blue"], "scoring:2": ["b/blue"], "scoring-gpu:1": ["c/blue"], "local-python": ["d/x"]}
    assert usage.environment_users(users, "scoring") == ["a/blue", "b/blue"]
    assert usage.environment_users(users, "local-python") == ["d/x"]
