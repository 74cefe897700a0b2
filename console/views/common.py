"""What several pages show: tables of rows, sizes and times, a deployment's task, traffic, code snippets."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import pandas as pd
from byom.core.entities import TASK_GENERATION, TASK_TOKEN_RANKS, Deployment, Endpoint
from byom.core.history import split_text

GENERATION = TASK_GENERATION
TOKEN_RANKS = TASK_TOKEN_RANKS

Table: TypeAlias = pd.DataFrame
"""What ``st.dataframe`` shows."""


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Table:
    """Rows as a table with these columns in this order; an empty table still has them."""
    return pd.DataFrame(list(rows), columns=list(columns))


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


def deployment_task(deployment: Deployment) -> str:
    """What a deployment answers: ``generation`` (prompts, chats) or ``token_ranks`` (a text's token ranks).

    Core's own ``Deployment.task``: the one rule, for every page and the CLI alike.
    """
    return deployment.task


DEPLOYMENT_STATES = {"Succeeded": "Ready", "Creating": "Creating", "Updating": "Updating", "Scaling": "Scaling",
                     "Deleting": "Deleting", "Failed": "Failed"}
BUILD_STATES = {"NotStarted": "Not built yet", "Running": "Building", "Succeeded": "Ready", "Failed": "Failed",
                "Unknown": "Not reported"}


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def deployment_state(state: str) -> str:
    """A deployment's state in the console's words ("Ready", not Azure's "Succeeded")."""
    return DEPLOYMENT_STATES.get(state, state)


def build_state(state: str) -> str:
    """An environment build's state in the console's words ("Not built yet", not "NotStarted")."""
    return BUILD_STATES.get(state, state)


def traffic_text(endpoint: Endpoint) -> str:
    """The endpoint's live split, and its mirror split where it has one."""
    return split_text(endpoint.traffic, endpoint.mirror_traffic)


def deployments_table(deployments: Sequence[Deployment], endpoint: Endpoint) -> Table:
    rows = []
    for d in deployments:
        ready = sum(1 for i in d.instances if i.state == "Ready")
        rows.append({
            "deployment": d.name, "model": d.model, "environment": d.environment,
            "script": d.scoring_script or "", "state": deployment_state(d.provisioning_state),
            "instances": f"{ready}/{d.instance_count}" if d.instances else str(d.instance_count),
            "traffic %": endpoint.traffic.get(d.name.lower(), 0),
            "mirror %": endpoint.mirror_traffic.get(d.name.lower(), 0),
            "reason": d.state_reason,
        })
    return table(rows, ["deployment", "model", "environment", "script", "state", "instances", "traffic %",
                        "mirror %", "reason"])


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
