"""What the pages show, computed from core entities: tables, history, snippets.

Plain functions without Streamlit, so that they are tested on their own
(tests/console/test_views.py) and pages stay a description of the screen.
Figures live in :mod:`core.analysis`.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from byom.core.artifacts import downloadable, is_remote
from byom.core.demo import CHAT_DEPLOYMENT, DEMO_ENDPOINT, RANKS_DEPLOYMENT
from byom.core.entities import AuditRecord, Deployment, Endpoint, EnvironmentVersion, ModelVersion
from byom.core.errors import InvalidInput
from byom.core.workspace import Workspace

LARGE_SHIFT = 50
"""A traffic change that moves this many percentage points to or from one deployment asks for confirmation."""


# ------------------------------------------------------------------ models


def model_usage(deployments: Iterable[Deployment]) -> dict[str, list[str]]:
    """``"name:version"`` → the deployments (``endpoint/deployment``) that serve it."""
    usage: dict[str, list[str]] = {}
    for d in deployments:
        usage.setdefault(d.model, []).append(f"{d.endpoint_name}/{d.name}")
    return usage


def environment_usage(deployments: Iterable[Deployment]) -> dict[str, list[str]]:
    """``"name:version"`` → the deployments (``endpoint/deployment``) that run in it."""
    usage: dict[str, list[str]] = {}
    for d in deployments:
        usage.setdefault(d.environment, []).append(f"{d.endpoint_name}/{d.name}")
    return usage


def environment_users(usage: Mapping[str, list[str]], name: str) -> list[str]:
    """The deployments that run in any version of environment ``name``."""
    return [user for ref, users in usage.items() if ref.rsplit(":", 1)[0] == name for user in users]


def models_table(models: Sequence[ModelVersion], usage: Mapping[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "name": m.name, "latest": m.version, "stage": m.stage, "format": m.format,
                "size": model_size(m), "created by": m.created_by, "created at": short_time(m.created_at),
                "deployed in": ", ".join(usage.get(m.ref, [])),
            }
            for m in models
        ],
        columns=["name", "latest", "stage", "format", "size", "created by", "created at", "deployed in"],
    )


def versions_table(versions: Sequence[ModelVersion], usage: Mapping[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
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
        columns=["version", "stage", "archived", "tags", "sha256", "size", "files", "created by", "created at",
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


def save_uploads(files: Sequence[tuple[str, bytes]], folder: Path) -> Path:
    """Write uploaded files (name, content) into ``folder``; returns what to register.

    One file is registered as that file (a GGUF checkpoint); several as the
    folder holding them (a model folder's config.json, weights, tokenizer).
    A name may carry a path inside the folder the user picked
    (``my-model/config.json``): subfolders are kept, and a top folder every
    file shares is dropped, so the folder registered is the model folder.
    """
    if not files:
        raise InvalidInput("Choose the files to upload first: a GGUF file, or every file of a model folder.")
    parts = []
    for name, _ in files:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise InvalidInput(f"Uploaded file name {name!r} points outside the model folder.")
        parts.append(path.parts)
    tops = {p[0] for p in parts}
    if len(tops) == 1 and all(len(p) > 1 for p in parts):
        parts = [p[1:] for p in parts]
    for part, (_, content) in zip(parts, files, strict=True):
        target = folder.joinpath(*part)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if len(files) == 1 and len(parts[0]) == 1:
        return folder / parts[0][0]
    return folder


ZIP_DOWNLOAD_MAX_BYTES = 1 << 30
"""Larger versions are downloaded into a folder: the browser's .zip is built in the console's memory."""


def model_zip(ws: Workspace, name: str, version: int) -> bytes:
    """A version's files as a .zip, every file checked against its sha256 on the way (``download_model``).

    Stored, not deflated: weights barely compress and deflating them costs seconds per 100 MB.
    Entries sit under ``<name>-<version>/`` so that unzipping gives one folder.
    """
    with tempfile.TemporaryDirectory(prefix="byom-zip-") as scratch:
        folder = ws.download_model(name, version, scratch)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{name}-{version}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


# ------------------------------------------------------------ environments


def environment_image(env: EnvironmentVersion) -> str:
    return env.image or ("Docker build" if env.build_context else "")


def environments_table(envs: Sequence[EnvironmentVersion], usage: Mapping[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "name": e.name, "latest": e.version, "python": e.python or "", "image": environment_image(e),
                "packages": len(e.pip_requirements), "built in": e.built_in,
                "used by": ", ".join(environment_users(usage, e.name)), "created at": short_time(e.created_at),
            }
            for e in envs
        ],
        columns=["name", "latest", "python", "image", "packages", "built in", "used by", "created at"],
    )


def environment_versions_table(versions: Sequence[EnvironmentVersion], usage: Mapping[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "version": e.version, "python": e.python or "", "image": environment_image(e),
                "packages": len(e.pip_requirements), "archived": e.archived, "used by": ", ".join(usage.get(e.ref, [])),
                "created by": e.created_by, "created at": short_time(e.created_at),
            }
            for e in versions
        ],
        columns=["version", "python", "image", "packages", "archived", "used by", "created by", "created at"],
    )


# --------------------------------------------------------------- endpoints


def deployments_table(deployments: Sequence[Deployment], endpoint: Endpoint) -> pd.DataFrame:
    rows = []
    for d in deployments:
        ready = sum(1 for i in d.instances if i.state == "Ready")
        rows.append({
            "deployment": d.name, "model": d.model, "environment": d.environment,
            "script": d.scoring_script or "", "state": d.provisioning_state,
            "instances": f"{ready}/{d.instance_count}" if d.instances else str(d.instance_count),
            "traffic %": endpoint.traffic.get(d.name.lower(), 0),
            "mirror %": endpoint.mirror_traffic.get(d.name.lower(), 0),
            "reason": d.state_reason,
        })
    return pd.DataFrame(rows, columns=["deployment", "model", "environment", "script", "state", "instances",
                                       "traffic %", "mirror %", "reason"])


_ENTRY_FUNCTION = r"^(?:async\s+)?def\s+{}\s*\("


def scoring_scripts(code_folder: str | Path) -> list[str]:
    """The ``.py`` files of a code folder, as paths inside it: entry scripts first, top-level files first.

    An entry script defines ``init()`` and ``run()`` (Azure ML's contract);
    the other modules follow, since a script may still be chosen by hand.
    """
    folder = Path(code_folder).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"The code folder {str(folder)!r} does not exist.",
                           hint="Enter the folder that holds the scoring script (the repository's scoring/ folder "
                                "holds generate.py and token_ranks.py).")
    entry, other = [], []
    for path in sorted(folder.rglob("*.py"), key=lambda p: (len(p.relative_to(folder).parts), p)):
        relative = path.relative_to(folder)
        if any(part.startswith((".", "__pycache__")) for part in relative.parts[:-1]):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        is_entry = all(re.search(_ENTRY_FUNCTION.format(f), text, re.MULTILINE) for f in ("init", "run"))
        (entry if is_entry else other).append(relative.as_posix())
    return entry + other


def demo_unfinished(endpoints: Iterable[Endpoint], deployments: Iterable[Deployment]) -> bool:
    """Whether the demo endpoint exists without both its deployments running (a set-up that stopped half-way)."""
    if not any(e.name == DEMO_ENDPOINT for e in endpoints):
        return False
    running = {d.name for d in deployments if d.endpoint_name == DEMO_ENDPOINT and d.provisioning_state == "Succeeded"}
    return not {CHAT_DEPLOYMENT, RANKS_DEPLOYMENT} <= running


def split_text(traffic: Mapping[str, int], mirror: Mapping[str, int] | None = None) -> str:
    """``chat 90 · green 10`` (and ``mirror: shadow 10``); ``no traffic`` when nothing is live."""
    live = " · ".join(f"{name} {pct}" for name, pct in sorted(traffic.items()) if pct > 0) or "no traffic"
    shadow = " · ".join(f"{name} {pct}" for name, pct in sorted((mirror or {}).items()) if pct > 0)
    return f"{live} (mirror: {shadow})" if shadow else live


def largest_shift(current: Mapping[str, int], proposed: Mapping[str, int]) -> int:
    """The most percentage points any one deployment gains or loses."""
    names = {n.lower() for n in current} | {n.lower() for n in proposed}
    low_current = {k.lower(): v for k, v in current.items()}
    low_proposed = {k.lower(): v for k, v in proposed.items()}
    return max((abs(low_proposed.get(n, 0) - low_current.get(n, 0)) for n in names), default=0)


@dataclass
class TrafficChange:
    id: int | None
    at: str
    actor: str
    before: dict[str, int]
    after: dict[str, int]
    mirror_before: dict[str, int]
    mirror_after: dict[str, int]


def traffic_history(records: Iterable[AuditRecord]) -> list[TrafficChange]:
    """Traffic changes of an endpoint, newest first, from its audit records."""
    out = []
    for r in records:
        if r.action != "endpoint.traffic" or not r.before or not r.after:
            continue
        out.append(TrafficChange(
            id=r.id, at=r.at, actor=r.actor,
            before=dict(r.before.get("traffic") or {}), after=dict(r.after.get("traffic") or {}),
            mirror_before=dict(r.before.get("mirror_traffic") or {}),
            mirror_after=dict(r.after.get("mirror_traffic") or {}),
        ))
    return out


def revert_split(change: TrafficChange, deployments: Iterable[str]) -> tuple[dict[str, int], dict[str, int], str]:
    """What reverting ``change`` sends: its earlier live and mirror splits, and why it cannot be sent ('' if it can).

    Deployments deleted since then are left out when they had 0 %; one that
    had a share makes the earlier split impossible to restore.
    """
    existing = {d.lower() for d in deployments}
    gone = [f"{n} ({pct} %)" for split in (change.before, change.mirror_before) for n, pct in sorted(split.items())
            if n.lower() not in existing and pct > 0]
    why = f"Cannot revert: it gave traffic to {', '.join(gone)}, deleted since." if gone else ""
    live = {n: pct for n, pct in change.before.items() if n.lower() in existing}
    mirror = {n: pct for n, pct in change.mirror_before.items() if n.lower() in existing}
    return live, mirror, why


def audit_table(records: Sequence[AuditRecord]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"when": short_time(r.at), "who": r.actor, "what": r.action, "target": r.target,
          "change": change_text(r.before, r.after, r.action)} for r in records],
        columns=["when", "who", "what", "target", "change"],
    )


def change_text(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, action: str = "") -> str:
    """The fields that differ, as ``field: old → new``; short enough for one table cell.

    An event with nothing before it is a creation, unless the action says otherwise (a deployment's
    new state, a build, a key regenerated): then what it recorded is shown."""
    if before is None and after is None:
        return ""
    if before is None:
        if action.endswith(".create"):
            return "created"
        return "; ".join(f"{k}: {_short(v)}" for k, v in (after or {}).items() if v not in ("", None))
    if after is None:
        return "deleted"
    parts = []
    for key in after:
        if before.get(key) != after.get(key):
            parts.append(f"{key}: {_short(before.get(key))} → {_short(after.get(key))}")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "…"


def curl_snippet(endpoint: Endpoint, payload: Any, deployment: str | None = None) -> str:
    """A curl command that calls the endpoint; the key is read from $BYOM_KEY, never pasted."""
    lines = [f"curl -sS -X POST '{endpoint.scoring_uri}' \\",
             "  -H 'Content-Type: application/json' \\",
             '  -H "Authorization: Bearer $BYOM_KEY" \\']
    if deployment:
        lines.append(f"  -H 'azureml-model-deployment: {deployment}' \\")
    lines.append(f"  -d '{json.dumps(payload)}'")
    return "\n".join(lines)


def python_snippet(endpoint: Endpoint, payload: Any, deployment: str | None = None) -> str:
    header = f'\n    "azureml-model-deployment": "{deployment}",' if deployment else ""
    return (
        "import os\n\nimport requests\n\n"
        "response = requests.post(\n"
        f'    "{endpoint.scoring_uri}",\n'
        f"    json={payload!r},\n"
        '    headers={"Authorization": f"Bearer {os.environ[\'BYOM_KEY\']}",' + header + "},\n"
        "    timeout=60,\n)\n"
        "print(response.status_code, response.headers.get(\"azureml-model-deployment\"))\n"
        "print(response.json())\n"
    )


# --------------------------------------------------------------- playground


@dataclass
class Answer:
    """What the Playground shows for one call."""

    ok: bool
    status_code: int
    text: str  # the generated text, or the error the endpoint gave
    deployment: str | None
    latency_ms: float
    request_id: str
    completion_tokens: int | None
    finish_reason: str | None
    raw: Any

    @property
    def tokens_per_second(self) -> float | None:
        if not self.completion_tokens or self.latency_ms <= 0:
            return None
        return self.completion_tokens / (self.latency_ms / 1000)


STATUS_HINTS = {
    401: "The endpoint refused the key: regenerate it on the Endpoints page if it leaked.",
    404: "No deployment has live traffic (or the deployment named does not exist): "
         "set traffic on the Endpoints page, or call one deployment by name.",
    408: "The model took longer than the deployment's request timeout: raise it, or ask for fewer tokens.",
    424: "The model server answered with an error: read the deployment's logs on the Endpoints page.",
    429: "Too many requests in flight: wait, or scale the deployment out.",
    502: "No healthy instance answered: check the deployment's state and logs.",
    503: "No healthy instance answered: check the deployment's state and logs.",
}


def status_hint(status_code: int) -> str | None:
    """What to do about an endpoint's non-2xx answer."""
    if status_code in STATUS_HINTS:
        return STATUS_HINTS[status_code]
    if 400 <= status_code < 500:
        return "The deployment refused the request: check the fields of the request body."
    return None


def generation_payload(prompt: str, *, chat: Sequence[Mapping[str, str]] | None = None, max_new_tokens: int = 64,
                       temperature: float = 0.0, top_p: float = 1.0) -> dict[str, Any]:
    """The request body of the generation scoring script: greedy at temperature 0."""
    body: dict[str, Any] = {"messages": list(chat)} if chat is not None else {"prompt": prompt}
    body["max_new_tokens"] = max_new_tokens
    if temperature > 0:
        body.update(do_sample=True, temperature=temperature, top_p=top_p)
    return body


def read_answer(status_code: int, body: str, deployment: str | None, latency_ms: float, request_id: str) -> Answer:
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body
    ok = 200 <= status_code < 300
    if isinstance(parsed, dict):
        if ok:
            text = str(parsed.get("text", parsed))
        else:
            text = str(parsed.get("message") or parsed.get("error") or parsed)
        usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else {}
        completion = usage.get("completion_tokens")
        finish = parsed.get("finish_reason")
    else:
        text, completion, finish = str(parsed), None, None
    return Answer(ok, status_code, text, deployment, latency_ms, request_id,
                  int(completion) if isinstance(completion, int) else None, finish, parsed)


# ------------------------------------------------------------------ helpers


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def short_time(iso: str) -> str:
    """``2025-11-23 08:15:02`` from an ISO-8601 UTC time (empty stays empty)."""
    return iso[:19].replace("T", " ") if iso else ""
