"""Playground: send a prompt or a chat to an endpoint or one deployment, the answer streamed as it is made (with
a Stop button); A/B two deployments side by side."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import streamlit as st
from byom.console import context, keys, pickers, ui
from byom.console.views import common
from byom.console.views import playground as view

ws = context.workspace()

st.title("Playground")

endpoints = ws.list_endpoints()
if not endpoints:
    st.info("No endpoints yet: set up the demo on the Overview page, or create one on the Endpoints page.")
    st.stop()

name = pickers.endpoint(endpoints)
dep_names = view.generation_deployments(ws.list_deployments(name))

mode = st.segmented_control("Mode", view.MODES, default="Prompt", key=keys.PLAY_MODE,
                            on_change=lambda: st.session_state.pop(keys.PLAYGROUND_RESULTS, None))
if mode == "A/B":
    if len(dep_names) < 2:
        st.warning("A/B needs two generation deployments on this endpoint: deploy a second one on the Endpoints page.")
        st.stop()
    left, right = st.columns(2)
    targets: list[str | None] = [left.selectbox("Deployment A", dep_names, index=0, key=keys.PLAY_AB_A),
                                 right.selectbox("Deployment B", dep_names, index=1, key=keys.PLAY_AB_B)]
    if targets[0] == targets[1]:
        st.warning("A and B are the same deployment: choose two different ones to compare them.")
else:
    target = st.selectbox("Send to", [view.SPLIT, *dep_names], key=keys.PLAY_TARGET,
                          help="The traffic split picks a deployment by weight; naming one bypasses the split.")
    targets = [view.target_of(target)]

with st.expander("Generation parameters"):
    cols = st.columns(3)
    max_new_tokens = cols[0].slider("Max new tokens", 1, 512, 64, key=keys.PLAY_MAX_TOKENS)
    temperature = cols[1].slider("Temperature", 0.0, 2.0, view.DEFAULT_TEMPERATURE, 0.05, key=keys.PLAY_TEMPERATURE,
                                 help="0 is greedy decoding (the same answer every time, but a small model "
                                      "soon repeats itself); the default samples lightly.")
    top_p = cols[2].slider("Top p", 0.05, 1.0, view.DEFAULT_TOP_P, 0.05, key=keys.PLAY_TOP_P,
                           disabled=temperature == 0)


def send(payload: dict[str, Any]) -> list[view.Answer]:
    """The answers of every target, asked at once (A/B takes as long as the slower one, not the sum)."""
    with st.spinner("Waiting for the model…"), ThreadPoolExecutor(max_workers=len(targets)) as pool:
        futures = [pool.submit(ws.invoke, name, payload, deployment=deployment) for deployment in targets]
        return [view.answer_of(future.result()) for future in futures]


def stream(payload: dict[str, Any], where, chat: list[dict[str, str]] | None = None  # noqa: ANN001
           ) -> view.Answer | None:
    """The answer of the one target shown in ``where`` as it comes, with a Stop button beside it; the answer
    once complete (None when the run after a Stop showed it already).

    Stop starts a new run, which ends this one at its next update: the stream is closed (the connection too,
    and the model stops generating), and the new run shows what had come (see ``settle_stopped``)."""
    streamed = view.Streamed(str(mode), chat)
    st.session_state[keys.PLAYGROUND_STREAM] = streamed  # mutated in place from here on: one assignment per run
    stop = where.empty()
    stop.button("Stop", key=keys.PLAY_STOP, icon=":material/stop_circle:",
                help="End the answer here: the model stops generating it.")
    text = where.empty()
    answer = ws.invoke_stream(name, payload, deployment=targets[0])
    failed = True  # until the stream ends: a ByomError is shown at the top, and no answer kept
    try:
        with ui.errors():
            for event in answer:
                if streamed.add(event):
                    text.markdown(ui.plain(streamed.text) + " ▌")
            failed = False
    finally:
        answer.close()
    stop.empty()
    text.empty()
    if not streamed.claim():
        return None
    st.session_state.pop(keys.PLAYGROUND_STREAM, None)
    return None if failed else streamed.answer()


def settle(answer: view.Answer, chat: list[dict[str, str]] | None = None) -> None:
    """Keep a finished answer (in Chat mode, in the conversation) for this run and the next ones."""
    if chat is not None:
        st.session_state[keys.CHAT_HISTORY] = view.chat_after(chat, answer)
    if answer.ok and answer.text:
        st.session_state[keys.LAST_ANSWER] = answer.text
    st.session_state[keys.PLAYGROUND_RESULTS] = [answer]


def settle_stopped() -> None:
    """An answer whose streaming run ended before it did (Stop, or another click) is shown as it stood."""
    streamed = st.session_state.pop(keys.PLAYGROUND_STREAM, None)
    if isinstance(streamed, view.Streamed) and streamed.claim() and streamed.mode == str(mode):
        settle(streamed.answer(stopped=True), streamed.chat)


settle_stopped()


def show(answer: view.Answer, where, *, text: bool = True, marked: str | None = None) -> None:  # noqa: ANN001
    """One answer in ``where`` (a Streamlit container): its text (``marked``: as HTML with the differences
    marked; ``text=False``: the chat above shows it already), its figures, its request id and raw body."""
    if answer.ok:
        if marked is not None:
            where.html(marked)
        elif text:
            where.markdown(ui.plain(answer.text))
    else:
        where.error(f"HTTP {answer.status_code}: {ui.plain(answer.text)}")
        hint = view.status_hint(answer.status_code)
        if hint:
            where.info(hint, icon=":material/arrow_forward:")
    where.markdown(view.figures_text(answer))
    where.caption(view.answer_caption(answer))
    with where.expander("Raw answer"):
        st.code(view.raw_text(answer), language="json")


def params(prompt: str = "", chat: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return view.generation_payload(prompt, chat=chat, max_new_tokens=max_new_tokens,
                                    temperature=temperature, top_p=top_p)


if mode == "Chat":
    history = st.session_state.setdefault(keys.CHAT_HISTORY, [])
    for turn in history:
        with st.chat_message(turn["role"]):
            st.markdown(ui.plain(turn["content"]))
    if st.button("New chat", key=keys.PLAY_CHAT_CLEAR, disabled=not history):
        st.session_state[keys.CHAT_HISTORY] = []
        st.rerun()
    message = st.chat_input("Message the model", key=keys.PLAY_CHAT)
    if message:
        chat = [*history, {"role": "user", "content": message}]
        with st.chat_message("user"):
            st.markdown(ui.plain(message))
        with st.chat_message("assistant"):
            answer = stream(params(chat=chat), st.container(), chat)
        if answer is not None:
            settle(answer, chat)
        st.rerun()  # the conversation above shows the answer, once
    for answer in st.session_state.get(keys.PLAYGROUND_RESULTS, [])[:1]:
        show(answer, st.container(), text=not answer.ok)  # the chat above shows the answer once
else:
    prompt = st.text_area("Prompt", height=120, key=keys.PLAY_PROMPT, placeholder="Write a haiku about load balancers.")
    if st.button("Send", type="primary", icon=":material/send:", key=keys.PLAY_SEND, disabled=not prompt.strip()):
        if mode == "A/B":  # two answers side by side, each whole
            with ui.errors():
                answers = send(params(prompt))
                st.session_state[keys.PLAYGROUND_RESULTS] = answers
                if answers[0].ok:
                    st.session_state[keys.LAST_ANSWER] = answers[0].text
        else:
            streamed = stream(params(prompt), st.container(border=True))
            if streamed is not None:
                settle(streamed)
    results = st.session_state.get(keys.PLAYGROUND_RESULTS, [])
    if results:
        marks: list[str | None] = [None] * len(results)
        if len(results) == 2 and all(a.ok for a in results):
            marks = list(view.differences(results[0].text, results[1].text))
            st.caption("Highlighted: where the two answers differ." if results[0].text != results[1].text
                       else "The two answers are identical.")
        columns = st.columns(len(results))
        for answer, column, marked in zip(results, columns, marks, strict=True):
            with column.container(border=True):
                show(answer, st.container(), marked=marked)
    with st.expander("Call it from code"):
        endpoint = ws.get_endpoint(name)
        curl, python = st.tabs(["curl", "Python requests"])
        curl.code(common.curl_snippet(endpoint, params(prompt or "Say hello."), targets[0]), language="bash")
        python.code(common.python_snippet(endpoint, params(prompt or "Say hello."), targets[0]), language="python")
