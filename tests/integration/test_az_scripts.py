"""Scripts written for ``az ml`` (tests/integration/az_scripts/, in the style of Azure ML's CLI v2 examples)
run unchanged by bash, with an ``az`` on PATH that hands ``az ml ...`` to ``byom``: the real local
workspace, control plane, gateway and model servers, and curl as the client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ECHO

SCRIPTS = Path(__file__).parent / "az_scripts"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

AZ_SHIM = """#!/bin/sh
# az for these tests: 'az ml GROUP VERB ...' is 'byom GROUP VERB ...'; nothing else is az here
if [ "$1" != "ml" ]; then echo "this az runs only 'az ml'" >&2; exit 127; fi
shift
exec {python} -m byom.cli "$@"
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The scripts' folder as a checkout of the examples holds it, the scoring code beside the YAML."""
    work = tmp_path / "cli"
    shutil.copytree(SCRIPTS, work)
    shutil.copytree(ECHO, work / "onlinescoring")
    return work


def run_script(script: str, work: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = work.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "az"
    shim.write_text(AZ_SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    environ = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "BYOM_HOME": str(home),
               "BYOM_ACTOR": "pipeline", **env}
    environ.pop("BYOM_AZURE_CONFIG", None)
    done = subprocess.run(["bash", script], cwd=work, env=environ, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, f"{script} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def test_a_local_endpoint_script(work: Path, home: Path) -> None:
    run_script("deploy-local-endpoint.sh", work, home, ENDPOINT_NAME="endpt-local")
    invoked = json.loads((work / "invoke-answer.json").read_text())
    assert (invoked["greeting"], invoked["label"]) == ("hello from blue", "blue")
    answer = json.loads((work / "curl-answer.json").read_text())
    assert answer["greeting"] == "hello from blue"  # curl sent no key and set no traffic
    assert "single deployment" in (work / "refused.txt").read_text()
    assert "init" in (work / "logs.txt").read_text()


def test_a_blue_green_script_with_set_and_a_templated_model_version(work: Path, home: Path) -> None:
    run_script("safe-rollout.sh", work, home, ENDPOINT_NAME="rollout-ep", MODEL_VERSION="42")
    assert json.loads((work / "traffic.json").read_text()) == {"blue": 0, "green": 100}
    answer = json.loads((work / "curl-answer.json").read_text())
    assert (answer["greeting"], answer["label"]) == ("hello from green", "green-2")
    assert "already exists: use update" in (work / "refused.txt").read_text()


@pytest.mark.slow  # builds the model's own environment
def test_an_mlflow_model_without_code_and_a_custom_container_refused(work: Path, home: Path) -> None:
    shutil.copytree(Path(__file__).parent / "assets" / "mlflow_model", work / "mlflow" / "model")
    run_script("deploy-mlflow.sh", work, home, ENDPOINT_NAME="mlflow-ep")
    assert json.loads((work / "invoke-answer.json").read_text()) == [{"score": 321.0}, {"score": 654.0}]
    refused = (work / "refused.txt").read_text()
    assert "inference_config" in refused or "custom container" in refused.lower(), refused


@pytest.mark.slow  # builds the curated environment's local equivalent
def test_a_curated_environment_named_by_its_registry_uri(work: Path, home: Path) -> None:
    run_script("deploy-curated-environment.sh", work, home, ENDPOINT_NAME="curated-ep")
    answer = json.loads((work / "invoke-answer.json").read_text())
    assert (answer["greeting"], answer["label"]) == ("hello from blue", "curated")
    assert (work / "environment.txt").read_text().strip() == "minimal-py311-inference:1", "its local equivalent"
    refused = (work / "refused.txt").read_text()
    assert "GPU image" in refused and "conda" in refused, refused
