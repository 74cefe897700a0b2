"""The real console served on loopback, and Debian's chromium driven by Playwright.

Playwright never downloads a browser here: it is pointed at ``/usr/bin/chromium``
(``apt-get install chromium``; ``scripts/ensure-chromium.sh`` does it in CI).
Screenshots go to ``test-artifacts/browser/`` (or ``$BYOM_TEST_ARTIFACTS/browser``), at 1440×900: what an
operator sees. Every request the page makes is recorded; one to any host but loopback fails the test (the
console works offline).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from byom.console.launch import console_command

from ..waiting import wait_until_serving

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


def start_console(home: str, log_dir: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``streamlit run console/app.py`` for a workspace home; the process and its URL once healthy.

    ``env`` adds environment variables. The process is ended here when it
    does not come up, else by the caller (:func:`stop`).
    """
    port = free_port()
    argv, console_env = console_command(home, port)
    env = {**console_env, **(env or {})}
    log_path = log_dir / f"console-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, f"{url}/_stcore/health", 60, log_path)
    except AssertionError:
        stop(proc)
        raise
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def serve_console(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start a console for a workspace home, ended after the test; returns its URL once healthy."""
    started: list[subprocess.Popen[bytes]] = []

    def serve(home: str, env: dict[str, str] | None = None) -> str:
        try:
            proc, url = start_console(home, tmp_path, env)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        started.append(proc)
        return url

    yield serve
    for proc in started:
        stop(proc)


@pytest.fixture(scope="session")
def memory_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One console on the in-memory demo per pytest process (each xdist worker starts its own), ended at exit.

    Its workspace lives in the server, so the tests that share it change
    nothing another test relies on (they add deployments and traffic, never
    remove the demo's).
    """
    try:
        proc, url = start_console(":memory:", tmp_path_factory.mktemp("memory-console"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield url
    stop(proc)


@pytest.fixture
def page(artifacts: Path):  # noqa: ANN201 - a playwright Page
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (scripts/ensure-chromium.sh)")
    from playwright.sync_api import expect, sync_playwright

    # The machines are shared and small: a rerun can take seconds under load.
    expect.set_options(timeout=20_000)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        context.set_default_timeout(30_000)
        seen: list[str] = []
        context.on("request", lambda request: seen.append(request.url))
        page = context.new_page()
        page.byom_requests = seen  # type: ignore[attr-defined]  # read by offsite_requests()
        yield page
        context.close()
        browser.close()
    offsite = offsite_requests(seen)
    assert not offsite, f"the console asked hosts other than loopback: {offsite}"


WIDTH, HEIGHT = 1440, 900
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def offsite_requests(urls: list[str]) -> list[str]:
    """The requests to a host that is not this machine (data: and blob: URLs stay in the page)."""
    return [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")
            and urlsplit(u).hostname not in LOOPBACK]
