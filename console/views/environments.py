"""The Environments page: tables of environments and versions, their users, the build, drift, a diff of two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields

from byom.core.entities import DriftEntry, EnvironmentDiff, EnvironmentVersion
from byom.core.usage import environment_users

from .common import Table, build_state, short_time, table

BUILD_ICONS = {"Succeeded": ":material/check_circle:", "Failed": ":material/error:", "Running": ":material/pending:"}
NO_BUILD_ICON = ":material/radio_button_unchecked:"


def environment_image(env: EnvironmentVersion) -> str:
    return env.image or ("Docker build" if env.build_context else "")


def environments_table(envs: Sequence[EnvironmentVersion], usage: Mapping[str, list[str]]) -> Table:
    return table(
        [
            {
                "name": e.name, "latest": e.version, "python": e.python or "", "image": environment_image(e),
                "packages": len(e.pip_requirements), "built in": e.built_in,
                "used by": ", ".join(environment_users(usage, e.name)), "created at": short_time(e.created_at),
            }
            for e in envs
        ],
        ["name", "latest", "python", "image", "packages", "built in", "used by", "created at"],
    )


def environment_versions_table(versions: Sequence[EnvironmentVersion], usage: Mapping[str, list[str]]) -> Table:
    return table(
        [
            {
                "version": e.version, "python": e.python or "", "image": environment_image(e),
                "packages": len(e.pip_requirements), "archived": e.archived, "used by": ", ".join(usage.get(e.ref, [])),
                "created by": e.created_by, "created at": short_time(e.created_at),
            }
            for e in versions
        ],
        ["version", "python", "image", "packages", "archived", "used by", "created by", "created at"],
    )


def users_text(usage: Mapping[str, list[str]], env: EnvironmentVersion) -> str:
    """``Used by: demo/chat, ...`` for one version."""
    return "Used by: " + (", ".join(usage.get(env.ref, [])) or "no deployment")


def create_refusal(name: str, conda: str, image: str, build_context: str) -> str | None:
    """What the create form still needs, in the console's words (None: it can go)."""
    if not name.strip():
        return "Enter a name for the environment."
    if not (conda.strip() or image.strip() or build_context.strip()):
        return "Enter a conda specification, a base image, or both."
    return None


def build_icon(state: str) -> str:
    return BUILD_ICONS.get(state, NO_BUILD_ICON)


def build_line(state: str, message: str) -> str:
    """The build's state as the Build panel writes it (markdown): icon, human state, what it is doing."""
    text = message.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")
    return f"{build_icon(state)} **{build_state(state)}** {text}".rstrip()


def drift_table(drift: Sequence[DriftEntry]) -> Table:
    return table([d.to_dict() for d in drift], [f.name for f in fields(DriftEntry)])


def diff_sides(diff: EnvironmentDiff) -> tuple[str, str, str]:
    """The conda files side by side (the first, the second) and as a unified diff."""
    old = "\n".join(line.text for line in diff.conda if line.tag in (" ", "-")) or "(empty)"
    new = "\n".join(line.text for line in diff.conda if line.tag in (" ", "+")) or "(empty)"
    return old, new, "\n".join(f"{line.tag}{line.text}" for line in diff.conda)


def diff_changes(diff: EnvironmentDiff) -> list[str]:
    """What changed from one version to the other: image, build context, requirements added, removed, changed."""
    return ([f"{what} {a or '(none)'} → {b or '(none)'}"
             for what, (a, b) in (("image", diff.image), ("build context", diff.build)) if a != b]
            + [f"added {r}" for r in diff.added] + [f"removed {r}" for r in diff.removed]
            + [f"changed {a} → {b}" for _, a, b in diff.changed])
