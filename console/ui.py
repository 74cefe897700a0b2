"""Small rendering helpers every page shares: errors, progress, confirmations, messages.

Errors from core arrive as :class:`core.errors.ByomError`; ``errors()``
turns them into ``st.error(message)`` plus the hint, never a traceback.
What a page cannot show because its backend cannot do it
(:class:`core.errors.Unsupported`: no metrics on Azure ML, ...) is no error:
``explain()`` says so with ``st.info``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
from byom.core.errors import ByomError, Unsupported
from byom.core.workspace import Progress

from . import keys

_MARKDOWN_SPECIALS = "\\`*_[]<>#$|~"


def plain(text: str) -> str:
    """Text shown as is inside Streamlit's markdown (no emphasis, links or LaTeX)."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in str(text))


def top() -> Any:
    """Where feedback goes: the band at the top of the page (app.py opens it on every run), so that it is
    in view whatever the operator scrolled to; inside a fragment (which cannot write outside itself) there."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    band = st.session_state.get(keys.FEEDBACK)
    if band is None or (ctx is not None and getattr(ctx, "fragment_ids_this_run", None)):
        return st  # a fragment's own rerun: the band belongs to an earlier run
    return band


def open_feedback_band() -> None:
    """app.py: open the band at the top of the page for this run's feedback."""
    st.session_state[keys.FEEDBACK] = st.container()


def show_error(exc: ByomError, *, in_place: bool = False) -> None:
    where = st if in_place else top()
    where.error(plain(exc.message), icon=":material/error:")
    if exc.hint:
        where.info(plain(exc.hint), icon=":material/arrow_forward:")
    st.toast(plain(exc.message), icon=":material/error:")


def explain(exc: Unsupported) -> None:
    """What this backend cannot do, and where to look instead."""
    st.info(plain(exc.message) + (f"\n\n{plain(exc.hint)}" if exc.hint else ""), icon=":material/info:")


@contextmanager
def errors(*, in_place: bool = False) -> Iterator[None]:
    """Run a workspace call; a ByomError becomes a message at the top of the page (``in_place``: where the
    call is) and a toast, and the page goes on."""
    try:
        yield
    except ByomError as exc:
        show_error(exc, in_place=in_place)


def flash(text: str, kind: str = "success") -> None:
    """Show ``text`` once, at the top of the next run (after ``st.rerun()``)."""
    st.session_state.setdefault(keys.FLASH, []).append((kind, text))


def show_flash() -> None:
    for kind, text in st.session_state.pop(keys.FLASH, []):
        {"success": st.success, "warning": st.warning, "info": st.info}.get(kind, st.info)(plain(text))
        if kind == "success":
            st.toast(plain(text), icon=":material/check_circle:")


def done(text: str) -> None:
    """A change went through: say so and redraw the page from the new state."""
    flash(text)
    st.rerun()


@contextmanager
def progress(label: str) -> Iterator[Progress]:
    """A status box with a progress bar at the top of the page, fed by a core progress callback."""
    label = plain(label)
    box = top().status(label, expanded=True)
    bar = box.progress(0.0, text="Waiting for the first step…")
    last = [0.0]

    def report(message: str, fraction: float | None = None) -> None:
        if fraction is not None:
            last[0] = max(0.0, min(1.0, fraction))
        bar.progress(last[0], text=plain(message))

    try:
        yield report
    except ByomError:
        box.update(label=f"{label}: failed", state="error", expanded=True)
        raise
    box.update(label=f"{label}: done", state="complete", expanded=False)


def reset_later(values: dict[str, Any]) -> None:
    """Set these widgets to these values at the start of the next run (a form starting afresh).

    A widget's state cannot be changed once it is drawn in a run, and dropping its key is not enough:
    the browser still holds the old value and sends it back. So the values wait for the next run.
    """
    st.session_state.setdefault(keys.RESETS, {}).update(values)


def apply_resets() -> None:
    """app.py, before the page runs: the values ``reset_later`` left."""
    for key, value in st.session_state.pop(keys.RESETS, {}).items():
        st.session_state[key] = value


def remember(*widget_keys: str) -> None:
    """Keep these widgets' values when the operator leaves the page and comes back.

    Streamlit forgets the state of a widget that a run does not draw (another page ran): its last value is
    kept here (``keys.KEPT``) and put back before the page draws it again.
    """
    kept = st.session_state.setdefault(keys.KEPT, {})
    for key in widget_keys:
        if key in st.session_state:
            kept[key] = st.session_state[key]
        elif key in kept:
            st.session_state[key] = kept[key]


def ask(action: str) -> None:
    """Start a destructive action: the next run asks for confirmation."""
    st.session_state[keys.CONFIRM] = action


def confirmed(action: str, question: str, *, label: str = "Delete") -> bool:
    """True once the user confirmed ``action`` (started by ``ask``); shows the question until then."""
    if st.session_state.get(keys.CONFIRM) != action:
        return False
    st.warning(plain(question), icon=":material/warning:")
    yes, no = st.columns([1, 6])
    if yes.button(label, key=keys.confirm_button(action), type="primary"):
        st.session_state[keys.CONFIRM] = None
        return True
    if no.button("Cancel", key=keys.cancel_button(action)):
        st.session_state[keys.CONFIRM] = None
        st.rerun()
    return False


def mask(secret: str) -> str:
    """A key as a user may see it on screen: its first four characters."""
    return secret[:4] + "•" * 12 if secret else ""
