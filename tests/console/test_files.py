"""console.files: uploads saved, a version zipped, a code folder's scripts listed."""

import pytest
from byom.console import files
from byom.core.errors import InvalidInput


def test_save_uploads_one_file_is_registered_as_that_file(tmp_path):
    path = files.save_uploads([("model.gguf", b"GGUF")], tmp_path)
    assert path == tmp_path / "model.gguf" and path.read_bytes() == b"GGUF"


def test_save_uploads_several_files_make_the_model_folder(tmp_path):
    path = files.save_uploads([("config.json", b"{}"), ("model.safetensors", b"w")], tmp_path)
    assert path == tmp_path
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]


def test_save_uploads_keep_subfolders_and_drop_the_folder_the_user_picked(tmp_path):
    uploads = [("my-model/config.json", b"{}"), ("my-model/tokenizer/tokenizer.json", b"t")]
    path = files.save_uploads(uploads, tmp_path)
    assert path == tmp_path
    assert (tmp_path / "config.json").read_bytes() == b"{}"
    assert (tmp_path / "tokenizer" / "tokenizer.json").read_bytes() == b"t"


def test_save_uploads_refuse_names_outside_the_folder_and_nothing(tmp_path):
    with pytest.raises(InvalidInput, match="outside the model folder"):
        files.save_uploads([("../evil.py", b"x"), ("config.json", b"{}")], tmp_path)
    with pytest.raises(InvalidInput, match="outside the model folder"):
        files.save_uploads([("/etc/passwd", b"x")], tmp_path)
    with pytest.raises(InvalidInput, match="Choose the files"):
        files.save_uploads([], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_scoring_scripts_of_the_repository_scoring_folder_put_entry_scripts_first():
    from byom.core.demo import SCORING_DIR

    scripts = files.scoring_scripts(SCORING_DIR)
    assert scripts[:2] == ["generate.py", "token_ranks.py"]
    assert "byom_scoring/ranks.py" in scripts[2:]
    assert not any("__pycache__" in s for s in scripts)


def test_scoring_scripts_of_another_folder(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init():\n    pass\n\n\ndef run(raw):\n    return raw\n")
    (tmp_path / "helpers.py").write_text("def run_fast():\n    pass\n")
    (tmp_path / "README.md").write_text("not a script")
    assert files.scoring_scripts(tmp_path) == ["src/score.py", "helpers.py"]
    with pytest.raises(InvalidInput, match="does not exist"):
        files.scoring_scripts(tmp_path / "nowhere")


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
    with zipfile.ZipFile(io.BytesIO(files.model_zip(ws, "clf", 2))) as archive:
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["clf-2/model.pkl", "clf-2/sub/vocab.txt"]
        assert archive.read("clf-2/model.pkl") == b"\x01" * 300
        assert archive.read("clf-2/sub/vocab.txt") == b"a\nb\n"
