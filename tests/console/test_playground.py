"""Playground: a prompt through the split or to one deployment, A/B side by side, chat, errors."""

import re
import threading

from byom.console import keys
from byom.core.entities import Deployment

from .apptest_helpers import texts


def send(at, prompt: str):
    at.text_area(key=keys.PLAY_PROMPT).set_value(prompt).run()
    at.button(key=keys.PLAY_SEND).click()
    return at.run()


def test_a_prompt_through_the_traffic_split(open_page, demo):
    at = send(open_page("playground"), "hello there")

    assert not at.exception
    assert "\\[chat\\] ereht olleh" in texts(at.markdown)  # the fake model answers the prompt reversed
    assert "**Served by** chat" in texts(at.markdown)
    assert re.search(r"\*\*Latency\*\* \d[\d,]* ms", texts(at.markdown))
    assert "Request id `" in texts(at.caption)
    assert demo.fake_serving.history[-1] == ("demo", "chat", {"prompt": "hello there", "max_new_tokens": 64,
                                                               "do_sample": True, "temperature": 0.7, "top_p": 0.9,
                                                               "stream": True})
    assert at.session_state[keys.LAST_ANSWER] == "[chat] ereht olleh"


def test_generation_parameters_go_into_the_request(open_page, demo):
    at = open_page("playground")
    at.slider(key=keys.PLAY_MAX_TOKENS).set_value(16)
    at.slider(key=keys.PLAY_TEMPERATURE).set_value(0.7).run()
    at.slider(key=keys.PLAY_TOP_P).set_value(0.9)
    send(at, "hi")
    assert demo.fake_serving.history[-1][2] == {"prompt": "hi", "max_new_tokens": 16, "do_sample": True,
                                                 "temperature": 0.7, "top_p": 0.9, "stream": True}


def test_a_prompt_to_one_deployment_by_name(open_page, demo):
    demo.create_or_update_deployment(Deployment(name="green", endpoint_name="demo", model="smollm2-135m-instruct:1"))
    at = open_page("playground")
    assert at.selectbox(key=keys.PLAY_TARGET).options == ["The traffic split", "chat", "green"]
    at.selectbox(key=keys.PLAY_TARGET).set_value("green")
    at = send(at, "abc")
    assert "**Served by** green" in texts(at.markdown)


def test_ab_sends_the_same_prompt_to_two_deployments(open_page, demo):
    demo.create_or_update_deployment(Deployment(name="green", endpoint_name="demo", model="smollm2-135m-instruct:1"))
    at = open_page("playground")
    at.button_group(key=keys.PLAY_MODE).set_value("A/B").run()
    assert (at.selectbox(key=keys.PLAY_AB_A).value, at.selectbox(key=keys.PLAY_AB_B).value) == ("chat", "green")
    at = send(at, "same prompt")
    served = [m.value for m in at.markdown if "**Served by**" in m.value]
    assert [line.rsplit(" ", 1)[1] for line in served] == ["chat", "green"]
    assert sorted(h[1] for h in demo.fake_serving.history[-2:]) == ["chat", "green"]
    # The fake answers "[chat] tpmorp emas" and "[green] tpmorp emas": only the names differ, and are marked.
    answers = [h.value for h in at.html if "byom-answer" in h.value]
    assert answers[0].count('class="byom-diff"') == 1 and '<mark class="byom-diff">[chat]</mark>' in answers[0]
    assert '<mark class="byom-diff">[green]</mark> tpmorp emas' in answers[1]
    assert "Highlighted: where the two answers differ." in texts(at.caption)


def test_ab_asks_both_deployments_at_once(open_page, demo, monkeypatch):
    demo.create_or_update_deployment(Deployment(name="green", endpoint_name="demo", model="smollm2-135m-instruct:1"))
    at = open_page("playground")
    at.button_group(key=keys.PLAY_MODE).set_value("A/B").run()
    both_in = threading.Barrier(2, timeout=10)  # breaks unless the two calls overlap
    real = demo.invoke

    def invoke(*args, **kwargs):
        both_in.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(demo, "invoke", invoke)
    at = send(at, "at once")
    assert not at.exception
    assert len([m for m in at.markdown if "**Served by**" in m.value]) == 2


def test_ab_needs_two_generation_deployments(open_page, demo):
    at = open_page("playground")
    at.button_group(key=keys.PLAY_MODE).set_value("A/B").run()
    assert "A/B needs two generation deployments" in texts(at.warning)


def test_chat_keeps_the_conversation(open_page, demo):
    at = open_page("playground")
    at.button_group(key=keys.PLAY_MODE).set_value("Chat").run()
    at.chat_input(key=keys.PLAY_CHAT).set_value("first").run()
    at.chat_input(key=keys.PLAY_CHAT).set_value("second").run()
    assert not at.exception
    sent = demo.fake_serving.history[-1][2]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[-1]["content"] == "second"
    assert len(at.chat_message) == 4
    answer = at.chat_message[-1].markdown[0].value
    assert texts(at.markdown).count(answer) == 1, "the chat's answer is shown once"


def test_an_endpoint_with_no_live_traffic_explains_the_404(open_page, demo):
    demo.set_traffic("demo", {"chat": 0, "ranks": 0})
    at = send(open_page("playground"), "anyone?")
    assert not at.exception
    assert "HTTP 404" in texts(at.error)
    assert "set traffic on the Endpoints page" in texts(at.info)


def test_no_endpoint_yet_points_to_the_demo(open_page):
    at = open_page("playground")
    assert "set up the demo on the Overview page" in texts(at.info)


def test_ab_warns_when_a_and_b_are_the_same_deployment(open_page, demo):
    demo.create_or_update_deployment(Deployment(name="green", endpoint_name="demo", model="smollm2-135m-instruct:1"))
    at = open_page("playground")
    at.button_group(key=keys.PLAY_MODE).set_value("A/B").run()
    assert not at.warning
    at.selectbox(key=keys.PLAY_AB_B).set_value("chat").run()
    assert "A and B are the same deployment" in texts(at.warning)


def test_changing_mode_clears_the_answers(open_page, demo):
    demo.create_or_update_deployment(Deployment(name="green", endpoint_name="demo", model="smollm2-135m-instruct:1"))
    at = send(open_page("playground"), "hello")
    assert "**Served by** chat" in texts(at.markdown)
    at.button_group(key=keys.PLAY_MODE).set_value("Chat").run()
    assert "**Served by**" not in texts(at.markdown), "the prompt's answer is not shown as if it were the chat's"
    at.button_group(key=keys.PLAY_MODE).set_value("A/B").run()
    assert "**Served by**" not in texts(at.markdown)


def test_a_prompts_answer_streams_and_shows_its_time_to_first_token_once(open_page, demo):
    at = send(open_page("playground"), "one two three four")
    assert not at.exception
    # the fake streams "[chat] ruof eerht owt eno" word by word: the whole text, shown once
    assert texts(at.markdown).count("\\[chat\\] ruof eerht owt eno") == 1
    assert "▌" not in texts(at.markdown), "the answer is complete: no cursor"
    assert re.search(r"\*\*Time to first token\*\* \d[\d,]* ms · \*\*Latency\*\* \d", texts(at.markdown))
    assert not re.search(r"\*\*Tokens/s\*\* n/a", texts(at.markdown))
    assert not [b for b in at.button if b.key == keys.PLAY_STOP], "Stop is there only while the answer comes"
    assert keys.PLAYGROUND_STREAM not in at.session_state


def stopped_stream(mode: str, chat=None):
    """What a streaming run leaves in the session when Stop ends it after two words."""
    from byom.console.views.playground import Streamed
    from byom.core.entities import InvokeResult, StreamEvent

    streamed = Streamed(mode, chat)
    streamed.add(StreamEvent(5.0, head=InvokeResult(status_code=200, body="", deployment="chat", request_id="r9")))
    streamed.add(StreamEvent(20.0, data={"text": "Half"}))
    streamed.add(StreamEvent(40.0, data={"text": " an answer"}))
    return streamed


def test_a_stopped_prompt_shows_what_had_come(open_page, demo):
    at = open_page("playground")
    at.session_state[keys.PLAYGROUND_STREAM] = stopped_stream("Prompt")
    at.run()
    assert not at.exception
    assert texts(at.markdown).count("Half an answer") == 1
    assert "stopped: the model stopped generating here" in texts(at.caption)
    assert "**Time to first token** 20 ms" in texts(at.markdown)
    assert keys.PLAYGROUND_STREAM not in at.session_state
    at.run()
    assert texts(at.markdown).count("Half an answer") == 1, "kept as the page's answer, once"


def test_a_stopped_chat_answer_joins_the_conversation_once(open_page, demo):
    at = open_page("playground")
    at.button_group(key=keys.PLAY_MODE).set_value("Chat").run()
    chat = [{"role": "user", "content": "tell me"}]
    at.session_state[keys.PLAYGROUND_STREAM] = stopped_stream("Chat", chat)
    at.run()
    assert not at.exception
    assert [m.markdown[0].value for m in at.chat_message] == ["tell me", "Half an answer"]
    assert texts(at.markdown).count("Half an answer") == 1
    assert "stopped: the model stopped generating here" in texts(at.caption)


def test_an_answer_its_streaming_run_settled_is_not_settled_again(open_page, demo):
    at = open_page("playground")
    streamed = stopped_stream("Prompt")
    assert streamed.claim()  # the streaming run got there first
    at.session_state[keys.PLAYGROUND_STREAM] = streamed
    at.run()
    assert "Half an answer" not in texts(at.markdown)
