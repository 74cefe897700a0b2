"""Monitoring: per deployment requests, status codes, latency, instances, tokens, time to first token and per
output token, CPU and memory, refreshing live."""

import time

import streamlit as st
from byom.console import context, keys, pickers, ui
from byom.console.views import monitoring as view
from byom.core.errors import Unsupported
from byom.core.workspace import Capability

ws = context.workspace()

st.title("Monitoring")

endpoints = ws.list_endpoints()
if not endpoints:
    st.info("No endpoints yet: there is nothing to monitor.")
    st.stop()

cols = st.columns([3, 3, 2, 1], vertical_alignment="bottom")
name = pickers.endpoint(endpoints, cols[0])

if not ws.supports(Capability.METRICS):
    try:
        ws.get_metrics(name)
    except Unsupported as exc:  # the backend says why, and where to look instead
        st.subheader("Request metrics are not available for this workspace")
        ui.explain(exc)
        st.stop()

window = cols[1].selectbox("Window", list(view.WINDOWS), index=view.window_index(), key=keys.MON_WINDOW)
percentile = cols[2].segmented_control("Latency", view.PERCENTILES, default=view.DEFAULT_PERCENTILE,
                                       key=keys.MON_PERCENTILE,
                                       help="The percentile drawn per deployment: of latency, time to first token "
                                            "and time per output token.")
live = cols[3].toggle("Live", value=True, key=keys.MON_LIVE, help=f"Refresh every {view.REFRESH_S} seconds.")
window_s, bucket_s = view.WINDOWS[window]


@st.fragment(run_every=view.REFRESH_S if live else None)
def figures() -> None:
    with ui.errors():
        now = time.time()
        deployments = ws.list_deployments(name)
        palette = view.colours(d.name for d in deployments)
        metrics = view.with_quiet_deployments(ws.get_metrics(name, window_s=window_s, bucket_s=bucket_s),
                                              [d.name for d in deployments], endpoint=name, window_s=window_s,
                                              bucket_s=bucket_s, now=now)
        if not any(m.requests for m in metrics):
            st.info("No requests in this window. Send some from the Playground.")
        st.dataframe(view.metrics_table(metrics), hide_index=True, width="stretch")
        left, right = st.columns(2)
        left.plotly_chart(view.requests_figure(metrics, palette, bucket_s), width="stretch",
                          key=keys.MON_REQUESTS_CHART)
        right.plotly_chart(view.status_figure(metrics, bucket_s), width="stretch", key=keys.MON_STATUS_CHART)
        left, right = st.columns(2)
        left.plotly_chart(view.latency_figure(metrics, palette, percentile or view.DEFAULT_PERCENTILE, bucket_s),
                          width="stretch", key=keys.MON_LATENCY_CHART)
        right.plotly_chart(view.instances_figure(deployments, palette), width="stretch",
                           key=keys.MON_INSTANCES_CHART)
        if any(m.mirrored for m in metrics):
            st.caption("Dotted lines are mirror traffic: copies of live requests whose answers were discarded.")
        chosen = percentile or view.DEFAULT_PERCENTILE
        left, right = st.columns(2)
        left.plotly_chart(view.tokens_figure(metrics, palette, bucket_s, "input"), width="stretch",
                          key=keys.MON_INPUT_TOKENS_CHART)
        right.plotly_chart(view.tokens_figure(metrics, palette, bucket_s, "output"), width="stretch",
                           key=keys.MON_OUTPUT_TOKENS_CHART)
        left, right = st.columns(2)
        left.plotly_chart(view.first_token_figure(metrics, palette, chosen, bucket_s), width="stretch",
                          key=keys.MON_FIRST_TOKEN_CHART)
        right.plotly_chart(view.per_token_figure(metrics, palette, chosen, bucket_s), width="stretch",
                           key=keys.MON_PER_TOKEN_CHART)
        st.caption(view.token_times_caption(metrics))
        try:
            samples = ws.get_resource_usage(name, window_s=window_s)
        except Unsupported as exc:
            ui.explain(exc)
            return
        left, right = st.columns(2)
        left.plotly_chart(view.cpu_figure(samples, palette, (now - window_s, now)), width="stretch",
                          key=keys.MON_CPU_CHART)
        right.plotly_chart(view.memory_figure(samples, palette, (now - window_s, now)), width="stretch",
                           key=keys.MON_MEMORY_CHART)
        st.caption(view.usage_caption(samples))


figures()
