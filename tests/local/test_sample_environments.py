"""The conda specs shipped in environments/ build into working environments (slow: torch is installed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from byom.core.local.workspace import LocalWorkspace
from byom.core.specs import environment_spec_from_yaml

from ..waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SPECS = Path(__file__).resolve().parents[2] / "environments"


def test_shipped_environment_specs_build(tmp_path: Path) -> None:
    ws = LocalWorkspace(tmp_path / "home")
    names = []
    for folder in ("scoring-cpu", "scoring-gpu"):
        env = ws.create_environment(environment_spec_from_yaml(SPECS / folder / "environment.yml"))
        ws.build_environment(env.name, env.version, wait=False)  # both build at once, in the background
        names.append(env.name)
    builds = wait_until(
        lambda: all((b := {n: ws.get_environment_build(n) for n in names})[n].state in ("Succeeded", "Failed")
                    for n in names) and b,
        840, "both sample environments to finish building", every_s=1)
    for name, build in builds.items():
        assert build.state == "Succeeded", (name, build.message, build.log[-2000:])
        drift = {d.package: d.status for d in ws.environment_drift(name)}
        assert set(drift.values()) == {"ok"}, drift
        # the scoring scripts' imports work with the environment's interpreter
        imports = "import torch, transformers, gguf, azureml_inference_server_http"
        check = subprocess.run([build.interpreter, "-c", imports], capture_output=True, text=True, timeout=300)
        assert check.returncode == 0, check.stderr
