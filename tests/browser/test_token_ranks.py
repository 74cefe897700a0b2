"""The Token ranks page in a real browser, as a stakeholder demo reads it: the box on hover, the colours, the
colour bar, upright bar labels and an export that says what it holds (in-memory demo, its fake model)."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from .conftest import WIDTH
from .flows import analyse, open_page, settle, shot

pytestmark = [pytest.mark.browser]

TEXT = "The quick brown fox jumps over the lazy dog."
# The fake model ranks word i at (i * 37) % 1500 and offers its upper case as the one top prediction, p = 0.5.

PLOT_JS = """g => ({
    ticks: [...g.querySelectorAll('.colorbar .cbaxis text, .colorbar .ytick text')].map(t => t.textContent),
    words: [...g.querySelectorAll('.textpoint text')].map(t => t.textContent),
    labels: [...g.querySelectorAll('.bartext')].map(t => ({text: t.textContent,
                                                         transform: t.getAttribute('transform') || ''})),
    title: ((g.layout.title && g.layout.title.text) || '').replace(/<[^>]+>/g, ''),
    subtitle: (g.layout.title && g.layout.title.subtitle && g.layout.title.subtitle.text) || '',
})"""


def plot(page, title: str) -> dict:
    """A chart on the page, as drawn: its colour bar's tick labels, its bar labels, title and subtitle."""
    for chart in page.locator(".js-plotly-plot").all():
        if chart.is_visible() and (drawn := chart.evaluate(PLOT_JS))["title"].startswith(title):
            return drawn
    raise AssertionError(f"no chart titled {title!r} in view")


def test_token_ranks_read_as_gltr_does(memory_console, page, artifacts):
    page.goto(memory_console)
    open_page(page, "Token ranks")
    analyse(page, TEXT)
    tokens = page.locator("span.byom-token")
    expect(tokens).to_have_count(9)
    assert tokens.all_text_contents() == TEXT.split(), "a token holds its text only, the box beside it"

    # The model's first choice in saturated green, as the first chip of the legend says.
    chips = page.locator(".byom-legend .byom-chip")
    expect(chips.first).to_have_text("top 1")
    first = tokens.nth(0).evaluate("e => getComputedStyle(e).backgroundColor")
    assert first == chips.first.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(52, 199, 89)"
    assert tokens.nth(1).evaluate("e => getComputedStyle(e).backgroundColor") == \
        chips.nth(2).evaluate("e => getComputedStyle(e).backgroundColor"), "rank 37: the top 100 chip's yellow"

    # Pointing at "quick": its rank, probability, entropy and the model's top predictions as bars.
    tokens.nth(1).evaluate("e => e.scrollIntoView({block: 'center'})")
    tokens.nth(1).hover()
    tip = page.locator(".byom-token:hover + .byom-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("quick rank 37")
    expect(tip).to_contain_text("p = 0.02564 · entropy 1.50 nats")
    expect(tip.locator(".byom-alt-token")).to_have_text(["QUICK"])
    bar = tip.locator(".byom-bar i").bounding_box()
    track = tip.locator(".byom-bar").bounding_box()
    assert bar and track and bar["width"] == pytest.approx(track["width"] / 2, abs=1.5), "p = 0.5: half the bar"
    box = tip.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, f"the box stays in the window: {box}"
    shot(page, artifacts, "token-ranks-hover")

    # The heatmap: the colour bar reads as the legend; the chart says whose it is.
    heatmap = plot(page, "ranks: token ranks")
    assert heatmap["ticks"][-4:] == ["1", "10", "100", "1,000"], heatmap["ticks"]
    assert "ranks: smollm2-135m-instruct v1 · endpoint demo" in heatmap["subtitle"]
    assert heatmap["words"] == TEXT.split(), "every token whole, in order"
    cell = page.locator(".js-plotly-plot").first.locator(".bars .point").nth(1).bounding_box()
    assert cell
    page.mouse.move(cell["x"] + cell["width"] / 2, cell["y"] + cell["height"] / 2)  # plotly's drag layer is on top
    hover = page.locator(".js-plotly-plot").first.locator(".hoverlayer")
    expect(hover).to_contain_text("rank 37")
    expect(hover).to_contain_text("50.0%  QUICK")

    # Upright counts above the histogram's bars (a thin bar used to turn its "8" into "∞").
    page.get_by_role("tab", name="Histograms").click()
    settle(page)
    buckets = plot(page, "Tokens per rank bucket")
    assert [b["text"] for b in buckets["labels"]] == ["1", "2", "6", "0"]
    assert all("rotate" not in b["transform"] for b in buckets["labels"]), buckets["labels"]

    # The CSV says which model version, endpoint and deployment answered, and when.
    page.get_by_role("tab", name="Table and export").click()
    settle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download ranks as CSV").click()
    name = download.value.suggested_filename
    assert name.startswith("token-ranks-demo-ranks-") and name.endswith("Z.csv"), name
    with open(download.value.path(), encoding="utf-8") as file:
        rows = list(csv.DictReader(io.StringIO(file.read())))
    assert len(rows) == 9
    assert {(r["endpoint"], r["deployment"], r["model"], r["model_version"]) for r in rows} == {
        ("demo", "ranks", "smollm2-135m-instruct", "1")}
    assert rows[0]["analysed_at"].endswith("Z") and rows[1]["rank"] == "37"
