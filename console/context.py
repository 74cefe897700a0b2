"""Where the console's pages get their workspace: one place, never a module global.

* A test (or an app embedding the console) puts a Workspace object into
  ``st.session_state[keys.WORKSPACE]``; pages then use that one.
* Otherwise the session looks at the workspace chosen in the sidebar: a
  local workspace home (``keys.WORKSPACE_HOME``) or an Azure ML workspace
  (``keys.WORKSPACE_AZURE``, an :class:`~byom.core.targets.AzureTarget`).
  Before any choice: the Azure ML workspace whose ``config.json``
  ``BYOM_AZURE_CONFIG`` names, else ``BYOM_HOME``, else ``~/.byom`` (as the
  CLI does).
* Opened workspaces are shared between sessions through ``st.cache_resource``
  (one per home, one per Azure target), which is safe: a Workspace keeps no
  per-user state. Workspaces are opened by core's one factory
  (:func:`byom.core.factory.open_workspace`); Azure ML signs in with
  ``DefaultAzureCredential``; a test puts the credential and HTTP transport
  to use instead into ``keys.AZURE_CONNECT``.
* The home ``:memory:`` opens an in-memory workspace with the demo set up
  (deployments answered by a fake model): a console to click through
  without a backend.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st
from byom.core.errors import InvalidInput
from byom.core.factory import open_workspace
from byom.core.home import default_home
from byom.core.targets import MEMORY, AzureTarget, MemoryTarget, environ_names_azure, local_target, resolve_target
from byom.core.workspace import Workspace

from . import keys


def default_location() -> str:
    if os.environ.get("BYOM_HOME", "").strip() == MEMORY:
        return MEMORY
    return str(default_home())


def location() -> str:
    """The local workspace home this session looks at (or last looked at, when it is on Azure)."""
    return st.session_state.get(keys.WORKSPACE_HOME) or default_location()


def on_azure() -> bool:
    """Whether this session looks at an Azure ML workspace (never raises: the sidebar asks it)."""
    if keys.WORKSPACE_AZURE in st.session_state:
        return st.session_state[keys.WORKSPACE_AZURE] is not None
    return environ_names_azure()


def azure_target() -> AzureTarget | None:
    """The Azure ML workspace this session looks at, or None when it looks at a local home.

    Raises InvalidInput when ``BYOM_AZURE_CONFIG`` names a file that does not exist.
    """
    if keys.WORKSPACE_AZURE in st.session_state:
        chosen: AzureTarget | None = st.session_state[keys.WORKSPACE_AZURE]
        return chosen
    return resolve_target(environ=os.environ)


def choose(home: str) -> None:
    """Point this session at a local workspace home (the sidebar's switcher)."""
    st.session_state[keys.WORKSPACE_HOME] = home.strip() or default_location()
    st.session_state[keys.WORKSPACE_AZURE] = None


def choose_azure(*, config: str = "", subscription: str = "", resource_group: str = "",
                 workspace_name: str = "") -> Workspace:
    """Point this session at an Azure ML workspace (the sidebar's switcher).

    Names win over a config file, as on the command line. The workspace is
    opened and reached first, so that a wrong name or a missing sign-in is a
    ByomError here, with its next step, and the session stays where it was.
    """
    target = resolve_target(config=config.strip() or None, subscription=subscription.strip() or None,
                            resource_group=resource_group.strip() or None,
                            workspace_name=workspace_name.strip() or None)
    if target is None:
        raise InvalidInput("Name the Azure ML workspace first.",
                           hint="Enter the path of its config.json, or its subscription, resource group and name.")
    opened = _open_azure(*_azure_key(target), _connect=_connect_options())
    st.session_state[keys.WORKSPACE_AZURE] = target
    return opened


def workspace() -> Workspace:
    """The workspace every page of this session talks to."""
    injected: Workspace | None = st.session_state.get(keys.WORKSPACE)
    if injected is not None:
        return injected
    target = azure_target()
    if target is not None:
        return _open_azure(*_azure_key(target), _connect=_connect_options())
    return _open(_normalise(location()))


def _normalise(home: str) -> str:
    return home if home == MEMORY else str(Path(home).expanduser().resolve())


def _connect_options() -> dict[str, Any]:
    return dict(st.session_state.get(keys.AZURE_CONNECT) or {})


def _azure_key(target: AzureTarget) -> tuple[str, str, str, str]:
    config = str(target.config_path.expanduser().resolve()) if target.config_path else ""
    return target.subscription or "", target.resource_group or "", target.workspace_name or "", config


@st.cache_resource(show_spinner="Opening the workspace…")
def _open(home: str) -> Workspace:
    if home == MEMORY:
        return _memory_demo()
    return open_workspace(local_target(home))


@st.cache_resource(show_spinner="Signing in to the Azure ML workspace…", on_release=lambda ws: ws.close())
def _open_azure(subscription: str, resource_group: str, workspace_name: str, config: str,
                _connect: dict[str, Any]) -> Workspace:
    """One AzureWorkspace per target (``_connect``, a test's credential and transport, is not part of the key)."""
    target = AzureTarget(subscription or None, resource_group or None, workspace_name or None,
                         Path(config) if config else None)
    return open_workspace(target, check=True, **_connect)


def forget_azure_workspaces() -> None:
    """Close every cached Azure workspace (tests call it between replays)."""
    _open_azure.clear()


def _memory_demo() -> Workspace:
    from byom.core.demo import setup_demo

    ws = open_workspace(MemoryTarget(seed=0))
    with tempfile.TemporaryDirectory(prefix="byom-demo-") as scratch:
        placeholder = Path(scratch) / "model"
        placeholder.mkdir()
        (placeholder / "README.md").write_text(
            "Placeholder weights for the in-memory demo: its deployments are answered by a fake model.\n"
        )
        setup_demo(ws, model_path=placeholder, package=False)
    return ws
