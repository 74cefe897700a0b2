"""Monitoring: per deployment request rate, error rate and latency percentiles over time, refreshing live."""

import streamlit as st
from byom.console import context, keys, pickers, ui
from byom.console.views import monitoring as view
from byom.core import analysis
from byom.core.errors import Unsupported
from byom.core.workspace import Capability

ws = context.workspace()

st.title("Monitoring")

endpoints = ws.list_endpoints()
if not endpoints:
    st.info("No endpoints yet: there is nothing to monitor.")
    st.stop()

cols = st.columns([2, 2, 1], vertical_alignment="bottom")
name = pickers.endpoint(endpoints, cols[0])

if not ws.supports(Capability.METRICS):
    try:
        ws.get_metrics(name)
    except Unsupported as exc:  # the backend says why, and where to look instead
        st.subheader("Request metrics are not available for this workspace")
        ui.explain(exc)
        st.stop()

window = cols[1].selectbox("Window", list(view.WINDOWS), index=view.window_index(), key=keys.MON_WINDOW)
live = cols[2].toggle("Live", value=True, key=keys.MON_LIVE, help=f"Refresh every {view.REFRESH_S} seconds.")
window_s, bucket_s = view.WINDOWS[window]


@st.fragment(run_every=view.REFRESH_S if live else None)
def figures() -> None:
    with ui.errors():
        metrics = ws.get_metrics(name, window_s=window_s, bucket_s=bucket_s)
        if not metrics:
            st.info("No requests in this window. Send some from the Playground.")
            return
        st.dataframe(analysis.metrics_table(metrics), hide_index=True, width="stretch")
        charts = analysis.metrics_figures(metrics, bucket_s)
        left, right = st.columns(2)
        left.plotly_chart(charts["requests"], width="stretch", key=keys.MON_REQUESTS_CHART)
        right.plotly_chart(charts["errors"], width="stretch", key=keys.MON_ERRORS_CHART)
        st.plotly_chart(charts["latency"], width="stretch", key=keys.MON_LATENCY_CHART)
        if any(m.mirrored for m in metrics):
            st.caption("Dotted lines are mirror traffic: copies of live requests whose answers were discarded.")


figures()
