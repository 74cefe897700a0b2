"""AppTest fixtures: the console's entry script with an in-memory workspace injected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import streamlit as st
from byom.console import keys, ui
from byom.core.demo import setup_demo
from byom.core.memory import InMemoryWorkspace
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "console" / "app.py"


@pytest.fixture
def workspace() -> InMemoryWorkspace:
    return InMemoryWorkspace(seed=0)


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00" * 64)
    return folder


@pytest.fixture
def demo(workspace: InMemoryWorkspace, model_folder: Path) -> InMemoryWorkspace:
    """The in-memory workspace after the demo set-up: endpoint demo with chat (100 %) and ranks."""
    setup_demo(workspace, model_path=model_folder, package=False)
    return workspace


@pytest.fixture
def open_page(workspace: InMemoryWorkspace) -> Callable[[str], AppTest]:
    """Run the console on one page (``"models"`` for console/screens/models.py) against ``workspace``."""

    def run(page: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=30)
        at.session_state[keys.WORKSPACE] = workspace
        at.run()
        if page != "overview":
            at.switch_page(f"screens/{page}.py").run()
        assert not at.exception, at.exception
        return at

    return run


@pytest.fixture
def spinners(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every ``st.spinner`` the pages show (a spinner is gone from the page once its work is done)."""
    shown: list[str] = []
    real = st.spinner

    @contextmanager
    def spinner(text: str = "", *args, **kwargs) -> Iterator[None]:
        shown.append(text.replace("\\", ""))
        with real(text, *args, **kwargs):
            yield

    monkeypatch.setattr(st, "spinner", spinner)
    return shown


@pytest.fixture
def progress_boxes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Each ``ui.progress`` box the pages open: its label and the messages the backend reported into it."""
    shown: list[tuple[str, list[str]]] = []
    real = ui.progress

    @contextmanager
    def progress(label: str) -> Iterator[Callable[..., None]]:
        messages: list[str] = []
        shown.append((label, messages))
        with real(label) as report:
            def recording(message: str, fraction: float | None = None) -> None:
                messages.append(message)
                report(message, fraction)

            yield recording

    monkeypatch.setattr(ui, "progress", progress)
    return shown
