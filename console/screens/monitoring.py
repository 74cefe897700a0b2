"""Monitoring: per deployment request rate, error rate and latency percentiles over time, refreshing live."""

import streamlit as st
from byom.console import context, keys, ui
from byom.core import analysis
from byom.core.errors import Unsupported
from byom.core.workspace import Capability

ws = context.workspace()

st.title("Monitoring")

endpoints = ws.list_endpoints()
if not endpoints:
    st.info("No endpoints yet: there is nothing to monitor.")
    st.stop()

WINDOWS = {"Last 15 minutes": (900, 30), "Last hour": (3600, 60), "Last 6 hours": (21600, 600),
           "Last 24 hours": (86400, 1800)}

cols = st.columns([2, 2, 1], vertical_alignment="bottom")
names = [e.name for e in endpoints]
chosen = st.session_state.get(keys.ENDPOINT)
name = cols[0].selectbox("Endpoint", names, index=names.index(chosen) if chosen in names else 0)
st.session_state[keys.ENDPOINT] = name

if not ws.supports(Capability.METRICS):
    try:
        ws.get_metrics(name)
    except Unsupported as exc:  # the backend says why, and where to look instead
        st.subheader("Request metrics are not available for this workspace")
        ui.explain(exc)
        st.stop()

window = cols[1].selectbox("Window", list(WINDOWS), index=1, key=keys.MON_WINDOW)
live = cols[2].toggle("Live", value=True, key=keys.MON_LIVE, help="Refresh every 5 seconds.")
window_s, bucket_s = WINDOWS[window]


@st.fragment(run_every=5 if live else None)
def figures() -> None:
    with ui.errors():
        metrics = ws.get_metrics(name, window_s=window_s, bucket_s=bucket_s)
        if not metrics:
            st.info("No requests in this window. Send some from the Playground.")
            return
        st.dataframe(analysis.metrics_table(metrics), hide_index=True, width="stretch")
        charts = analysis.metrics_figures(metrics, bucket_s)
        left, right = st.columns(2)
        left.plotly_chart(charts["requests"], width="stretch", key="monitoring.requests")
        right.plotly_chart(charts["errors"], width="stretch", key="monitoring.errors")
        st.plotly_chart(charts["latency"], width="stretch", key="monitoring.latency")
        if any(m.mirrored for m in metrics):
            st.caption("Dotted lines are mirror traffic: copies of live requests whose answers were discarded.")


figures()
