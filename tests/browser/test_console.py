"""The console in a real browser: open Overview, deploy, shift traffic 90/10, prompt, analyse token ranks.

Against the in-memory demo workspace (``BYOM_HOME=:memory:``; its deployments
are answered by a fake model), and against a real local workspace with the
sample model (real model servers behind the real gateway).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .flows import analyse, deploy, open_page, send_prompt, settle, shift_traffic, shot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

TEXT = "The quick brown fox jumps over the lazy dog."


def test_console_flows_on_the_in_memory_demo(serve_console, page, artifacts):
    folder = artifacts / "memory"
    folder.mkdir(exist_ok=True)
    page.goto(serve_console(":memory:"))

    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="demo")).to_be_visible()
    expect(page.get_by_text("chat 100", exact=True)).to_be_visible()
    shot(page, folder, "1-overview")

    open_page(page, "Endpoints")
    deploy(page, "blue")
    shift_traffic(page, {"chat": 90, "blue": 10})
    expect(page.get_by_text("Traffic of demo is now blue 10 · chat 90.")).to_be_visible()
    shot(page, folder, "2-endpoints-traffic")

    open_page(page, "Playground")
    send_prompt(page, "hello console")
    # The fake model answers the prompt reversed, naming the deployment the split chose.
    expect(page.get_by_text(re.compile(r"^\[(chat|blue)\] elosnoc olleh$"))).to_be_visible()
    shot(page, folder, "3-playground")

    open_page(page, "Token ranks")
    analyse(page, TEXT)
    tokens = page.locator("span.byom-token")
    expect(tokens).to_have_count(9)
    assert tokens.nth(1).get_attribute("data-bucket") == "1"
    assert "rank 37" in tokens.nth(1).get_attribute("title")
    colour = tokens.nth(0).evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(183, 240, 164)"  # top-10 green
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    shot(page, folder, "4-token-ranks")

    for title in ("Models", "Environments", "Monitoring"):
        open_page(page, title)
        settle(page)
        shot(page, folder, f"5-{title.lower()}")
    expect(page.locator(".js-plotly-plot").first).to_be_visible()


@pytest.fixture
def local_demo(tmp_path, sample_model_dir):
    """A real local workspace after the demo set-up: the sample model served by real model servers."""
    from core.demo import setup_demo
    from core.local.workspace import LocalWorkspace

    ws = LocalWorkspace(tmp_path / "home")
    try:
        result = setup_demo(ws, model_path=sample_model_dir, package=False)
        failed = [d for d in result.deployments if d.provisioning_state != "Succeeded"]
        assert not failed, [(d.name, d.state_reason[-2000:]) for d in failed]
        yield ws
    finally:
        ws.serving.shutdown()
        ws.close()


@pytest.mark.slow
@pytest.mark.integration
def test_console_flows_on_a_real_local_workspace_with_the_sample_model(local_demo, serve_console, page, artifacts):
    folder = artifacts / "local"
    folder.mkdir(exist_ok=True)
    page.goto(serve_console(str(local_demo.home)))

    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="demo")).to_be_visible()
    expect(page.get_by_text("chat 100", exact=True)).to_be_visible()
    shot(page, folder, "1-overview")

    open_page(page, "Endpoints")
    deploy(page, "blue", timeout_ms=240_000)
    shift_traffic(page, {"chat": 90, "blue": 10})
    expect(page.get_by_text("Traffic of demo is now blue 10 · chat 90.")).to_be_visible()
    assert local_demo.get_endpoint("demo").traffic == {"blue": 10, "chat": 90, "ranks": 0}
    shot(page, folder, "2-endpoints-traffic")

    open_page(page, "Playground")
    send_prompt(page, "What is the capital of France?", timeout_ms=120_000)
    served = page.locator('[data-testid="stMetric"]').filter(has_text="Served by")
    expect(served).to_contain_text(re.compile("chat|blue"))
    expect(page.get_by_text("HTTP 200")).to_be_visible()
    shot(page, folder, "3-playground")

    open_page(page, "Token ranks")
    analyse(page, TEXT, timeout_ms=120_000)
    tokens = page.locator("span.byom-token")
    expect(tokens.first).to_have_attribute("title", re.compile(r"rank \d"))
    assert tokens.count() >= 9
    assert "".join(tokens.all_text_contents()) == TEXT
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    shot(page, folder, "4-token-ranks")

    open_page(page, "Monitoring")
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    shot(page, folder, "5-monitoring")
