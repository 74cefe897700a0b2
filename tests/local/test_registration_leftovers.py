"""What a registration killed mid-copy leaves is swept by the next byom process on the home, and only that."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from byom.core.local.artifacts import DirectoryArtifacts
from byom.core.local.serving_files import start_service

pytestmark = pytest.mark.timeout(60)

# stages a model folder, or opens a scratch folder, and stops there until told to go on
REGISTER = """
import sys
from pathlib import Path
from byom.core.local.artifacts import DirectoryArtifacts
store = DirectoryArtifacts(Path(sys.argv[1]))
paused_once = []
def paused(message, fraction):
    if not paused_once:
        paused_once.append(True)
        print("copying", flush=True)
        sys.stdin.readline()
if sys.argv[2] == "stage":
    store.stage(Path(sys.argv[3]), paused)
else:
    with store.scratch() as folder:
        (folder / "packaged.bin").write_bytes(b"x" * 4096)
        paused("", None)
"""


def model_folder(tmp_path: Path) -> Path:
    src = tmp_path / "model"
    src.mkdir()
    for name in ("a.bin", "b.bin"):
        (src / name).write_bytes(os.urandom(64 * 1024))
    return src


@contextmanager
def registration(root: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A registration in another process, paused mid-copy."""
    proc = subprocess.Popen([sys.executable, "-c", REGISTER, str(root), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "copying\n", "the registration did not start"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def left(root: Path) -> list[str]:
    return sorted(p.name for folder in (root / ".staging", root / ".scratch") if folder.is_dir()
                  for p in folder.iterdir())


def test_a_killed_registration_is_swept_at_the_next_start_but_a_live_one_is_not(tmp_path: Path) -> None:
    root, src = tmp_path / "home" / "artifacts", model_folder(tmp_path)
    with registration(root, "stage", str(src)) as killed_stage, registration(root, "scratch") as killed_scratch:
        assert len(left(root)) == 2
        os.kill(killed_stage.pid, signal.SIGKILL)
        os.kill(killed_scratch.pid, signal.SIGKILL)
        killed_stage.wait(timeout=10)
        killed_scratch.wait(timeout=10)
    assert len(left(root)) == 2, "killed mid-copy: both folders stay until a byom process starts"
    with registration(root, "stage", str(src)) as live, registration(root, "scratch") as live_scratch:
        # each of these two started by sweeping; now one more process starts while they copy
        DirectoryArtifacts(root)
        still = left(root)
        assert {name.split("-")[0] for name in still} == {str(live.pid), str(live_scratch.pid)}, still
        assert live.stdin is not None and live_scratch.stdin is not None
        live.stdin.write("\n")
        live.stdin.flush()
        live_scratch.stdin.write("\n")
        live_scratch.stdin.flush()
        assert live.wait(timeout=20) == 0 and live_scratch.wait(timeout=20) == 0
    staged = [p for p in (root / ".staging").iterdir()]
    assert len(staged) == 1 and sorted(f.name for f in staged[0].iterdir()) == ["a.bin", "b.bin"]
    assert not list((root / ".scratch").iterdir()), "a scratch folder is removed when its registration ends"


def test_the_control_plane_or_gateway_starting_sweeps_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = home / "artifacts"
    with registration(root, "stage", str(model_folder(tmp_path))) as killed:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
    assert len(left(root)) == 1
    started = start_service(["--home", str(home)], "test", "gateway_lock", "gateway")
    assert started is not None
    started[1].close()
    assert left(root) == []
