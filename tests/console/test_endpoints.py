"""Endpoints: create, deploy, traffic with validation before sending, revert from history, keys, logs, delete."""

from byom.console import keys
from byom.core.entities import Deployment, Endpoint, EnvironmentSpec
from byom.core.local.workspace import LocalWorkspace
from byom.core.serving import NoServing

from .apptest_helpers import by_label, texts


def deploy(at, name):
    """Fill in the deployment name and press Deploy, the other fields as they are."""
    at.text_input(key=keys.DEPLOY_NAME).set_value(name)
    at.button(key=keys.DEPLOY_SUBMIT).click()
    at.run()


def set_traffic(at, **split):
    for deployment, pct in split.items():
        by_label(at.number_input, deployment).set_value(pct)
    return at.run()


def test_create_an_endpoint_and_refuse_a_bad_name(open_page, workspace):
    at = open_page("endpoints")
    at.text_input(key=keys.ENDPOINT_CREATE_NAME).set_value("x")
    at.button(key=keys.ENDPOINT_CREATE_SUBMIT).click()
    at.run()
    assert "Invalid endpoint name 'x'" in texts(at.error)
    assert workspace.list_endpoints() == []

    at.text_input(key=keys.ENDPOINT_CREATE_NAME).set_value("chat-prod")
    at.button(key=keys.ENDPOINT_CREATE_SUBMIT).click()
    at.run()
    assert "Created endpoint chat-prod." in texts(at.success)
    assert at.selectbox[0].value == "chat-prod"
    assert "No deployments yet" in texts(at.info)


def test_deploy_a_second_version_blue_green(open_page, demo):
    at = open_page("endpoints")
    assert at.text_input(key=keys.DEPLOY_NAME).value == "blue"
    at.text_input(key=keys.DEPLOY_NAME).set_value("green")
    at.number_input(key=keys.DEPLOY_INSTANCES).set_value(2)
    at.button(key=keys.DEPLOY_SUBMIT).click()
    at.run()

    assert not at.exception
    assert "Deployment green is ready." in texts(at.success)
    table = at.dataframe[0].value
    assert list(table["deployment"]) == ["chat", "green", "ranks"]
    assert list(table["traffic %"]) == [100, 0, 0]
    green = demo.get_deployment("demo", "green")
    assert (green.instance_count, green.scoring_script) == (2, "generate.py")


def test_the_scoring_script_is_chosen_from_the_code_folder(open_page, demo, tmp_path):
    at = open_page("endpoints")
    script = at.selectbox(key=keys.DEPLOY_SCRIPT)
    assert at.text_input(key=keys.DEPLOY_CODE).value.endswith("scoring")
    assert script.value == "generate.py"
    assert script.options[:2] == ["generate.py", "token_ranks.py"]

    script.set_value("token_ranks.py")
    deploy(at, "ranks2")
    assert "Deployment ranks2 is ready." in texts(at.success)
    assert demo.get_deployment("demo", "ranks2").scoring_script == "token_ranks.py"

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text("def init():\n    pass\n\n\ndef run(raw):\n    return raw\n")
    at.text_input(key=keys.DEPLOY_CODE).set_value(str(tmp_path / "code")).run()
    assert at.selectbox(key=keys.DEPLOY_SCRIPT).options == ["score.py"]
    deploy(at, "custom")
    custom = demo.get_deployment("demo", "custom")
    assert (custom.code_path, custom.scoring_script) == (str(tmp_path / "code"), "score.py")


def test_a_code_folder_that_does_not_exist_is_explained(open_page, demo, tmp_path):
    at = open_page("endpoints")
    at.text_input(key=keys.DEPLOY_CODE).set_value(str(tmp_path / "nowhere")).run()
    assert not at.exception
    assert "does not exist" in texts(at.error)
    deploy(at, "green")
    assert "Choose the scoring script first." in texts(at.error)
    assert [d.name for d in demo.list_deployments("demo")] == ["chat", "ranks"]


def test_a_failed_deployment_shows_its_reason(open_page, demo):
    demo.fake_serving.fail_next("init() raised: out of memory")
    at = open_page("endpoints")
    deploy(at, "green")
    assert "Deployment green failed: init() raised: out of memory" in texts(at.error).replace("\\", "")
    assert "Read its logs" in texts(at.info)
    assert at.dataframe[0].value.set_index("deployment").loc["green", "state"] == "Failed"


def test_deploying_where_the_backend_cannot_serve_says_so(open_page, workspace, tmp_path, model_folder):
    from byom.core.entities import ModelSpec
    from streamlit.testing.v1 import AppTest

    from .conftest import APP

    local = LocalWorkspace(tmp_path / "home", serving=NoServing())  # a registry-only workspace
    local.create_model(ModelSpec(name="tiny", path=str(model_folder)))
    local.create_or_update_endpoint(Endpoint(name="local-ep"))
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.session_state[keys.WORKSPACE] = local
    at.run()
    at.switch_page("screens/endpoints.py").run()
    deploy(at, "blue")
    assert not at.exception
    assert "This workspace cannot run deployments." in texts(at.error)
    assert at.info, "the refusal comes with a next step"


def test_traffic_is_checked_before_it_is_sent(open_page, demo):
    at = open_page("endpoints")
    audit_before = len(demo.list_audit())

    at = set_traffic(at, chat=80, ranks=10)
    assert "This split would be refused: Traffic adds up to 90 %" in texts(at.error)
    assert at.button(key=keys.TRAFFIC_APPLY).disabled

    at = set_traffic(at, chat=100, ranks=0)
    assert not at.error
    at.selectbox(key=keys.mirror_target(demo.get_endpoint("demo").updated_at)).set_value("chat").run()
    assert "cannot also receive mirror traffic" in texts(at.error)
    assert at.button(key=keys.TRAFFIC_APPLY).disabled
    assert len(demo.list_audit()) == audit_before, "a refused split is never sent"


def test_shift_traffic_90_10_then_revert_from_history(open_page, demo):
    at = open_page("endpoints")
    at = set_traffic(at, chat=90, ranks=10)
    assert not at.error
    at.button(key=keys.TRAFFIC_APPLY).click()
    at.run()
    assert "Traffic of demo is now chat 90 · ranks 10." in texts(at.success)
    assert demo.get_endpoint("demo").traffic == {"chat": 90, "ranks": 10}
    assert by_label(at.number_input, "chat").value == 90

    history = demo.list_audit(target_prefix="endpoint/demo")
    newest = next(r for r in history if r.action == "endpoint.traffic")
    assert "chat 100 → **chat 90 · ranks 10**" in texts(at.markdown)
    at.button(key=keys.revert_button(newest.id)).click()
    at.run()
    assert "Reverted demo to chat 100." in texts(at.success)
    assert demo.get_endpoint("demo").traffic == {"chat": 100, "ranks": 0}
    assert by_label(at.number_input, "chat").value == 100


def test_a_large_shift_asks_for_confirmation(open_page, demo):
    at = open_page("endpoints")
    at = set_traffic(at, chat=0, ranks=100)
    assert at.button(key=keys.TRAFFIC_APPLY).disabled
    confirm = by_label(at.checkbox, "Yes, move 100 percentage points of live traffic at once")
    confirm.check().run()
    assert not at.button(key=keys.TRAFFIC_APPLY).disabled
    at.button(key=keys.TRAFFIC_APPLY).click()
    at.run()
    assert demo.get_endpoint("demo").traffic == {"chat": 0, "ranks": 100}


def test_mirror_traffic_to_a_deployment_without_live_traffic(open_page, demo):
    at = open_page("endpoints")
    revision = demo.get_endpoint("demo").updated_at
    at.selectbox(key=keys.mirror_target(revision)).set_value("ranks").run()
    at.number_input(key=keys.mirror_percent(revision)).set_value(60)
    at.run()
    assert "at most 50 % can be mirrored" in texts(at.error)
    at.number_input(key=keys.mirror_percent(revision)).set_value(20)
    at.run()
    at.button(key=keys.TRAFFIC_APPLY).click()
    at.run()
    assert demo.get_endpoint("demo").mirror_traffic == {"ranks": 20}
    assert "(mirror: ranks 20)" in texts(at.markdown)


def test_keys_are_masked_until_shown_and_regenerated_after_confirmation(open_page, demo):
    old = demo.get_keys("demo")
    at = open_page("endpoints")
    shown = texts(at.code)
    assert old.primary_key not in shown
    assert old.primary_key[:4] + "•" in shown
    assert "Authorization: Bearer $BYOM_KEY" in shown and "memory://endpoints/demo/score" in shown

    at.toggle(key=keys.SHOW_KEYS).set_value(True).run()
    assert old.primary_key in texts(at.code)

    at.button(key=keys.regenerate_button("primary")).click()
    at.run()
    assert ("Regenerate the primary key of demo? Clients using it stop working; the secondary key and consumers' own "
            "keys keep working.") in texts(at.warning)
    assert demo.get_keys("demo") == old, "nothing changes before the confirmation"
    at.button(key=keys.confirm_button("regenerate:demo:primary")).click()
    at.run()
    new = demo.get_keys("demo")
    assert new.primary_key != old.primary_key and new.secondary_key == old.secondary_key
    assert "Regenerated the primary key of demo." in texts(at.success)


def test_logs_of_a_deployment(open_page, demo):
    at = open_page("endpoints")
    at.selectbox(key=keys.LOG_DEPLOYMENT).set_value("ranks").run()
    assert "Deployment ranks ready" in texts(at.code)


def test_delete_a_deployment_with_traffic_is_refused_and_an_endpoint_asks_first(open_page, demo):
    at = open_page("endpoints")
    at.selectbox(key=keys.MANAGE_DEPLOYMENT).set_value("chat").run()
    at.button(key=keys.DELETE_DEPLOYMENT).click()
    at.run()
    assert ("Delete deployment chat of demo? Its instances stop and requests that name it get 404. It serves 100 % "
            "of live traffic: the delete is refused until the Traffic tab gives that share to another deployment."
            ) in texts(at.warning)
    at.button(key=keys.confirm_button("delete-deployment:demo/chat")).click()
    at.run()
    assert "still has 100 % of live traffic" in texts(at.error)

    at.button(key=keys.DELETE_ENDPOINT).click()
    at.run()
    assert ("Delete endpoint demo with its deployments chat and ranks? Its keys stop working and clients calling it "
            "get errors.") in texts(at.warning)
    assert demo.list_endpoints(), "nothing is deleted before the confirmation"
    at.button(key=keys.confirm_button("delete-endpoint:demo")).click()
    at.run()
    assert demo.list_endpoints() == []
    assert "Deleted endpoint demo." in texts(at.success)


def traffic_changes(workspace):
    """The endpoint's traffic changes, newest first."""
    return [r for r in workspace.list_audit(target_prefix="endpoint/demo") if r.action == "endpoint.traffic"]


def test_a_deployment_name_is_not_reused_without_asking(open_page, demo):
    at = open_page("endpoints")
    assert at.text_input(key=keys.DEPLOY_NAME).value == "blue"
    at.button(key=keys.DEPLOY_SUBMIT).click()
    at.run()
    assert "Deployment blue is ready." in texts(at.success)
    assert at.text_input(key=keys.DEPLOY_NAME).value == "green", "the next deploy does not replace blue by default"
    at.number_input(key=keys.DEPLOY_INSTANCES).set_value(3)
    at.text_input(key=keys.DEPLOY_NAME).set_value("")
    at.button(key=keys.DEPLOY_SUBMIT).click()
    at.run()
    assert "Enter a name for the deployment." in texts(at.error)
    at.text_input(key=keys.DEPLOY_NAME).set_value("green")
    at.button(key=keys.DEPLOY_SUBMIT).click()
    at.run()
    assert demo.get_deployment("demo", "green").instance_count == 3
    assert at.number_input(key=keys.DEPLOY_INSTANCES).value == 1, "the form starts afresh after a deploy"
    assert at.text_input(key=keys.DEPLOY_NAME).value == "deployment-3"

    at.text_input(key=keys.DEPLOY_NAME).set_value("chat")
    at.number_input(key=keys.DEPLOY_INSTANCES).set_value(2)
    at.button(key=keys.DEPLOY_SUBMIT).click()
    at.run()
    assert ("Deployment chat already exists on demo with 100 % of live traffic: replace it in place "
            "(the same model, script and environment, restarted)?") in texts(at.warning)
    assert demo.get_deployment("demo", "chat").instance_count == 1, "nothing changes before the confirmation"
    at.button(key=keys.confirm_button("redeploy:demo/chat")).click()
    at.run()
    assert "Deployment chat is ready." in texts(at.success)
    assert demo.get_deployment("demo", "chat").instance_count == 2


def test_any_environment_version_can_be_deployed(open_page, demo):
    conda = "name: scoring\ndependencies:\n  - python=3.11\n"
    demo.create_environment(EnvironmentSpec(name="scoring", conda_file=conda))
    demo.create_environment(EnvironmentSpec(name="scoring", conda_file=conda + "  - pip\n"))
    at = open_page("endpoints")
    environment = at.selectbox(key=keys.DEPLOY_ENVIRONMENT)
    assert {"scoring:2", "scoring:1"} <= set(environment.options)
    environment.set_value("scoring:1")
    deploy(at, "green")
    assert "Deployment green is ready." in texts(at.success)
    assert demo.get_deployment("demo", "green").environment == "scoring:1"


def test_a_large_revert_asks_for_confirmation(open_page, demo):
    demo.set_traffic("demo", {"chat": 0, "ranks": 100})
    at = open_page("endpoints")
    newest = traffic_changes(demo)[0]
    at.button(key=keys.revert_button(newest.id)).click()
    at.run()
    assert "Reverting moves 100 percentage points of live traffic at once" in texts(at.warning)
    assert demo.get_endpoint("demo").traffic == {"chat": 0, "ranks": 100}, "nothing changes before the confirmation"
    at.button(key=keys.confirm_button(f"revert:demo:{newest.id}")).click()
    at.run()
    assert "Reverted demo to chat 100." in texts(at.success)
    assert demo.get_endpoint("demo").traffic == {"chat": 100, "ranks": 0}


def test_history_from_before_a_deployment_was_deleted(open_page, demo):
    demo.create_or_update_deployment(Deployment(name="green", endpoint_name="demo", model="smollm2-135m-instruct:1"))
    demo.set_traffic("demo", {"chat": 90, "ranks": 10})
    demo.set_traffic("demo", {"chat": 100, "ranks": 0})
    demo.delete_deployment("demo", "ranks")
    demo.set_traffic("demo", {"chat": 80, "green": 20})
    _, gave_ranks_10, gave_ranks_0 = traffic_changes(demo)[:3]
    at = open_page("endpoints")

    assert at.button(key=keys.revert_button(gave_ranks_10.id)).disabled
    assert "Cannot revert: it gave traffic to ranks (10 %), deleted since." in texts(at.caption)
    at.button(key=keys.revert_button(gave_ranks_0.id)).click()
    at.run()
    assert not at.error
    assert "Reverted demo to chat 100." in texts(at.success)
    assert demo.get_endpoint("demo").traffic == {"chat": 100}


def test_an_endpoint_deleted_elsewhere_while_its_deployments_refresh(open_page, demo, monkeypatch):
    at = open_page("endpoints")
    read = demo.list_deployments

    def deleted_after_the_page_read_it(name):
        deployments = read(name)
        monkeypatch.setattr(demo, "list_deployments", read)
        demo.delete_endpoint(name)  # in another window, before the live table refreshes
        return deployments

    monkeypatch.setattr(demo, "list_deployments", deleted_after_the_page_read_it)
    at.run()
    assert not at.exception
    assert "No endpoint named 'demo'." in texts(at.error)


def test_long_operations_show_progress(open_page, demo, progress_boxes):
    at = set_traffic(open_page("endpoints"), chat=90, ranks=10)
    at.button(key=keys.TRAFFIC_APPLY).click()
    at.run()
    at.button(key=keys.revert_button(traffic_changes(demo)[0].id)).click()
    at.run()
    at.selectbox(key=keys.MANAGE_DEPLOYMENT).set_value("ranks").run()
    at.button(key=keys.DELETE_DEPLOYMENT).click()
    at.run()
    at.button(key=keys.confirm_button("delete-deployment:demo/ranks")).click()
    at.run()
    at.button(key=keys.DELETE_ENDPOINT).click()
    at.run()
    at.button(key=keys.confirm_button("delete-endpoint:demo")).click()
    at.run()
    at.text_input(key=keys.ENDPOINT_CREATE_NAME).set_value("chat-prod")
    at.button(key=keys.ENDPOINT_CREATE_SUBMIT).click()
    at.run()

    assert not at.exception
    assert [label for label, _ in progress_boxes] == [
        "Applying the new traffic split", "Reverting the traffic split", "Deleting deployment ranks",
        "Deleting endpoint demo and its deployments", "Creating endpoint chat-prod"]
    assert [e.name for e in demo.list_endpoints()] == ["chat-prod"]


def test_history_shows_its_own_endpoint_only(open_page, demo):
    demo.create_or_update_endpoint(Endpoint(name="demo2"))
    demo.create_or_update_deployment(Deployment(name="blue", endpoint_name="demo2", model="smollm2-135m-instruct:1"))
    demo.set_traffic("demo2", {"blue": 100})
    at = open_page("endpoints")
    assert at.selectbox(key=keys.ENDPOINT_PICKER).value == "demo"
    assert "blue 100" not in texts(at.markdown), "demo2's traffic change is not demo's history"
    assert "no traffic → **chat 100**" in texts(at.markdown)


def _facts(at) -> dict:
    (frame,) = [d.value for d in at.dataframe if list(d.value.columns) == ["field", "value"]]
    return dict(zip(frame["field"], frame["value"], strict=True))


def _update(at, demo, deployment: str, **fields):
    """On the Deployment details tab: choose new values for ``deployment``, press Update and confirm."""
    at.selectbox(key=keys.DEPLOYMENT_PAGE).set_value(deployment).run()
    revision = demo.get_deployment("demo", deployment).updated_at
    for field, value in fields.items():
        at.selectbox(key=keys.update_widget(field, revision)).set_value(value).run()
    at.button(key=keys.UPDATE_DEPLOYMENT).click()
    at.run()
    return at


def test_the_deployment_page_updates_the_model_and_shows_the_new_version(open_page, demo, model_folder,
                                                                         progress_boxes):
    from byom.core.entities import ModelSpec

    v2 = demo.create_model(ModelSpec(name="smollm2-135m-instruct", path=str(model_folder))).ref
    at = open_page("endpoints")
    facts = _facts(at)
    assert (facts["model"], facts["scoring script"], facts["live traffic"]) == (
        "smollm2-135m-instruct:1", "generate.py", "100 %")
    assert at.button(key=keys.UPDATE_DEPLOYMENT).disabled, "nothing to update before something is chosen"
    revision = demo.get_deployment("demo", "chat").updated_at
    environment = at.selectbox(key=keys.update_widget("environment", revision))
    assert (environment.value, environment.options.count("local-python")) == ("local-python", 1)

    at = _update(at, demo, "chat", model=v2)
    assert demo.get_deployment("demo", "chat").model.endswith(":1"), "nothing changes before the confirmation"
    assert ("Update deployment chat of demo: model smollm2-135m-instruct:1 → smollm2-135m-instruct:2? Its 100 % of "
            "live traffic is served by the new instances once they are ready.") in texts(at.warning)
    at.button(key=keys.confirm_button("update:demo/chat")).click()
    at.run()

    assert not at.exception
    assert demo.get_deployment("demo", "chat").model == v2
    assert _facts(at)["model"] == v2, "the page shows the version it now runs"
    assert at.dataframe[0].value.set_index("deployment").loc["chat", "model"] == v2
    assert ("Deployment chat is ready. It runs smollm2-135m-instruct:2 and serves 100 % of live traffic."
            in texts(at.success))
    assert progress_boxes[-1][0] == "Updating chat: model smollm2-135m-instruct:1 → smollm2-135m-instruct:2"
    assert demo.list_audit(1)[0].action == "deployment.state"
    assert any(r.action == "deployment.update" and r.after["model"] == v2 for r in demo.list_audit(5))


def test_the_deployment_page_changes_the_script_and_environment(open_page, demo):
    demo.create_environment(EnvironmentSpec(name="scoring", conda_file="dependencies:\n  - pip:\n    - numpy\n"))
    at = _update(open_page("endpoints"), demo, "ranks", script="generate.py", environment="scoring:1")
    assert ("Update deployment ranks of demo: environment local-python:1 → scoring:1; scoring script token_ranks.py → "
            "generate.py? Its task changes from token ranks to generation: callers that send it texts to rank get "
            "errors, and it moves from the Token ranks page to the Playground. It serves no live traffic: only "
            "requests that name it reach it.") in texts(at.warning).replace("\\", "")
    assert demo.get_deployment("demo", "ranks").scoring_script == "token_ranks.py", "nothing before the confirmation"
    at.button(key=keys.confirm_button("update:demo/ranks")).click()
    at.run()
    ranks = demo.get_deployment("demo", "ranks")
    assert (ranks.scoring_script, ranks.environment) == ("generate.py", "scoring:1")
    assert ranks.instance_count == 1 and ranks.code_path and ranks.code_path.endswith("scoring"), "the rest stays"
    assert "It gets no traffic until you give it some" in texts(at.success)


def test_a_new_script_on_the_live_deployment_names_what_changes_and_what_depends_on_it(open_page, demo):
    demo.create_environment(EnvironmentSpec(name="scoring", conda_file="dependencies:\n  - pip:\n    - numpy\n"))
    demo.set_traffic("demo", {"chat": 100, "ranks": 0}, {"ranks": 10})
    at = _update(open_page("endpoints"), demo, "chat", script="token_ranks.py", environment="scoring:1")
    assert ("Update deployment chat of demo: environment local-python:1 → scoring:1; scoring script generate.py → "
            "token_ranks.py? Its task changes from generation to token ranks: callers that send it prompts get "
            "errors, and it moves from the Playground to the Token ranks page. Its 100 % of live traffic is served "
            "by the new instances once they are ready.") in texts(at.warning).replace("\\", "")
    at.button(key=keys.cancel_button("update:demo/chat")).click()
    at.run()
    assert not at.warning and demo.get_deployment("demo", "chat").scoring_script == "generate.py", "cancelled"

    at = _update(at, demo, "ranks", model=demo.get_deployment("demo", "ranks").model, environment="scoring:1")
    assert ("Update deployment ranks of demo: environment local-python:1 → scoring:1? It gets a mirrored copy of 10 % "
            "of demo's requests.") in texts(at.warning), "no task change said where the script stays"


def test_a_failed_update_shows_its_reason_at_the_top(open_page, demo, model_folder):
    from byom.core.entities import ModelSpec

    v2 = demo.create_model(ModelSpec(name="smollm2-135m-instruct", path=str(model_folder))).ref
    demo.fake_serving.fail_next("init() raised: out of memory")
    at = _update(open_page("endpoints"), demo, "chat", model=v2)
    at.button(key=keys.confirm_button("update:demo/chat")).click()
    at.run()
    assert not at.exception
    assert "Deployment chat failed: init() raised: out of memory" in texts(at.error).replace("\\", "")
    assert "Read its logs" in texts(at.info)
    assert _facts(at)["state"].startswith("Failed")


def test_ready_to_run_code_holds_the_key_only_once_keys_are_shown(open_page, demo):
    key = demo.get_keys("demo").primary_key
    at = open_page("endpoints")
    assert key not in texts(at.code), "no key on screen before the operator reveals them"
    at.toggle(key=keys.SHOW_KEYS).set_value(True).run()
    (curl,) = [c.value for c in at.code if c.language == "bash"]
    (python,) = [c.value for c in at.code if c.language == "python"]
    assert curl.startswith(f"BYOM_KEY={key}\ncurl ") and "memory://endpoints/demo/score" in curl
    assert f'os.environ["BYOM_KEY"] = "{key}"' in python
    assert "Ready to run: the primary key is in the code." in texts(at.caption)
    at.toggle(key=keys.SHOW_KEYS).set_value(False).run()
    assert key not in texts(at.code)


def test_logs_are_searched_in_a_box_and_offered_for_download(open_page, demo, model_folder):
    from byom.core.entities import ModelSpec

    v2 = demo.create_model(ModelSpec(name="smollm2-135m-instruct", path=str(model_folder))).ref
    demo.create_or_update_deployment(demo.get_deployment("demo", "ranks").replace(model=v2))  # a second start
    at = open_page("endpoints")
    at.selectbox(key=keys.LOG_DEPLOYMENT).set_value("ranks").run()
    full = demo.get_deployment_logs("demo", "ranks", 200).splitlines()
    assert len(full) == 2 and full[0] in texts(at.code) and full[1] in texts(at.code)

    at.text_input(key=keys.LOG_SEARCH).set_value("INSTRUCT:2").run()
    assert f"Deployment ranks ready with model {v2}" in [c.value for c in at.code], "only the lines holding it"
    assert full[0] not in texts(at.code).replace(full[1], "")
    assert "1 of 2 line(s) holding 'INSTRUCT:2'" in texts(at.caption)
    at.text_input(key=keys.LOG_SEARCH).set_value("no such text").run()
    assert "(no line holds that text)" in texts(at.code)
    downloads = at.get("download_button")
    assert any(getattr(d.proto, "label", "") == "Download" for d in downloads)
