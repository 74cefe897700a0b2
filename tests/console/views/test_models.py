"""console.views.models: the tables and texts of the Models page."""

import pytest
from byom.console.views import models as view
from byom.core.entities import ModelFile, ModelVersion
from byom.core.errors import InvalidInput


def test_parse_tags_lines_and_commas():
    assert view.parse_tags("team=nlp\n\n owner = ada ,stage=dev") == {"team": "nlp", "owner": "ada", "stage": "dev"}
    assert view.parse_tags("") == {}
    with pytest.raises(InvalidInput, match="has no '='"):
        view.parse_tags("team")
    with pytest.raises(InvalidInput, match="no name"):
        view.parse_tags("=x")


def test_next_stages_follow_the_promotion_rules():
    assert view.next_stages("dev") == ["staging"]
    assert view.next_stages("staging") == ["production", "dev"]
    assert view.next_stages("production") == ["dev"]


def test_versions_table_says_what_byom_did_not_measure():
    copied = ModelVersion(name="m", version=1, files=[ModelFile("model.pkl", 2048, "ab" * 32)], size_bytes=2048,
                          source="/models/m")
    in_place = ModelVersion(name="m", version=2, source="azureml://jobs/train-42/outputs/artifacts/paths/model/")
    outside = ModelVersion(name="m", version=3)  # registered by az ml or Studio: byom recorded nothing
    table = view.versions_table([copied, in_place, outside], {})
    assert list(table["size"]) == ["2.0 KB", "in cloud storage", ""]
    assert list(table["sha256"]) == ["ab" * 32, "not recorded", "not recorded"]
    assert [view.registered_in_place(m) for m in (copied, in_place, outside)] == [False, True, False]

    in_datastore = outside.replace(path="azureml://subscriptions/s/resourcegroups/g/workspaces/w/datastores/"
                                        "workspaceblobstore/paths/LocalUpload/abc/m")
    at_a_job = outside.replace(path="azureml://jobs/train-42/outputs/artifacts/paths/model/")
    huge = copied.replace(size_bytes=view.ZIP_DOWNLOAD_MAX_BYTES + 1)
    assert [view.zip_refusal(m) is None for m in (copied, in_datastore)] == [True, True]
    assert "Registered in place" in view.zip_refusal(in_place)
    assert "outside any datastore" in view.zip_refusal(at_a_job)
    assert "over 1 GiB" in view.zip_refusal(huge)


def test_texts_about_a_version():
    from byom.core.entities import StageChange

    copied = ModelVersion(name="m", version=1, files=[ModelFile("model.pkl", 2048, "ab" * 32)], size_bytes=2048,
                          source="/models/m")
    in_place = ModelVersion(name="m", version=2, source="azureml://jobs/train-42/outputs/artifacts/paths/model/")
    assert view.delete_question(copied) == "Delete m:1 and its files? This cannot be undone."
    assert view.delete_question(in_place) == (
        "Delete m:2? Its files stay where they lie (azureml://jobs/train-42/outputs/artifacts/paths/model/).")
    assert "sha256" in view.zip_help(copied) and "no hashes" in view.zip_help(in_place)
    assert view.downloaded_text(copied, "/tmp/m") == "Copied m:1 into /tmp/m (every file checked against its sha256)."
    promotion = StageChange(from_stage="dev", to_stage="staging", approver="ada", note="", at="")
    promoted = copied.replace(stage_history=[promotion])
    assert view.stage_history_text(promoted) == "dev → staging by ada"
    assert view.stage_history_text(copied) == ""
    assert view.format_tags({"team": "nlp", "owner": "ada"}) == "team=nlp\nowner=ada"


def test_the_version_page_lists_each_file_with_its_full_hash():
    files = [ModelFile("config.json", 20, "a" * 64), ModelFile("model.safetensors", 3 << 20, "b" * 64)]
    model = ModelVersion(name="m", version=2, format="transformers", files=files, size_bytes=20 + (3 << 20),
                         source="/models/m")
    table = view.files_table(model)
    assert list(table["path"]) == ["config.json", "model.safetensors"]
    assert list(table["sha256"]) == ["a" * 64, "b" * 64], "the whole hash, to compare with sha256sum"
    assert list(table["size"]) == ["20 B", "3.0 MB"] and list(table["bytes"]) == [20, 3 << 20]
    assert view.files_caption(model).startswith("2 file(s), 3.0 MB, format transformers.")
    in_place = ModelVersion(name="m", version=3, source="azureml://datastores/blob/paths/m/")
    assert view.files_table(in_place).empty
    assert "byom copied and hashed no files" in view.files_caption(in_place)


def test_older_versions_recorded_as_files_read_custom():
    assert view.format_name("files") == "custom"
    assert view.format_name("gguf") == "gguf"
    table = view.models_table([ModelVersion(name="m", version=1, format="files")], {})
    assert list(table["format"]) == ["custom"]


def test_used_by_names_each_deployment_with_its_traffic():
    from byom.core.entities import Deployment, Endpoint

    deployments = [Deployment(name="Blue", endpoint_name="chat", model="m:1"),
                   Deployment(name="shadow", endpoint_name="chat", model="m:1", provisioning_state="Failed")]
    endpoints = {"chat": Endpoint(name="chat", traffic={"blue": 100}, mirror_traffic={"shadow": 10},
                                  scoring_uri="http://127.0.0.1:1/endpoints/chat/score")}
    table = view.used_by_table(deployments, endpoints)
    assert table.to_dict("records") == [
        {"endpoint": "chat", "deployment": "Blue", "state": "Creating", "traffic %": 100, "mirror %": 0,
         "scoring URI": "http://127.0.0.1:1/endpoints/chat/score"},
        {"endpoint": "chat", "deployment": "shadow", "state": "Failed", "traffic %": 0, "mirror %": 10,
         "scoring URI": "http://127.0.0.1:1/endpoints/chat/score"}]
    assert view.used_by_table([], endpoints).empty
