"""byom online-endpoint compare: two token-rank deployments' predictions, token by token, on real servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from byom.cli.main import main
from byom.core.demo import SCORING_DIR
from byom.core.entities import Deployment, Endpoint, ModelSpec, RequestSettings
from byom.core.local.workspace import LocalWorkspace
from byom.core.sample import cached_tiny_llama

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PROMPTS = ["The cat sat on the mat, and the dog lay by the door.",
           "Operators move traffic from blue to green in steps."]


def ranks_deployment(ws: LocalWorkspace, name: str, model: str) -> None:
    dep = ws.create_or_update_deployment(Deployment(
        name=name, endpoint_name="diff", model=model, code_path=str(SCORING_DIR), scoring_script="token_ranks.py",
        request_settings=RequestSettings(request_timeout_ms=60_000),
        environment_variables={"BYOM_TORCH_THREADS": "1"}))
    assert dep.provisioning_state == "Succeeded", dep.state_reason


def compare(ws: LocalWorkspace, pair: str, prompts: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    code = main(["online-endpoint", "compare", "-n", "diff", "--deployments", pair, "--prompts", str(prompts),
                 "--workspace-dir", str(ws.home)])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows: list[dict] = json.loads(out)
    return rows


def test_one_model_agrees_with_itself_and_another_differs(
    workspace: LocalWorkspace, tiny_model_dir: Path, sample_model_dir: Path, model_cache_dir: Path,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    other_dir = cached_tiny_llama(model_cache_dir, tokenizer_dir=sample_model_dir, seed=1)
    one = workspace.create_model(ModelSpec(name="tiny", path=str(tiny_model_dir))).ref
    other = workspace.create_model(ModelSpec(name="tiny", path=str(other_dir))).ref
    workspace.create_or_update_endpoint(Endpoint(name="diff"))
    for name, model in (("one-a", one), ("one-b", one), ("other", other)):
        ranks_deployment(workspace, name, model)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")

    same = compare(workspace, "one-a,one-b", prompts, capsys)
    assert [r["text"] for r in same] == [1, 2, "all"]
    overall = same[-1]
    assert (overall["model_a"], overall["model_b"]) == ("tiny:1", "tiny:1")
    assert overall["top1_agreement"] == 1.0 and overall["mean_kl"] == 0.0
    assert overall["mean_log_rank_change"] == 0.0 and all(r["moved"] == [] for r in same[:-1])

    differ = compare(workspace, "one-a,other", prompts, capsys)
    overall = differ[-1]
    assert overall["model_b"] == "tiny:2"
    assert overall["top1_agreement"] < 1.0 and overall["mean_kl"] > 0.0
    assert overall["tokens"] == same[-1]["tokens"] > 10
    assert any(r["moved"] for r in differ[:-1]), differ

    # a deployment compared with itself, or a prompt file that is not there, is refused with exit code 2
    for argv in (["--deployments", "one-a,one-a", "--prompts", str(prompts)],
                 ["--deployments", "one-a,one-b", "--prompts", str(tmp_path / "missing.txt")],
                 ["--deployments", "one-a", "--prompts", str(prompts)]):
        code = main(["online-endpoint", "compare", "-n", "diff", *argv, "--workspace-dir", str(workspace.home)])
        _, err = capsys.readouterr()
        assert code == 2 and err.strip(), argv
