"""The console's entry script: `streamlit run console/app.py`.

It sets up the page, draws the sidebar's workspace switcher and hands over to
the chosen page. Pages are in ``console/screens`` (not ``pages/``: a folder
of that name beside the entry script switches Streamlit, AppTest at least,
to its older multipage mode, which skips this script on reruns); each reads
like a description of its screen and calls only the Workspace contract.
"""

from pathlib import Path

import streamlit as st
from byom.console import context, keys, ui
from byom.core.errors import ByomError

HERE = Path(__file__).parent

# A file of our own: a ":material/...:" icon makes the browser fetch the favicon from a fonts host.
st.set_page_config(page_title="byom console", page_icon=str(HERE / "favicon.png"), layout="wide")

PAGES = {
    "Workspace": [
        st.Page(HERE / "screens/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(HERE / "screens/models.py", title="Models", icon=":material/deployed_code:"),
        st.Page(HERE / "screens/environments.py", title="Environments", icon=":material/inventory_2:"),
        st.Page(HERE / "screens/endpoints.py", title="Endpoints", icon=":material/lan:"),
    ],
    "Try it": [
        st.Page(HERE / "screens/playground.py", title="Playground", icon=":material/chat:"),
        st.Page(HERE / "screens/token_ranks.py", title="Token ranks", icon=":material/format_color_text:"),
        st.Page(HERE / "screens/monitoring.py", title="Monitoring", icon=":material/monitoring:"),
        st.Page(HERE / "screens/consumers.py", title="Consumers", icon=":material/group:"),
    ],
}
page = st.navigation(PAGES)
# Streamlit leaves a tall empty band above the first element (room for its toolbar): a title starts higher.
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")
ui.open_feedback_band()

with st.sidebar:  # the navigation's section is the one "Workspace" heading; this is where it is
    if keys.WORKSPACE in st.session_state:
        st.text("Provided by the host application")
    else:
        kind = st.radio(
            "Backend",
            ["Local", "Azure ML"],
            index=1 if context.on_azure() else 0,
            captions=["A folder on this machine", "A workspace in your Azure subscription"],
            horizontal=True,
            key=keys.SIDEBAR_BACKEND,
        )
        if kind == "Local":
            with st.form(keys.SIDEBAR_LOCAL_FORM, border=False):
                home = st.text_input("Local workspace home", value=context.location(), key=keys.SIDEBAR_HOME,
                                     help="A folder; `:memory:` opens a demo workspace kept in memory.")
                if st.form_submit_button("Open", icon=":material/folder_open:", key=keys.SIDEBAR_OPEN_LOCAL):
                    context.choose(home)
                    st.rerun()
        else:
            with st.form(keys.SIDEBAR_AZURE_FORM, border=False):
                config = st.text_input("config.json", key=keys.SIDEBAR_AZURE_CONFIG, placeholder="~/config.json",
                                       help="Download it from the workspace's page in Azure ML studio.")
                st.caption("or by name")
                subscription = st.text_input("Subscription id", key=keys.SIDEBAR_AZURE_SUBSCRIPTION)
                resource_group = st.text_input("Resource group", key=keys.SIDEBAR_AZURE_RESOURCE_GROUP)
                workspace_name = st.text_input("Workspace name", key=keys.SIDEBAR_AZURE_WORKSPACE)
                opened = st.form_submit_button("Sign in and open", icon=":material/cloud:", key=keys.SIDEBAR_OPEN_AZURE,
                                               help="Signs in with your Azure CLI login ('az login') "
                                                    "or the credentials in the environment.")
            if opened:
                with ui.errors(in_place=True):  # beside the form it concerns
                    context.choose_azure(config=config, subscription=subscription, resource_group=resource_group,
                                         workspace_name=workspace_name)
                    st.rerun()

try:
    info = context.workspace().info()
except ByomError as exc:
    ui.show_error(exc)
    st.stop()
st.sidebar.caption(f"{info.kind} · {ui.plain(info.name if info.kind == 'azure' else info.location)}")

ui.show_flash()
ui.apply_resets()
try:
    page.run()
except ByomError as exc:  # a call a page did not expect to fail (the Azure sign-in expired, ...)
    ui.show_error(exc)
