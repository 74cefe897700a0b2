"""console.views.token_ranks: the deployments offered, the request, each summary's figures."""

from byom.console.views import token_ranks as view
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


def test_summary_figures():
    summary = RankSummary(tokens=1234, perplexity=12.345, mean_log_rank=1.5, median_rank=2.0, mean_entropy=None,
                          shares={"top 10": 0.8, "top 100": 0.2})
    assert view.summary_figures(summary, (10, 100, 1000)) == [
        ("Tokens", "1,234"), ("Perplexity", "12.3"), ("Mean log-rank", "1.50"), ("In top 10", "80 %")]
    empty = RankSummary(0, None, None, None, None, {})
    assert [value for _, value in view.summary_figures(empty, (5, 50, 500))] == ["0", "n/a", "n/a", "0 %"]
    assert view.summary_figures(empty, (5, 50, 500))[3][0] == "In top 5"
