"""Models: registered models and their versions; register, edit, promote, archive, download, delete."""

import tempfile
from functools import partial
from pathlib import Path

import streamlit as st
from byom.console import context, files, keys, ui
from byom.console.views import models as view
from byom.core.demo import SAMPLE_MODEL, sample_spec
from byom.core.entities import ModelSpec
from byom.core.errors import InvalidInput
from byom.core.usage import all_deployments, model_usage
from byom.core.workspace import Capability

UPLOAD_LIMIT_MB = 2048  # uploads are held in memory until registered
SAMPLE = "The sample model"

ws = context.workspace()

st.title("Models")

show_archived = st.toggle("Show archived", key=keys.MODEL_SHOW_ARCHIVED)
models = ws.list_models(include_archived=show_archived)
usage = model_usage(all_deployments(ws))

browse, register = st.tabs(["Registered models", "Register a model"], key=keys.MODEL_TABS, on_change="rerun")


def name_the_sample() -> None:
    """Choosing the sample fills in its name, unless the user typed one."""
    if st.session_state[keys.REGISTER_SOURCE] == SAMPLE and not st.session_state.get(keys.REGISTER_NAME, "").strip():
        st.session_state[keys.REGISTER_NAME] = SAMPLE_MODEL


with register:
    source = st.radio("From", ["A folder or file on this machine", "Uploaded files", SAMPLE],
                      key=keys.REGISTER_SOURCE, horizontal=True, on_change=name_the_sample)
    with st.form(keys.REGISTER_FORM, border=True):
        name = st.text_input("Name", key=keys.REGISTER_NAME,
                             help="Letters, digits, '-', '_' and '.'; a new version is added if the name exists.")
        path = None
        uploads = []
        package = False
        if source == "A folder or file on this machine":
            in_place = ws.supports(Capability.REMOTE_MODEL_PATHS)
            path = st.text_input("Path", key=keys.REGISTER_PATH,
                                 placeholder="/models/my-model (a transformers folder) or /models/model.gguf",
                                 help="A folder or file here, or files already in the workspace's storage "
                                      "(azureml://jobs/JOB/outputs/artifacts/paths/model/, "
                                      "azureml://datastores/NAME/paths/...), registered where they lie."
                                      if in_place else "A folder or file on this machine; its files are copied "
                                      "into the workspace and hashed.")
        elif source == "Uploaded files":
            upload_key = keys.register_upload(st.session_state.get(keys.REGISTER_UPLOADS, 0))
            uploads = st.file_uploader("Model files", key=upload_key,
                                       accept_multiple_files=True,
                                       max_upload_size=UPLOAD_LIMIT_MB,
                                       help="One GGUF file, or every file of a model folder (config.json, the "
                                            f"weights, the tokenizer files), up to {UPLOAD_LIMIT_MB:,} MB each; "
                                            "register larger models from a path on this machine.")
        else:
            st.caption("SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), packaged into a transformers folder "
                       "once per machine.")
        if source != SAMPLE:
            package = st.checkbox("Package a GGUF checkpoint into a transformers folder", key=keys.REGISTER_PACKAGE)
        description = st.text_input("Description", key=keys.REGISTER_DESCRIPTION)
        tags_text = st.text_area("Tags", placeholder="team=nlp\nlicense=apache-2.0", key=keys.REGISTER_TAGS, height=80)
        submitted = st.form_submit_button("Register", type="primary", icon=":material/upload:",
                                          key=keys.REGISTER_SUBMIT)
    if submitted:
        name = name.strip() or (SAMPLE_MODEL if source == SAMPLE else "")
        with ui.errors(), ui.progress(f"Registering {name or 'model'}") as report, \
                tempfile.TemporaryDirectory(prefix="byom-upload-") as scratch:
            tags = view.parse_tags(tags_text)
            properties: dict[str, str] = {}
            if source == SAMPLE:
                sample = sample_spec(report)
                path, tags, description = sample.path, tags or sample.tags, description or sample.description
                package, properties = sample.package, sample.properties
            elif source == "Uploaded files":
                report(f"Saving {len(uploads)} uploaded file(s)", 0.0)
                path = str(files.save_uploads([(u.name, u.getvalue()) for u in uploads], Path(scratch)))
            elif not path:
                raise InvalidInput("Enter the path of a model folder or file.")
            if not name:
                raise InvalidInput("Enter a name for the model.")
            spec = ModelSpec(name=name.strip(), path=path, package=package, description=description, tags=tags,
                             properties=properties)
            model = ws.create_model(spec, report)
            st.session_state[keys.MODEL] = model.name
            st.session_state[keys.model_version(model.name)] = model.version
            ui.reset_later(keys.REGISTER_CLEARED)  # the form starts afresh for the next model
            st.session_state[keys.REGISTER_UPLOADS] = st.session_state.get(keys.REGISTER_UPLOADS, 0) + 1
            ui.done(f"Registered {model.ref}.")

with browse:
    if not models:
        if not show_archived and ws.list_models(include_archived=True):
            st.info("Every model is archived: turn on 'Show archived' to see them.")
        else:
            st.info("No models yet. Register one in the next tab, or set up the demo on the Overview page.")
        st.stop()
    st.dataframe(view.models_table(models, usage), hide_index=True, width="stretch")

    names = [m.name for m in models]
    chosen = st.session_state.get(keys.MODEL)
    name = st.selectbox("Model", names, index=names.index(chosen) if chosen in names else 0)
    st.session_state[keys.MODEL] = name
    versions = ws.list_model_versions(name, include_archived=True)
    st.dataframe(view.versions_table(versions, usage), hide_index=True, width="stretch")

    numbers = [v.version for v in versions]
    number = st.selectbox("Version", numbers, key=keys.model_version(name))
    version = next(v for v in versions if v.version == number)
    ref = version.ref

    with st.container(border=True, key=keys.MODEL_VERSION_PAGE):  # the version's own page, as in Studio
        st.subheader(f"{ui.plain(ref)} · {ui.plain(view.format_name(version.format))} · {ui.plain(version.stage)}")
        if version.description:
            st.write(ui.plain(version.description))
        files_tab, used_tab = st.tabs([f"Files ({len(version.files)})", f"Used by ({len(usage.get(ref, []))})"])
        with files_tab:
            st.caption(ui.plain(view.files_caption(version)))
            if version.files:
                st.dataframe(view.files_table(version), hide_index=True, width="stretch",
                             column_config={"sha256": st.column_config.TextColumn("sha256", width="large")})
        with used_tab:
            users = ws.deployments_using(ref)
            if users:
                st.dataframe(view.used_by_table(users, {e.name: e for e in ws.list_endpoints()}), hide_index=True,
                             width="stretch")
                st.caption("Open a deployment on the Endpoints page to update or scale it.")
            else:
                st.caption("No deployment serves this version: deploy it on the Endpoints page.")

    edit, promote, lifecycle = st.columns(3)
    with edit.form(keys.MODEL_EDIT_FORM):
        st.markdown(f"**Describe {ui.plain(ref)}**")
        new_description = st.text_input("Description", value=version.description, key=keys.model_description(ref))
        new_tags = st.text_area("Tags", value=view.format_tags(version.tags), key=keys.model_tags(ref), height=100)
        if st.form_submit_button("Save", key=keys.MODEL_SAVE):
            with ui.errors():
                ws.update_model(name, number, description=new_description, tags=view.parse_tags(new_tags))
                ui.done(f"Saved the description and tags of {ref}.")

    with promote.form(keys.PROMOTE_FORM):
        st.markdown(f"**Promote {ui.plain(ref)}** (now in *{version.stage}*)")
        # Keys per version: a choice, an approver or a note made for one version never carries to another,
        # and no stage is chosen for the user.
        stage = st.selectbox("To stage", view.stage_options(version.stage), index=None, placeholder="Choose a stage",
                             key=keys.promote_stage(ref))
        approver = st.text_input("Approver", key=keys.promote_approver(ref))
        note = st.text_input("Note", key=keys.promote_note(ref))
        if st.form_submit_button("Promote", key=keys.PROMOTE_SUBMIT):
            with ui.errors():
                refusal = view.promotion_refusal(stage, approver)
                if refusal:
                    raise InvalidInput(refusal)
                ws.promote_model(name, number, str(stage), approver=approver, note=note)
                ui.reset_later({keys.promote_stage(ref): None, keys.promote_approver(ref): "",
                                keys.promote_note(ref): ""})
                ui.done(f"{ref} is now in {stage}.")
        if version.stage_history:
            st.caption("History: " + ui.plain(view.stage_history_text(version)))

    with lifecycle:
        st.markdown(f"**Keep or remove {ui.plain(ref)}**")
        if version.archived:
            if st.button("Restore", key=keys.RESTORE, icon=":material/unarchive:"):
                with ui.errors():
                    ws.restore_model(name, number)
                    ui.done(f"Restored {ref}.")
        elif st.button("Archive", key=keys.ARCHIVE, icon=":material/archive:",
                       help="Hidden from lists and from 'latest'; deployments keep running."):
            with ui.errors():
                ws.archive_model(name, number)
                ui.done(f"Archived {ref}: turn on 'Show archived' to see it again.")
        refusal = view.zip_refusal(version)
        if refusal:
            st.caption(ui.plain(refusal))
        else:
            st.download_button("Download as .zip", data=partial(files.model_zip, ws, name, number),
                               file_name=f"{name}-{number}.zip", mime="application/zip", key=keys.DOWNLOAD_ZIP,
                               icon=":material/folder_zip:", on_click="ignore",
                               help=view.zip_help(version))
        dest = st.text_input("Download into folder", key=keys.DOWNLOAD_DEST, placeholder="/tmp/models")
        if st.button("Download", key=keys.DOWNLOAD, icon=":material/download:"):
            with ui.errors():
                if not dest.strip():
                    raise InvalidInput("Enter a folder to download into.")
                with st.spinner(f"Copying {ui.plain(ref)} into {ui.plain(dest.strip())}…"):
                    target = ws.download_model(name, number, dest.strip())
                st.success(ui.plain(view.downloaded_text(version, str(target))))
        if st.button("Delete this version", key=keys.DELETE_MODEL, icon=":material/delete:"):
            ui.ask(f"delete-model:{ref}")
        if ui.confirmed(f"delete-model:{ref}", view.delete_question(version, usage.get(ref, []))):
            with ui.errors():
                ws.delete_model(name, number)
                st.session_state[keys.MODEL] = None
                ui.done(f"Deleted {ref}.")
