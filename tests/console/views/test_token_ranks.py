"""console.views.token_ranks: the deployments offered, the request, each summary's figures, what exports carry."""

from byom.console.views import token_ranks as view
from byom.core import analysis
from byom.core.analysis import RankSummary
from byom.core.entities import Deployment


def test_only_token_rank_deployments_are_offered_each_with_its_model_version():
    deployments = [Deployment(name=n, endpoint_name="demo", model=m, scoring_script=s)
                   for n, m, s in (("chat", "m:1", "generate.py"), ("ranks", "m:1", "token_ranks.py"),
                                   ("ranks2", "m:2", "token_ranks.py"))]
    names = view.rank_deployments(deployments)
    assert names == ["ranks", "ranks2"]
    assert view.deployment_labels(deployments)["ranks2"] == "ranks2 · m:2"
    assert view.compare_options(names, "ranks") == ["nothing", "ranks2"]
    assert view.selected("ranks", "nothing") == ["ranks"]
    assert view.selected("ranks", "ranks2") == ["ranks", "ranks2"]
    assert view.rank_request("hi") == {"text": "hi", "top_k": 5}


def test_headline_figures():
    summary = RankSummary(tokens=1234, perplexity=12.345, mean_log_rank=1.5, median_rank=2.0, mean_entropy=None,
                          shares={"top 10": 0.8, "top 100": 0.2})
    assert analysis.headline(summary, (10, 100, 1000)) == [
        ("Tokens", "1,234"), ("Perplexity", "12.3"), ("Mean log-rank", "1.50"), ("In top 10", "80 %")]
    empty = RankSummary(0, None, None, None, None, {})
    assert [value for _, value in analysis.headline(empty, (5, 50, 500))] == ["0", "n/a", "n/a", "0 %"]
    assert analysis.headline(empty, (5, 50, 500))[3][0] == "In top 5"


def test_each_analysed_deployment_keeps_the_model_version_it_served_and_when():
    deployments = [Deployment(name="ranks", endpoint_name="demo", model="m:1", scoring_script="token_ranks.py"),
                   Deployment(name="ranks2", endpoint_name="demo", model="m:2", scoring_script="token_ranks.py")]
    kept = view.provenance("demo", deployments, ["ranks2"], "2026-12-04T13:10:05Z")
    assert kept == {"ranks2": analysis.Provenance("demo", "ranks2", "m:2", "2026-12-04T13:10:05Z")}
    assert kept["ranks2"].model_version == "2"
    config = view.chart_config("heatmap-demo-ranks2-20261204T131005Z")
    assert config["toImageButtonOptions"]["filename"] == "heatmap-demo-ranks2-20261204T131005Z"


def test_the_listed_table_leaves_offsets_and_raw_alternatives_to_the_exports():
    table = analysis.token_table({"token_ranks": [{"token": "a", "rank": 0, "top_k": [{"token": "a", "prob": 1}]}]})
    shown = view.shown_table(table)
    assert {"start", "end", "top_k"}.isdisjoint(shown.columns) and "alternatives" in shown.columns
