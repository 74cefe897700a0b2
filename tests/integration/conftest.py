"""Integration tests: real control plane, gateway and model servers on 127.0.0.1.

Every test ends the processes it started (``helpers.shut_down``), by pid.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from byom.core.local.workspace import LocalWorkspace

from .helpers import shut_down


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[LocalWorkspace]:
    ws = LocalWorkspace(tmp_path / "home", actor="tester")
    yield ws
    shut_down(ws)
