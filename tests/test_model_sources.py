"""The format a registration records: what a user sees in the Models table's "format" column."""

import json

import pytest
from byom.core.entities import ModelSpec
from byom.core.memory import InMemoryWorkspace
from byom.core.model_sources import detect_format


def _register(tmp_path, files: dict[str, bytes]) -> str:
    folder = tmp_path / "model"
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    ws = InMemoryWorkspace()
    return ws.create_model(ModelSpec(name="m", path=str(folder))).format


def test_a_folder_without_a_config_json_registers_as_custom(tmp_path):
    assert _register(tmp_path, {"model.pkl": b"\x80\x04", "README.md": b"a scikit-learn pipeline"}) == "custom"


def test_a_config_json_that_is_no_transformers_config_is_custom(tmp_path):
    assert _register(tmp_path, {"config.json": json.dumps({"threshold": 0.5}).encode(),
                                "weights.bin": b"\x00" * 8}) == "custom"
    assert detect_format(tmp_path / "model" / "weights.bin") == "custom"


@pytest.mark.parametrize("config", [{"model_type": "llama"}, {"architectures": ["LlamaForCausalLM"]}])
def test_a_transformers_folder_is_transformers(tmp_path, config):
    assert _register(tmp_path, {"config.json": json.dumps(config).encode(), "model.safetensors": b"\x01"}) \
        == "transformers"


def test_a_folder_holding_one_transformers_folder_is_transformers(tmp_path):
    assert _register(tmp_path, {"inner/config.json": b'{"model_type": "gpt2"}', "inner/model.bin": b"\x01"}) \
        == "transformers"


def test_a_broken_config_json_is_custom_not_an_error(tmp_path):
    assert _register(tmp_path, {"config.json": b"{not json", "w.bin": b"\x00"}) == "custom"
