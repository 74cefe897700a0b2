"""The Endpoints page: what can be deployed, the next free name, the mirror choice, history rows, snippets' payloads."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from byom.core.demo import GENERATION_SCRIPT
from byom.core.entities import Deployment, DeploymentMetrics, Endpoint, EnvironmentVersion, ModelVersion
from byom.core.history import Revert, TrafficChange, split_text

from .common import GENERATION, TOKEN_RANKS, Table, and_list, deployment_state, deployment_task, short_time, table

BUSY_STATES = ("Creating", "Updating", "Scaling", "Deleting")
"""A deployment in one of these is still changing: the table refreshes itself until none is."""
SUGGESTED_NAMES = ("blue", "green")
NO_MIRROR = "none"
DEFAULT_MIRROR_PERCENT = 10
SPLIT_TARGET = "the traffic split"
LOG_CONTAINERS = ["inference-server", "storage-initializer"]
DEPLOY_DEFAULTS_BY_KEY = {"endpoints.deploy.instances": 1, "endpoints.deploy.timeout": 60_000,
                          "endpoints.deploy.concurrency": 1}
"""The deploy form's numbers as a fresh form shows them (console.keys.DEPLOY_INSTANCES, ...)."""


def busy(deployments: Iterable[Deployment]) -> bool:
    return any(d.provisioning_state in BUSY_STATES for d in deployments)


def deployable_models(versions: Iterable[ModelVersion]) -> list[str]:
    return [v.ref for v in versions]


def deployable_environments(versions: Iterable[EnvironmentVersion]) -> list[str]:
    """Every version not archived; the built-in environment by its name alone."""
    return [v.name if v.built_in else v.ref for v in versions if not v.archived]


def script_index(scripts: Sequence[str]) -> int:
    """The generation script where the code folder has it, else the first."""
    return scripts.index(GENERATION_SCRIPT) if GENERATION_SCRIPT in scripts else 0


def next_deployment_name(names: Iterable[str]) -> str:
    """``blue``, else ``green``, else ``deployment-3``, ...: the next deploy never replaces a running one by default."""
    taken = {n.lower() for n in names}
    suggested = (*SUGGESTED_NAMES, *(f"deployment-{i}" for i in range(3, 3 + len(taken) + 1)))
    return next(n for n in suggested if n not in taken)


def deploy_feedback(name: str, deployment: Deployment | None,
                    traffic: Mapping[str, int] | None = None) -> tuple[str, str, str]:
    """What the top of the page says about a deploy or update under way: (kind, message, hint); ``info`` while busy.

    ``traffic``: the endpoint's live split, for the deployment's share once it is ready.
    """
    if deployment is None:
        return ("error", f"Deployment {name} is gone: it was deleted while it was being created.", "")
    if deployment.provisioning_state in BUSY_STATES:
        doing = deployment.state_reason or "starting its instances"
        return ("info", f"{deployment.provisioning_state} deployment {deployment.name}: {doing}. "
                        "Its state in the table updates live.", "")
    if deployment.provisioning_state == "Failed":
        return ("error", f"Deployment {deployment.name} failed: {deployment.state_reason or 'no reason given'}",
                "Read its logs in the Logs tab, fix the cause and deploy again under the same name.")
    share = (traffic or {}).get(deployment.name.lower(), 0)
    if share:
        return ("success", f"Deployment {deployment.name} is ready. It runs {deployment.model} and serves {share} % "
                           "of live traffic.", "")
    return ("success", f"Deployment {deployment.name} is ready. It gets no traffic until you give it some in the "
                       "Traffic tab.", "")


def replaced_deployment(deployments: Iterable[Deployment], name: str) -> Deployment | None:
    """The running deployment a deploy under ``name`` would replace in place, live traffic and all."""
    return next((d for d in deployments if d.name.lower() == name.strip().lower()
                 and d.provisioning_state != "Failed"), None)


def redeploy_question(replaced: Deployment, traffic: dict[str, int], model_ref: str | None,
                      script: str | None = None, environment: str | None = None) -> str:
    """The confirmation of a deploy over a running deployment: what changes, and the traffic that depends on it."""
    changes = [f"{what} {old} → {new}" for what, old, new in (
        ("model", replaced.model, model_ref), ("script", replaced.scoring_script, script),
        ("environment", replaced.environment, environment)) if new is not None and not _same(old, new)]
    change_text = "; ".join(changes) if changes else "the same model, script and environment, restarted"
    return (f"Deployment {replaced.name} already exists on {replaced.endpoint_name} with "
            f"{traffic.get(replaced.name.lower(), 0)} % of live traffic: replace it in place ({change_text})?"
            + task_change_text(replaced, script))


TASK_WORDS = {GENERATION: ("generation", "prompts", "the Playground"),
              TOKEN_RANKS: ("token ranks", "texts to rank", "the Token ranks page")}
"""A task in words: its name, what callers send it, the page that offers it."""


def task_change_text(current: Deployment, script: str | None) -> str:
    """What a new scoring script breaks: callers of the old task, and the page that offered it ('' if the same)."""
    if script is None:
        return ""
    old, new = current.task, current.replace(scoring_script=script).task
    if old == new:
        return ""
    (old_name, old_input, old_page), (new_name, _, new_page) = TASK_WORDS[old], TASK_WORDS[new]
    return (f" Its task changes from {old_name} to {new_name}: callers that send it {old_input} get errors, and it "
            f"moves from {old_page} to {new_page}.")


def traffic_dependence(deployment: Deployment, endpoint: Endpoint, live_text: str) -> str:
    """Who depends on the deployment: its live share (``live_text`` with ``{share}``), its mirrored share, or
    only the callers that name it."""
    live = endpoint.traffic.get(deployment.name.lower(), 0)
    mirrored = endpoint.mirror_traffic.get(deployment.name.lower(), 0)
    parts = [live_text.format(share=live)] if live else []
    if mirrored:
        parts.append(f"It gets a mirrored copy of {mirrored} % of {endpoint.name}'s requests.")
    if not parts:
        parts.append("It serves no live traffic: only requests that name it reach it.")
    return " " + " ".join(parts)


def _same(old: str | None, new: str) -> bool:
    """``local-python`` (a name, its one version) names what ``local-python:1`` does."""
    return old == new or (":" not in new and (old or "").split(":")[0] == new)


def delete_endpoint_question(endpoint: str, deployments: Sequence[str]) -> str:
    """The confirmation of deleting an endpoint: its deployments and keys go with it."""
    what = f"its deployments {and_list(list(deployments))}" if deployments else "no deployment"
    return f"Delete endpoint {endpoint} with {what}? Its keys stop working and clients calling it get errors."


def mirror_choice(mirror_traffic: dict[str, int], names: Sequence[str]) -> tuple[list[str], int, int]:
    """The 'Mirror to' options, the one chosen now, and the percentage to show."""
    target, percent = next(iter(mirror_traffic.items()), (None, DEFAULT_MIRROR_PERCENT))
    options = [NO_MIRROR, *names]
    chosen = next((n for n in names if n.lower() == target), NO_MIRROR)
    return options, options.index(chosen), int(percent)


def mirror_split(target: str, percent: int) -> dict[str, int]:
    return {} if target == NO_MIRROR else {target: percent}


def change_texts(change: TrafficChange) -> tuple[str, str]:
    """A history row's splits: before and after the change."""
    return (split_text(change.before, change.mirror_before), split_text(change.after, change.mirror_after))


def revert_question(planned: Revert, shift: int) -> str:
    return (f"Reverting moves {shift} percentage points of live traffic at once: set {planned.endpoint} "
            f"to {split_text(planned.traffic, planned.mirror_traffic)}?")


def sample_payload(deployment: Deployment | None) -> dict[str, Any]:
    """A request the deployment (or, for None, the traffic split) answers, for the code snippets."""
    if deployment is not None and deployment_task(deployment) == TOKEN_RANKS:
        return {"text": "The quick brown fox."}
    return {"prompt": "Say hello.", "max_new_tokens": 32}


# ------------------------------------------------------------ one deployment


def deployment_facts(deployment: Deployment, endpoint: Endpoint) -> Table:
    """What the deployment page lists of one deployment: what it runs, where, and how it is set up."""
    settings = deployment.request_settings
    ready = sum(1 for i in deployment.instances if i.state == "Ready")
    rows = [
        ("state", deployment_state(deployment.provisioning_state)
         + (f" ({deployment.state_reason})" if deployment.state_reason else "")),
        ("model", deployment.model), ("environment", deployment.environment),
        ("scoring script", deployment.scoring_script or ""), ("code", deployment.code_path or ""),
        ("task", deployment_task(deployment)),
        ("instances", f"{ready} ready of {deployment.instance_count} ({deployment.instance_type})"),
        ("live traffic", f"{endpoint.traffic.get(deployment.name.lower(), 0)} %"),
        ("mirror traffic", f"{endpoint.mirror_traffic.get(deployment.name.lower(), 0)} %"),
        ("request timeout", f"{settings.request_timeout_ms:,} ms"),
        ("max concurrent requests per instance", str(settings.max_concurrent_requests_per_instance)),
        ("created", f"{short_time(deployment.created_at)} by {deployment.created_by}".strip()),
        ("updated", short_time(deployment.updated_at)),
    ]
    return table([{"field": k, "value": v} for k, v in rows], ["field", "value"])


def instances_table(deployment: Deployment) -> Table:
    return table([{"instance": i.id, "state": i.state, "pid": i.pid, "port": i.port, "restarts": i.restarts,
                   "started at": short_time(i.started_at or "")} for i in deployment.instances],
                 ["instance", "state", "pid", "port", "restarts", "started at"])


def metrics_table(metrics: Sequence[DeploymentMetrics], deployment: str) -> Table:
    """The deployment's requests, errors and latency over the window (live and mirrored rows apart)."""
    rows = [{"traffic": "mirrored" if m.mirrored else "live", "requests": m.requests, "errors": m.errors,
             "p50 ms": _ms(m.p50_ms), "p95 ms": _ms(m.p95_ms), "p99 ms": _ms(m.p99_ms)}
            for m in metrics if m.deployment.lower() == deployment.lower()]
    return table(rows, ["traffic", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"])


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


def with_current(options: Sequence[str], current: str | None) -> tuple[list[str], int]:
    """The choices of an update box and the one chosen: what the deployment runs now, added where the list
    leaves it out (an archived version, a script outside the folder's list); ``local-python`` names
    ``local-python:1``."""
    listed = list(options)
    if current is None:
        return listed, 0
    same = next((i for i, option in enumerate(listed) if _same(current, option)), None)
    return (listed, same) if same is not None else ([current, *listed], 0)


def update_changes(current: Deployment, model: str | None, environment: str | None, script: str | None) -> list[str]:
    """What an update of the deployment page changes, in words (empty: nothing)."""
    return [f"{what} {old or '(none)'} → {new}" for what, old, new in (
        ("model", current.model, model), ("environment", current.environment, environment),
        ("scoring script", current.scoring_script, script)) if new is not None and not _same(old, new)]


def update_question(current: Deployment, changes: Sequence[str], endpoint: Endpoint, script: str | None = None
                    ) -> str:
    """The confirmation of an update: what changes (a new task named), and the traffic that depends on it."""
    return (f"Update deployment {current.name} of {current.endpoint_name}: {'; '.join(changes)}?"
            + task_change_text(current, script)
            + traffic_dependence(current, endpoint,
                                 "Its {share} % of live traffic is served by the new instances once they are ready."))


def delete_deployment_question(deployment: Deployment, endpoint: Endpoint) -> str:
    """The confirmation of deleting a deployment: its instances stop, and what depends on it."""
    return (f"Delete deployment {deployment.name} of {endpoint.name}? Its instances stop and requests that name "
            "it get 404." + traffic_dependence(
                deployment, endpoint, "It serves {share} % of live traffic: the delete is refused until the "
                                      "Traffic tab gives that share to another deployment."))


def regenerate_key_question(endpoint: str, key_type: str) -> str:
    """The confirmation of a new endpoint key: who stops working, and who does not."""
    other = "secondary" if key_type == "primary" else "primary"
    return (f"Regenerate the {key_type} key of {endpoint}? Clients using it stop working; the {other} key and "
            "consumers' own keys keep working.")


def updated(current: Deployment, model: str, environment: str, script: str | None) -> Deployment:
    """The deployment as the update asks it to be: everything else (code, instances, settings) as it is."""
    return current.replace(model=model, environment=environment,
                           scoring_script=script if script is not None else current.scoring_script)


# ------------------------------------------------------------------ logs


def filter_log(text: str, query: str) -> tuple[str, int, int]:
    """The log's lines that hold ``query`` (any case; all lines for an empty query), and (shown, total)."""
    lines = text.splitlines()
    needle = query.strip().lower()
    shown = [line for line in lines if needle in line.lower()] if needle else lines
    return "\n".join(shown), len(shown), len(lines)


def log_file_name(endpoint: str, deployment: str, container: str) -> str:
    return f"{endpoint}-{deployment}-{container}.log"


# ------------------------------------------------------------ ready-to-run


def ready_to_run(snippet: str, language: str, key: str) -> str:
    """A code snippet (``common.curl_snippet``/``python_snippet``, which read $BYOM_KEY) with the key set first.

    Shown only once the operator reveals the keys: it holds the key itself.
    """
    if language == "python":
        return snippet.replace("import os\n\n", f"import os\n\nos.environ[\"BYOM_KEY\"] = {json.dumps(key)}\n", 1)
    return f"BYOM_KEY={shlex.quote(key)}\n{snippet}"
