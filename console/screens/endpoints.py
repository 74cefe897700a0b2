"""Endpoints: create, deploy (blue/green), move traffic, mirror, keys, logs, delete."""

import streamlit as st
from byom.console import context, files, keys, pickers, ui
from byom.console.views import common, traffic
from byom.console.views import endpoints as view
from byom.core import history, rules, traffic_rollout
from byom.core.demo import SCORING_DIR
from byom.core.entities import Deployment, Endpoint, RequestSettings
from byom.core.errors import InvalidInput, NotFound, Unsupported

LOG_HEIGHT = 360  # pixels: a long log scrolls inside its box, the page does not grow with it
METRICS_WINDOW_S = 3600

ws = context.workspace()


def log_box(endpoint_name: str, deployment: str, where: str = "") -> None:
    """A deployment's logs in a fixed-height box, with a search filter and a download of what is shown."""
    container_col, lines_col, search_col = st.columns([1, 1, 2])
    container = container_col.selectbox("Container", view.LOG_CONTAINERS, key=keys.log_widget(where, "container"))
    lines = lines_col.number_input("Lines", 10, 5000, 200, step=50, key=keys.log_widget(where, "lines"))
    query = search_col.text_input("Search", key=keys.log_widget(where, "search"),
                                  placeholder="error, 500, a request id…",
                                  help="Shows only the lines that hold this text (any case).")
    with ui.errors(in_place=True):
        log = ws.get_deployment_logs(endpoint_name, deployment, int(lines), container)
        shown, count, total = view.filter_log(log, query)
        st.code(shown or ("(no line holds that text)" if log else "(empty)"), language="text", height=LOG_HEIGHT)
        note_col, download_col = st.columns([3, 1], vertical_alignment="center")
        note_col.caption(f"{count} of {total} line(s)" + (f" holding '{ui.plain(query.strip())}'" if query.strip()
                                                             else ""))
        download_col.download_button("Download", data=shown or log, key=keys.log_widget(where, "download"),
                                     file_name=view.log_file_name(endpoint_name, deployment, container),
                                     mime="text/plain", icon=":material/download:", on_click="ignore")


def mirror_report(endpoint_name: str) -> None:
    """How the mirror answered beside the primary, per mirrored deployment, over a window."""
    with st.expander("Mirror report: the mirror's answers beside the primary's", expanded=True,
                     icon=":material/compare_arrows:"):
        window = st.columns(4)[0].selectbox("Window", traffic.MIRROR_WINDOWS, key=keys.MIRROR_REPORT_WINDOW,
                                            index=traffic.MIRROR_WINDOWS.index(traffic.DEFAULT_MIRROR_WINDOW))
        with ui.errors(in_place=True):
            try:
                rows = ws.mirror_report(endpoint_name, since=window)
            except Unsupported as exc:
                ui.explain(exc)
                return
            if rows:
                st.dataframe(traffic.mirror_table(rows), hide_index=True, width="stretch")
            st.caption(traffic.mirror_caption(rows, window))


def rollout_section(endpoint_name: str) -> None:
    """The endpoint's progressive rollout: live progress with an Abort button, and how past ones ended."""
    st.markdown("**Rollout**")
    try:
        latest = traffic_rollout.status(ws, endpoint_name)
    except NotFound:
        latest = None
    except Unsupported as exc:
        ui.explain(exc)
        return
    if latest is not None and latest.running:
        @st.fragment(run_every=2)
        def progress() -> None:
            with ui.errors():  # a fragment's own reruns bypass app.py's handler
                current = traffic_rollout.status(ws, endpoint_name)
                if current.id != latest.id or not current.running:
                    st.rerun()
                st.info(ui.plain(traffic.rollout_line(current)), icon=":material/trending_up:")
                st.caption(ui.plain(traffic.limits_text(current)))
                st.dataframe(traffic.steps_table(current), hide_index=True, width="stretch")

        progress()
        action = f"abort-rollout:{endpoint_name}:{latest.id}"
        if st.button("Abort rollout", key=keys.ROLLOUT_ABORT, icon=":material/stop_circle:",
                     disabled=bool(latest.abort_requested),
                     help="Stop the rollout and set the live split back to what it was before it."):
            ui.ask(action)
        if ui.confirmed(action, traffic.abort_question(latest), label="Abort rollout"):
            with ui.errors():
                asked = traffic_rollout.abort(ws, endpoint_name)
                ui.done(f"Asked rollout {asked.id} to abort: the split goes back to "
                        f"{history.split_text(asked.before)}.")
    else:
        if latest is not None:
            st.caption(ui.plain(traffic.rollout_line(latest)))
        st.caption(ui.plain(f"No rollout running. Start one with 'byom online-endpoint rollout -n {endpoint_name} "
                            "--to DEPLOYMENT --steps 10,50,100'."))
    past = traffic.past_rollouts(ws.list_audit(200, f"endpoint/{endpoint_name}"), endpoint_name)
    if not past.empty:
        st.markdown("Past rollouts")
        st.dataframe(past, hide_index=True, width="stretch")


st.title("Endpoints")

endpoints = ws.list_endpoints()

with st.expander("Create an endpoint", expanded=not endpoints, icon=":material/add:"):
    with st.form(keys.ENDPOINT_CREATE_FORM, border=False):
        new_name = st.text_input("Name", key=keys.ENDPOINT_CREATE_NAME,
                                 help="3-32 letters, digits and '-', starting with a letter.")
        new_description = st.text_input("Description", key=keys.ENDPOINT_CREATE_DESCRIPTION)
        if st.form_submit_button("Create endpoint", type="primary", key=keys.ENDPOINT_CREATE_SUBMIT):
            with ui.errors(), ui.progress(f"Creating endpoint {new_name.strip()}") as report:
                created = ws.create_or_update_endpoint(Endpoint(name=new_name.strip(), description=new_description),
                                                       progress=report)
                st.session_state[keys.ENDPOINT] = created.name
                ui.done(f"Created endpoint {created.name}. Deploy a model into it next.")

if not endpoints:
    st.info("No endpoints yet: create one above.")
    st.stop()

name = pickers.endpoint(endpoints)
endpoint = ws.get_endpoint(name)
deployments = ws.list_deployments(name)
dep_names = [d.name for d in deployments]

st.markdown(f"Scoring URI `{endpoint.scoring_uri or 'none: this workspace does not serve endpoints'}` · "
            f"traffic **{ui.plain(common.traffic_text(endpoint))}**")

tab_deploy, tab_details, tab_traffic, tab_keys, tab_logs, tab_delete = st.tabs(
    ["Deployments", "Deployment details", "Traffic", "Keys and code", "Logs", "Delete"], key=keys.ENDPOINT_TABS,
    on_change="rerun")

watched = st.session_state.get(keys.DEPLOY_WATCH)
if watched and watched[0] == name:
    kind, message, hint = view.deploy_feedback(
        watched[1], next((d for d in deployments if d.name.lower() == watched[1].lower()), None), endpoint.traffic)
    {"info": ui.top().info, "success": ui.top().success, "error": ui.top().error}[kind](ui.plain(message))
    if hint:
        ui.top().info(ui.plain(hint), icon=":material/arrow_forward:")
    if kind != "info":
        st.session_state.pop(keys.DEPLOY_WATCH)
        st.toast(ui.plain(message), icon=":material/check_circle:" if kind == "success" else ":material/error:")

# ---------------------------------------------------------------- deployments
with tab_deploy:
    busy = view.busy(deployments)

    @st.fragment(run_every=2 if busy else None)
    def deployment_states() -> None:
        with ui.errors():  # a fragment's own reruns bypass app.py's handler
            current = ws.list_deployments(name)
            st.dataframe(common.deployments_table(current, ws.get_endpoint(name)), hide_index=True, width="stretch")
            if busy and not view.busy(current):
                st.rerun()

    if deployments:
        deployment_states()
    else:
        st.info("No deployments yet: deploy a model version below.")

    model_refs = view.deployable_models(v for m in ws.list_models() for v in ws.list_model_versions(m.name))
    env_refs = view.deployable_environments(v for e in ws.list_environments()
                                            for v in ws.list_environment_versions(e.name))
    with st.container(border=True):
        st.markdown("**Deploy a model version**")
        code_col, script_col, _ = st.columns(3)
        code = code_col.text_input("Code folder", value=str(SCORING_DIR), key=keys.DEPLOY_CODE,
                                   help="Uploaded as the deployment's code; the repository's scoring/ folder "
                                        "by default.")
        scripts: list[str] = []
        with ui.errors():
            scripts = files.scoring_scripts(code.strip())
            if not scripts:
                st.warning("This folder holds no .py file: the scoring script must be one of its files.")
        script = script_col.selectbox("Scoring script", scripts, key=keys.DEPLOY_SCRIPT,
                                      index=view.script_index(scripts),
                                      help="Its init() and run() answer the requests: generate.py answers prompts, "
                                           "token_ranks.py scores token ranks.")
        with st.form(keys.DEPLOY_FORM, border=False):
            name_col, model_col, env_col = st.columns(3)
            st.session_state.setdefault(keys.DEPLOY_NAME, view.next_deployment_name(dep_names))
            dep_name = name_col.text_input("Deployment name", key=keys.DEPLOY_NAME)
            model_ref = model_col.selectbox("Model version", model_refs, key=keys.DEPLOY_MODEL,
                                            placeholder="Register a model first")
            env_ref = env_col.selectbox("Environment", env_refs, key=keys.DEPLOY_ENVIRONMENT)
            count_col, timeout_col, concurrency_col = st.columns(3)
            for key, default in view.DEPLOY_DEFAULTS_BY_KEY.items():
                st.session_state.setdefault(key, default)
            instances = count_col.number_input("Instances", 1, 20, key=keys.DEPLOY_INSTANCES)
            timeout_ms = timeout_col.number_input("Request timeout (ms)", 1, 600_000, step=1000,
                                                  key=keys.DEPLOY_TIMEOUT)
            concurrency = concurrency_col.number_input("Max concurrent requests per instance", 1, 64,
                                                       key=keys.DEPLOY_CONCURRENCY)
            submitted = st.form_submit_button("Deploy", type="primary", icon=":material/rocket_launch:",
                                              key=keys.DEPLOY_SUBMIT)
    # Deploying under a running deployment's name replaces it in place, live traffic and all: ask first.
    replaced = view.replaced_deployment(deployments, dep_name)
    redeploy = f"redeploy:{name}/{dep_name.strip().lower()}"
    if submitted and replaced is not None:
        ui.ask(redeploy)
        submitted = False
    if replaced is not None and ui.confirmed(
            redeploy, view.redeploy_question(replaced, endpoint.traffic, model_ref, script, env_ref), label="Replace"):
        submitted = True
    if submitted:
        with ui.errors(), ui.progress(f"Deploying {dep_name} into {name}") as report:
            if not model_ref:
                raise InvalidInput("There is no model version to deploy.",
                                   hint="Register a model on the Models page first.")
            if not dep_name.strip():
                raise InvalidInput("Enter a name for the deployment.", hint="3-32 letters, digits and '-'.")
            if not script:
                raise InvalidInput("Choose the scoring script first.",
                                   hint="Enter a code folder that holds it; its .py files are offered.")
            # Not waited for here: the table shows it Creating and follows it live; the top of the page says
            # how it ended (the watch below).
            deployment = ws.create_or_update_deployment(
                Deployment(
                    name=dep_name.strip(), endpoint_name=name, model=model_ref, environment=env_ref,
                    code_path=code.strip() or None, scoring_script=script,
                    instance_count=int(instances),
                    request_settings=RequestSettings(request_timeout_ms=int(timeout_ms),
                                                     max_concurrent_requests_per_instance=int(concurrency)),
                ),
                wait=False, progress=report,
            )
            st.session_state[keys.DEPLOY_WATCH] = (name, deployment.name)
            ui.reset_later({keys.DEPLOY_NAME: view.next_deployment_name([*dep_names, deployment.name]),
                            **view.DEPLOY_DEFAULTS_BY_KEY})  # the form starts afresh, with the next free name
            st.rerun()

    if deployments:
        st.markdown("**Scale or delete a deployment**")
        pick_col, count_col, scale_col, delete_col = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
        target = pick_col.selectbox("Deployment", dep_names, key=keys.MANAGE_DEPLOYMENT)
        current = next(d for d in deployments if d.name == target)
        count = count_col.number_input("Instances", 1, 20, current.instance_count, key=keys.scale_count(target))
        if scale_col.button("Scale", key=keys.SCALE):
            with ui.errors(), ui.progress(f"Scaling {target} to {count}") as report:
                ws.scale_deployment(name, target, int(count), progress=report)
                ui.done(f"{target} runs {count} instance(s).")
        if delete_col.button("Delete", key=keys.DELETE_DEPLOYMENT, icon=":material/delete:"):
            ui.ask(f"delete-deployment:{name}/{target}")
        if ui.confirmed(f"delete-deployment:{name}/{target}", view.delete_deployment_question(current, endpoint)):
            with ui.errors(), ui.progress(f"Deleting deployment {target}") as report:
                ws.delete_deployment(name, target, progress=report)
                ui.done(f"Deleted deployment {target}.")

# ------------------------------------------------------- one deployment's page
with tab_details:
    if not deployments:
        st.info("No deployments yet: deploy a model version in the Deployments tab.")
    else:
        chosen_name = st.selectbox("Deployment", dep_names, key=keys.DEPLOYMENT_PAGE)
        shown_dep = next(d for d in deployments if d.name == chosen_name)
        facts_col, instances_col = st.columns([3, 2])
        with facts_col:
            st.markdown(f"**{ui.plain(shown_dep.name)}** on {ui.plain(name)}")
            st.dataframe(view.deployment_facts(shown_dep, endpoint), hide_index=True, width="stretch")
        with instances_col:
            st.markdown("**Instances**")
            if shown_dep.instances:
                st.dataframe(view.instances_table(shown_dep), hide_index=True, width="stretch")
            else:
                st.caption(f"{shown_dep.instance_count} instance(s) asked for; the backend reports none by name.")
            st.markdown(f"**Metrics** (last {METRICS_WINDOW_S // 60} minutes)")
            try:
                measured = view.metrics_table(ws.get_metrics(name, METRICS_WINDOW_S), shown_dep.name)
                if measured.empty:
                    st.caption("No requests reached it in the window.")
                else:
                    st.dataframe(measured, hide_index=True, width="stretch")
                st.caption("The Monitoring page charts them over time.")
            except Unsupported as exc:
                ui.explain(exc)

        with st.container(border=True):
            st.markdown(f"**Update {ui.plain(shown_dep.name)}**: a new model version, environment or scoring script "
                        "(instances restart; to change only their number, use Scale in the Deployments tab)")
            model_options, model_index = view.with_current(model_refs, shown_dep.model)
            env_options, env_index = view.with_current(env_refs, shown_dep.environment)
            script_options, script_index = view.with_current([], shown_dep.scoring_script)
            code_here = files.is_folder(shown_dep.code_path or "")
            if code_here:
                with ui.errors(in_place=True):
                    script_options, script_index = view.with_current(
                        files.scoring_scripts(str(shown_dep.code_path)), shown_dep.scoring_script)
            rev = shown_dep.updated_at  # fresh boxes, showing what it runs, after every change to it
            model_col, env_col, script_col = st.columns(3)
            new_model = model_col.selectbox("Model version", model_options, key=keys.update_widget("model", rev),
                                            index=model_index)
            new_env = env_col.selectbox("Environment", env_options, key=keys.update_widget("environment", rev),
                                        index=env_index)
            new_script = script_col.selectbox(
                "Scoring script", script_options, key=keys.update_widget("script", rev),
                index=script_index, disabled=not code_here,
                help=f"A file of its code folder {shown_dep.code_path}." if code_here else
                "Its code is not a folder on this machine: only its model and environment can change here.")
            asked = view.update_changes(shown_dep, new_model, new_env, new_script)
            update_action = f"update:{name}/{shown_dep.name.lower()}"
            if st.button("Update", key=keys.UPDATE_DEPLOYMENT, type="primary", icon=":material/published_with_changes:",
                         disabled=not asked or view.busy([shown_dep]),
                         help="Choose another model version, environment or script first." if not asked else None):
                ui.ask(update_action)
            if asked and ui.confirmed(update_action, view.update_question(shown_dep, asked, endpoint, new_script),
                                        label="Update"):
                with ui.errors(), ui.progress(f"Updating {shown_dep.name}: {'; '.join(asked)}") as report:
                    # The Workspace's one update path (as 'byom online-deployment update'); not waited for here:
                    # the top of the page follows it to its outcome.
                    result = ws.create_or_update_deployment(
                        view.updated(shown_dep, new_model, new_env, new_script), wait=False, progress=report)
                    st.session_state[keys.DEPLOY_WATCH] = (name, result.name)
                    st.rerun()

        st.markdown("**Logs**")
        log_box(name, shown_dep.name, where="details")

# -------------------------------------------------------------------- traffic
with tab_traffic:
    if not deployments:
        st.info("Deploy a model first; traffic is split between deployments.")
    else:
        revision = endpoint.updated_at
        st.markdown("**Live traffic** (whole percentages, totalling 100, or 0 to stop all traffic)")
        shares = st.columns(len(deployments))
        proposed = {
            d.name: int(shares[i].number_input(d.name, 0, 100, endpoint.traffic.get(d.name.lower(), 0), step=5,
                                               key=keys.traffic_input(d.name, revision)))
            for i, d in enumerate(deployments)
        }
        st.markdown("**Mirror traffic** (a copy of live requests; callers never get the mirror's answers)")
        target_col, percent_col = st.columns(2)
        options, index, percent = view.mirror_choice(endpoint.mirror_traffic, dep_names)
        mirror_to = target_col.selectbox("Mirror to", options, index=index, key=keys.mirror_target(revision))
        mirror_pct = percent_col.number_input("Mirror %", 1, 100, percent, key=keys.mirror_percent(revision),
                                              disabled=mirror_to == view.NO_MIRROR)
        mirror = view.mirror_split(mirror_to, int(mirror_pct))

        st.caption(f"Total live traffic: {sum(proposed.values())} %")
        refused = None
        try:
            rules.validate_traffic(proposed, mirror, dep_names)
        except InvalidInput as exc:
            refused = exc
            st.error(f"This split would be refused: {ui.plain(exc.message)}", icon=":material/block:")
        shift = history.largest_shift(endpoint.traffic, proposed)
        confirmed_large = True
        if refused is None and shift >= history.LARGE_SHIFT:
            confirmed_large = st.checkbox(f"Yes, move {shift} percentage points of live traffic at once",
                                          key=keys.confirm_large_shift(revision))
        if st.button("Apply traffic", type="primary", key=keys.TRAFFIC_APPLY,
                     disabled=refused is not None or not confirmed_large):
            with ui.errors(), ui.progress("Applying the new traffic split") as report:
                ws.set_traffic(name, proposed, mirror, progress=report)
                ui.done(f"Traffic of {name} is now {history.split_text(proposed, mirror)}.")

        mirror_report(name)
        rollout_section(name)

        st.markdown("**History**")
        changes = history.traffic_history(ws, name)
        if not changes:
            st.caption("No traffic changes yet.")
        for change in changes:
            planned = history.revert_of(name, change, dep_names)
            before, after = view.change_texts(change)
            row = st.columns([2, 1, 4, 1], vertical_alignment="center")
            row[0].text(common.short_time(change.at))
            row[1].text(change.actor)
            row[2].markdown(f"{ui.plain(before)} → **{ui.plain(after)}**")
            if planned.refusal:
                row[2].caption(ui.plain(planned.refusal))
            revert = f"revert:{name}:{change.id}"
            shift = history.largest_shift(endpoint.traffic, planned.traffic)
            go = row[3].button("Revert", key=keys.revert_button(change.id), disabled=bool(planned.refusal),
                               help=planned.refusal or "Set traffic back to what it was before this change.")
            if go and shift >= history.LARGE_SHIFT:
                ui.ask(revert)
                go = False
            if ui.confirmed(revert, view.revert_question(planned, shift), label="Revert"):
                go = True
            if go:
                with ui.errors(), ui.progress("Reverting the traffic split") as report:
                    history.apply_revert(ws, planned, progress=report)
                    ui.done(f"Reverted {name} to {history.split_text(planned.traffic, planned.mirror_traffic)}.")

# ---------------------------------------------------------------- keys & code
with tab_keys:
    endpoint_keys = None
    show = False
    with ui.errors():
        endpoint_keys = ws.get_keys(name)
        show = st.toggle("Show keys", key=keys.SHOW_KEYS,
                         help="Shown keys, and the code below with the primary key in it, can be copied with the "
                              "box's copy button.")
        for label, key_type, value in (("Primary key", "primary", endpoint_keys.primary_key),
                                       ("Secondary key", "secondary", endpoint_keys.secondary_key)):
            key_col, button_col = st.columns([5, 1], vertical_alignment="bottom")
            key_col.caption(label)
            key_col.code(value if show else ui.mask(value), language="text")
            if button_col.button("Regenerate", key=keys.regenerate_button(key_type)):
                ui.ask(f"regenerate:{name}:{key_type}")
            if ui.confirmed(f"regenerate:{name}:{key_type}", view.regenerate_key_question(name, key_type),
                            label="Regenerate"):
                with ui.progress(f"Regenerating the {key_type} key of {name}") as report:
                    ws.regenerate_key(name, key_type, progress=report)
                ui.done(f"Regenerated the {key_type} key of {name}.")

    st.markdown(f"Swagger: `{endpoint.swagger_uri}`")
    target_dep = st.selectbox("Call", [view.SPLIT_TARGET, *dep_names], key=keys.SNIPPET_TARGET)
    chosen_dep = next((d for d in deployments if d.name == target_dep), None)
    payload = view.sample_payload(chosen_dep)
    snippet_dep = chosen_dep.name if chosen_dep else None
    curl_text = common.curl_snippet(endpoint, payload, snippet_dep)
    python_text = common.python_snippet(endpoint, payload, snippet_dep)
    if show and endpoint_keys is not None and endpoint_keys.primary_key:
        st.caption("Ready to run: the primary key is in the code. Copy it with the box's copy button; "
                   "turn off 'Show keys' before sharing your screen.")
        curl_text = view.ready_to_run(curl_text, "bash", endpoint_keys.primary_key)
        python_text = view.ready_to_run(python_text, "python", endpoint_keys.primary_key)
    else:
        st.caption("Set BYOM_KEY to one of the keys above first, or turn on 'Show keys' for code with the key in it, "
                   "ready to copy and run.")
    curl, python = st.tabs(["curl", "Python requests"])
    curl.code(curl_text, language="bash")
    python.code(python_text, language="python")

# ----------------------------------------------------------------------- logs
with tab_logs:
    if not deployments:
        st.info("No deployments, so no logs.")
    else:
        log_dep = st.selectbox("Deployment", dep_names, key=keys.LOG_DEPLOYMENT)
        log_box(name, log_dep)

# --------------------------------------------------------------------- delete
with tab_delete:
    st.write(f"Deleting **{ui.plain(name)}** stops and deletes its {len(deployments)} deployment(s) and its keys.")
    if st.button("Delete endpoint", key=keys.DELETE_ENDPOINT, icon=":material/delete_forever:"):
        ui.ask(f"delete-endpoint:{name}")
    if ui.confirmed(f"delete-endpoint:{name}", view.delete_endpoint_question(name, dep_names)):
        with ui.errors(), ui.progress(f"Deleting endpoint {name} and its deployments") as report:
            ws.delete_endpoint(name, progress=report)
            st.session_state[keys.ENDPOINT] = None
            ui.done(f"Deleted endpoint {name}.")
