"""console.views.common: what several pages show."""

from byom.console.views import common
from byom.core.entities import Deployment, Endpoint


def test_snippets_never_contain_the_key_and_target_a_deployment():
    endpoint = Endpoint(name="demo", scoring_uri="http://127.0.0.1:5000/endpoints/demo/score")
    curl = common.curl_snippet(endpoint, {"prompt": "hi"}, "green")
    assert "http://127.0.0.1:5000/endpoints/demo/score" in curl
    assert '"Authorization: Bearer $BYOM_KEY"' in curl
    assert "azureml-model-deployment: green" in curl
    python = common.python_snippet(endpoint, {"prompt": "hi", "do_sample": True})
    compile(python, "snippet", "exec")
    assert "json={'prompt': 'hi', 'do_sample': True}" in python
    assert '"azureml-model-deployment": ' not in python
    targeted = common.python_snippet(endpoint, {"prompt": "hi"}, "green")
    compile(targeted, "snippet", "exec")
    assert '"azureml-model-deployment": "green"' in targeted


def test_deployments_table_shows_each_share():
    endpoint = Endpoint(name="demo", traffic={"blue": 90, "green": 10}, mirror_traffic={"shadow": 5})
    deps = [Deployment(name=n, endpoint_name="demo", model="m:1", provisioning_state="Succeeded")
            for n in ("blue", "green", "shadow")]
    table = common.deployments_table(deps, endpoint)
    assert list(table["traffic %"]) == [90, 10, 0]
    assert list(table["mirror %"]) == [0, 0, 5]


def test_a_deployment_task_is_core_s_own():
    ranks = Deployment(name="ranks", endpoint_name="demo", model="m:1", scoring_script="token_ranks.py")
    chat = Deployment(name="chat", endpoint_name="demo", model="m:1", scoring_script="generate.py")
    unnamed = Deployment(name="other", endpoint_name="demo", model="m:1")
    assert [common.deployment_task(d) for d in (ranks, chat, unnamed)] == ["token_ranks", "generation", "generation"]

    class Told(Deployment):
        task = "token_ranks"

    told = Told(name="told", endpoint_name="demo", model="m:1", scoring_script="score.py")
    assert common.deployment_task(told) == "token_ranks"


def test_an_empty_table_still_has_its_columns():
    assert list(common.table([], ["a", "b"]).columns) == ["a", "b"]
    assert list(common.table([{"b": 1, "a": 2}], ["a", "b"]).iloc[0]) == [2, 1]


def test_traffic_text_sizes_and_times():
    endpoint = Endpoint(name="demo", traffic={"blue": 90, "green": 10}, mirror_traffic={"shadow": 5})
    assert common.traffic_text(endpoint) == "blue 90 · green 10 (mirror: shadow 5)"
    assert [common.human_size(n) for n in (512, 2048, 5 << 20, 3 << 30)] == ["512 B", "2.0 KB", "5.0 MB", "3.0 GB"]
    assert common.short_time("2025-11-23T08:15:02.123+00:00") == "2025-11-23 08:15:02"
    assert common.short_time("") == ""
