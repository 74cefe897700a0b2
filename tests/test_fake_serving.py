"""The in-memory fake answers as the gateway does where the contract suite cannot tell them apart."""

import pytest
from byom.core.entities import Deployment, Endpoint, ModelSpec
from byom.core.memory import InMemoryWorkspace
from byom.core.rules import bearer_authorized


@pytest.fixture
def ws(tmp_path):
    ws = InMemoryWorkspace(actor="tester", seed=1)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.pkl").write_bytes(b"weights")
    ws.create_model(ModelSpec(name="m", path=str(tmp_path / "m")))
    ws.create_or_update_endpoint(Endpoint(name="ep1"))
    ws.create_or_update_deployment(Deployment(name="blue", endpoint_name="ep1", model="m:1"))
    ws.set_traffic("ep1", {"blue": 100})
    return ws


@pytest.mark.parametrize(("authorization", "status"), [
    ("Bearer {key}", 200),
    ("bearer {key}", 200),  # the scheme is case-insensitive (RFC 7235), as the gateway reads it
    ("  Bearer   {key}  ", 200),
    ("Bearer {secondary}", 200),
    ("Basic {key}", 401),
    ("Bearer", 401),
    ("Bearer nope", 401),
])
def test_the_key_check_is_the_gateways(ws, authorization, status) -> None:
    keys = ws.get_keys("ep1")
    header = authorization.format(key=keys.primary_key, secondary=keys.secondary_key)
    assert ws.invoke("ep1", {"prompt": "hi"}, headers={"Authorization": header}).status_code == status
    assert bearer_authorized(header, (keys.primary_key, keys.secondary_key)) == (status == 200)


def test_a_deployment_says_its_task_from_its_scoring_script() -> None:
    ranks = Deployment(name="r", endpoint_name="e", model="m:1", scoring_script="token_ranks.py")
    assert ranks.task == "token_ranks"
    assert ranks.replace(scoring_script="generate.py").task == "generation"
    assert ranks.replace(scoring_script=None).task == "generation"
