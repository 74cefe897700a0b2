"""Azure ML's safe-rollout walkthrough, run with ``byom`` where the tutorial says ``az ml``.

Twice: with pickled scikit-learn regressions in a folder laid out as Azure's
CLI examples are (endpoint and deployment YAML beside model-1/ and model-2/
with an onlinescoring/ code folder, paths relative to the YAML), and with the
packaged sample model (SmolLM2-135M-Instruct) served by scoring/generate.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy
import pytest
from byom.cli.main import main
from sklearn.linear_model import LinearRegression

from .helpers import ASSETS, model_servers

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROW = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]


def regression(weight: float) -> LinearRegression:
    rng = numpy.random.default_rng(0)
    features = rng.normal(size=(50, 10))
    return LinearRegression().fit(features, features.sum(axis=1) * weight)


def write_sample(root: Path) -> None:
    for folder, weight in (("model-1", 1.0), ("model-2", 2.0)):
        (root / folder / "model").mkdir(parents=True)
        joblib.dump(regression(weight), root / folder / "model" / "sklearn_regression_model.pkl")
        shutil.copytree(ASSETS / "sklearn_scoring", root / folder / "onlinescoring")
    (root / "endpoint.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\n"
        "name: my-endpoint\nauth_mode: key\n")
    for name, folder in (("blue", "model-1"), ("green", "model-2")):
        (root / f"{name}-deployment.yml").write_text(
            "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json\n"
            f"name: {name}\nendpoint_name: my-endpoint\n"
            f"model:\n  path: {folder}/model/\n"
            f"code_configuration:\n  code: {folder}/onlinescoring/\n  scoring_script: score.py\n"
            "environment: azureml:local-python@latest\n"
            "instance_type: Standard_DS3_v2\ninstance_count: 1\n")
    (root / "sample-request.json").write_text(json.dumps({"data": [ROW]}))


@pytest.fixture
def byom(home: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """Run ``byom ARGV`` on the test's home; its output, once it exited 0."""
    def run(*argv: str) -> str:
        code = main([*argv, "--workspace-dir", str(home)])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out.strip()

    return run


def curl_deployment(byom: Callable[..., str], endpoint: str, deployment: str, request: str,
                    timeout: float = 30) -> object:
    """What curl gets from one deployment by name, with the key and scoring URI the CLI prints, as the tutorial does."""
    key = byom("online-endpoint", "get-credentials", "-n", endpoint, "--query", "primaryKey", "-o", "tsv")
    uri = byom("online-endpoint", "show", "-n", endpoint, "--query", "scoring_uri", "-o", "tsv")
    curl = subprocess.run(
        ["curl", "-s", "--fail-with-body", "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json",
         "-H", f"azureml-model-deployment: {deployment}", "--data", f"@{request}", uri],
        capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(curl.stdout)


def test_safe_rollout_walkthrough(home: Path, tmp_path: Path, byom: Callable[..., str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    sample = tmp_path / "online"
    write_sample(sample)

    def show(query: str) -> object:
        return json.loads(byom("online-endpoint", "show", "-n", "my-endpoint", "--query", query))

    byom("online-endpoint", "create", "-f", str(sample / "endpoint.yml"))
    blue = json.loads(byom("online-deployment", "create", "-f", str(sample / "blue-deployment.yml"), "--all-traffic"))
    assert blue["provisioning_state"] == "Succeeded"
    assert show("traffic") == {"blue": 100}
    # as az ml: create never updates what exists (its traffic stays); update changes it
    assert main(["online-endpoint", "create", "-f", str(sample / "endpoint.yml"), "--workspace-dir", str(home)]) == 2
    assert "already exists: use update" in capsys.readouterr().err
    byom("online-endpoint", "update", "-f", str(sample / "endpoint.yml"), "--set", "description=again")
    assert show("[traffic, description]") == [{"blue": 100}, "again"]

    request = str(sample / "sample-request.json")
    [blue_prediction] = json.loads(byom("online-endpoint", "invoke", "-n", "my-endpoint", "--request-file", request))
    assert blue_prediction == pytest.approx(sum(ROW), rel=1e-6)

    scaled = json.loads(byom("online-deployment", "update", "-n", "blue", "-e", "my-endpoint",
                             "--set", "instance_count=2"))
    assert scaled["instance_count"] == 2 and [i["state"] for i in scaled["instances"]] == ["Ready", "Ready"]

    green = json.loads(byom("online-deployment", "create", "-f", str(sample / "green-deployment.yml")))
    assert green["provisioning_state"] == "Succeeded" and show("traffic") == {"blue": 100}

    assert curl_deployment(byom, "my-endpoint", "green", request) == [pytest.approx(2 * sum(ROW), rel=1e-6)]

    byom("online-endpoint", "update", "-n", "my-endpoint", "--mirror-traffic", "green=10")
    assert show("mirror_traffic") == {"green": 10}
    byom("online-endpoint", "update", "-n", "my-endpoint", "--mirror-traffic", "green=0",
         "--traffic", "blue=90 green=10")
    assert show("[traffic, mirror_traffic]") == [{"blue": 90, "green": 10}, {}]
    byom("online-endpoint", "update", "-n", "my-endpoint", "--traffic", "blue=0 green=100")
    [green_prediction] = json.loads(byom("online-endpoint", "invoke", "-n", "my-endpoint", "--request-file", request))
    assert green_prediction == pytest.approx(2 * sum(ROW), rel=1e-6)
    assert "init has completed" in byom("online-deployment", "get-logs", "-n", "green", "-e", "my-endpoint",
                                   "--lines", "200")

    byom("online-deployment", "delete", "-n", "blue", "-e", "my-endpoint", "--yes")
    assert [d["name"] for d in json.loads(byom("online-deployment", "list", "-e", "my-endpoint"))] == ["green"]
    byom("online-endpoint", "delete", "-n", "my-endpoint", "--yes")
    assert json.loads(byom("online-endpoint", "list")) == []
    assert model_servers(home) == []


def test_bad_input_gets_clear_messages(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def fails(*argv: str) -> str:
        code = main([*argv, "--workspace-dir", str(home)])
        out, err = capsys.readouterr()
        assert code == 2, (out, err)
        return err

    assert "does not exist" in fails("online-endpoint", "create", "-f", str(tmp_path / "nope.yml"))
    assert "No endpoint named 'ghost'" in fails("online-endpoint", "show", "-n", "ghost")
    assert "Name the endpoint" in fails("online-endpoint", "create")
    assert main(["online-endpoint", "create", "-n", "real", "--workspace-dir", str(home)]) == 0
    capsys.readouterr()
    assert "whole numbers" in fails("online-endpoint", "update", "-n", "real", "--traffic", "blue=lots")
    assert "names deployment 'blue'" in fails("online-endpoint", "update", "-n", "real", "--traffic", "blue=100")
    assert "--yes" in fails("online-endpoint", "delete", "-n", "real")
    assert "-f" in fails("online-deployment", "create", "-n", "blue", "-e", "real")


def sample_deployment(root: Path, name: str, model_name: str) -> Path:
    """Deployment YAML for the registered sample model with scoring/generate.py, answering as ``model_name``."""
    path = root / f"{name}-deployment.yml"
    path.write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json\n"
        f"name: {name}\nendpoint_name: chat-endpoint\nmodel: azureml:smollm2@latest\n"
        f"code_configuration:\n  code: {REPO / 'scoring'}\n  scoring_script: generate.py\n"
        "environment: azureml:local-python@latest\n"
        # one torch thread: two spin against each other on a loaded 2-core machine
        f"environment_variables:\n  BYOM_TORCH_THREADS: '1'\n  BYOM_MODEL_NAME: {model_name}\n"
        "request_settings:\n  request_timeout_ms: 60000\n"
        "instance_type: Standard_DS3_v2\ninstance_count: 1\n")
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_safe_rollout_walkthrough_with_the_sample_model(home: Path, tmp_path: Path, sample_model_dir: Path,
                                                        byom: Callable[..., str]) -> None:
    def show(query: str) -> object:
        return json.loads(byom("online-endpoint", "show", "-n", "chat-endpoint", "--query", query))

    request = tmp_path / "sample-request.json"
    request.write_text(json.dumps({"prompt": "The capital of France is", "max_new_tokens": 3}))
    assert json.loads(byom("model", "create", "-n", "smollm2", "-p", str(sample_model_dir)))["version"] == "1"
    byom("online-endpoint", "create", "-n", "chat-endpoint")
    blue = json.loads(byom("online-deployment", "create", "-f", str(sample_deployment(tmp_path, "blue", "blue-lm")),
                           "--all-traffic"))
    assert blue["provisioning_state"] == "Succeeded"
    assert show("traffic") == {"blue": 100}

    answer = json.loads(byom("online-endpoint", "invoke", "-n", "chat-endpoint", "--request-file", str(request)))
    assert answer["model"] == "blue-lm" and answer["text"].strip()
    assert 1 <= answer["usage"]["completion_tokens"] <= 3 and answer["finish_reason"] in ("length", "stop")

    scaled = json.loads(byom("online-deployment", "update", "-n", "blue", "-e", "chat-endpoint",
                             "--set", "instance_count=2"))
    assert scaled["instance_count"] == 2 and [i["state"] for i in scaled["instances"]] == ["Ready", "Ready"]
    for _ in range(4):  # round robin over both instances: each loaded the same weights
        again = json.loads(byom("online-endpoint", "invoke", "-n", "chat-endpoint", "--request-file", str(request)))
        assert again["text"] == answer["text"]

    green = json.loads(byom("online-deployment", "create", "-f", str(sample_deployment(tmp_path, "green", "green-lm"))))
    assert green["provisioning_state"] == "Succeeded" and show("traffic") == {"blue": 100}

    by_name = curl_deployment(byom, "chat-endpoint", "green", str(request), timeout=60)
    assert by_name["model"] == "green-lm"
    assert by_name["text"] == answer["text"]  # the same weights, greedy: the same words

    byom("online-endpoint", "update", "-n", "chat-endpoint", "--mirror-traffic", "green=10")
    assert show("mirror_traffic") == {"green": 10}
    byom("online-endpoint", "update", "-n", "chat-endpoint", "--mirror-traffic", "green=0",
         "--traffic", "blue=90 green=10")
    assert show("[traffic, mirror_traffic]") == [{"blue": 90, "green": 10}, {}]
    byom("online-endpoint", "update", "-n", "chat-endpoint", "--traffic", "blue=0 green=100")
    moved = json.loads(byom("online-endpoint", "invoke", "-n", "chat-endpoint", "--request-file", str(request)))
    assert moved["model"] == "green-lm" and moved["text"] == answer["text"]

    byom("online-deployment", "delete", "-n", "blue", "-e", "chat-endpoint", "--yes")
    assert [d["name"] for d in json.loads(byom("online-deployment", "list", "-e", "chat-endpoint"))] == ["green"]
    byom("online-endpoint", "delete", "-n", "chat-endpoint", "--yes")
    assert json.loads(byom("online-endpoint", "list")) == []
    assert model_servers(home) == []
