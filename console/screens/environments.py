"""Environments: versions, the conda spec, a diff of two versions, the build and its log, drift, archive."""

import streamlit as st
from byom.console import context, keys, ui
from byom.console.views import common
from byom.console.views import environments as view
from byom.core.entities import EnvironmentSpec
from byom.core.errors import ByomError, InvalidInput, Unsupported
from byom.core.usage import all_deployments, environment_usage
from byom.core.workspace import Capability

LOG_HEIGHT = 320  # pixels: a long log scrolls inside its box, the page does not grow with it

ws = context.workspace()
builds = ws.supports(Capability.ENVIRONMENT_BUILDS)

st.title("Environments")

show_archived = st.toggle("Show archived", key=keys.ENV_SHOW_ARCHIVED)
envs = ws.list_environments(include_archived=show_archived)
usage = environment_usage(all_deployments(ws))

browse, create = st.tabs(["Environments", "Create an environment"], key=keys.ENV_TABS, on_change="rerun")

with create, st.form(keys.ENV_CREATE_FORM):
    name = st.text_input("Name", key=keys.ENV_CREATE_NAME)
    conda = st.text_area("Conda specification (YAML)", key=keys.ENV_CREATE_CONDA, height=220,
                         placeholder="name: scoring\ndependencies:\n  - python=3.11\n  - pip:\n    - torch==2.13.0")
    image = st.text_input("Base image (optional)", key=keys.ENV_CREATE_IMAGE)
    build_context = ""
    if ws.supports(Capability.DOCKER_BUILDS):
        build_context = st.text_input("Or a Docker build context", key=keys.ENV_CREATE_BUILD_CONTEXT,
                                      placeholder="/src/docker-context (a folder holding a Dockerfile)",
                                      help="Uploaded, and built into an image by the workspace; leave the conda "
                                           "specification and the image empty.")
    if st.form_submit_button("Create", type="primary", key=keys.ENV_CREATE_SUBMIT):
        with ui.errors(), st.spinner(f"Creating environment {ui.plain(name.strip())}…"):
            refusal = view.create_refusal(name, conda, image, build_context)
            if refusal:
                raise InvalidInput(refusal)
            env = ws.create_environment(EnvironmentSpec(name=name.strip(), conda_file=conda or None,
                                                        image=image.strip() or None,
                                                        build_context=build_context.strip() or None))
            st.session_state[keys.ENVIRONMENT] = env.name
            st.session_state[keys.environment_version(env.name)] = env.version
            ui.reset_later(keys.ENV_CREATE_CLEARED)  # the form starts afresh
            ui.done(f"Created environment {env.ref}.")

with browse:
    st.dataframe(view.environments_table(envs, usage), hide_index=True, width="stretch")
    name = st.selectbox("Environment", [e.name for e in envs], key=keys.ENVIRONMENT)
    versions = ws.list_environment_versions(name)
    st.dataframe(view.environment_versions_table(versions, usage), hide_index=True, width="stretch")
    number = st.selectbox("Version", [v.version for v in versions], key=keys.environment_version(name))
    env = next(v for v in versions if v.version == number)

    spec, build_col = st.columns(2)
    with spec:
        st.subheader(f"Specification of {env.ref}")
        if env.built_in:
            st.write(ui.plain(env.description))
        if env.conda_file:
            st.code(env.conda_file, language="yaml")
        if env.image:
            st.markdown(f"Image: `{env.image}`")
        if env.build_context:
            st.markdown(f"Built from the Docker context `{env.build_context}` "
                        f"(`{env.dockerfile_path or 'Dockerfile'}`)")
        st.caption(ui.plain(view.users_text(usage, env)))
        if env.archived:
            if st.button("Restore", key=keys.ENV_RESTORE, icon=":material/unarchive:"):
                with ui.errors():
                    ws.restore_environment(name, number)
                    ui.done(f"Restored {env.ref}.")
        elif not env.built_in and st.button(
                "Archive", key=keys.ENV_ARCHIVE, icon=":material/archive:",
                help="Hidden from lists, from 'latest' and from the deploy form; deployments keep running."):
            with ui.errors():
                ws.archive_environment(name, number)
                ui.done(f"Archived {env.ref}: turn on 'Show archived' to see it again.")

    with build_col:
        st.subheader("Build")
        build = ws.get_environment_build(name, number)
        if not builds:
            st.info(f"**Build status is not available on this {ui.plain(ws.info().kind)} workspace.** "
                    f"{ui.plain(build.message)}", icon=":material/info:")
        else:
            state_line = st.empty()
            state_line.markdown(view.build_line(build.state, build.message))
            if build.interpreter:
                st.caption(f"Interpreter: {ui.plain(build.interpreter)}")
            if not env.built_in and st.button("Build now", key=keys.ENV_BUILD, icon=":material/build:"):
                state_line.markdown(view.build_line("Running", "Starting the build"))
                with ui.errors(), ui.progress(f"Building {env.ref}") as report:
                    def live(message: str, fraction: float | None = None) -> None:
                        report(message, fraction)
                        state_line.markdown(view.build_line("Running", message))

                    result = ws.build_environment(name, number, progress=live)
                    ui.done(f"Build of {env.ref}: {common.build_state(result.state)}.")
            log_title, log_toggle = st.columns([2, 1], vertical_alignment="bottom")
            log_title.markdown("**Build log**")
            show_all = log_toggle.toggle("Show every line", key=keys.ENV_LOG_ALL,
                                         help="pip's progress bars, downloads and 'Requirement already satisfied'.")
            log_text, hidden = view.build_log_text(build.log, show_all)
            st.code(log_text or "No log yet.", language="text", height=LOG_HEIGHT)
            if hidden:
                st.caption(f"{hidden} line(s) of pip progress and downloads hidden; errors are always shown.")

    st.subheader("Drift")
    st.caption("For each package the spec pins: what is installed where the environment runs.")
    drift = None
    try:
        drift = ws.environment_drift(name, number)
    except Unsupported as exc:
        ui.explain(exc)
    except ByomError as exc:
        ui.show_error(exc)
    if drift and view.not_built(drift):
        st.info(ui.plain(view.not_built_text(drift, builds and not env.built_in)), icon=":material/build:")
        st.dataframe(view.drift_table(drift), hide_index=True, width="stretch")
    elif drift:
        st.dataframe(view.drift_table(drift), hide_index=True, width="stretch")
    elif drift is not None:
        st.caption("The spec pins no packages.")

    if len(versions) > 1:
        st.subheader("Compare two versions")
        numbers = [v.version for v in versions]
        left, right = st.columns(2)
        old = left.selectbox("From", numbers, index=1, key=keys.ENV_DIFF_FROM)
        new = right.selectbox("To", numbers, index=0, key=keys.ENV_DIFF_TO)
        with ui.errors():
            diff = ws.diff_environments(name, old, new)
            old_conda, new_conda, unified = view.diff_sides(diff)
            left.code(old_conda, language="yaml")
            right.code(new_conda, language="yaml")
            st.code(unified, language="diff")
            st.markdown("\n".join(f"- {ui.plain(c)}" for c in view.diff_changes(diff)) or "No changes.")
