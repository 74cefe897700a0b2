"""console.views: the tables, history and snippets pages show, without Streamlit."""

import pytest
from byom.console import views
from byom.core.entities import AuditRecord, Deployment, Endpoint, ModelFile, ModelVersion
from byom.core.errors import InvalidInput


def test_parse_tags_lines_and_commas():
    assert views.parse_tags("team=nlp\n\n owner = ada ,stage=dev") == {"team": "nlp", "owner": "ada", "stage": "dev"}
    assert views.parse_tags("") == {}
    with pytest.raises(InvalidInput, match="has no '='"):
        views.parse_tags("team")
    with pytest.raises(InvalidInput, match="no name"):
        views.parse_tags("=x")


def test_next_stages_follow_the_promotion_rules():
    assert views.next_stages("dev") == ["staging"]
    assert views.next_stages("staging") == ["production", "dev"]
    assert views.next_stages("production") == ["dev"]


def test_versions_table_says_what_byom_did_not_measure():
    copied = ModelVersion(name="m", version=1, files=[ModelFile("model.pkl", 2048, "ab" * 32)], size_bytes=2048,
                          source="/models/m")
    in_place = ModelVersion(name="m", version=2, source="azureml://jobs/train-42/outputs/artifacts/paths/model/")
    outside = ModelVersion(name="m", version=3)  # registered by az ml or Studio: byom recorded nothing
    table = views.versions_table([copied, in_place, outside], {})
    assert list(table["size"]) == ["2.0 KB", "in cloud storage", ""]
    assert list(table["sha256"]) == ["ab" * 32, "not recorded", "not recorded"]
    assert [views.registered_in_place(m) for m in (copied, in_place, outside)] == [False, True, False]

    in_datastore = outside.replace(path="azureml://subscriptions/s/resourcegroups/g/workspaces/w/datastores/"
                                        "workspaceblobstore/paths/LocalUpload/abc/m")
    at_a_job = outside.replace(path="azureml://jobs/train-42/outputs/artifacts/paths/model/")
    huge = copied.replace(size_bytes=views.ZIP_DOWNLOAD_MAX_BYTES + 1)
    assert [views.zip_refusal(m) is None for m in (copied, in_datastore)] == [True, True]
    assert "Registered in place" in views.zip_refusal(in_place)
    assert "outside any datastore" in views.zip_refusal(at_a_job)
    assert "over 1 GiB" in views.zip_refusal(huge)


def test_audit_table_says_what_each_change_did():
    records = [
        AuditRecord(at="2026-11-23T10:00:00+00:00", actor="ana", action="endpoint.create", target="endpoint/ep",
                    after={"traffic": {}}),
        AuditRecord(at="2026-11-23T10:00:01+00:00", actor="byom-control-plane", action="deployment.state",
                    target="deployment/ep/blue", after={"provisioning_state": "Failed", "reason": "init() raised"}),
        AuditRecord(at="2026-11-23T10:00:02+00:00", actor="ana", action="endpoint.traffic", target="endpoint/ep",
                    before={"traffic": {"blue": 100}}, after={"traffic": {"blue": 90, "green": 10}}),
    ]
    assert list(views.audit_table(records)["change"]) == [
        "created",
        "provisioning_state: Failed; reason: init() raised",
        'traffic: {"blue": 100} → {"blue": 90, "green": 10}',
    ]


def test_traffic_history_reads_traffic_changes_only():
    records = [
        AuditRecord(at="2025-01-01T10:00:02Z", actor="ada", action="endpoint.traffic", target="endpoint/demo",
                    before={"traffic": {"blue": 100, "green": 0}, "mirror_traffic": {}},
                    after={"traffic": {"blue": 90, "green": 10}, "mirror_traffic": {}}, id=7),
        AuditRecord(at="2025-01-01T10:00:01Z", actor="ada", action="endpoint.regenerate-key", target="endpoint/demo",
                    after={"key_type": "primary"}, id=6),
    ]
    [change] = views.traffic_history(records)
    assert (change.id, change.before, change.after) == (7, {"blue": 100, "green": 0}, {"blue": 90, "green": 10})


def test_split_text_and_largest_shift():
    assert views.split_text({"blue": 90, "green": 10, "red": 0}) == "blue 90 · green 10"
    assert views.split_text({}, {"shadow": 20}) == "no traffic (mirror: shadow 20)"
    assert views.largest_shift({"blue": 100}, {"blue": 40, "green": 60}) == 60
    assert views.largest_shift({"Blue": 50, "green": 50}, {"blue": 50, "green": 50}) == 0


def test_snippets_never_contain_the_key_and_target_a_deployment():
    endpoint = Endpoint(name="demo", scoring_uri="http://127.0.0.1:5000/endpoints/demo/score")
    curl = views.curl_snippet(endpoint, {"prompt": "hi"}, "green")
    assert "http://127.0.0.1:5000/endpoints/demo/score" in curl
    assert '"Authorization: Bearer $BYOM_KEY"' in curl
    assert "azureml-model-deployment: green" in curl
    python = views.python_snippet(endpoint, {"prompt": "hi", "do_sample": True})
    compile(python, "snippet", "exec")
    assert "json={'prompt': 'hi', 'do_sample': True}" in python
    assert '"azureml-model-deployment": ' not in python
    targeted = views.python_snippet(endpoint, {"prompt": "hi"}, "green")
    compile(targeted, "snippet", "exec")
    assert '"azureml-model-deployment": "green"' in targeted


def test_deployments_table_shows_each_share():
    endpoint = Endpoint(name="demo", traffic={"blue": 90, "green": 10}, mirror_traffic={"shadow": 5})
    deps = [Deployment(name=n, endpoint_name="demo", model="m:1", provisioning_state="Succeeded")
            for n in ("blue", "green", "shadow")]
    table = views.deployments_table(deps, endpoint)
    assert list(table["traffic %"]) == [90, 10, 0]
    assert list(table["mirror %"]) == [0, 0, 5]


def test_read_answer_of_a_generation_and_of_an_error():
    ok = views.read_answer(200, '{"text": "hi", "usage": {"completion_tokens": 10}, "finish_reason": "stop"}',
                           "blue", 500.0, "r1")
    assert (ok.ok, ok.text, ok.tokens_per_second, ok.finish_reason) == (True, "hi", 20.0, "stop")
    bad = views.read_answer(400, '{"message": "Send exactly one of prompt or messages."}', "blue", 3.0, "r2")
    assert (bad.ok, bad.text, bad.tokens_per_second) == (False, "Send exactly one of prompt or messages.", None)
    assert "Endpoints page" in views.status_hint(404)


def test_generation_payload_is_greedy_at_temperature_zero():
    assert views.generation_payload("hi") == {"prompt": "hi", "max_new_tokens": 64}
    chat = [{"role": "user", "content": "hi"}]
    assert views.generation_payload("", chat=chat, temperature=0.5, top_p=0.9) == {
        "messages": chat, "max_new_tokens": 64, "do_sample": True, "temperature": 0.5, "top_p": 0.9}


def test_save_uploads_one_file_is_registered_as_that_file(tmp_path):
    path = views.save_uploads([("model.gguf", b"GGUF")], tmp_path)
    assert path == tmp_path / "model.gguf" and path.read_bytes() == b"GGUF"


def test_save_uploads_several_files_make_the_model_folder(tmp_path):
    path = views.save_uploads([("config.json", b"{}"), ("model.safetensors", b"w")], tmp_path)
    assert path == tmp_path
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]


def test_save_uploads_keep_subfolders_and_drop_the_folder_the_user_picked(tmp_path):
    files = [("my-model/config.json", b"{}"), ("my-model/tokenizer/tokenizer.json", b"t")]
    path = views.save_uploads(files, tmp_path)
    assert path == tmp_path
    assert (tmp_path / "config.json").read_bytes() == b"{}"
    assert (tmp_path / "tokenizer" / "tokenizer.json").read_bytes() == b"t"


def test_save_uploads_refuse_names_outside_the_folder_and_nothing(tmp_path):
    with pytest.raises(InvalidInput, match="outside the model folder"):
        views.save_uploads([("../evil.py", b"x"), ("config.json", b"{}")], tmp_path)
    with pytest.raises(InvalidInput, match="outside the model folder"):
        views.save_uploads([("/etc/passwd", b"x")], tmp_path)
    with pytest.raises(InvalidInput, match="Choose the files"):
        views.save_uploads([], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_scoring_scripts_of_the_repository_scoring_folder_put_entry_scripts_first():
    from byom.core.demo import SCORING_DIR

    scripts = views.scoring_scripts(SCORING_DIR)
    assert scripts[:2] == ["generate.py", "token_ranks.py"]
    assert "byom_scoring/ranks.py" in scripts[2:]
    assert not any("__pycache__" in s for s in scripts)


def test_scoring_scripts_of_another_folder(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init():\n    pass\n\n\ndef run(raw):\n    return raw\n")
    (tmp_path / "helpers.py").write_text("def run_fast():\n    pass\n")
    (tmp_path / "README.md").write_text("not a script")
    assert views.scoring_scripts(tmp_path) == ["src/score.py", "helpers.py"]
    with pytest.raises(InvalidInput, match="does not exist"):
        views.scoring_scripts(tmp_path / "nowhere")


def test_model_zip_holds_the_checked_files_under_one_folder(tmp_path):
    import io
    import zipfile

    from byom.core.entities import ModelSpec
    from byom.core.memory import InMemoryWorkspace

    source = tmp_path / "clf"
    (source / "sub").mkdir(parents=True)
    (source / "model.pkl").write_bytes(b"\x01" * 300)
    (source / "sub" / "vocab.txt").write_text("a\nb\n")
    ws = InMemoryWorkspace()
    ws.create_model(ModelSpec(name="clf", path=str(source)))
    ws.create_model(ModelSpec(name="clf", path=str(source)))
    with zipfile.ZipFile(io.BytesIO(views.model_zip(ws, "clf", 2))) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["clf-2/model.pkl", "clf-2/sub/vocab.txt"]
        assert archive.read("clf-2/model.pkl") == b"\x01" * 300
        assert archive.read("clf-2/sub/vocab.txt") == b"a\nb\n"
