"""Where the console's pages get their workspace: one place, never a module global.

* A test (or an app embedding the console) puts a Workspace object into
  ``st.session_state[keys.WORKSPACE]``; pages then use that one.
* Otherwise the session looks at a local workspace home: the one chosen in
  the sidebar, else ``BYOM_HOME``, else ``~/.byom``. Opened workspaces are
  shared between sessions through ``st.cache_resource`` (one per home), which
  is safe: a Workspace keeps no per-user state.
* The home ``:memory:`` opens an in-memory workspace with the demo set up
  (deployments answered by a fake model): a console to click through
  without a backend.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import streamlit as st

from core.local.workspace import LocalWorkspace, default_home
from core.memory import InMemoryWorkspace
from core.workspace import Workspace

from . import keys

MEMORY = ":memory:"


def default_location() -> str:
    if os.environ.get("BYOM_HOME", "").strip() == MEMORY:
        return MEMORY
    return str(default_home())


def location() -> str:
    """The workspace home this session looks at."""
    return st.session_state.get(keys.WORKSPACE_HOME) or default_location()


def choose(home: str) -> None:
    """Point this session at another workspace home (the sidebar's switcher)."""
    st.session_state[keys.WORKSPACE_HOME] = home.strip() or default_location()


def workspace() -> Workspace:
    """The workspace every page of this session talks to."""
    injected = st.session_state.get(keys.WORKSPACE)
    if injected is not None:
        return injected
    return _open(_normalise(location()))


def _normalise(home: str) -> str:
    return home if home == MEMORY else str(Path(home).expanduser().resolve())


@st.cache_resource(show_spinner="Opening the workspace…")
def _open(home: str) -> Workspace:
    if home == MEMORY:
        return _memory_demo()
    return LocalWorkspace(home)


def _memory_demo() -> Workspace:
    from core.demo import setup_demo

    ws = InMemoryWorkspace(seed=0)
    with tempfile.TemporaryDirectory(prefix="byom-demo-") as scratch:
        placeholder = Path(scratch) / "model"
        placeholder.mkdir()
        (placeholder / "README.md").write_text(
            "Placeholder weights for the in-memory demo: its deployments are answered by a fake model.\n"
        )
        setup_demo(ws, model_path=placeholder, package=False)
    return ws
