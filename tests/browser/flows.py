"""What a person does in the console, as Playwright steps (shared by the browser tests)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from playwright.sync_api import Page, expect


def alert(page: Page, text: str):  # noqa: ANN201 - a playwright Locator
    """A message box on the page holding ``text`` (the toast that repeats it is not counted)."""
    return page.locator('[data-testid^="stAlertContent"]').get_by_text(text)


def open_page(page: Page, title: str) -> None:
    """Click a page in the sidebar and wait for its title."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    settle(page)


def settle(page: Page) -> None:
    """Wait until the script run the last action started has finished.

    Streamlit's root element says whether a script runs (``data-test-script-state``).
    The rerun a click asks for starts a moment after the click returns: first
    the run is awaited for a second (none comes when it already ended, or the
    action needed none), then its end.
    """
    app = page.locator('[data-testid="stApp"]')
    with contextlib.suppress(AssertionError):
        expect(app).not_to_have_attribute("data-test-script-state", "notRunning", timeout=1_000)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=120_000)
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=120_000)


def shot(page: Page, folder: Path, name: str) -> Path:
    """A screenshot of what the window shows (1440×900): what an operator sees without scrolling."""
    settle(page)
    page.wait_for_timeout(300)  # let charts lay themselves out
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def set_up_demo(page: Page, timeout_s: float = 600) -> list[str]:
    """Click the Overview's demo button and follow its progress until the demo is ready; the messages seen."""
    page.get_by_role("button", name="Set up the demo").click()
    expect(page.get_by_text("Setting up the demo", exact=True)).to_be_visible()
    progress = page.locator('[data-testid="stProgress"]')
    ready = alert(page, "The demo endpoint demo is ready")
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not ready.is_visible():
        if page.locator('[data-testid="stAlertContentError"]').count():
            errors = page.locator('[data-testid=stAlertContentError]').all_inner_texts()
            raise AssertionError(f"The demo set-up failed: {errors} after {seen}")
        if time.monotonic() > deadline:
            raise AssertionError(f"The demo was not ready within {timeout_s:.0f} s; progress seen: {seen}")
        try:
            message = progress.first.inner_text(timeout=500).strip() if progress.count() else ""
        except Exception:  # the bar went away between count() and inner_text(): the next look decides
            message = ""
        if message and (not seen or seen[-1] != message):
            seen.append(message)
        page.wait_for_timeout(250)
    settle(page)
    return seen


def set_number(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def deploy(page: Page, name: str, timeout_ms: int = 30_000, *, creating: bool = False) -> None:
    """Deploy under ``name``; ``creating``: first see it Creating, in view, in the table and at the top."""
    page.get_by_role("tab", name="Deployments").click()
    page.get_by_label("Deployment name", exact=True).fill(name)
    page.get_by_role("button", name="Deploy", exact=True).click()
    if creating:
        expect(alert(page, f"Creating deployment {name}")).to_be_in_viewport(timeout=timeout_ms)
        expect(page.locator('[data-testid="stDataFrame"]').first).to_contain_text("Creating")
    done = alert(page, f"Deployment {name} is ready.")
    expect(done).to_be_visible(timeout=timeout_ms)
    expect(done).to_be_in_viewport()  # at the top, not below the fold
    settle(page)


CHARTS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
    title: ((g.layout.title && g.layout.title.text) || '').replace(/<[^>]+>/g, ''),  // Streamlit makes it bold
    yrange: g._fullLayout.yaxis.range,
    traces: g.data.map(t => ({name: t.name, type: t.type || 'scatter',
                             colour: (t.line && t.line.color) || null, y: Array.from(t.y || [])})),
}))"""


def charts(page: Page) -> dict[str, dict]:
    """Each plotly chart on the page, by title, as the browser holds it: y range and traces."""
    return {c["title"]: c for c in page.evaluate(CHARTS_JS)}


def shift_traffic(page: Page, split: dict[str, int]) -> None:
    page.get_by_role("tab", name="Traffic").click()
    settle(page)
    # On a loaded machine a value typed while the previous one's rerun is still drawing can be drawn over
    # (Streamlit redraws the input from the server's state): look, and type again what did not stay, as a
    # person would.
    for _ in range(3):
        lost = {d: pct for d, pct in split.items()
                if page.get_by_label(d, exact=True).input_value() != str(pct)}
        if not lost:
            break
        for deployment, pct in lost.items():
            set_number(page, deployment, pct)
        settle(page)
    for deployment, pct in split.items():
        expect(page.get_by_label(deployment, exact=True)).to_have_value(str(pct))
    expect(page.get_by_text("This split would be refused")).to_have_count(0)
    page.get_by_role("button", name="Apply traffic").click()
    expect(alert(page, "Traffic of demo is now")).to_be_visible()
    settle(page)


def send_prompt(page: Page, prompt: str, timeout_ms: int = 30_000) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Prompt", exact=True).press("Control+Enter")
    settle(page)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("strong").get_by_text("Served by", exact=True).first).to_be_visible(timeout=timeout_ms)
    settle(page)


def analyse(page: Page, text: str, timeout_ms: int = 60_000) -> None:
    page.get_by_label("Text to analyse", exact=True).fill(text)
    page.get_by_label("Text to analyse", exact=True).press("Control+Enter")
    settle(page)
    page.get_by_role("button", name="Analyse", exact=True).click()
    expect(page.locator("span.byom-token").first).to_be_visible(timeout=timeout_ms)
    settle(page)
