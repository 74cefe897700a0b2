"""Models: register, edit, promote, archive/restore, delete with confirmation."""

import byom.core.demo
from byom.console import keys
from byom.core.entities import ModelSpec

from .apptest_helpers import by_label, register, texts


def test_register_a_folder_shows_it_with_its_version_and_tags(open_page, workspace, model_folder):
    at = register(open_page("models"), "tiny", str(model_folder), "team=nlp")

    assert not at.exception
    assert "Registered tiny:1." in texts(at.success)
    models = at.dataframe[0].value
    assert list(models["name"]) == ["tiny"]
    versions = at.dataframe[1].value
    assert list(versions["version"]) == [1]
    assert versions["tags"][0] == "team=nlp"
    assert versions["sha256"][0] == workspace.get_model("tiny").files[0].sha256
    for key in (keys.REGISTER_NAME, keys.REGISTER_PATH, keys.REGISTER_DESCRIPTION):
        assert at.text_input(key=key).value == "", f"{key} is cleared after a registration"
    assert at.text_area(key=keys.REGISTER_TAGS).value == ""

    at = register(at, "tiny", str(model_folder))
    assert "Registered tiny:2." in texts(at.success)
    assert list(at.dataframe[1].value["version"]) == [2, 1]


def test_register_refusals_are_messages_not_tracebacks(open_page, model_folder, tmp_path):
    at = register(open_page("models"), "tiny", "")
    assert "Enter the path of a model folder or file." in texts(at.error)

    at = register(at, "", str(model_folder))
    assert "Enter a name for the model." in texts(at.error)

    at = register(at, "bad name!", str(model_folder))
    assert "Invalid model name" in texts(at.error)

    at = register(at, "tiny", str(tmp_path / "nowhere"))
    assert not at.exception
    assert at.error, "a missing folder must be reported"
    assert "nowhere" in texts(at.error)

    at = register(at, "tiny", str(model_folder), "no-equals-sign")
    assert "has no '='" in texts(at.error)


def test_edit_promote_archive_and_restore(open_page, workspace, model_folder):
    workspace.create_model(ModelSpec(name="tiny", path=str(model_folder)))
    at = open_page("models")

    at.text_input(key=keys.model_description("tiny:1")).set_value("A tiny model")
    at.text_area(key=keys.model_tags("tiny:1")).set_value("team=nlp\nowner=ada")
    at.button(key=keys.MODEL_SAVE).click()
    at.run()
    assert "Saved the description and tags of tiny:1." in texts(at.success)
    assert workspace.get_model("tiny").tags == {"team": "nlp", "owner": "ada"}

    assert at.selectbox(key=keys.promote_stage("tiny:1")).value is None, "no stage is chosen for the user"
    at.button(key=keys.PROMOTE_SUBMIT).click()
    at.run()
    assert "Choose the stage to promote to." in texts(at.error)
    at.selectbox(key=keys.promote_stage("tiny:1")).set_value("staging")
    at.button(key=keys.PROMOTE_SUBMIT).click()  # no approver
    at.run()
    assert "Enter the approver's name." in texts(at.error)
    assert "--" not in texts(at.error) + texts(at.info), "no command-line flag in the console's words"
    assert workspace.get_model("tiny").stage == "dev"

    at.text_input(key=keys.promote_approver("tiny:1")).set_value("grace")
    at.text_input(key=keys.promote_note("tiny:1")).set_value("eval passed")
    at.button(key=keys.PROMOTE_SUBMIT).click()
    at.run()
    assert "tiny:1 is now in staging." in texts(at.success)
    assert at.dataframe[1].value["stage"][0] == "staging"
    promoted = at.selectbox(key=keys.promote_stage("tiny:1"))
    assert promoted.options == ["production", "dev"] and promoted.value is None, "never pre-advanced to production"
    assert at.text_input(key=keys.promote_approver("tiny:1")).value == "", "the approver does not carry over"
    assert at.text_input(key=keys.promote_note("tiny:1")).value == ""

    at.button(key=keys.ARCHIVE).click()
    at.run()
    assert workspace.get_model("tiny", 1).archived
    assert "Every model is archived" in texts(at.info)
    at.toggle(key=keys.MODEL_SHOW_ARCHIVED).set_value(True).run()
    assert at.dataframe[1].value["archived"][0]
    at.button(key=keys.RESTORE).click()
    at.run()
    assert not workspace.get_model("tiny", 1).archived


def test_delete_asks_first_and_refuses_a_model_in_use(open_page, demo):
    at = open_page("models")
    assert at.selectbox[0].value == "smollm2-135m-instruct"
    assert at.dataframe[1].value["deployed in"][0] == "demo/chat, demo/ranks"

    at.button(key=keys.DELETE_MODEL).click()
    at.run()
    assert "cannot be undone" in texts(at.warning)
    assert "It is used by demo/chat and demo/ranks." in texts(at.warning)
    assert demo.list_models(), "nothing is deleted before the confirmation"

    by_label(at.button, "Delete").click()
    at.run()
    assert not at.exception
    assert "is used by deployment(s) demo/chat, demo/ranks" in texts(at.error)
    assert "Delete or update those deployments first." in texts(at.info)


def test_download_copies_the_checked_files(open_page, workspace, model_folder, tmp_path, spinners):
    workspace.create_model(ModelSpec(name="tiny", path=str(model_folder)))
    at = open_page("models")
    at.text_input(key=keys.DOWNLOAD_DEST).set_value(str(tmp_path / "out"))
    at.button(key=keys.DOWNLOAD).click()
    at.run()
    assert spinners == [f"Copying tiny:1 into {tmp_path / 'out'}…"]
    assert "Copied tiny:1 into" in texts(at.success).replace("\\", "")
    assert (tmp_path / "out" / "tiny" / "weights.bin").read_bytes() == b"\x00" * 64
    zipped = at.get("download_button")
    assert [(b.proto.label, b.proto.id.endswith(keys.DOWNLOAD_ZIP)) for b in zipped] == [("Download as .zip", True)]


def test_download_into_a_file_says_what_to_do(open_page, workspace, model_folder, tmp_path):
    workspace.create_model(ModelSpec(name="tiny", path=str(model_folder)))
    (tmp_path / "a-file").write_text("not a folder")
    at = open_page("models")
    at.text_input(key=keys.DOWNLOAD_DEST).set_value(str(tmp_path / "a-file"))
    at.button(key=keys.DOWNLOAD).click()
    at.run()
    assert not at.exception
    assert f"Cannot copy tiny:1 into {tmp_path / 'a-file' / 'tiny'}" in texts(at.error).replace("\\", "")
    assert "Choose a folder you can write to" in texts(at.info)


def test_register_the_sample_model_under_its_name(open_page, workspace, model_folder, monkeypatch):
    # The sample's GGUF is swapped for a small folder: registering the real one is the browser test's job.
    monkeypatch.setattr(byom.core.demo, "sample_spec",
                        lambda progress: ModelSpec(name=byom.core.demo.SAMPLE_MODEL, path=str(model_folder)))
    at = open_page("models")
    at.radio(key=keys.REGISTER_SOURCE).set_value("The sample model").run()
    assert at.text_input(key=keys.REGISTER_NAME).value == "smollm2-135m-instruct"
    by_label(at.button, "Register").click()
    at.run()
    assert not at.error
    assert "Registered smollm2-135m-instruct:1." in texts(at.success)


def upload(at, name: str, files):
    at.radio(key=keys.REGISTER_SOURCE).set_value("Uploaded files").run()
    at.text_input(key=keys.REGISTER_NAME).set_value(name)
    at.file_uploader(key=keys.register_upload(at.session_state[keys.REGISTER_UPLOADS]
                                              if keys.REGISTER_UPLOADS in at.session_state else 0)).set_value(
        [(file, content, "application/octet-stream") for file, content in files])
    by_label(at.button, "Register").click()
    return at.run()


def test_upload_a_model_folder_s_files(open_page, workspace):
    files = [("config.json", b'{"model_type": "llama"}'), ("model.safetensors", b"\x01" * 32),
             ("tokenizer.json", b"{}")]
    at = upload(open_page("models"), "uploaded", files)

    assert not at.exception
    assert "Registered uploaded:1." in texts(at.success)
    model = workspace.get_model("uploaded")
    assert sorted(f.path for f in model.files) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert at.file_uploader(key=keys.register_upload(1)).value in (None, []), "the upload box starts empty again"
    assert model.format == "transformers"
    assert at.dataframe[1].value["files"][0] == 3


def test_upload_one_file(open_page, workspace):
    at = upload(open_page("models"), "single", [("weights.bin", b"\x00" * 16)])
    assert "Registered single:1." in texts(at.success)
    assert [f.path for f in workspace.get_model("single").files] == ["weights.bin"]


def test_upload_nothing_says_what_to_do(open_page, workspace):
    at = upload(open_page("models"), "nothing", [])
    assert not at.exception
    assert "Choose the files to upload first" in texts(at.error)
    assert workspace.list_models() == []


def _frame_with(at, column: str):
    """The one table on the page that has this column."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def test_the_version_page_shows_each_file_s_sha256_and_size(open_page, workspace, tmp_path):
    import hashlib

    folder = tmp_path / "clf"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.pkl").write_bytes(b"\x80\x04pickled" * 100)
    (folder / "sub" / "vocab.txt").write_text("a\nb\n")
    at = register(open_page("models"), "clf", str(folder))
    assert not at.exception

    files = _frame_with(at, "bytes")
    assert list(files["path"]) == ["model.pkl", "sub/vocab.txt"]
    for path, sha, size in zip(files["path"], files["sha256"], files["bytes"], strict=True):
        content = (folder / path).read_bytes()
        assert (sha, size) == (hashlib.sha256(content).hexdigest(), len(content)), path
    assert "2 file(s)" in texts(at.caption) and "format custom" in texts(at.caption)
    assert "clf:1 · custom · dev" in texts(at.subheader), "a folder without a config.json registers as custom"
    assert list(at.dataframe[0].value["format"]) == ["custom"]
    assert "No deployment serves this version" in texts(at.caption)


def test_the_version_page_names_the_deployments_using_it(open_page, demo):
    at = open_page("models")
    used = _frame_with(at, "scoring URI")
    assert [(r["endpoint"], r["deployment"], r["state"], r["traffic %"]) for r in used.to_dict("records")] == [
        ("demo", "chat", "Ready", 100), ("demo", "ranks", "Ready", 0)]
