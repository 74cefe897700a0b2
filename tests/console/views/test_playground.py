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
