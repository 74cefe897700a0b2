"""The Environments page: tables of environments and versions, their users, the build, drift, a diff of two."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields

from byom.core.entities import DriftEntry, EnvironmentDiff, EnvironmentVersion
from byom.core.environments import NOT_BUILT
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
    """Each pin against what the build installed; for a version not built, the pins alone (nothing to compare)."""
    if not_built(drift):
        return table([{"package": d.package, "pinned": d.pinned, "status": d.status} for d in drift],
                     ["package", "pinned", "status"])
    return table([d.to_dict() for d in drift], [f.name for f in fields(DriftEntry)])


def not_built(drift: Sequence[DriftEntry]) -> bool:
    """Whether this drift report has no build to read (core reports every pin ``not built yet``)."""
    return bool(drift) and all(d.status == NOT_BUILT for d in drift)


def not_built_text(drift: Sequence[DriftEntry], can_build: bool) -> str:
    why = drift[0].source.removeprefix(NOT_BUILT).strip(" ()") if drift else ""
    return ("Not built yet" + (f": {why}" if why else "") + ". Nothing is installed where it will run, so there "
            "is nothing to compare its pins with" + (" — build it to see the drift." if can_build else "."))


_PIP_NOISE = re.compile(
    r"^\s*(Requirement already satisfied|Downloading |Using cached |Downloaded |Saved |"
    r"File was already downloaded|Obtaining dependency information)"
    r"|[━╸╺█▉▊▋▌▍▎▏]{3,}"  # pip's progress bars, however far along
    r"|^\s*[|#=>\- ]*\|\s*[\d.]+\s*[kMG]?B\b",  # older pip's "|████| 1.2 MB 3 MB/s"
)
_ERROR = re.compile(r"\b(error|failed|failure|traceback|exception|fatal|denied|could not|cannot)\b(?![-_.])",
                    re.IGNORECASE)  # not a package named error-codes


def build_log_text(log: str, show_all: bool = False) -> tuple[str, int]:
    """The build log as the Build panel shows it, and how many lines it hid.

    pip's noise goes (progress bars, "Requirement already satisfied", download lines); a line that
    reports an error is always kept, whatever it starts with.
    """
    lines = log.splitlines()
    if show_all:
        return log, 0
    kept = [line for line in lines if _ERROR.search(line) or not _PIP_NOISE.search(line)]
    return "\n".join(kept), len(lines) - len(kept)


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
