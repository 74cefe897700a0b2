"""The Traffic tab in a real browser: mirror to a deployment, send prompts, and read the mirror report's table
(a console of its own on the in-memory demo, whose fake model names the deployment in its text)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .flows import alert, open_page, send_prompt, set_number, settle, shot

pytestmark = [pytest.mark.browser]

PROMPTS = 8  # the demo's random choices are seeded: these send several copies to the mirror


def test_the_mirror_report_table_is_shown_beside_the_mirror_setting(serve_console, page, artifacts):
    page.goto(serve_console(":memory:"))
    open_page(page, "Endpoints")
    page.get_by_role("tab", name="Traffic").click()
    settle(page)
    expect(page.get_by_text("No mirrored requests in the last 1h")).to_be_visible()
    page.get_by_label("Mirror to", exact=True).click()
    page.get_by_role("option", name="ranks", exact=True).click()
    settle(page)
    set_number(page, "Mirror %", 50)
    page.get_by_role("button", name="Apply traffic").click()
    expect(alert(page, "Traffic of demo is now chat 100 (mirror: ranks 50).")).to_be_visible()
    settle(page)

    open_page(page, "Playground")
    for i in range(PROMPTS):
        send_prompt(page, f"hello mirror {i}")

    open_page(page, "Endpoints")
    page.get_by_role("tab", name="Traffic").click()
    settle(page)
    report = page.locator('[data-testid="stExpander"]').filter(has_text="Mirror report")
    table = report.locator('[data-testid="stDataFrame"]')
    expect(table).to_be_visible()
    table.scroll_into_view_if_needed()
    expect(report.get_by_text("split into words")).to_be_visible()
    shot(page, artifacts, "traffic-mirror-report")
