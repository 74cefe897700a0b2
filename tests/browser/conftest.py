"""The real console served on loopback, and Debian's chromium driven by Playwright.

Playwright never downloads a browser here: it is pointed at ``/usr/bin/chromium``
(``apt-get install chromium``; ``scripts/ensure-chromium.sh`` does it in CI).
Screenshots go to ``test-artifacts/browser/`` (or ``$BYOM_TEST_ARTIFACTS/browser``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.launch import console_command

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("BYOM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("BYOM_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def serve_console(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start ``streamlit run console/app.py`` for a workspace home; returns its URL once healthy."""
    started: list[subprocess.Popen[bytes]] = []

    def serve(home: str) -> str:
        port = free_port()
        argv, env = console_command(home, port)
        log = (tmp_path / f"console-{port}.log").open("wb")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"The console exited with {proc.returncode}:\n{Path(log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        return url
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"The console did not answer within 60 s:\n{Path(log.name).read_text()[-3000:]}")

    yield serve
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def page(artifacts: Path):  # noqa: ANN201 - a playwright Page
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/ensure-chromium.sh)")
    from playwright.sync_api import expect, sync_playwright

    # The machines are shared and small: a rerun can take seconds under load.
    expect.set_options(timeout=20_000)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.set_default_timeout(30_000)
        page = context.new_page()
        yield page
        context.close()
        browser.close()
