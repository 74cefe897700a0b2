"""The console's entry script: `streamlit run console/app.py`.

It sets up the page, draws the sidebar's workspace switcher and hands over to
the chosen page. Pages are in ``console/screens`` (not ``pages/``: a folder
of that name beside the entry script switches Streamlit, AppTest at least,
to its older multipage mode, which skips this script on reruns); each reads
like a description of its screen and calls only the Workspace contract.
"""

from pathlib import Path

import streamlit as st

from console import context, keys, ui
from core.errors import ByomError

HERE = Path(__file__).parent

st.set_page_config(page_title="byom console", page_icon=":material/hub:", layout="wide")

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
    ],
}
page = st.navigation(PAGES)

with st.sidebar:
    st.caption("Workspace")
    if keys.WORKSPACE in st.session_state:
        st.text("Provided by the host application")
    else:
        kind = st.radio(
            "Backend",
            ["Local", "Azure ML"],
            captions=["A folder on this machine", "Coming soon"],
            horizontal=True,
            label_visibility="collapsed",
            disabled=False,
            key="sidebar.backend",
        )
        if kind == "Azure ML":
            st.info("Azure ML workspaces are coming in a later version; the console shows the local one.")
        with st.form("sidebar.switch", border=False):
            home = st.text_input("Local workspace home", value=context.location(),
                                 help="A folder; `:memory:` opens a demo workspace kept in memory.")
            if st.form_submit_button("Open", icon=":material/folder_open:"):
                context.choose(home)
                st.rerun()

try:
    info = context.workspace().info()
except ByomError as exc:
    ui.show_error(exc)
    st.stop()
st.sidebar.caption(f"{info.kind} · {ui.plain(info.location)}")

ui.show_flash()
page.run()
