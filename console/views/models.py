"""The Models page: tables of models and versions, what byom measured of each, stages, tags, the .zip offer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from byom.core.artifacts import downloadable, is_remote
from byom.core.entities import ModelVersion
from byom.core.errors import InvalidInput

from .common import Table, and_list, human_size, short_time, table

ZIP_DOWNLOAD_MAX_BYTES = 1 << 30
"""Larger versions are downloaded into a folder: the browser's .zip is built in the console's memory."""


def models_table(models: Sequence[ModelVersion], usage: Mapping[str, list[str]]) -> Table:
    return table(
        [
            {
                "name": m.name, "latest": m.version, "stage": m.stage, "format": m.format,
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
