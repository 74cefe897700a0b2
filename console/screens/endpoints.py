"""Endpoints: create, deploy (blue/green), move traffic, mirror, keys, logs, delete."""

import streamlit as st
from byom.console import context, keys, ui, views
from byom.core import rules
from byom.core.demo import GENERATION_SCRIPT, SCORING_DIR
from byom.core.entities import Deployment, Endpoint, RequestSettings
from byom.core.errors import BackendError, InvalidInput

ws = context.workspace()

st.title("Endpoints")

endpoints = ws.list_endpoints()

with st.expander("Create an endpoint", expanded=not endpoints, icon=":material/add:"):
    with st.form("endpoints.create", border=False):
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

names = [e.name for e in endpoints]
chosen = st.session_state.get(keys.ENDPOINT)
name = st.selectbox("Endpoint", names, index=names.index(chosen) if chosen in names else 0)
st.session_state[keys.ENDPOINT] = name
endpoint = ws.get_endpoint(name)
deployments = ws.list_deployments(name)
dep_names = [d.name for d in deployments]

st.markdown(f"Scoring URI `{endpoint.scoring_uri or 'none: this workspace does not serve endpoints'}` · "
            f"traffic **{ui.plain(views.split_text(endpoint.traffic, endpoint.mirror_traffic))}**")

tab_deploy, tab_traffic, tab_keys, tab_logs, tab_delete = st.tabs(
    ["Deployments", "Traffic", "Keys and code", "Logs", "Delete"], key=keys.ENDPOINT_TABS, on_change="rerun")

# ---------------------------------------------------------------- deployments
with tab_deploy:
    busy = [d for d in deployments if d.provisioning_state in ("Creating", "Updating", "Scaling", "Deleting")]

    @st.fragment(run_every=2 if busy else None)
    def deployment_states() -> None:
        with ui.errors():  # a fragment's own reruns bypass app.py's handler
            current = ws.list_deployments(name)
            st.dataframe(views.deployments_table(current, ws.get_endpoint(name)), hide_index=True, width="stretch")
            if busy and not any(d.provisioning_state in ("Creating", "Updating", "Scaling", "Deleting") for d in current):
                st.rerun()

    if deployments:
        deployment_states()
    else:
        st.info("No deployments yet: deploy a model version below.")

    model_refs = [v.ref for m in ws.list_models() for v in ws.list_model_versions(m.name)]
    env_refs = [v.name if v.built_in else v.ref for e in ws.list_environments()
                for v in ws.list_environment_versions(e.name) if not v.archived]
    with st.container(border=True):
        st.markdown("**Deploy a model version**")
        cols = st.columns(3)
        code = cols[0].text_input("Code folder", value=str(SCORING_DIR), key=keys.DEPLOY_CODE,
                                  help="Uploaded as the deployment's code; the repository's scoring/ folder by default.")
        scripts: list[str] = []
        with ui.errors():
            scripts = views.scoring_scripts(code.strip())
            if not scripts:
                st.warning("This folder holds no .py file: the scoring script must be one of its files.")
        script = cols[1].selectbox("Scoring script", scripts, key=keys.DEPLOY_SCRIPT,
                                   index=scripts.index(GENERATION_SCRIPT) if GENERATION_SCRIPT in scripts else 0,
                                   help="Its init() and run() answer the requests: generate.py answers prompts, "
                                        "token_ranks.py scores token ranks.")
        with st.form("endpoints.deploy", border=False):
            suggested = next((n for n in ("blue", "green") if n not in [d.lower() for d in dep_names]), "")
            cols = st.columns(3)
            dep_name = cols[0].text_input("Deployment name", value=suggested, key=keys.DEPLOY_NAME)
            model_ref = cols[1].selectbox("Model version", model_refs, key=keys.DEPLOY_MODEL,
                                          placeholder="Register a model first")
            env_ref = cols[2].selectbox("Environment", env_refs, key=keys.DEPLOY_ENVIRONMENT)
            cols = st.columns(3)
            instances = cols[0].number_input("Instances", 1, 20, 1, key=keys.DEPLOY_INSTANCES)
            timeout_ms = cols[1].number_input("Request timeout (ms)", 1, 600_000, 60_000, step=1000,
                                              key=keys.DEPLOY_TIMEOUT)
            concurrency = cols[2].number_input("Max concurrent requests per instance", 1, 64, 1,
                                               key=keys.DEPLOY_CONCURRENCY)
            submitted = st.form_submit_button("Deploy", type="primary", icon=":material/rocket_launch:",
                                              key=keys.DEPLOY_SUBMIT)
    # Deploying under a running deployment's name replaces it in place, live traffic and all: ask first.
    replaced = next((d for d in deployments if d.name.lower() == dep_name.strip().lower()
                     and d.provisioning_state != "Failed"), None)
    redeploy = f"redeploy:{name}/{dep_name.strip().lower()}"
    if submitted and replaced is not None:
        ui.ask(redeploy)
        submitted = False
    if replaced is not None and ui.confirmed(
            redeploy, f"Deployment {replaced.name} already exists on {name} with "
                      f"{endpoint.traffic.get(replaced.name.lower(), 0)} % of live traffic: replace it in place "
                      f"with {model_ref}?", label="Replace"):
        submitted = True
    if submitted:
        with ui.errors(), ui.progress(f"Deploying {dep_name} into {name}") as report:
            if not model_ref:
                raise InvalidInput("There is no model version to deploy.", hint="Register a model on the Models page first.")
            if not script:
                raise InvalidInput("Choose the scoring script first.",
                                   hint="Enter a code folder that holds it; its .py files are offered.")
            deployment = ws.create_or_update_deployment(
                Deployment(
                    name=dep_name.strip(), endpoint_name=name, model=model_ref, environment=env_ref,
                    code_path=code.strip() or None, scoring_script=script,
                    instance_count=int(instances),
                    request_settings=RequestSettings(request_timeout_ms=int(timeout_ms),
                                                     max_concurrent_requests_per_instance=int(concurrency)),
                ),
                progress=report,
            )
            if deployment.provisioning_state == "Failed":
                raise BackendError(f"Deployment {deployment.name} failed: {deployment.state_reason}",
                                   hint="Read its logs in the Logs tab, fix the cause and deploy again under the "
                                        "same name.")
            st.session_state.pop(keys.DEPLOY_NAME, None)  # the next deployment gets the next free name
            ui.done(f"Deployment {deployment.name} is {deployment.provisioning_state}. "
                    "It gets no traffic until you give it some in the Traffic tab.")

    if deployments:
        st.markdown("**Scale or delete a deployment**")
        cols = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
        target = cols[0].selectbox("Deployment", dep_names, key="endpoints.manage.deployment")
        current = next(d for d in deployments if d.name == target)
        count = cols[1].number_input("Instances", 1, 20, current.instance_count, key=f"endpoints.scale.{target}")
        if cols[2].button("Scale", key="endpoints.scale"):
            with ui.errors(), ui.progress(f"Scaling {target} to {count}") as report:
                ws.scale_deployment(name, target, int(count), progress=report)
                ui.done(f"{target} runs {count} instance(s).")
        if cols[3].button("Delete", key="endpoints.delete_deployment", icon=":material/delete:"):
            ui.ask(f"delete-deployment:{name}/{target}")
        if ui.confirmed(f"delete-deployment:{name}/{target}", f"Delete deployment {target} of {name}?"):
            with ui.errors(), ui.progress(f"Deleting deployment {target}") as report:
                ws.delete_deployment(name, target, progress=report)
                ui.done(f"Deleted deployment {target}.")

# -------------------------------------------------------------------- traffic
with tab_traffic:
    if not deployments:
        st.info("Deploy a model first; traffic is split between deployments.")
    else:
        revision = endpoint.updated_at
        st.markdown("**Live traffic** (whole percentages, totalling 100, or 0 to stop all traffic)")
        cols = st.columns(len(deployments))
        proposed = {
            d.name: int(cols[i].number_input(d.name, 0, 100, endpoint.traffic.get(d.name.lower(), 0), step=5,
                                             key=keys.traffic_input(d.name, revision)))
            for i, d in enumerate(deployments)
        }
        st.markdown("**Mirror traffic** (a copy of live requests; answers are discarded)")
        cols = st.columns(2)
        current_mirror = next(iter(endpoint.mirror_traffic.items()), (None, 10))
        options = ["none", *dep_names]
        mirror_to = cols[0].selectbox(
            "Mirror to", options,
            index=options.index(next((n for n in dep_names if n.lower() == current_mirror[0]), "none")),
            key=f"{keys.MIRROR_TARGET}.{revision}")
        mirror_pct = cols[1].number_input("Mirror %", 1, 100, int(current_mirror[1]),
                                          key=f"{keys.MIRROR_PERCENT}.{revision}", disabled=mirror_to == "none")
        mirror = {} if mirror_to == "none" else {mirror_to: int(mirror_pct)}

        st.caption(f"Total live traffic: {sum(proposed.values())} %")
        refused = None
        try:
            rules.validate_traffic(proposed, mirror, dep_names)
        except InvalidInput as exc:
            refused = exc
            st.error(f"This split would be refused: {ui.plain(exc.message)}", icon=":material/block:")
        shift = views.largest_shift(endpoint.traffic, {k.lower(): v for k, v in proposed.items()})
        confirmed_large = True
        if refused is None and shift >= views.LARGE_SHIFT:
            confirmed_large = st.checkbox(f"Yes, move {shift} percentage points of live traffic at once",
                                          key=f"{keys.TRAFFIC_CONFIRM_LARGE}.{revision}")
        if st.button("Apply traffic", type="primary", key=keys.TRAFFIC_APPLY,
                     disabled=refused is not None or not confirmed_large):
            with ui.errors(), ui.progress("Applying the new traffic split") as report:
                ws.set_traffic(name, proposed, mirror, progress=report)
                ui.done(f"Traffic of {name} is now {views.split_text(proposed, mirror)}.")

        st.markdown("**History**")
        history = views.traffic_history(ws.list_audit(limit=50, target_prefix=f"endpoint/{name}"))
        if not history:
            st.caption("No traffic changes yet.")
        for change in history:
            before, mirror_before, why_not = views.revert_split(change, dep_names)
            row = st.columns([2, 1, 4, 1], vertical_alignment="center")
            row[0].text(views.short_time(change.at))
            row[1].text(change.actor)
            row[2].markdown(f"{ui.plain(views.split_text(change.before, change.mirror_before))} → "
                            f"**{ui.plain(views.split_text(change.after, change.mirror_after))}**")
            if why_not:
                row[2].caption(ui.plain(why_not))
            revert = f"revert:{name}:{change.id}"
            shift = views.largest_shift(endpoint.traffic, before)
            go = row[3].button("Revert", key=keys.revert_button(change.id), disabled=bool(why_not),
                               help=why_not or "Set traffic back to what it was before this change.")
            if go and shift >= views.LARGE_SHIFT:
                ui.ask(revert)
                go = False
            if ui.confirmed(revert, f"Reverting moves {shift} percentage points of live traffic at once: set {name} "
                                    f"to {views.split_text(before, mirror_before)}?", label="Revert"):
                go = True
            if go:
                with ui.errors(), ui.progress("Reverting the traffic split") as report:
                    rules.validate_traffic(before, mirror_before, dep_names)
                    ws.set_traffic(name, before, mirror_before, progress=report)
                    ui.done(f"Reverted {name} to {views.split_text(before, mirror_before)}.")

# ---------------------------------------------------------------- keys & code
with tab_keys:
    with ui.errors():
        endpoint_keys = ws.get_keys(name)
        show = st.toggle("Show keys", key=keys.SHOW_KEYS, help="Shown keys can be copied with the box's copy button.")
        for label, key_type, value in (("Primary key", "primary", endpoint_keys.primary_key),
                                       ("Secondary key", "secondary", endpoint_keys.secondary_key)):
            cols = st.columns([5, 1], vertical_alignment="bottom")
            cols[0].caption(label)
            cols[0].code(value if show else ui.mask(value), language="text")
            if cols[1].button("Regenerate", key=f"endpoints.keys.regenerate.{key_type}"):
                ui.ask(f"regenerate:{name}:{key_type}")
            if ui.confirmed(f"regenerate:{name}:{key_type}",
                            f"Regenerate the {key_type} key of {name}? Clients using it stop working.",
                            label="Regenerate"):
                with ui.progress(f"Regenerating the {key_type} key of {name}") as report:
                    ws.regenerate_key(name, key_type, progress=report)
                ui.done(f"Regenerated the {key_type} key of {name}.")

    st.markdown(f"Swagger: `{endpoint.swagger_uri}`")
    target_dep = st.selectbox("Call", ["the traffic split", *dep_names], key="endpoints.snippet.target")
    chosen_dep = next((d for d in deployments if d.name == target_dep), None)
    is_ranks = chosen_dep is not None and (chosen_dep.scoring_script or "").endswith("token_ranks.py")
    payload = {"text": "The quick brown fox."} if is_ranks else {"prompt": "Say hello.", "max_new_tokens": 32}
    snippet_dep = chosen_dep.name if chosen_dep else None
    st.caption("Set BYOM_KEY to one of the keys above first.")
    curl, python = st.tabs(["curl", "Python requests"])
    curl.code(views.curl_snippet(endpoint, payload, snippet_dep), language="bash")
    python.code(views.python_snippet(endpoint, payload, snippet_dep), language="python")

# ----------------------------------------------------------------------- logs
with tab_logs:
    if not deployments:
        st.info("No deployments, so no logs.")
    else:
        cols = st.columns(3)
        log_dep = cols[0].selectbox("Deployment", dep_names, key=keys.LOG_DEPLOYMENT)
        container = cols[1].selectbox("Container", ["inference-server", "storage-initializer"], key=keys.LOG_CONTAINER)
        lines = cols[2].number_input("Lines", 10, 5000, 200, step=50, key=keys.LOG_LINES)
        with ui.errors():
            st.code(ws.get_deployment_logs(name, log_dep, int(lines), container) or "(empty)", language="text")

# --------------------------------------------------------------------- delete
with tab_delete:
    st.write(f"Deleting **{ui.plain(name)}** stops and deletes its {len(deployments)} deployment(s) and its keys.")
    if st.button("Delete endpoint", key="endpoints.delete", icon=":material/delete_forever:"):
        ui.ask(f"delete-endpoint:{name}")
    if ui.confirmed(f"delete-endpoint:{name}", f"Delete endpoint {name} and all its deployments?"):
        with ui.errors(), ui.progress(f"Deleting endpoint {name} and its deployments") as report:
            ws.delete_endpoint(name, progress=report)
            st.session_state[keys.ENDPOINT] = None
            ui.done(f"Deleted endpoint {name}.")
