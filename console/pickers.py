"""The pickers several pages share: the endpoint picker.

The endpoint chosen on one page is the one the next page starts from
(``keys.ENDPOINT``); a page that points elsewhere (an endpoint just created,
one just deleted) sets ``keys.ENDPOINT`` and the picker follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st
from byom.core.entities import Endpoint

from . import keys


def _follow_the_picker() -> None:
    st.session_state[keys.ENDPOINT] = st.session_state[keys.ENDPOINT_PICKER]


def endpoint(endpoints: Sequence[Endpoint], where: Any = st) -> str:
    """Pick one of ``endpoints`` (at least one) in ``where`` (a column, the page); its name."""
    names = [e.name for e in endpoints]
    chosen = st.session_state.get(keys.ENDPOINT)
    # The widget's own state would outlive the choice of another page: the shared choice is set into it.
    st.session_state[keys.ENDPOINT_PICKER] = chosen if chosen in names else names[0]
    name: str = where.selectbox("Endpoint", names, key=keys.ENDPOINT_PICKER, on_change=_follow_the_picker)
    st.session_state[keys.ENDPOINT] = name
    return name
