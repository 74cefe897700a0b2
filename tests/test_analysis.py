"""core.analysis: token-rank tables, bucket colouring, heatmap layout, comparison, export, metrics figures."""

import json
import math

import pytest
from byom.core import analysis
from byom.core.errors import InvalidInput

TEXT = "Hello world.\nBye"


def answer(ranks, *, offsets=True, extras=True):
    """A token-rank answer in the scoring script's shape for the tokens of TEXT."""
    spans = [(0, 5), (5, 11), (11, 12), (12, 13), (13, 16)]
    tokens = [TEXT[a:b] for a, b in spans]
    items = []
    for (start, end), token, rank in zip(spans, tokens, ranks, strict=True):
        item = {"token": token, "rank": rank}
        if extras:
            prob = 0.5 if rank == 0 else 0.01
            item.update(ties=1 if rank == 3 else 0, logprob=math.log(prob), prob=prob, entropy=2.0,
                        top_k=[{"token": "X", "prob": 0.6}, {"token": "Y", "prob": 0.2}])
        if offsets:
            item.update(start=start, end=end)
        items.append(item)
    return {"token_ranks": items}


def test_buckets_follow_gltr_with_rank_zero_as_first_choice():
    assert [analysis.bucket_of(r) for r in (0, 9, 10, 99, 100, 999, 1000, 50_000)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [analysis.bucket_of(r, (1, 5, 20)) for r in (0, 1, 4, 5, 19, 20)] == [0, 1, 1, 2, 2, 3]
    assert analysis.bucket_labels() == ["top 10", "top 100", "top 1,000", "beyond 1,000"]


@pytest.mark.parametrize("bad", [(10, 10, 100), (100, 10, 1000), (0, 10, 100), (10, 100), (10.5, 100, 1000)])
def test_thresholds_must_grow(bad):
    with pytest.raises(InvalidInput):
        analysis.check_thresholds(bad)


def test_token_table_derives_ratio_log_rank_and_bucket():
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    assert list(table["bucket"]) == [0, 1, 2, 0, 3]
    assert table["log_rank"][0] == 0.0 and table["log_rank"][1] == pytest.approx(math.log10(13))
    assert table["ratio"][0] == 1.0  # the first choice is its own top
    assert table["ratio"][1] == pytest.approx(0.01 / 0.6)
    assert table["top_token"][1] == "X"
    assert table["alternatives"][1] == "'X' 0.600; 'Y' 0.200"
    assert table["ties"][3] == 1


def test_the_reference_shape_alone_is_enough():
    table = analysis.token_table({"token_ranks": [{"token": "This", "rank": 518}, {"token": " is", "rank": 2}]})
    assert list(table["rank"]) == [518, 2]
    assert table["prob"].isna().all() and table["entropy"].isna().all()
    summary = analysis.summarize(table)
    assert summary.perplexity is None and summary.mean_entropy is None
    assert summary.mean_log_rank == pytest.approx((math.log(519) + math.log(3)) / 2)
    assert "Not reported" in json.dumps(analysis.entropy_histogram({"ranks": table}).to_plotly_json()["layout"])


def test_an_answer_without_token_ranks_is_refused_with_a_hint():
    with pytest.raises(InvalidInput) as err:
        analysis.token_table({"text": "a generation answer"})
    assert err.value.hint and "token_ranks.py" in err.value.hint


def test_summary_perplexity_log_rank_and_shares():
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    summary = analysis.summarize(table)
    assert summary.tokens == 5
    mean_logprob = (math.log(0.5) + 4 * math.log(0.01)) / 5
    assert summary.perplexity == pytest.approx(math.exp(-mean_logprob))
    assert summary.shares == {"top 10": 0.4, "top 100": 0.2, "top 1,000": 0.2, "beyond 1,000": 0.2}
    assert summary.share_top == 0.4
    assert analysis.summarize(table, (20, 200, 2000)).shares["top 20"] == 0.6


def top5(answer_):
    """The answer with five top predictions per token, the actual token among them where its rank is below 5."""
    for item in answer_["token_ranks"]:
        alts = [{"token": f"alt{i}", "prob": p} for i, p in enumerate((0.4, 0.2, 0.1, 0.05, 0.01))]
        if item["rank"] < 5:
            alts[item["rank"]]["token"] = item["token"]
        item["top_k"] = alts
    return answer_


def test_coloured_html_keeps_the_text_and_shows_a_rich_box_on_hover():
    html = analysis.token_html(analysis.token_table(top5(answer([0, 12, 150, 3, 5000]))), text=TEXT)
    spans = html.split('<span class="byom-token"')[1:]
    assert len(spans) == 5
    colours = [analysis.TIER_COLOURS[t] for t in (0, 2, 3, 1, 4)]
    for span, colour in zip(spans, colours, strict=True):
        assert f"background:{colour}" in span
    assert analysis.TIER_COLOURS[0] == analysis.FIRST_CHOICE_COLOUR != analysis.BUCKET_COLOURS[0]
    assert ">Hello</span>" in html and "> world</span>" in html and ">\n</span>" in html
    assert "title=" not in html, "one box on hover, not the browser's tooltip beside it"
    first = spans[0]
    assert "rank 0: the model&#x27;s first choice" in first and "p = 0.5 · entropy 2.00 nats" in first
    assert "top 5 predictions" in first
    assert first.count('<span class="byom-alt-token">') == 5
    assert '<span class="byom-alt byom-actual"><span class="byom-alt-token">Hello</span>' in first
    assert '<i style="width:40.0%"></i></span><span class="byom-alt-p">40.0%</span>' in first
    assert "rank 3, 1 tied" in spans[3]
    assert ' data-nl style=' in spans[3], "a line-break token is marked so that it shows (↵) and can be pointed at"
    assert '<span class="byom-alt-token">␣world</span>' not in spans[1] and "␣world" in spans[1]


def test_coloured_html_escapes_the_text():
    table = analysis.token_table({"token_ranks": [{"token": "<b>", "rank": 1, "start": 0, "end": 3,
                                                   "top_k": [{"token": "<i>", "prob": 0.5}]}]})
    html = analysis.token_html(table, text="<b>")
    body = html.split("</style>", 1)[1]
    assert "<b>" not in body.replace("<b>&lt;b&gt;</b>", "") and "<i>" not in body.replace("<i style", "")
    assert "&lt;b&gt;" in body and "&lt;i&gt;" in body


def test_without_offsets_the_tokens_are_joined():
    html = analysis.token_html(analysis.token_table(answer([1, 2, 3, 4, 5], offsets=False)), text=TEXT)
    assert ">Hello</span><span class=\"byom-tip\"" in html


def test_the_legend_names_every_colour_the_text_uses():
    assert analysis.legend() == list(zip(analysis.TIER_COLOURS, ["top 1", "top 10", "top 100", "top 1,000",
                                                                   "beyond 1,000"], strict=True))
    # "Green below rank 1": the first bucket is the first choice alone, one chip for it.
    assert [label for _, label in analysis.legend((1, 10, 100))] == ["top 1", "top 10", "top 100", "beyond 100"]
    html = analysis.legend_html()
    assert all(f"background:{c}" in html for c in analysis.TIER_COLOURS)


def test_new_thresholds_recolour_the_same_table():
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    assert list(analysis.rebucket(table, (13, 200, 6000))["bucket"]) == [0, 0, 1, 0, 2]


def test_flow_layout_wraps_tokens_whole_and_breaks_lines_as_the_text():
    labels = ["aaaa", "bb", "cccc", "d", "eeeeeeeeeeee"]
    assert analysis.flow_layout(labels, [False] * 5, width=10) == [(0, 0), (0, 5), (1, 0), (1, 5), (2, 0)]
    assert analysis.flow_layout(["a", "b", "c"], [False, True, False], width=10) == [(0, 0), (0, 2), (1, 0)]
    assert analysis.cell_label(" the") == "the"
    assert [analysis.cell_label(t) for t in (" ", "  ", "\n", "\n\n", "\t")] == ["␣", "␣␣", "↵", "↵↵", "⇥"]


def colour_at(scale, value, low=analysis.LOG_RANK_MIN, high=analysis.LOG_RANK_MAX):
    """The colour a flat-banded plotly scale gives a value."""
    position = (value - low) / (high - low)
    stops = [list(stop) for stop in scale]
    for (start, colour), (end, _) in zip(stops[::2], stops[1::2], strict=True):
        if start <= position <= end:
            return colour
    raise AssertionError(f"{value} is outside the scale")


def test_heatmap_sets_tokens_as_text_coloured_as_the_legend():
    table = analysis.token_table(top5(answer([0, 12, 150, 3, 5000])))
    trace, words = analysis.rank_heatmap(table, width=12).data
    assert list(words.text) == ["Hello", "world", ".", "↵", "Bye"], "whitespace tokens shown, none cut"
    assert list(trace.y) == [0, 0, 1, 1, 2], "a token that does not fit starts the next row; ↵ ends its row"
    assert list(trace.base) == [0, 6, 0, 2, 0]
    assert list(words.y) == list(trace.y) and words.x[0] == pytest.approx(trace.base[0] + trace.x[0] / 2)
    for z, tier in zip(trace.marker.color, (0, 2, 3, 1, 4), strict=True):
        assert colour_at(trace.marker.colorscale, z) == analysis.TIER_COLOURS[tier]
    bar = trace.marker.colorbar
    assert list(bar.ticktext) == ["1", "10", "100", "1,000"], "the colour bar reads as the legend"
    assert [colour_at(trace.marker.colorscale, v + 0.01) for v in bar.tickvals] == list(analysis.TIER_COLOURS[1:])
    hover = trace.customdata[1]
    assert hover.startswith("<b>␣world</b>   rank 12<br>p = 0.01 · entropy 2.00 nats<br>top 5 predictions:")
    assert "████░░░░░░  40.0%  alt0" in hover and hover.count("<br>") == 7


def test_heatmap_colours_change_on_custom_thresholds():
    scale = analysis.log_rank_scale((5, 50, 500))
    table = analysis.token_table(answer([0, 4, 5, 49, 500]))
    trace = analysis.rank_heatmap(table, thresholds=(5, 50, 500)).data[0]
    assert [list(stop) for stop in trace.marker.colorscale] == scale
    assert [colour_at(scale, z) for z in trace.marker.color] == [analysis.TIER_COLOURS[t] for t in (0, 1, 2, 2, 4)]
    assert list(trace.marker.colorbar.ticktext) == ["1", "5", "50", "500"]


def test_text_bars_show_probabilities_to_an_eighth_of_a_cell():
    assert analysis.text_bar(1.0) == "█" * 10
    assert analysis.text_bar(0.0) == "░" * 10
    assert analysis.text_bar(0.45) == "████▌░░░░░"
    assert analysis.text_bar(float("nan")) == "░" * 10


def test_a_2000_token_heatmap_builds_quickly():
    import time

    big = {"token_ranks": [{"token": f" w{i}", "rank": (i * 37) % 3000, "prob": 0.1, "entropy": 1.0,
                            "start": 4 * i, "end": 4 * i + 4,
                            "top_k": [{"token": f"a{k}", "prob": 0.1} for k in range(5)]}
                           for i in range(2000)]}
    started = time.perf_counter()
    table = analysis.token_table(big)
    analysis.rank_heatmap(table)
    html = analysis.token_html(table, text=" " * 8000)
    assert time.perf_counter() - started < 5
    assert len(html) < 2000 * 1200, f"{len(html):,} characters for 2,000 tokens"


def test_compare_pairs_tokens_by_offsets_and_signs_the_change():
    a = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    b = analysis.token_table(answer([0, 120, 15, 3, 5000]))
    diff = analysis.compare(a, b)
    assert list(diff["token"]) == ["Hello", " world", ".", "\n", "Bye"]
    assert diff["delta"][0] == 0
    assert diff["delta"][1] > 0  # b ranks " world" worse
    assert diff["delta"][2] < 0
    figure = analysis.diff_heatmap(diff, "v1", "v2")
    assert figure.data[0].marker.cmid == 0
    assert figure.layout.title.text.startswith("v2 − v1: change in log10 rank<br><sup>red: v2 ranks the token lower")
    assert "v1: rank 12<br>v2: rank 120<br>v2 − v1: +0.97 log10 (9.3× lower under v2)" in figure.data[0].customdata[1]
    assert analysis.diff_verdict(diff, "v1", "v2") == (
        "v2 − v1: v2 ranks 1 token(s) higher (more expected) than v1, 1 lower, 3 the same.")
    assert not analysis.identical(diff)


def test_a_deployment_compared_with_itself_is_identical():
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    diff = analysis.compare(table, table)
    assert analysis.identical(diff)
    assert analysis.diff_verdict(diff, "ranks", "ranks") == (
        "Identical: ranks and ranks give each of the 5 tokens the same rank.")
    assert analysis.diff_heatmap(diff, "ranks", "ranks").layout.title.text == (
        "ranks − ranks: identical, every token has the same rank")
    assert not analysis.identical(diff, unpaired=1), "tokens left unpaired: not the same"


def test_compare_leaves_out_tokens_two_tokenizers_split_differently():
    a = analysis.token_table(answer([0, 1, 2, 3, 4]))
    other = {"token_ranks": [{"token": "Hello wor", "rank": 5, "start": 0, "end": 9},
                             {"token": "ld", "rank": 1, "start": 9, "end": 11},
                             {"token": ".", "rank": 0, "start": 11, "end": 12}]}
    diff = analysis.compare(a, analysis.token_table(other))
    assert list(diff["token"]) == ["."]


def test_histograms_of_two_deployments_are_overlaid_on_the_same_bins():
    tables = {"v1": analysis.token_table(answer([0, 12, 150, 3, 5000])),
              "v2": analysis.token_table(answer([0, 1, 2, 3, 4]))}
    buckets = analysis.bucket_histogram(tables)
    assert [t.name for t in buckets.data] == ["v1", "v2"] and buckets.layout.barmode == "group"
    assert [list(t.y) for t in buckets.data] == [[2, 1, 1, 1], [5, 0, 0, 0]]
    assert buckets.layout.showlegend
    for figure in (analysis.ratio_histogram(tables), analysis.entropy_histogram(tables)):
        assert [t.name for t in figure.data] == ["v1", "v2"] and figure.layout.barmode == "overlay"
        assert figure.data[0].xbins == figure.data[1].xbins
        assert figure.data[0].marker.color != figure.data[1].marker.color
    alone = analysis.bucket_histogram({"v1": tables["v1"]})
    assert list(alone.data[0].marker.color) == list(analysis.BUCKET_COLOURS) and not alone.layout.showlegend


def test_bar_labels_stay_upright_above_their_bars():
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    s = analysis.summarize(table)
    for figure in (analysis.bucket_histogram({"v1": table}), analysis.summary_figure({"v1": s, "v2": s})):
        for trace in figure.data:
            assert (trace.textangle, trace.textposition, trace.cliponaxis) == (0, "outside", False)
    buckets = analysis.bucket_histogram({"v1": table})
    assert list(buckets.data[0].text) == ["2", "1", "1", "1"]
    assert buckets.layout.yaxis.range[1] > 2 and buckets.layout.yaxis.tickformat == ",d"


PROVENANCE = analysis.Provenance("demo", "ranks", "smollm2-135m-instruct:3", "2026-12-04T13:10:05Z")


def test_exports_carry_model_version_endpoint_deployment_and_time():
    table = analysis.token_table(top5(answer([0, 12, 150, 3, 5000])))
    csv = analysis.to_csv(table, PROVENANCE)
    header, first = csv.splitlines()[:2]
    assert header.startswith("endpoint,deployment,model,model_version,analysed_at,position,token,rank,ties")
    assert first.startswith("demo,ranks,smollm2-135m-instruct,3,2026-12-04T13:10:05Z,0,Hello,0,")
    assert len(csv.splitlines()) == 1 + 5 + 1  # the newline token spans two lines in CSV
    doc = json.loads(analysis.to_json({"ranks": table}, (10, 100, 1000), TEXT, {"ranks": PROVENANCE}))
    assert doc["text"] == TEXT and doc["thresholds"] == [10, 100, 1000]
    ranks = doc["deployments"]["ranks"]
    assert (ranks["model"], ranks["model_version"], ranks["endpoint"], ranks["deployment"], ranks["analysed_at"]) == (
        "smollm2-135m-instruct", "3", "demo", "ranks", "2026-12-04T13:10:05Z")
    assert [t["rank"] for t in ranks["token_ranks"]] == [0, 12, 150, 3, 5000]
    assert ranks["token_ranks"][0]["top_k"][0] == {"token": "Hello", "prob": 0.4}
    assert ranks["summary"]["shares"]["top 10"] == 0.4
    page = analysis.to_html({"ranks": table}, (10, 100, 1000), TEXT, {"ranks": PROVENANCE})
    assert "model smollm2-135m-instruct version 3 · endpoint demo · deployment ranks · analysed 2026-12-04 " \
           "13:10:05 UTC" in page
    assert page.count('class="byom-token"') == 5 and "http" not in page, "opens offline"
    assert analysis.export_name([PROVENANCE], "csv") == "token-ranks-demo-ranks-20261204T131005Z.csv"
    two = [PROVENANCE, analysis.Provenance("demo", "ranks2", "m:1", PROVENANCE.analysed_at)]
    assert analysis.export_name(two, "png", "diff") == "diff-demo-ranks-vs-ranks2-20261204T131005Z.png"


def test_a_stamped_figure_says_what_it_shows():
    figure = analysis.stamp(analysis.rank_heatmap(analysis.token_table(answer([0, 1, 2, 3, 4]))), [PROVENANCE])
    assert figure.layout.title.subtitle.text == (
        "ranks: smollm2-135m-instruct v3 · endpoint demo<br>analysed 2026-12-04 13:10:05 UTC")
    assert analysis.Provenance("e", "d", "azureml:m:7", "").model_version == "7"
    assert analysis.Provenance("e", "d", "m", "").model_version == ""


def test_summary_figure_has_one_bar_per_deployment():
    a = analysis.summarize(analysis.token_table(answer([0, 12, 150, 3, 5000])))
    b = analysis.summarize(analysis.token_table(answer([0, 1, 2, 3, 4])))
    figure = analysis.summary_figure({"v1": a, "v2": b})
    assert [list(trace.x) for trace in figure.data] == [["v1", "v2"]] * 3
    assert list(figure.data[2].y) == [40.0, 100.0]
    table = analysis.summary_table({"v1": a, "v2": b})
    assert list(table["share top 10"]) == [0.4, 1.0]
