"""console.views.playground: request bodies and answers."""

from byom.console.views import playground as view


def test_read_answer_of_a_generation_and_of_an_error():
    ok = view.read_answer(200, '{"text": "hi", "usage": {"completion_tokens": 10}, "finish_reason": "stop"}',
                           "blue", 500.0, "r1")
    assert (ok.ok, ok.text, ok.tokens_per_second, ok.finish_reason) == (True, "hi", 20.0, "stop")
    bad = view.read_answer(400, '{"message": "Send exactly one of prompt or messages."}', "blue", 3.0, "r2")
    assert (bad.ok, bad.text, bad.tokens_per_second) == (False, "Send exactly one of prompt or messages.", None)
    assert "Endpoints page" in view.status_hint(404)


def test_generation_payload_is_greedy_at_temperature_zero():
    assert view.generation_payload("hi") == {"prompt": "hi", "max_new_tokens": 64}
    chat = [{"role": "user", "content": "hi"}]
    assert view.generation_payload("", chat=chat, temperature=0.5, top_p=0.9) == {
        "messages": chat, "max_new_tokens": 64, "do_sample": True, "temperature": 0.5, "top_p": 0.9}


def test_only_generation_deployments_take_prompts():
    from byom.core.entities import Deployment

    deployments = [Deployment(name=n, endpoint_name="demo", model="m:1", scoring_script=s)
                   for n, s in (("chat", "generate.py"), ("ranks", "token_ranks.py"), ("custom", "score.py"))]
    assert view.generation_deployments(deployments) == ["chat", "custom"]
    assert view.target_of(view.SPLIT) is None and view.target_of("chat") == "chat"


def test_what_an_answer_shows():
    from byom.core.entities import InvokeResult

    answer = view.answer_of(InvokeResult(status_code=200, body='{"text": "hi", "usage": {"completion_tokens": 3}}',
                                         deployment="chat", latency_ms=1000.0, request_id="r1"))
    assert (answer.text, view.tokens_per_second_text(answer)) == ("hi", "3.0")
    assert view.answer_caption(answer) == "Request id `r1` · HTTP 200"
    assert view.raw_text(answer) == '{\n  "text": "hi",\n  "usage": {\n    "completion_tokens": 3\n  }\n}'
    plain = view.read_answer(502, "Bad gateway", None, 0.0, "r2")
    assert (plain.ok, view.raw_text(plain), view.tokens_per_second_text(plain)) == (False, "Bad gateway", "n/a")
    assert view.answer_caption(plain.__class__(**{**plain.__dict__, "finish_reason": "stop"})).endswith(
        "finish reason stop")
    assert view.status_hint(418) and view.status_hint(500) is None


def test_differences_mark_only_the_words_that_differ():
    a, b = view.differences("the cat sat on the mat", "the dog sat on the <mat>")
    assert a.count("<mark") == 2
    assert '<mark class="byom-diff">cat</mark>' in a and '<mark class="byom-diff">mat</mark>' in a
    assert '<mark class="byom-diff">&lt;mat&gt;</mark>' in b, "an answer's markup is shown, never run"
    same = view.differences("same words", "same words")
    assert "<mark" not in same[0] + same[1]


def test_figures_wrap_rather_than_cut_a_long_name():
    answer = view.read_answer(200, '{"text": "hi", "usage": {"completion_tokens": 10}}', "a_very_long_deployment",
                              500.0, "id")
    assert view.figures_text(answer) == ("**Latency** 500 ms · **Tokens/s** 20.0 · **Served by** "
                                         "a\\_very\\_long\\_deployment")


def streamed_of(*texts: str, final: dict | None = None, status: int = 200) -> "view.Streamed":
    """A Streamed fed a head, one event per text 100 ms apart from 200 ms on, and the final event if given."""
    from byom.core.entities import InvokeResult, StreamEvent

    streamed = view.Streamed("Prompt")
    streamed.add(StreamEvent(50.0, head=InvokeResult(status_code=status, body="", deployment="chat",
                                                     request_id="r1")))
    for i, text in enumerate(texts):
        assert streamed.add(StreamEvent(200.0 + 100 * i, data={"text": text}))
    if final is not None:
        streamed.add(StreamEvent(200.0 + 100 * len(texts), data=final))
    return streamed


def test_a_streamed_answer_has_its_time_to_first_token_and_its_decoding_speed():
    done = streamed_of("Once", " upon", " a", final={"text": " time", "finish_reason": "length",
                                                     "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    answer = done.answer()
    assert (answer.ok, answer.text, answer.first_token_ms, answer.latency_ms) == (True, "Once upon a time", 200, 500)
    assert answer.tokens_per_second == 10.0  # 3 tokens after the first, in the 300 ms after it
    assert (answer.finish_reason, answer.completion_tokens, answer.stopped) == ("length", 4, False)
    assert view.figures_text(answer).startswith("**Time to first token** 200 ms · **Latency** 500 ms · "
                                                "**Tokens/s** 10.0 ·")
    assert answer.raw == {"text": "Once upon a time", "finish_reason": "length",
                          "usage": {"prompt_tokens": 3, "completion_tokens": 4}}


def test_a_stopped_answer_counts_the_steps_that_came():
    stopped = streamed_of("Once", " upon", " a").answer(stopped=True)
    assert (stopped.text, stopped.completion_tokens, stopped.finish_reason) == ("Once upon a", 3, None)
    assert stopped.tokens_per_second == 10.0
    assert view.answer_caption(stopped).endswith("stopped: the model stopped generating here")
    before_the_head = view.Streamed("Prompt").answer(stopped=True)
    assert view.answer_caption(before_the_head) == "Stopped before the endpoint answered."


def test_a_streamed_error_is_an_error():
    refused = streamed_of(status=404)
    refused.head.body = '{"error": {"code": 404, "message": "No deployment."}}'  # type: ignore[union-attr]
    assert (refused.answer().ok, refused.answer().status_code) == (False, 404)
    broken = streamed_of("Once", final={"error": {"message": "Generation failed: boom"}})
    assert (broken.answer().ok, broken.answer().text) == (False, "Generation failed: boom")


def test_a_streamed_answer_is_claimed_once():
    streamed = streamed_of("hi")
    assert streamed.claim() and not streamed.claim()


def test_a_chat_keeps_an_answer_that_said_something():
    chat = [{"role": "user", "content": "hi"}]
    said = streamed_of("Hello").answer(stopped=True)
    assert view.chat_after(chat, said) == [*chat, {"role": "assistant", "content": "Hello"}]
    assert view.chat_after(chat, view.Streamed("Chat").answer(stopped=True)) == chat
