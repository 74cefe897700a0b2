"""The Models page: tables of models and versions, what byom measured of each, stages, tags, the .zip offer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from byom.core.artifacts import downloadable, is_remote
from byom.core.entities import Deployment, Endpoint, ModelVersion
from byom.core.errors import InvalidInput

from .common import Table, and_list, deployment_state, human_size, short_time, table

ZIP_DOWNLOAD_MAX_BYTES = 1 << 30
"""Larger versions are downloaded into a folder: the browser's .zip is built in the console's memory."""


def models_table(models: Sequence[ModelVersion], usage: Mapping[str, list[str]]) -> Table:
    return table(
        [
            {
                "name": m.name, "latest": m.version, "stage": m.stage, "format": format_name(m.format),
                "size": model_size(m), "created by": m.created_by, "created at": short_time(m.created_at),
                "deployed in": ", ".join(usage.get(m.ref, [])),
            }
            for m in models
        ],
        ["name", "latest", "stage", "format", "size", "created by", "created at", "deployed in"],
    )


def versions_table(versions: Sequence[ModelVersion], usage: Mapping[str, list[str]]) -> Table:
    return table(
        [
            {
                "version": m.version, "stage": m.stage, "archived": m.archived,
                "tags": ", ".join(f"{k}={v}" for k, v in m.tags.items()),
                "sha256": model_digest(m), "size": model_size(m), "files": len(m.files) if m.files else None,
                "created by": m.created_by, "created at": short_time(m.created_at),
                "deployed in": ", ".join(usage.get(m.ref, [])),
            }
            for m in versions
        ],
        ["version", "stage", "archived", "tags", "sha256", "size", "files", "created by", "created at",
         "deployed in"],
    )


def registered_in_place(model: ModelVersion) -> bool:
    """Registered from files already in cloud storage: byom copied, measured and hashed nothing."""
    return is_remote(model.source)


def zip_refusal(model: ModelVersion) -> str | None:
    """Why the Models page offers no .zip of this version, or None where it does."""
    if registered_in_place(model):
        return (f"Registered in place from {model.source}: no files or hashes were recorded, "
                "so there is no .zip to offer.")
    if not downloadable(model):  # another tool registered a job's outputs
        return f"Its files lie at {model.path}, outside any datastore: download them from there."
    if model.size_bytes > ZIP_DOWNLOAD_MAX_BYTES:
        return (f"{model.ref} is over {ZIP_DOWNLOAD_MAX_BYTES >> 30} GiB: "
                "download it into a folder on this machine instead.")
    return None


def zip_help(model: ModelVersion) -> str:
    if model.files:
        return "Every file is checked against its sha256 before it is zipped."
    return "Zipped as stored: byom recorded no hashes for this version."


def downloaded_text(model: ModelVersion, folder: str) -> str:
    checked = " (every file checked against its sha256)" if model.files else ""
    return f"Copied {model.ref} into {folder}{checked}."


def delete_question(model: ModelVersion, users: Sequence[str] = ()) -> str:
    """The confirmation: what goes, and what uses it (the deployments that serve it)."""
    used = f" It is used by {and_list(users)}." if users else ""
    if registered_in_place(model):
        return f"Delete {model.ref}? Its files stay where they lie ({model.source}).{used}"
    return f"Delete {model.ref} and its files? This cannot be undone.{used}"


def stage_options(stage: str) -> list[str]:
    """The 'To stage' choices for a version in ``stage``: none is chosen for the user."""
    return next_stages(stage)


def promotion_refusal(stage: str | None, approver: str) -> str | None:
    """What the promote form still needs, in the console's words (None: it can go)."""
    if not stage:
        return "Choose the stage to promote to."
    if not approver.strip():
        return "Enter the approver's name."
    return None


def model_size(model: ModelVersion) -> str:
    """Its size; where it lies for a version registered in place; blank where another tool registered it."""
    if model.files:
        return human_size(model.size_bytes)
    return "in cloud storage" if registered_in_place(model) else ""


def model_digest(model: ModelVersion) -> str:
    """The sha256 of a single-file model, else the first 12 hex digits of each file's hash."""
    if not model.files:
        return "not recorded"
    if len(model.files) == 1:
        return model.files[0].sha256
    return " ".join(f.sha256[:12] for f in model.files[:3]) + (" …" if len(model.files) > 3 else "")


def next_stages(stage: str) -> list[str]:
    """Where a version may be promoted from ``stage`` (see core.rules.check_promotion)."""
    return {"dev": ["staging"], "staging": ["production", "dev"], "production": ["dev"]}.get(stage, ["dev"])


def stage_history_text(model: ModelVersion) -> str:
    """``dev → staging by ada; ...``, empty for a version never promoted."""
    return "; ".join(f"{c.from_stage} → {c.to_stage} by {c.approver}" for c in model.stage_history)


def parse_tags(text: str) -> dict[str, str]:
    """``key=value`` pairs, one a line (or comma-separated); blank lines ignored."""
    tags: dict[str, str] = {}
    for raw in text.replace(",", "\n").splitlines():
        line = raw.strip()
        if not line:
            continue
        if "=" not in line:
            raise InvalidInput(f"Tag {line!r} has no '=': write tags as key=value, one a line.")
        key, value = line.split("=", 1)
        if not key.strip():
            raise InvalidInput(f"Tag {line!r} has no name before '='.")
        tags[key.strip()] = value.strip()
    return tags


def format_tags(tags: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in tags.items())


FORMAT_NAMES = {"files": "custom"}
"""Formats older versions recorded under another name: "files" is what byom now calls custom."""


def format_name(fmt: str) -> str:
    return FORMAT_NAMES.get(fmt, fmt)


def files_table(model: ModelVersion) -> Table:
    """The version's files as registered: path, size, and the full sha256 byom checks on every download."""
    return table([{"path": f.path, "size": human_size(f.size), "bytes": f.size, "sha256": f.sha256}
                  for f in model.files], ["path", "size", "bytes", "sha256"])


def files_caption(model: ModelVersion) -> str:
    """What the files table shows, or why there is none."""
    if model.files:
        return (f"{len(model.files)} file(s), {human_size(model.size_bytes)}, format {format_name(model.format)}. "
                "Each sha256 was taken when the files were copied in; every download is checked against it.")
    if registered_in_place(model):
        return f"Registered in place from {model.source}: byom copied and hashed no files."
    return "Registered outside byom: no files or hashes were recorded."


def used_by_table(deployments: Sequence[Deployment], endpoints: Mapping[str, Endpoint]) -> Table:
    """The deployments serving a version (``Workspace.deployments_using``): where, in what state, with what traffic."""
    rows = []
    for d in deployments:
        endpoint = endpoints.get(d.endpoint_name)
        rows.append({"endpoint": d.endpoint_name, "deployment": d.name, "state": deployment_state(d.provisioning_state),
                     "traffic %": endpoint.traffic.get(d.name.lower(), 0) if endpoint else 0,
                     "mirror %": endpoint.mirror_traffic.get(d.name.lower(), 0) if endpoint else 0,
                     "scoring URI": endpoint.scoring_uri if endpoint else ""})
    return table(rows, ["endpoint", "deployment", "state", "traffic %", "mirror %", "scoring URI"])
