"""console.views.endpoints: what can be deployed, the next name, the mirror choice, history rows, payloads."""

from byom.console.views import endpoints as view
from byom.core.entities import Deployment, EnvironmentVersion, ModelVersion
from byom.core.history import Revert, TrafficChange


def dep(name: str, state: str = "Succeeded", script: str | None = None) -> Deployment:
    return Deployment(name=name, endpoint_name="demo", model="m:1", provisioning_state=state, scoring_script=script)


def test_what_the_deploy_form_offers():
    assert view.deployable_models([ModelVersion(name="m", version=2), ModelVersion(name="m", version=1)]) == [
        "m:2", "m:1"]
    envs = [EnvironmentVersion(name="local-python", version=1, built_in=True),
            EnvironmentVersion(name="scoring", version=2), EnvironmentVersion(name="scoring", version=1, archived=True)]
    assert view.deployable_environments(envs) == ["local-python", "scoring:2"]
    assert view.script_index(["token_ranks.py", "generate.py"]) == 1
    assert view.script_index(["score.py"]) == 0


def test_the_next_name_never_replaces_a_running_deployment_by_default():
    assert view.next_deployment_name([]) == "blue"
    assert view.next_deployment_name(["Blue"]) == "green"
    assert view.next_deployment_name(["blue", "green"]) == "deployment-3"
    assert view.next_deployment_name(["blue", "green", "deployment-3"]) == "deployment-4"
    assert view.deploy_feedback("blue", dep("blue", "Creating"))[0] == "info"
    assert view.deploy_feedback("blue", dep("blue"))[:2] == (
        "success", "Deployment blue is ready. It gets no traffic until you give it some in the Traffic tab.")
    deployments = [dep("blue"), dep("green", "Failed")]
    assert view.replaced_deployment(deployments, " BLUE ") is deployments[0]
    assert view.replaced_deployment(deployments, "green") is None, "a failed deployment is replaced without asking"
    assert view.redeploy_question(deployments[0], {"blue": 100}, "m:2") == (
        "Deployment blue already exists on demo with 100 % of live traffic: replace it in place (model m:1 → m:2)?")
    scripted = Deployment(name="chat", endpoint_name="demo", model="m:1", scoring_script="generate.py")
    assert view.redeploy_question(scripted, {"chat": 100}, "m:1", "token_ranks.py", "local-python") == (
        "Deployment chat already exists on demo with 100 % of live traffic: replace it in place "
        "(script generate.py → token_ranks.py)? Its task changes from generation to token ranks: callers that send "
        "it prompts get errors, and it moves from the Playground to the Token ranks page.")
    assert view.redeploy_question(scripted, {}, "m:1", "generate.py").endswith(
        "(the same model, script and environment, restarted)?")
    assert view.delete_endpoint_question("demo", ["chat", "ranks"]) == (
        "Delete endpoint demo with its deployments chat and ranks? Its keys stop working and clients calling it "
        "get errors.")


def test_busy_deployments():
    assert view.busy([dep("blue"), dep("green", "Updating")])
    assert not view.busy([dep("blue"), dep("green", "Failed")])


def test_the_mirror_choice_shows_the_stored_split():
    assert view.mirror_choice({}, ["blue", "green"]) == (["none", "blue", "green"], 0, 10)
    assert view.mirror_choice({"green": 20}, ["blue", "Green"]) == (["none", "blue", "Green"], 2, 20)
    assert view.mirror_split("none", 20) == {}
    assert view.mirror_split("green", 20) == {"green": 20}


def test_history_rows_and_the_revert_question():
    change = TrafficChange(id=3, at="", actor="ada", before={"blue": 100}, after={"blue": 90, "green": 10},
                           mirror_before={}, mirror_after={"shadow": 5})
    assert view.change_texts(change) == ("blue 100", "blue 90 · green 10 (mirror: shadow 5)")
    planned = Revert("demo", change, {"blue": 100}, {})
    assert view.revert_question(planned, 60) == (
        "Reverting moves 60 percentage points of live traffic at once: set demo to blue 100?")


def test_the_snippets_payload_fits_the_deployment_s_task():
    assert view.sample_payload(dep("ranks", script="token_ranks.py")) == {"text": "The quick brown fox."}
    assert view.sample_payload(dep("chat", script="generate.py"))["prompt"] == "Say hello."
    assert view.sample_payload(None)["prompt"] == "Say hello."


def test_the_deployment_page_facts_and_its_update():
    from byom.core.entities import Endpoint, InstanceStatus

    current = Deployment(name="blue", endpoint_name="demo", model="m:1", environment="scoring:1",
                         code_path="/src/scoring", scoring_script="generate.py", instance_count=2,
                         provisioning_state="Succeeded",
                         instances=[InstanceStatus("blue-0", "Ready", pid=10, port=5001),
                                    InstanceStatus("blue-1", "Starting")])
    endpoint = Endpoint(name="demo", traffic={"blue": 90, "green": 10})
    facts = dict(zip(*[view.deployment_facts(current, endpoint)[c] for c in ("field", "value")], strict=True))
    assert facts["model"] == "m:1" and facts["environment"] == "scoring:1" and facts["scoring script"] == "generate.py"
    assert facts["instances"] == "1 ready of 2 (local)" and facts["live traffic"] == "90 %"
    assert list(view.instances_table(current)["state"]) == ["Ready", "Starting"]

    assert view.update_changes(current, "m:1", "scoring:1", "generate.py") == []
    assert view.with_current(["m:2", "m:1"], "m:1") == (["m:2", "m:1"], 1)
    assert view.with_current(["m:2"], "m:1") == (["m:1", "m:2"], 0), "an archived version it runs stays offered"
    assert view.with_current(["local-python", "scoring:1"], "local-python:1") == (["local-python", "scoring:1"], 0)
    assert view.with_current([], None) == ([], 0)
    assert view.update_changes(current, "m:2", "local-python", "token_ranks.py") == [
        "model m:1 → m:2", "environment scoring:1 → local-python", "scoring script generate.py → token_ranks.py"]
    assert view.update_question(current, ["model m:1 → m:2"], endpoint) == (
        "Update deployment blue of demo: model m:1 → m:2? Its 90 % of live traffic is served by the new instances "
        "once they are ready.")
    ranks = current.replace(name="ranks", scoring_script="token_ranks.py")
    mirrored = Endpoint(name="demo", traffic={"blue": 100}, mirror_traffic={"ranks": 20})
    assert view.update_question(ranks, ["scoring script token_ranks.py → generate.py"], mirrored, "generate.py") == (
        "Update deployment ranks of demo: scoring script token_ranks.py → generate.py? Its task changes from token "
        "ranks to generation: callers that send it texts to rank get errors, and it moves from the Token ranks page "
        "to the Playground. It gets a mirrored copy of 20 % of demo's requests.")
    assert view.update_question(ranks, ["model m:1 → m:2"], endpoint, "token_ranks.py").endswith(
        "m:1 → m:2? It serves no live traffic: only requests that name it reach it.")
    assert view.delete_deployment_question(current, endpoint) == (
        "Delete deployment blue of demo? Its instances stop and requests that name it get 404. It serves 90 % of "
        "live traffic: the delete is refused until the Traffic tab gives that share to another deployment.")
    assert view.regenerate_key_question("demo", "secondary") == (
        "Regenerate the secondary key of demo? Clients using it stop working; the primary key and consumers' own "
        "keys keep working.")
    wanted = view.updated(current, "m:2", "scoring:1", None)
    assert (wanted.model, wanted.scoring_script, wanted.instance_count, wanted.code_path) == (
        "m:2", "generate.py", 2, "/src/scoring")
    assert view.deploy_feedback("blue", dep("blue", "Updating"))[1].startswith("Updating deployment blue:")


def test_metrics_of_one_deployment():
    from byom.core.entities import DeploymentMetrics

    metrics = [DeploymentMetrics("demo", "blue", 3600, requests=40, errors=2, p50_ms=12.4, p95_ms=80.6, p99_ms=None),
               DeploymentMetrics("demo", "green", 3600, requests=5)]
    assert view.metrics_table(metrics, "Blue").to_dict("records") == [
        {"traffic": "live", "requests": 40, "errors": 2, "p50 ms": 12, "p95 ms": 81, "p99 ms": None}]


def test_logs_are_filtered_by_a_search():
    log = "INFO start\nERROR boom in run()\ninfo ready\n"
    assert view.filter_log(log, "") == ("INFO start\nERROR boom in run()\ninfo ready", 3, 3)
    assert view.filter_log(log, " Info ") == ("INFO start\ninfo ready", 2, 3)
    assert view.filter_log(log, "nothing") == ("", 0, 3)
    assert view.log_file_name("demo", "blue", "inference-server") == "demo-blue-inference-server.log"


def test_ready_to_run_code_carries_the_key_it_is_shown_with():
    from byom.console.views import common
    from byom.core.entities import Endpoint

    endpoint = Endpoint(name="demo", scoring_uri="http://127.0.0.1:8000/endpoints/demo/score")
    curl = view.ready_to_run(common.curl_snippet(endpoint, {"prompt": "hi"}), "bash", "k3y-Abc_1")
    assert curl.splitlines()[0] == "BYOM_KEY=k3y-Abc_1" and '"Authorization: Bearer $BYOM_KEY"' in curl
    python = view.ready_to_run(common.python_snippet(endpoint, {"prompt": "hi"}), "python", "k3y-Abc_1")
    assert 'os.environ["BYOM_KEY"] = "k3y-Abc_1"\n' in python
    namespace: dict = {}
    exec(python.split("import requests")[0], namespace)  # the key line runs as written
    import os
    assert os.environ.pop("BYOM_KEY") == "k3y-Abc_1"
