"""Token ranks: analyse a text, colour its tokens, adjust thresholds, compare two deployments, export."""

import json
import re
import threading
from dataclasses import replace

import pytest
from byom.console import keys
from byom.core import analysis
from byom.core.entities import InvokeResult
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from .apptest_helpers import texts

TEXT = "The quick brown fox jumps over the lazy dog"
# The fake model ranks word i at (i * 37) % 1500: 0, 37, 74, 111, 148, 185, 222, 259, 296.


def analyse(at, text: str = TEXT):
    at.text_area(key=keys.RANK_INPUT).set_value(text).run()
    at.button(key=keys.RANK_ANALYSE).click()
    return at.run()


def coloured_tokens(at) -> str:
    return next(h.value for h in at.html if "byom-tokens" in h.value)


def charts(at) -> dict[str, dict]:
    """Each plotly chart on the page as the browser gets it, by title."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {spec["layout"].get("title", {}).get("text"): spec for spec in specs}


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """{file name: bytes} of every download button the pages offer (what a click would save)."""
    offered: dict[str, bytes] = {}
    real = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        if filename:
            offered[filename] = path_or_data
        return real(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return offered


def test_analyse_a_text_on_the_token_rank_deployment(open_page, demo):
    at = open_page("token_ranks")
    assert at.selectbox(key=keys.RANK_DEPLOYMENT).value == "ranks"
    at = analyse(at)

    assert not at.exception
    assert demo.fake_serving.history[-1] == ("demo", "ranks", {"text": TEXT, "top_k": 5})
    html = coloured_tokens(at)
    assert html.count('class="byom-token"') == 9
    # "The": the model's first choice, saturated green
    assert f'data-rank="0" data-bucket="0" data-tier="0" style="background:{analysis.FIRST_CHOICE_COLOUR}"' in html
    assert 'data-rank="37" data-bucket="1"' in html  # "quick": yellow
    assert 'data-rank="148" data-bucket="2"' in html  # "jumps": red
    quick = html.split('data-rank="37"')[1].split('<span class="byom-token"')[0]
    assert "<b>quick</b> rank 37</span>" in quick and "p = 0.02564 · entropy 1.50 nats" in quick
    assert '>QUICK</span><span class="byom-bar"><i style="width:50.0%"></i></span>' in quick, "top predictions as bars"
    assert ">brown</span><span class=\"byom-tip\"" in html and "</span></span> <span" in html, \
        "the spaces of the text stay between the tokens"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tokens"] == "9"
    assert metrics["In top 10"] == "11 %"
    shown = charts(at)
    assert list(shown) == ["ranks: token ranks", "Tokens per rank bucket", "p(actual) / p(top)",
                           "Entropy of the next-token distribution", None]  # the summary has panel titles
    heatmap = shown["ranks: token ranks"]
    assert heatmap["data"][0]["marker"]["colorbar"]["ticktext"] == ["1", "10", "100", "1,000"]
    assert "rank 37<br>p = 0.02564 · entropy 1.50 nats<br>top 1 predictions:" in heatmap["data"][0]["customdata"][1]
    model = demo.get_deployment("demo", "ranks").model
    name, version = model.rsplit(":", 1)
    assert heatmap["layout"]["title"]["subtitle"]["text"].startswith(f"ranks: {name} v{version} · endpoint demo")
    assert f"model {name} version {version} · endpoint demo · deployment ranks · analysed 20" in texts(at.caption)


def test_a_token_s_hover_shows_its_rank_probability_entropy_and_top_5_alternatives(open_page, demo):
    real = demo.fake_serving.responder
    alternatives = [("fast", 0.4), ("quick", 0.2), ("slow", 0.1), ("big", 0.05), ("red", 0.025)]

    def five_alternatives(endpoint, deployment, payload):
        status, body = real(endpoint, deployment, payload)
        for token in body["token_ranks"]:
            token["top_k"] = [{"token": t, "prob": p} for t, p in alternatives]
        return status, body

    demo.fake_serving.responder = five_alternatives
    at = analyse(open_page("token_ranks"))
    assert not at.exception
    quick = coloured_tokens(at).split('data-rank="37"')[1].split('<span class="byom-token"')[0]
    assert "<b>quick</b> rank 37</span>" in quick
    assert "p = 0.02564 · entropy 1.50 nats" in quick and "top 5 predictions" in quick
    bars = re.findall(r'<span class="byom-alt( byom-actual)?"><span class="byom-alt-token">(.*?)</span>'
                      r'<span class="byom-bar"><i style="width:([\d.]+)%"></i></span><span class="byom-alt-p">(.*?)'
                      r'</span>', quick)
    assert bars == [("", "fast", "40.0", "40.0%"), (" byom-actual", "quick", "20.0", "20.0%"),
                    ("", "slow", "10.0", "10.0%"), ("", "big", "5.0", "5.0%"), ("", "red", "2.5", "2.5%")], \
        "the top 5 as bars in order, the text's own token marked"

    hover = charts(at)["ranks: token ranks"]["data"][0]["customdata"][1]  # the heatmap cell of "quick"
    lines = hover.split("<br>")
    assert lines[0].startswith("<b>quick</b>") and lines[0].endswith("rank 37")
    assert lines[1] == "p = 0.02564 · entropy 1.50 nats" and lines[2] == "top 5 predictions:"
    assert len(lines) == 8 and [line.split("%")[1].strip() for line in lines[3:]] == [
        "fast", "quick  ◀ the text</b>", "slow", "big", "red"]
    assert lines[3].split()[-2] == "40.0%" and lines[7].split()[-2] == "2.5%"


def test_every_chart_says_whose_model_version_endpoint_and_time_it_shows(open_page, demo):
    second_ranks_deployment(demo)
    at = open_page("token_ranks")
    at.selectbox(key=keys.RANK_COMPARE).set_value("ranks2").run()
    at = analyse(at)
    name, version = demo.get_deployment("demo", "ranks").model.rsplit(":", 1)
    shown = charts(at)
    assert len(shown) == 7
    for title, spec in shown.items():
        subtitle = spec["layout"]["title"]["subtitle"]["text"]
        assert f"{name} v{version} · endpoint demo" in subtitle and "analysed 20" in subtitle, title
    diff = next(spec for title, spec in shown.items() if title and "identical" in title)
    assert "ranks: " in diff["layout"]["title"]["subtitle"]["text"] and "ranks2: " in \
        diff["layout"]["title"]["subtitle"]["text"], "a comparison names both deployments"
    configs = [json.loads(c.proto.config) for c in at.get("plotly_chart")]
    assert all(c["toImageButtonOptions"]["filename"].startswith(("heatmap-demo-ranks", "diff-demo-ranks-vs-ranks2",
                                                                 "buckets-demo", "ratio-demo", "entropy-demo",
                                                                 "summary-demo")) for c in configs), configs


def test_thresholds_recolour_without_a_new_request(open_page, demo):
    at = analyse(open_page("token_ranks"))
    requests = len(demo.fake_serving.history)
    at.number_input(key=keys.RANK_T1).set_value(50).run()
    html = coloured_tokens(at)
    assert 'data-rank="37" data-bucket="0"' in html
    assert {m.label: m.value for m in at.metric}["In top 50"] == "22 %"
    assert len(demo.fake_serving.history) == requests

    at.number_input(key=keys.RANK_T2).set_value(20).run()
    assert "must grow from left to right" in texts(at.error)
    assert not at.exception


def second_ranks_deployment(demo, name: str = "ranks2") -> None:
    ranks = demo.get_deployment("demo", "ranks")
    demo.create_or_update_deployment(replace(ranks, name=name, instances=[], provisioning_state="Creating"))


def test_only_token_rank_deployments_are_offered_with_their_model_version(open_page, demo):
    second_ranks_deployment(demo)
    at = open_page("token_ranks")
    picker = at.selectbox(key=keys.RANK_DEPLOYMENT)
    assert picker.options == [f"ranks · {demo.get_deployment('demo', 'ranks').model}",
                              f"ranks2 · {demo.get_deployment('demo', 'ranks2').model}"]
    assert "chat" not in " ".join(at.selectbox(key=keys.RANK_COMPARE).options)


def test_compare_two_deployments_with_a_difference_heatmap(open_page, demo):
    second_ranks_deployment(demo)
    at = open_page("token_ranks")
    at.selectbox(key=keys.RANK_COMPARE).set_value("ranks2").run()
    at = analyse(at)
    assert not at.exception
    assert sorted(h[1] for h in demo.fake_serving.history[-2:]) == ["ranks", "ranks2"]
    assert [s.value for s in at.subheader] == ["ranks", "ranks2"]
    shown = charts(at)
    # The fake model ranks a text the same on every deployment.
    assert "ranks2 − ranks: identical, every token has the same rank" in shown
    assert "Identical: ranks and ranks2 give each of the 9 tokens the same rank." in texts(at.success)
    for title in ("Tokens per rank bucket", "p(actual) / p(top)", "Entropy of the next-token distribution"):
        assert [t["name"] for t in shown[title]["data"]] == ["ranks", "ranks2"], f"{title}: one chart, overlaid"
    assert shown["p(actual) / p(top)"]["layout"]["barmode"] == "overlay"


def test_a_difference_says_which_deployment_is_subtracted_from_which(open_page, demo):
    second_ranks_deployment(demo)
    real = demo.fake_serving.responder

    def responder(endpoint, deployment, payload):
        status, body = real(endpoint, deployment, payload)
        if deployment == "ranks2":
            for token in body["token_ranks"]:
                token["rank"] = token["rank"] * 2
        return status, body

    demo.fake_serving.responder = responder
    at = open_page("token_ranks")
    at.selectbox(key=keys.RANK_COMPARE).set_value("ranks2").run()
    at = analyse(at)
    assert not at.exception
    assert "ranks2 − ranks: ranks2 ranks 0 token(s) higher (more expected) than ranks, 8 lower, 1 the same." \
        in texts(at.info)
    diff = next(spec for title, spec in charts(at).items() if title and "change in log10 rank" in title)
    assert diff["layout"]["title"]["text"].startswith("ranks2 − ranks: change in log10 rank<br><sup>red: ranks2 ranks")


def test_two_deployments_are_scored_at_once(open_page, demo, monkeypatch):
    second_ranks_deployment(demo)
    at = open_page("token_ranks")
    at.selectbox(key=keys.RANK_COMPARE).set_value("ranks2").run()
    both_in = threading.Barrier(2, timeout=10)  # breaks (an error on the page) unless both calls overlap
    real = demo.invoke

    def invoke(*args, **kwargs):
        both_in.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(demo, "invoke", invoke)
    at = analyse(at)
    assert not at.exception and not at.error, texts(at.error)
    assert [s.value for s in at.subheader] == ["ranks", "ranks2"]


def test_exports_carry_the_model_version_endpoint_deployment_and_time(open_page, demo, downloads):
    at = analyse(open_page("token_ranks"))
    labels = [b.label for b in at.download_button]
    assert labels == ["Download ranks as CSV", "Download everything as JSON", "Download the coloured text as HTML"]
    name, version = demo.get_deployment("demo", "ranks").model.rsplit(":", 1)
    (csv_name,) = [n for n in downloads if n.endswith(".csv")]
    assert csv_name.startswith("token-ranks-demo-ranks-2") and csv_name.endswith("Z.csv")
    header, first = downloads[csv_name].decode().splitlines()[:2]
    assert header.startswith("endpoint,deployment,model,model_version,analysed_at,position,token,rank")
    assert first.startswith(f"demo,ranks,{name},{version},20")
    (json_name,) = [n for n in downloads if n.endswith(".json")]
    doc = json.loads(downloads[json_name])["deployments"]["ranks"]
    assert (doc["model"], doc["model_version"], doc["endpoint"], doc["deployment"]) == (name, version, "demo", "ranks")
    assert doc["analysed_at"].endswith("Z")
    (html_name,) = [n for n in downloads if n.endswith(".html")]
    assert f"model {name} version {version} · endpoint demo · deployment ranks" in downloads[html_name].decode()


def test_a_generation_answer_is_explained_not_crashed(open_page, demo):
    # A deployment that answers something other than token ranks (here: a generation-shaped answer).
    demo.fake_serving.responder = lambda endpoint, deployment, payload: (200, {"text": "hello"})
    at = analyse(open_page("token_ranks"))
    assert not at.exception
    assert "no 'token\\_ranks' list" in texts(at.error)


def test_the_last_playground_answer_can_be_analysed(open_page, demo):
    at = open_page("token_ranks")
    at.radio(key=keys.RANK_SOURCE).set_value("The last Playground answer").run()
    assert "send a prompt on the Playground page first" in texts(at.info)
    at.session_state[keys.LAST_ANSWER] = "an answer from the model"
    at.run()
    at.button(key=keys.RANK_ANALYSE).click()
    at.run()
    assert demo.fake_serving.history[-1][2] == {"text": "an answer from the model", "top_k": 5}
    assert coloured_tokens(at).count('class="byom-token"') == 5


def test_an_answer_that_is_not_json_is_explained(open_page, demo, monkeypatch):
    # A proxy in front of the endpoint answering with a page instead of the deployment's JSON.
    monkeypatch.setattr(demo, "invoke", lambda *args, **kwargs: InvokeResult(200, "<html>Bad gateway</html>"))
    at = analyse(open_page("token_ranks"))
    assert not at.exception
    assert "ranks answered HTTP 200 with a body that is not JSON" in texts(at.error)
    assert "Read its logs on the Endpoints page" in texts(at.info)


def test_text_choices_and_results_survive_a_visit_to_another_page(open_page, demo):
    second_ranks_deployment(demo)
    at = open_page("token_ranks")
    at.selectbox(key=keys.RANK_COMPARE).set_value("ranks2").run()
    at.number_input(key=keys.RANK_T1).set_value(50).run()
    at = analyse(at)
    at.switch_page("screens/models.py").run()
    assert not at.exception
    at.switch_page("screens/token_ranks.py").run()
    assert not at.exception
    assert at.text_area(key=keys.RANK_INPUT).value == TEXT
    assert at.selectbox(key=keys.RANK_COMPARE).value == "ranks2"
    assert at.number_input(key=keys.RANK_T1).value == 50
    assert [s.value for s in at.subheader] == ["ranks", "ranks2"]
    assert f"Results for the {len(TEXT)} characters analysed by ranks and ranks2." in texts(at.caption)

    at.text_area(key=keys.RANK_INPUT).set_value("Another text").run()
    assert "The text above has changed since" in texts(at.caption), "the results stay tied to what was analysed"


def test_load_a_sample_fills_the_text(open_page, demo):
    at = open_page("token_ranks")
    at.radio(key=keys.RANK_SOURCE).set_value("Upload a text file").run()
    at.button(key=keys.rank_sample("Human-written")).click().run()
    assert at.radio(key=keys.RANK_SOURCE).value == "Type or paste"
    assert at.text_area(key=keys.RANK_INPUT).value.startswith("My grandmother kept her buttons")
    at.button(key=keys.rank_sample("Model-written")).click().run()
    assert at.text_area(key=keys.RANK_INPUT).value.startswith("Artificial intelligence is transforming")


def test_a_kept_choice_of_a_deployment_since_deleted_is_let_go(open_page, demo):
    second_ranks_deployment(demo)
    at = open_page("token_ranks")
    at.selectbox(key=keys.RANK_COMPARE).set_value("ranks2").run()
    at.switch_page("screens/models.py").run()
    demo.delete_deployment("demo", "ranks2")
    at.switch_page("screens/token_ranks.py").run()
    assert not at.exception
    assert at.selectbox(key=keys.RANK_COMPARE).value == "nothing"


PROMPTS = ["The cat sat on the mat", "Operators move traffic from blue to green in steps"]


def compare_prompts(at, prompts=PROMPTS):
    """The 'Compare two versions' view: ranks against ranks2 over pasted prompts, one per line."""
    at.selectbox(key=keys.RANK_COMPARE).set_value("ranks2").run()
    at.radio(key=keys.RANK_MODE).set_value("Compare two versions over a prompt set").run()
    at.text_area(key=keys.RANK_PROMPTS).set_value("\n".join(prompts) + "\n\n").run()
    at.button(key=keys.RANK_COMPARE_RUN).click()
    return at.run()


def test_two_versions_of_one_model_over_a_prompt_set_are_identical(open_page, demo):
    second_ranks_deployment(demo)
    at = compare_prompts(open_page("token_ranks"))
    assert not at.exception and not at.error, texts(at.error)
    sent = [(h[1], h[2]) for h in demo.fake_serving.history[-2:]]
    assert sorted(sent, key=lambda s: s[0]) == [("ranks", {"texts": PROMPTS, "top_k": 20}),
                                                ("ranks2", {"texts": PROMPTS, "top_k": 20})], "one request each"
    assert ("Identical: ranks and ranks2 give each of the 15 tokens of the 2 text(s) the same rank and the same "
            "prediction.") in texts(at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Texts"], metrics["Tokens"], metrics["Top-1 agreement"], metrics["Mean KL"]) == (
        "2", "15", "100.0%", "0")
    assert (metrics["Mean log-rank change"], metrics["Max log-rank change"]) == ("+0.000", "0.000")
    per_text = at.dataframe[0].value
    assert per_text["text"].tolist() == [1, 2] and per_text["identical"].tolist() == [True, True]
    assert per_text["tokens"].tolist() == [6, 9]
    assert "No token changed rank." in texts(at.caption)
    assert [e.label for e in at.expander] == [
        "Text 1: identical · “The cat sat on the mat”",
        "Text 2: identical · “Operators move traffic from blue to green in steps”"]
    heatmaps = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert heatmaps == ["ranks2 − ranks: identical, every token has the same rank"] * 2, "one per text"
    assert "Identical: ranks and ranks2 give each of the 6 tokens the same rank." in texts(at.success)
    assert "ranks2 − ranks" in texts(at.caption) and "KL(ranks ‖ ranks2)" in texts(at.caption), "direction named"


def test_a_different_version_names_its_direction_the_moved_positions_and_each_text_s_diff(open_page, demo,
                                                                                          downloads):
    second_ranks_deployment(demo)
    real = demo.fake_serving.responder

    def ranks2_doubles_the_ranks_of_the_second_text(endpoint, deployment, payload):
        status, body = real(endpoint, deployment, payload)
        if deployment == "ranks2" and "results" in body:
            for token in body["results"][1]["token_ranks"]:
                token["rank"] *= 2
                token["prob"] = 1.0 / (token["rank"] + 2)
        return status, body

    demo.fake_serving.responder = ranks2_doubles_the_ranks_of_the_second_text
    at = compare_prompts(open_page("token_ranks"))
    assert not at.exception and not at.error, texts(at.error)
    assert "ranks2 − ranks: they differ on 1 of 2 text(s); top-1 agreement 100.0% over 15 tokens." in texts(at.info)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Mean KL"]) > 0 and float(metrics["Mean log-rank change"]) > 0, "ranks2 finds it less likely"
    per_text = at.dataframe[0].value.set_index("text")
    assert per_text.loc[1, "identical"] and not per_text.loc[2, "identical"]
    assert per_text.loc[2, "max log-rank change"] > 0 and per_text.loc[1, "mean KL"] == 0
    moved = at.dataframe[1].value
    assert list(moved.columns) == ["text", "position", "token", "rank under ranks", "rank under ranks2",
                                   "log-rank change"]
    assert set(moved["text"]) == {2} and len(moved) == 5  # core keeps the 5 that moved most per text
    top = moved.iloc[0]
    assert (top["token"], top["rank under ranks"], top["rank under ranks2"]) == ("steps", 296, 592)
    assert list(moved["log-rank change"]) == sorted(moved["log-rank change"], key=abs, reverse=True)

    labels = [e.label for e in at.expander]
    assert labels[0] == "Text 1: identical · “The cat sat on the mat”"
    assert labels[1].startswith("Text 2: top-1 agreement 100%, max log-rank change 0.69 · “Operators")
    titles = [title for title in charts(at) if title]
    assert titles[0] == "ranks2 − ranks: identical, every token has the same rank"
    assert titles[1].startswith("ranks2 − ranks: change in log10 rank<br><sup>red: ranks2 ranks the token lower")
    assert ("ranks2 − ranks: ranks2 ranks 0 token(s) higher (more expected) than ranks, 8 lower, 1 the same."
            in texts(at.info))
    subtitle = charts(at)[titles[1]]["layout"]["title"]["subtitle"]["text"]
    assert "ranks: " in subtitle and "ranks2: " in subtitle and "endpoint demo" in subtitle

    (json_name,) = [n for n in downloads if n.startswith("version-diff-demo-ranks-vs-ranks2-")]
    exported = json.loads(downloads[json_name])
    model = demo.get_deployment("demo", "ranks").model
    assert (exported["endpoint"], exported["deployment_a"], exported["model_a"], exported["model_b"]) == (
        "demo", "ranks", model, model)
    assert exported["compared_at"].endswith("Z") and exported["prompts"] == PROMPTS


def test_a_prompt_file_is_compared_and_the_results_survive_a_visit_to_another_page(open_page, demo):
    second_ranks_deployment(demo)
    at = open_page("token_ranks")
    at.selectbox(key=keys.RANK_COMPARE).set_value("ranks2").run()
    at.radio(key=keys.RANK_MODE).set_value("Compare two versions over a prompt set").run()
    at.radio(key=keys.RANK_PROMPT_SOURCE).set_value("Upload a prompt file").run()
    at.file_uploader(key=keys.RANK_PROMPT_FILE).set_value(
        ("prompts.jsonl", b'{"text": "one text here"}\n"two texts here"\n', "application/json")).run()
    at.button(key=keys.RANK_COMPARE_RUN).click()
    at = at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert demo.fake_serving.history[-1][2] == {"texts": ["one text here", "two texts here"], "top_k": 20}
    assert at.dataframe[0].value["tokens"].tolist() == [3, 3]

    at.switch_page("screens/models.py").run()
    at.switch_page("screens/token_ranks.py").run()
    assert not at.exception
    assert at.radio(key=keys.RANK_MODE).value == "Compare two versions over a prompt set"
    assert at.dataframe[0].value["tokens"].tolist() == [3, 3], "the comparison is kept"
    assert "Results for the 2 text(s) compared by ranks and ranks2" in texts(at.caption)

    at.file_uploader(key=keys.RANK_PROMPT_FILE).set_value(("bad.json", b'{"text": "x"}', "application/json")).run()
    at.button(key=keys.RANK_COMPARE_RUN).click()
    at = at.run()
    assert not at.exception
    assert "Prompt file 'bad.json' must hold a JSON list of strings." in texts(at.error)


def test_comparing_needs_a_second_token_rank_deployment(open_page, demo):
    at = open_page("token_ranks")
    at.radio(key=keys.RANK_MODE).set_value("Compare two versions over a prompt set").run()
    assert not at.exception
    assert "Choose a second token-rank deployment in 'Compare with' above" in texts(at.info)
    at.text_area(key=keys.RANK_PROMPTS).set_value("a text").run()
    assert at.button(key=keys.RANK_COMPARE_RUN).disabled
