"""Consumers: an endpoint's named keys with their limits, a new one issued (its key shown once), and usage."""

import streamlit as st
from byom.console import context, keys, pickers, ui
from byom.console.views import consumers as view
from byom.core.errors import Unsupported
from byom.core.workspace import Capability

ws = context.workspace()

st.title("Consumers")

endpoints = ws.list_endpoints()
if not endpoints:
    st.info("No endpoints yet: consumers are keys of an endpoint.")
    st.stop()

cols = st.columns([3, 3, 2], vertical_alignment="bottom")
name = pickers.endpoint(endpoints, cols[0])

if not ws.supports(Capability.CONSUMERS):
    try:
        ws.list_consumers(name)
    except Unsupported as exc:  # the backend says so, and names the Azure service that does it
        st.subheader("Consumers are not available for this workspace")
        ui.explain(exc)
        st.stop()

with st.expander("New consumer", icon=":material/key:"), st.form(keys.CONS_FORM, border=False):
    consumer = st.text_input("Name", key=keys.CONS_NAME, placeholder="team-a")
    limit_cols = st.columns(3)
    tpm = limit_cols[0].number_input("Tokens per minute", min_value=0, step=1000, key=keys.CONS_TPM,
                                     help="Input and output tokens, those of requests in flight too; 0: no limit.")
    rpm = limit_cols[1].number_input("Requests per minute", min_value=0, step=10, key=keys.CONS_RPM,
                                     help="0: no limit.")
    tpd = limit_cols[2].number_input("Tokens per day", min_value=0, step=10000, key=keys.CONS_TPD,
                                     help="In the last 24 hours; 0: no limit.")
    created = st.form_submit_button("Issue the key", icon=":material/add:", key=keys.CONS_CREATE)
if created:
    with ui.errors(in_place=True):
        issued = ws.create_consumer(name, consumer.strip(), view.limits_given(
            {"tokens_per_minute": int(tpm), "requests_per_minute": int(rpm), "tokens_per_day": int(tpd)}))
        st.success(f"Consumer {issued.name} has this key. It is shown this once: copy it now.",
                   icon=":material/key:")
        st.code(issued.key, language=None)

st.dataframe(view.consumers_table(ws.list_consumers(name)), hide_index=True, width="stretch")
st.caption("Change, delete or give a new key with `byom online-endpoint consumer update|delete|regenerate-key`.")

st.subheader("Usage")
cols = st.columns([3, 3, 2], vertical_alignment="bottom")
window = cols[0].selectbox("Window", list(view.WINDOWS), index=view.window_index(), key=keys.CONS_WINDOW)
period = cols[1].selectbox("Rows", list(view.PERIODS), key=keys.CONS_PERIOD)
with ui.errors():
    rows = ws.consumer_usage(name, view.WINDOWS[window], by=view.PERIODS[period])
    if not rows:
        st.info("No requests in this window.")
    st.plotly_chart(view.tokens_figure(rows), width="stretch", key=keys.CONS_CHART)
    st.dataframe(view.usage_table(rows), hide_index=True, width="stretch")
    cols[2].download_button("Download CSV", view.usage_csv(rows), file_name=f"usage-{name}.csv", mime="text/csv",
                            icon=":material/download:", key=keys.CONS_CSV)
