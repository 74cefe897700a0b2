"""Starting the console: ``byom console`` calls :func:`run_console`.

The console is a Streamlit server bound to loopback (127.0.0.1) unless the
operator asks for another address, headless (it prints its URL rather than
opening a browser), sending no usage statistics. The workspace reaches the
pages through the environment (see :mod:`console.context`): a local home as
``BYOM_HOME``, an Azure ML workspace's config.json as ``BYOM_AZURE_CONFIG``;
a local home named here wins over a ``BYOM_AZURE_CONFIG`` already set, as on
the command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from byom.core.foreground import run_in_foreground
from byom.core.targets import AZURE_SELECTORS, ENV_CONFIG

APP = Path(__file__).resolve().parent / "app.py"


def console_command(
    home: Path | str | None, port: int, host: str = "127.0.0.1", azure_config: Path | str | None = None
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that serve the console (tests start it the same way)."""
    argv = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        # An unexpected exception shows its type, never a traceback; byom's own errors are messages.
        "--client.showErrorDetails", "type",
        "--client.toolbarMode", "minimal",
        "--theme.base", "light",
    ]
    env = dict(os.environ)
    if home is not None:
        env["BYOM_HOME"] = str(home)
        for name in AZURE_SELECTORS:  # a local home named here wins, as --workspace-dir does in the CLI
            env.pop(name, None)
    if azure_config is not None:
        env[ENV_CONFIG] = str(Path(azure_config).expanduser().resolve())
    return argv, env


def run_console(
    home: Path | None = None, port: int = 8501, host: str = "127.0.0.1", azure_config: Path | str | None = None
) -> int:
    """Serve the console until the server exits or this process is asked to stop (the signal is passed on)."""
    argv, env = console_command(home, port, host, azure_config)
    print(f"byom console on http://{host}:{port} (Ctrl+C to stop)", flush=True)
    return run_in_foreground(argv, env)
