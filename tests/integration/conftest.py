"""Integration tests: real control plane, gateway and model servers on 127.0.0.1.

Every test ends the processes it started (``helpers.shut_down``), by pid.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from byom.core.local.processes import home_processes
from byom.core.local.serving import LocalServing
from byom.core.local.workspace import LocalWorkspace

from .helpers import shut_down


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A local workspace home for the CLI; whatever it started there is ended."""
    home = tmp_path / "home"
    yield home
    LocalServing(home).shutdown()
    assert not home_processes(home)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[LocalWorkspace]:
    ws = LocalWorkspace(tmp_path / "home", actor="tester")
    yield ws
    shut_down(ws)
