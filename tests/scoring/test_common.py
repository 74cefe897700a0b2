"""Model discovery, device choice, BOS choice and request reading shared by both entry scripts."""

import json
import os
import subprocess
import sys

import pytest
import torch
from byom_scoring import common
from byom_scoring.common import BadRequest
from flask import Request
from werkzeug.test import EnvironBuilder

from bench.servers import SCORING_DIR


def touch(path, text="{}"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class TestFindModel:
    def test_transformers_folder(self, tmp_path):
        touch(tmp_path / "config.json")
        source = common.find_model(tmp_path)
        assert (source.folder, source.gguf_file) == (tmp_path, None)

    def test_folder_nested_one_level_as_azure_lays_it_out(self, tmp_path):
        touch(tmp_path / "smollm" / "config.json")
        source = common.find_model(tmp_path)
        assert source.folder == tmp_path / "smollm"
        assert source.name == "smollm"

    def test_gguf_file(self, tmp_path):
        gguf = touch(tmp_path / "SmolLM2.Q4_1.gguf", "")
        source = common.find_model(gguf)
        assert (source.folder, source.gguf_file, source.name) == (tmp_path, "SmolLM2.Q4_1.gguf", "SmolLM2.Q4_1")

    def test_folder_holding_a_gguf_file_one_level_down(self, tmp_path):
        touch(tmp_path / "model" / "m.gguf", "")
        source = common.find_model(tmp_path)
        assert (source.folder, source.gguf_file) == (tmp_path / "model", "m.gguf")

    def test_model_dir_comes_from_azureml_model_dir(self, tmp_path, monkeypatch):
        touch(tmp_path / "config.json")
        monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
        monkeypatch.setenv("BYOM_MODEL_NAME", "my-model")
        source = common.find_model()
        assert (source.folder, source.name) == (tmp_path, "my-model")

    def test_several_gguf_files_are_refused(self, tmp_path):
        touch(tmp_path / "a.gguf", "")
        touch(tmp_path / "b.gguf", "")
        with pytest.raises(RuntimeError, match="several .gguf files"):
            common.find_model(tmp_path)

    def test_no_model_names_what_is_there(self, tmp_path):
        touch(tmp_path / "README.md", "hello")
        with pytest.raises(RuntimeError, match="No model found .* README.md"):
            common.find_model(tmp_path)


class TestDeviceAndDtype:
    def test_cpu_runs_float32(self, monkeypatch):
        monkeypatch.delenv("BYOM_DEVICE", raising=False)
        monkeypatch.delenv("BYOM_DTYPE", raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert common.choose_device_and_dtype() == (torch.device("cpu"), torch.float32)

    def test_a_gpu_runs_bfloat16(self, monkeypatch):
        monkeypatch.delenv("BYOM_DEVICE", raising=False)
        monkeypatch.delenv("BYOM_DTYPE", raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert common.choose_device_and_dtype() == (torch.device("cuda"), torch.bfloat16)

    def test_environment_overrides(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setenv("BYOM_DEVICE", "cpu")
        monkeypatch.setenv("BYOM_DTYPE", "bfloat16")
        assert common.choose_device_and_dtype() == (torch.device("cpu"), torch.bfloat16)

    def test_unknown_dtype_is_refused(self, monkeypatch):
        monkeypatch.setenv("BYOM_DTYPE", "int3")
        with pytest.raises(RuntimeError, match="BYOM_DTYPE must be one of"):
            common.choose_device_and_dtype()


def test_smollm_texts_start_from_endoftext_not_the_declared_bos(tiny_lm):
    assert tiny_lm.tokenizer.bos_token == "<|im_start|>"
    assert common.bos_token_id(tiny_lm.tokenizer) == 0
    assert tiny_lm.tokenizer.convert_ids_to_tokens(0) == "<|endoftext|>"


def make_request(data: bytes, method="POST", headers=None):
    return Request(EnvironBuilder(method=method, data=data, headers=headers or {}).get_environ())


class TestReadJsonObject:
    def test_reads_an_object(self):
        assert common.read_json_object(make_request(b'{"text": "hi"}')) == {"text": "hi"}

    @pytest.mark.parametrize(
        ("data", "status", "words"),
        [
            (b"", 400, "empty"),
            (b"\xff\xfe{}", 400, "not valid UTF-8"),
            (b'{"text": ', 400, "not valid JSON"),
            (b'["text"]', 400, "must be a JSON object, got a JSON array"),
            (b"x" * 101, 413, "limit is 100"),
        ],
    )
    def test_refusals(self, data, status, words):
        with pytest.raises(BadRequest) as caught:
            common.read_json_object(make_request(data), max_bytes=100)
        assert caught.value.status == status
        assert words in caught.value.message

    @pytest.mark.parametrize("depth", [65, 5_000, 200_000])
    def test_deep_nesting_is_a_400_not_a_crash(self, depth):
        for opened, closed in (("[", "]"), ('{"a":', "}")):
            data = ('{"text":' + opened * depth + "1" + closed * depth + "}").encode()
            with pytest.raises(BadRequest) as caught:
                common.read_json_object(make_request(data), max_bytes=2 << 20)
            assert caught.value.status == 400 and "nests" in caught.value.message

    def test_nesting_up_to_the_limit_is_read(self):
        depth = common.MAX_JSON_DEPTH - 1  # the object around it is one level
        data = ('{"text":' + "[" * depth + "1" + "]" * depth + "}").encode()
        body = common.read_json_object(make_request(data))
        level, seen = body["text"], 1
        while isinstance(level, list):
            level, seen = level[0], seen + 1
        assert seen == common.MAX_JSON_DEPTH

    def test_a_chunked_body_is_cut_at_the_limit(self):
        request = make_request(b"x" * 200)
        # What gunicorn hands over for Transfer-Encoding: chunked.
        request.environ["CONTENT_LENGTH"] = ""
        request.environ["wsgi.input_terminated"] = True
        with pytest.raises(BadRequest) as caught:
            common.read_json_object(request, max_bytes=100)
        assert caught.value.status == 413

    def test_get_is_refused(self):
        with pytest.raises(BadRequest) as caught:
            common.read_json_object(make_request(b"", method="GET"))
        assert caught.value.status == 405

    def test_error_response_names_the_field(self):
        response = BadRequest("'top_k' must be an integer.", field="top_k").response()
        assert response.status_code == 400
        assert json.loads(response.get_data()) == {"message": "'top_k' must be an integer.", "field": "top_k"}


class TestFieldReaders:
    def test_int_refuses_bool_fraction_and_range(self):
        assert common.get_int({"k": 3.0}, "k", 5, 0, 10) == 3
        assert common.get_int({}, "k", 5, 0, 10) == 5
        for bad in (True, 2.5, "3", 11, -1):
            with pytest.raises(BadRequest, match="'k'"):
                common.get_int({"k": bad}, "k", 5, 0, 10)

    def test_float_refuses_non_numbers_and_range(self):
        assert common.get_float({"t": 1}, "t", 1.0, 0.0, 2.0) == 1.0
        for bad in (False, "0.5", 2.5, float("nan")):
            with pytest.raises(BadRequest, match="'t'"):
                common.get_float({"t": bad}, "t", 1.0, 0.0, 2.0)

    def test_unknown_fields_are_named(self):
        with pytest.raises(BadRequest, match="Unknown field.*tex\\b") as caught:
            common.reject_unknown_fields({"tex": "typo"}, {"text"})
        assert caught.value.field == "tex"


# Run in a fresh interpreter: what earlier tests left on this process's heap would blur the figures.
FREED_HEAP = """
import os, sys
sys.path.insert(0, sys.argv[1])
from byom_scoring import common

def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

# 96 MB freed in 64 KB pieces, every other one of a row: what stays between them keeps free() from shrinking the heap.
pieces = [b"1" * (64 << 10) for _ in range(3000)]
del pieces[::2]
before = resident_mib()
print(common.release_freed_memory(), before - resident_mib())
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm") or common._glibc() is None, reason="glibc on Linux")
def test_freed_heap_goes_back_to_the_system():
    out = subprocess.run(
        [sys.executable, "-c", FREED_HEAP, str(SCORING_DIR)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out[0] == "True"
    assert float(out[1]) > 64, f"only {out[1]} MiB of the 94 MiB freed went back"
