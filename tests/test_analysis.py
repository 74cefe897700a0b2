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
    assert "Not reported" in json.dumps(analysis.entropy_histogram(table).to_plotly_json()["layout"])


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


def test_coloured_html_keeps_the_text_and_shows_figures_on_hover():
    html = analysis.token_html(analysis.token_table(answer([0, 12, 150, 3, 5000])), text=TEXT)
    spans = html.split('<span class="byom-token"')[1:]
    assert len(spans) == 5
    colours = [analysis.BUCKET_COLOURS[b] for b in (0, 1, 2, 0, 3)]
    for span, colour in zip(spans, colours, strict=True):
        assert f"background:{colour}" in span
    assert ">Hello</span>" in html and "> world</span>" in html and ">\n</span>" in html
    assert ('title="Hello\nrank 0 (no ties)\np = 0.5 · entropy 2.00\n'
            'top: &#x27;X&#x27; 0.600; &#x27;Y&#x27; 0.200"') in html
    assert "rank 3 (1 ties)" in html


def test_coloured_html_escapes_the_text():
    table = analysis.token_table({"token_ranks": [{"token": "<b>", "rank": 1, "start": 0, "end": 3}]})
    html = analysis.token_html(table, text="<b>")
    assert "<b>" not in html.replace('<span class="byom-token"', "")
    assert "&lt;b&gt;" in html


def test_without_offsets_the_tokens_are_joined():
    html = analysis.token_html(analysis.token_table(answer([1, 2, 3, 4, 5], offsets=False)), text=TEXT)
    assert ">Hello</span><span" in html


def test_new_thresholds_recolour_the_same_table():
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    assert list(analysis.rebucket(table, (13, 200, 6000))["bucket"]) == [0, 0, 1, 0, 2]


def test_heatmap_layout_fills_rows_in_reading_order():
    assert analysis.heatmap_layout(0) == (1, 16)
    assert analysis.heatmap_layout(16) == (1, 16)
    assert analysis.heatmap_layout(17) == (2, 16)
    assert analysis.heatmap_layout(2000, 20) == (100, 20)


def test_heatmap_colour_is_log_rank_and_hover_matches_the_text():
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    trace = analysis.rank_heatmap(table, columns=3).data[0]
    assert len(trace.z) == 2 and len(trace.z[0]) == 3
    assert trace.z[0][1] == pytest.approx(math.log10(13))
    assert trace.z[1][2] is None  # the padding cell stays empty
    assert trace.text[0][0] == "Hello" and trace.text[0][2] == "."
    assert trace.text[1][0] == "\\n"
    assert "rank 12 (no ties)<br>" in trace.customdata[0][1]
    assert (trace.zmin, trace.zmax) == (0, analysis.LOG_RANK_MAX)


def test_heatmap_colours_change_hue_on_the_thresholds():
    scale = analysis.log_rank_scale((10, 100, 1000))
    stops = [stop for stop, _ in scale]
    assert stops[0] == 0.0 and stops[-1] == 1.0
    for threshold, (before, after) in zip((10, 100, 1000), [(1, 2), (3, 4), (5, 6)], strict=True):
        assert stops[before] == stops[after], "a sharp change of hue"
        # The last rank of a bucket (threshold - 1) stays below the step, the threshold itself goes above it.
        assert math.log10(threshold) / 5 < stops[before] < math.log10(threshold + 1) / 5
    assert [colour for _, colour in scale][::2] == [light for light, _ in analysis.BUCKET_SHADES]
    custom = analysis.log_rank_scale((5, 50, 500))
    assert custom[1][0] == pytest.approx(math.log10(5.5) / analysis.LOG_RANK_MAX)
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    trace = analysis.rank_heatmap(table, thresholds=(5, 50, 500)).data[0]
    assert [list(stop) for stop in trace.colorscale] == custom


def test_a_2000_token_heatmap_builds_quickly():
    import time

    big = {"token_ranks": [{"token": f" w{i}", "rank": (i * 37) % 3000, "prob": 0.1, "entropy": 1.0,
                            "start": 4 * i, "end": 4 * i + 4, "top_k": [{"token": "a", "prob": 0.3}]}
                           for i in range(2000)]}
    started = time.perf_counter()
    table = analysis.token_table(big)
    analysis.rank_heatmap(table)
    analysis.token_html(table, text=" " * 8000)
    assert time.perf_counter() - started < 5


def test_compare_pairs_tokens_by_offsets_and_signs_the_change():
    a = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    b = analysis.token_table(answer([0, 120, 15, 3, 5000]))
    diff = analysis.compare(a, b)
    assert list(diff["token"]) == ["Hello", " world", ".", "\n", "Bye"]
    assert diff["delta"][0] == 0
    assert diff["delta"][1] > 0  # b ranks " world" worse
    assert diff["delta"][2] < 0
    figure = analysis.diff_heatmap(diff, "v1", "v2")
    assert figure.data[0].zmid == 0
    assert "v1: rank 12<br>v2: rank 120" in figure.data[0].customdata[0][1]


def test_compare_leaves_out_tokens_two_tokenizers_split_differently():
    a = analysis.token_table(answer([0, 1, 2, 3, 4]))
    other = {"token_ranks": [{"token": "Hello wor", "rank": 5, "start": 0, "end": 9},
                             {"token": "ld", "rank": 1, "start": 9, "end": 11},
                             {"token": ".", "rank": 0, "start": 11, "end": 12}]}
    diff = analysis.compare(a, analysis.token_table(other))
    assert list(diff["token"]) == ["."]


def test_export_csv_and_json_round_trip():
    table = analysis.token_table(answer([0, 12, 150, 3, 5000]))
    csv = analysis.to_csv(table)
    assert csv.splitlines()[0].startswith("position,token,rank,ties")
    assert len(csv.splitlines()) == 1 + 5 + 1  # the newline token spans two lines in CSV
    doc = json.loads(analysis.to_json({"ranks": table}, (10, 100, 1000), TEXT))
    assert doc["text"] == TEXT and doc["thresholds"] == [10, 100, 1000]
    ranks = doc["deployments"]["ranks"]
    assert [t["rank"] for t in ranks["token_ranks"]] == [0, 12, 150, 3, 5000]
    assert ranks["summary"]["shares"]["top 10"] == 0.4


def test_summary_figure_has_one_bar_per_deployment():
    a = analysis.summarize(analysis.token_table(answer([0, 12, 150, 3, 5000])))
    b = analysis.summarize(analysis.token_table(answer([0, 1, 2, 3, 4])))
    figure = analysis.summary_figure({"v1": a, "v2": b})
    assert [list(trace.x) for trace in figure.data] == [["v1", "v2"]] * 3
    assert list(figure.data[2].y) == [40.0, 100.0]
    table = analysis.summary_table({"v1": a, "v2": b})
    assert list(table["share top 10"]) == [0.4, 1.0]
