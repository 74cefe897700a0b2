"""Overview: which workspace, what it holds, each endpoint at a glance, the latest changes."""

import streamlit as st
from byom.console import context, keys, ui
from byom.console.views import common
from byom.console.views import overview as view
from byom.core.demo import DEMO_ENDPOINT, is_empty, setup_demo
from byom.core.errors import BackendError, ByomError
from byom.core.usage import all_deployments
from byom.core.workspace import Capability

ws = context.workspace()
info = ws.info()

st.title("Overview")
st.caption(f"{info.kind} workspace **{ui.plain(info.name)}** · {ui.plain(info.location)}")

models = ws.list_models()
endpoints = ws.list_endpoints()
deployments = all_deployments(ws)

counts = st.columns(4)
counts[0].metric("Models", len(models))
counts[1].metric("Environments", len(ws.list_environments()))
counts[2].metric("Endpoints", len(endpoints))
counts[3].metric("Deployments", len(deployments))

# The demo deploys twice: free on this machine, billed on Azure ML, so it is offered locally only.
# It stays offered until both its deployments run: setting it up again continues where it stopped.
if info.kind != "azure" and (is_empty(ws) or view.demo_unfinished(endpoints, deployments)):
    with st.container(border=True):
        st.subheader("Start with the demo")
        st.write(
            "Registers the sample model (SmolLM2-135M-Instruct) and deploys it twice under the endpoint "
            f"`{DEMO_ENDPOINT}`: one deployment generates text, the other scores token ranks."
        )
        if st.button("Set up the demo", type="primary", icon=":material/rocket_launch:", key=keys.OVERVIEW_SET_UP_DEMO):
            with ui.errors(), ui.progress("Setting up the demo") as report:
                result = setup_demo(ws, report)
                failed = [d for d in result.deployments if d.provisioning_state == "Failed"]
                if failed:
                    raise BackendError("\n\n".join(f"Deployment {d.name} failed: {d.state_reason}" for d in failed),
                                       hint="Read its logs on the Endpoints page, fix the cause and set up the demo "
                                            "again: it continues where it stopped.")
                ui.done(f"The demo endpoint {DEMO_ENDPOINT} is ready: try it in the Playground.")

st.subheader("Endpoints")
has_metrics = ws.supports(Capability.METRICS)
if not endpoints:
    st.info("No endpoints yet. Create one on the Endpoints page.")
elif not has_metrics:
    st.caption("This workspace's backend does not report request rates: the Monitoring page says where to see them.")
for endpoint in endpoints:
    with st.container(border=True):
        its_deployments = [d for d in deployments if d.endpoint_name == endpoint.name]
        head, rate = st.columns([3, 1])
        head.markdown(f"#### {ui.plain(endpoint.name)}")
        head.caption(ui.plain(endpoint.description) or ui.plain(endpoint.scoring_uri))
        per_minute = None
        if has_metrics:
            try:
                per_minute = view.requests_per_minute(
                    ws.get_metrics(endpoint.name, window_s=view.RATE_WINDOW_S, bucket_s=view.RATE_BUCKET_S))
            except ByomError:
                pass
        rate.metric("Requests / min (5 min)", view.rate_text(per_minute))
        st.markdown(f"Traffic: **{ui.plain(common.traffic_text(endpoint))}**")
        if its_deployments:
            st.dataframe(common.deployments_table(its_deployments, endpoint), hide_index=True,
                         width="stretch",
                         column_config={"traffic %": st.column_config.ProgressColumn(
                             "traffic %", min_value=0, max_value=100, format="%d %%")})
        else:
            st.caption("No deployments yet.")

st.subheader("Latest changes")
audit = ws.list_audit(limit=view.AUDIT_ROWS)
if audit:
    st.dataframe(view.audit_table(audit), hide_index=True, width="stretch")
else:
    st.caption("Nothing has changed in this workspace yet.")
