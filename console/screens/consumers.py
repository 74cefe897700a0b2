"""Consumers: an endpoint's named keys with their limits; one issued, changed, given a new key (shown once) or
deleted; and what each used."""

import streamlit as st
from byom.console import context, keys, pickers, ui
from byom.console.views import consumers as view
from byom.core.errors import Unsupported
from byom.core.rules import LIMIT_MAX
from byom.core.workspace import Capability

ws = context.workspace()


def limit_inputs(box_keys: dict[str, str], shown: dict[str, int] | None = None) -> dict[str, int]:
    """The three limit boxes in a row (0: no limit), showing ``shown``; their values by limit name."""
    return {name: int(column.number_input(label, min_value=0, max_value=LIMIT_MAX, step=step, help=help_text,
                                          value=(shown or {}).get(name, 0), key=box_keys[name]))
            for column, (name, (label, step, help_text)) in zip(st.columns(3), view.LIMIT_BOXES.items(), strict=True)}


def show_key(message: str, key: str) -> None:
    """A key, this once, in a box with a copy button (as the Endpoints page's Keys tab shows its keys)."""
    st.success(ui.plain(message) + " It is shown this once: copy it with the box's copy button now.",
               icon=":material/key:")
    st.code(key, language="text")


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
    new_limits = limit_inputs({"tokens_per_minute": keys.CONS_TPM, "requests_per_minute": keys.CONS_RPM,
                               "tokens_per_day": keys.CONS_TPD})
    created = st.form_submit_button("Issue the key", icon=":material/add:", key=keys.CONS_CREATE)
if created:
    with ui.errors(in_place=True):
        issued = ws.create_consumer(name, consumer.strip(), view.limits_given(new_limits))
        show_key(f"Consumer {issued.name} has this key.", issued.key)

consumers = ws.list_consumers(name)
st.dataframe(view.consumers_table(consumers), hide_index=True, width="stretch")

if consumers:
    with st.container(border=True):
        names = [c.name for c in consumers]
        if st.session_state.get(keys.CONS_MANAGE, names[0]) not in names:  # a consumer deleted since
            st.session_state.pop(keys.CONS_MANAGE)
        pick_col, _ = st.columns([1, 2])
        chosen = pick_col.selectbox("Change a consumer", names, key=keys.CONS_MANAGE)
        current = next(c for c in consumers if c.name == chosen)
        boxes = limit_inputs({limit: keys.consumer_limit(limit, current.name, current.updated_at)
                              for limit in view.LIMIT_BOXES}, view.limit_boxes(current))
        changes = view.limit_changes(current, boxes)
        save_col, regenerate_col, delete_col, _ = st.columns([1, 1, 1, 3])
        if save_col.button("Save limits", key=keys.CONS_SAVE, type="primary", icon=":material/save:",
                           disabled=not changes, help=None if changes else "Change a limit above first."):
            with ui.errors():
                ws.update_consumer(name, current.name, changes)
                ui.done(f"Saved the limits of {current.name}: {view.changes_text(current, changes)}.")
        regenerate = f"regenerate-consumer:{name}/{current.name.lower()}"
        delete = f"delete-consumer:{name}/{current.name.lower()}"
        if regenerate_col.button("Regenerate key", key=keys.CONS_REGENERATE, icon=":material/autorenew:"):
            ui.ask(regenerate)
        if delete_col.button("Delete", key=keys.CONS_DELETE, icon=":material/delete:"):
            ui.ask(delete)
        if ui.confirmed(regenerate, view.regenerate_question(current), label="Regenerate"):
            with ui.errors(in_place=True):
                reissued = ws.regenerate_consumer_key(name, current.name)
                show_key(f"Consumer {reissued.name} has a new key; the old one no longer works.", reissued.key)
        if ui.confirmed(delete, view.delete_question(current)):
            with ui.errors():
                ws.delete_consumer(name, current.name)
                ui.done(f"Deleted consumer {current.name}: its key no longer works.")

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
