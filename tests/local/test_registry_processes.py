"""The local registry under real processes: concurrency and a kill mid-registration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from byom.core.local.workspace import LocalWorkspace

from ..waiting import wait_until

BYOM = [sys.executable, "-m", "byom.cli"]


def byom_env(home: Path) -> dict[str, str]:
    return {**os.environ, "BYOM_HOME": str(home), "BYOM_ACTOR": "ci"}


def test_processes_registering_one_name_get_distinct_versions(tmp_path: Path) -> None:
    src = tmp_path / "model"
    src.mkdir()
    (src / "weights.bin").write_bytes(os.urandom(256 * 1024))
    home = tmp_path / "home"
    procs = [
        subprocess.Popen([*BYOM, "model", "create", "-n", "race", "-p", str(src), "--query", "version"],
                         env=byom_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(5)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [err for _, err in outputs]
    assert sorted(int(json.loads(out)) for out, _ in outputs) == [1, 2, 3, 4, 5]  # az ml prints versions as text
    ws = LocalWorkspace(home)
    versions = ws.list_model_versions("race")
    assert sorted(m.version for m in versions) == [1, 2, 3, 4, 5]
    assert len(ws.list_audit(target_prefix="model/race")) == 5
    for model in versions:  # every version's files are complete
        assert (home / "artifacts" / model.path / "weights.bin").stat().st_size == 256 * 1024


def test_killed_registration_leaves_no_version(tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.mkdir()
    with open(src / "weights.bin", "wb") as fh:  # large enough that the copy takes a while
        for _ in range(768):
            fh.write(os.urandom(1 << 20))
    home = tmp_path / "home"
    LocalWorkspace(home).close()
    staging = home / "artifacts" / ".staging"
    proc = subprocess.Popen([*BYOM, "model", "create", "-n", "big", "-p", str(src)],
                            env=byom_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: any(staging.rglob("weights.bin")), 60, "the registration to start copying", every_s=0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    ws = LocalWorkspace(home)
    assert ws.list_models(include_archived=True) == []
    assert not list((home / "artifacts" / "models").iterdir())
    # the workspace is usable afterwards, and the name starts again at version 1
    small = tmp_path / "small"
    small.mkdir()
    (small / "w.bin").write_bytes(b"ok")
    assert ws.create_model(_spec("big", small)).version == 1


def _spec(name: str, path: Path):  # noqa: ANN202
    from byom.core.entities import ModelSpec

    return ModelSpec(name=name, path=str(path))
