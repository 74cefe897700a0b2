"""``byom online-endpoint`` and ``byom online-deployment``: az ml's verbs and flags.

``register(groups)`` adds both groups to the ``byom`` parser (each verb
gets the workspace and output flags from :func:`cli.common.verb`). What az ml prints, these print: the entity as
JSON (``-o``/``--query`` apply), the model's answer for ``invoke``, plain
text for ``get-logs``. Two verbs are byom's own, read from the audit
records (:mod:`byom.core.history`): ``traffic-history`` and ``revert``; so are ``compare`` and
``rollout`` (:mod:`cli.rollout`), ``capture`` and ``replay`` (:mod:`cli.captures`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from byom.core import history, openai_api
from byom.core.entities import Deployment, Endpoint, EndpointToken
from byom.core.errors import BackendError, InvalidInput, NotFound
from byom.core.workspace import Capability, Workspace

from .az_fields import with_az_fields
from .captures import register as register_captures
from .common import Parser, add_local_argument, confirm, verb
from .compare import register as register_compare
from .consumers import register as register_consumers
from .generic_update import (
    add_set_argument,
    add_update_arguments,
    apply_generic_update,
    params_override,
    text_map,
)
from .mirror_report import register as register_mirror_report
from .output import parse_key_values, progress_for
from .rollout import register as register_rollout

# ------------------------------------------------------------------- helpers


def _split(text: str | None, what: str) -> dict[str, int] | None:
    """'blue=90 green=10' → {'blue': 90, 'green': 10}; the rules check the numbers."""
    if text is None:
        return None
    pairs = parse_key_values([text], what)
    out = {}
    for name, value in pairs.items():
        try:
            out[name] = int(value)
        except ValueError:
            raise InvalidInput(f"{what} for {name!r} is {value!r}: percentages are whole numbers.") from None
    return out


def deployment_document(dep: Deployment) -> dict[str, Any]:
    """A deployment in az ml's YAML terms: what ``--set``/``--add``/``--remove`` on update change."""
    doc: dict[str, Any] = {
        "name": dep.name, "endpoint_name": dep.endpoint_name, "model": f"azureml:{dep.model}",
        "environment": f"azureml:{dep.environment}", "instance_type": dep.instance_type,
        "instance_count": dep.instance_count,
    }
    if dep.code_path is not None:
        # a folder here, or (Azure) the code asset the deployment runs, written as az ml writes an asset
        code = dep.code_path if Path(dep.code_path).expanduser().is_dir() else f"azureml:{dep.code_path}"
        doc["code_configuration"] = {"code": code, "scoring_script": dep.scoring_script}
    doc.update({
        "request_settings": dep.request_settings.to_dict(), "liveness_probe": dep.liveness_probe.to_dict(),
        "readiness_probe": dep.readiness_probe.to_dict(), "environment_variables": dict(dep.environment_variables),
        "description": dep.description, "tags": dict(dep.tags),
    })
    return doc


def endpoint_document(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint in az ml's YAML terms."""
    return {"name": endpoint.name, "auth_mode": endpoint.auth_mode, "description": endpoint.description,
            "tags": dict(endpoint.tags), "traffic": dict(endpoint.traffic),
            "mirror_traffic": dict(endpoint.mirror_traffic)}


def _updated_document(doc: dict[str, Any], args: argparse.Namespace,
                      named: dict[str, str] | None = None) -> tuple[dict[str, Any], Path | None]:
    """``doc`` with the fields of ``-f FILE`` laid over it (what the file leaves out stays) and ``named`` (the
    names the flags give, which win over the file's, as in az ml), then the generic update of
    --set/--add/--remove; and the file, whose folder relative paths are read from."""
    file = None
    if getattr(args, "file", None):
        file = Path(args.file).expanduser()
        if not file.is_file():
            raise InvalidInput(f"File {str(file)!r} does not exist: pass the path of a YAML file with -f.")
        try:
            given = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{file} is not YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(given, dict):
            raise InvalidInput(f"{file} holds no fields: an Azure ML YAML file is a mapping.")
        given.pop("$schema", None)
        doc = {**doc, **given}
    doc = apply_generic_update({**doc, **(named or {})}, args.generic_ops, args.force_string)
    for field in ("tags", "environment_variables"):
        if field in doc:
            doc[field] = text_map(doc[field], field)
    return doc, file


def _waiting(args: argparse.Namespace) -> dict[str, Any]:
    """``wait`` and ``progress`` for a change (see ``progress_for``)."""
    return {"wait": not getattr(args, "no_wait", False), "progress": progress_for(args)}


def _print_text(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


# ------------------------------------------------------------------ endpoints


def endpoint_create(ws: Workspace, args: argparse.Namespace) -> Any:
    from byom.core.endpoint_specs import endpoint_from_yaml

    overrides = ([{"name": args.name}] if args.name else []) + params_override(args.generic_ops)
    if args.file:
        endpoint = endpoint_from_yaml(args.file, params_override=overrides)
    elif overrides:
        endpoint = endpoint_from_yaml(None, data={}, params_override=overrides)
    else:
        endpoint = Endpoint(name="")
    if not endpoint.name:
        raise InvalidInput("Name the endpoint: pass --name or a file with 'name:' (-f endpoint.yml).")
    # traffic names deployments, which a new endpoint does not have yet: it is set once they exist
    return ws.create_endpoint(endpoint.replace(traffic={}, mirror_traffic={}, local=bool(args.local)),
                              **_waiting(args))


def endpoint_update(ws: Workspace, args: argparse.Namespace) -> Any:
    from byom.core.endpoint_specs import endpoint_from_yaml

    name = args.name
    if not name and args.file:
        name = endpoint_from_yaml(args.file).name
    if not name:
        raise InvalidInput("Name the endpoint: pass --name or a file with 'name:' (-f endpoint.yml).")
    current = ws.get_endpoint(name)
    doc, _ = _updated_document(endpoint_document(current), args, {"name": current.name})
    wanted = endpoint_from_yaml(None, data=doc)
    if wanted.name != current.name:
        raise InvalidInput(f"An endpoint's name cannot change ({current.name!r} to {wanted.name!r}): "
                           "create another endpoint instead.")
    traffic = _split(args.traffic, "Traffic")
    mirror = _split(args.mirror_traffic, "Mirror traffic")
    if traffic is None and wanted.traffic != current.traffic:
        traffic = wanted.traffic
    if mirror is None and wanted.mirror_traffic != current.mirror_traffic:
        mirror = wanted.mirror_traffic
    waiting = _waiting(args)
    traffic_follows = traffic is not None or mirror is not None
    if (wanted.description, wanted.tags) != (current.description, current.tags):
        # the traffic change that follows is refused while this one is still running: wait for it then
        ws.create_or_update_endpoint(current.replace(description=wanted.description, tags=wanted.tags),
                                     **{**waiting, "wait": waiting["wait"] or traffic_follows})
    if traffic_follows:
        return ws.set_traffic(name, traffic if traffic is not None else current.traffic, mirror, **waiting)
    return ws.get_endpoint(name)


def endpoint_show(ws: Workspace, args: argparse.Namespace) -> Any:
    """The endpoint with az ml's keys, and ``openai_base_url`` (null where the backend serves no OpenAI routes)."""
    endpoint = ws.get_endpoint(args.name)
    shown: dict[str, Any] = with_az_fields(endpoint, ws.info())
    shown["openai_base_url"] = (openai_api.base_url(endpoint.scoring_uri)
                                if ws.supports(Capability.OPENAI_API) and endpoint.scoring_uri else None)
    return shown


def endpoint_list(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.list_endpoints()


def endpoint_delete(ws: Workspace, args: argparse.Namespace) -> Any:
    ws.get_endpoint(args.name)
    confirm(args, f"delete endpoint {args.name} and all its deployments")
    ws.delete_endpoint(args.name, **_waiting(args))
    return None


def endpoint_invoke(ws: Workspace, args: argparse.Namespace) -> Any:
    file = Path(args.request_file).expanduser()
    if not file.is_file():
        raise InvalidInput(f"Request file {str(file)!r} does not exist: pass a JSON file with --request-file.")
    result = ws.invoke(args.name, file.read_bytes(), deployment=args.deployment_name)
    if not result.ok:
        raise BackendError(f"The endpoint answered {result.status_code}: {result.body.strip()[:2000]}")
    try:
        return json.loads(result.body)
    except ValueError:
        _print_text(result.body)
        return None


def endpoint_credentials(ws: Workspace, args: argparse.Namespace) -> Any:
    credentials = ws.get_credentials(args.name)
    if isinstance(credentials, EndpointToken):  # az ml's shape for a token auth mode
        return {"accessToken": credentials.access_token, "expiryTimeUtc": int(credentials.expires_at),
                "refreshAfterTimeUtc": int(credentials.refresh_after), "tokenType": credentials.token_type}
    return {"primaryKey": credentials.primary_key, "secondaryKey": credentials.secondary_key}


def endpoint_regenerate(ws: Workspace, args: argparse.Namespace) -> Any:
    ws.regenerate_key(args.name, args.key_type, **_waiting(args))
    return None


def endpoint_traffic_history(ws: Workspace, args: argparse.Namespace) -> Any:
    ws.get_endpoint(args.name)
    return [_change_row(c) for c in history.traffic_history(ws, args.name)]


def _change_row(change: history.TrafficChange) -> dict[str, Any]:
    """A change: its id (for ``revert --to``), who and when, the splits before and after as text (what
    ``-o table`` shows) and as data."""
    return {
        "id": change.id, "at": change.at, "actor": change.actor,
        "before": history.split_text(change.before, change.mirror_before),
        "after": history.split_text(change.after, change.mirror_after), "note": change.note,
        "traffic_before": change.before, "traffic_after": change.after,
        "mirror_traffic_before": change.mirror_before, "mirror_traffic_after": change.mirror_after,
    }


def endpoint_revert(ws: Workspace, args: argparse.Namespace) -> Any:
    planned = history.plan_revert(ws, args.name, args.to)
    history.check_revert(planned)
    change = planned.change
    confirm(args, f"set the traffic of {args.name} back to "
                  f"{history.split_text(planned.traffic, planned.mirror_traffic)}, as it was before change "
                  f"{change.id} ({change.actor}, {change.at})")
    return history.apply_revert(ws, planned, **_waiting(args))


# ---------------------------------------------------------------- deployments


def deployment_create(ws: Workspace, args: argparse.Namespace) -> Any:
    from byom.core.endpoint_specs import deployment_from_yaml

    progress = progress_for(args)
    if not args.file:
        raise InvalidInput("Pass the deployment's YAML file with -f (as az ml online-deployment create does).")
    overrides = [{k: v} for k, v in (("name", args.name), ("endpoint_name", args.endpoint_name)) if v]
    dep = deployment_from_yaml(ws, args.file, progress=progress,
                               params_override=overrides + params_override(args.generic_ops))
    if not dep.name or not dep.endpoint_name:
        raise InvalidInput("Name the deployment and its endpoint: 'name:' and 'endpoint_name:' in the file, "
                           "or --name and --endpoint-name.")
    if args.local:
        try:
            ws.get_endpoint(dep.endpoint_name)
        except NotFound:  # as az ml's --local: the local endpoint is made for its deployment
            progress(f"Creating local endpoint {dep.endpoint_name}", None)
            ws.create_endpoint(Endpoint(name=dep.endpoint_name, local=True), progress=progress)
    return _deployed(ws, args, ws.create_deployment(dep, wait=not args.no_wait, progress=progress))


def _deployed(ws: Workspace, args: argparse.Namespace, result: Deployment) -> Deployment:
    if result.provisioning_state == "Failed":
        raise BackendError(f"Deployment {result.name} failed: {result.state_reason}",
                           hint=f"See 'byom online-deployment get-logs -n {result.name} -e {result.endpoint_name}'.")
    if getattr(args, "all_traffic", False) and not ws.get_endpoint(result.endpoint_name).local:
        ws.set_traffic(result.endpoint_name, {result.name: 100})  # a local endpoint's one deployment has it all
    return ws.get_deployment(result.endpoint_name, result.name)


def deployment_update(ws: Workspace, args: argparse.Namespace) -> Any:
    from byom.core.endpoint_specs import deployment_from_yaml

    name, endpoint_name = args.name, args.endpoint_name
    if args.file and not (name and endpoint_name):
        given = _file_fields(Path(args.file).expanduser())
        name, endpoint_name = name or given.get("name"), endpoint_name or given.get("endpoint_name")
    if not name or not endpoint_name:
        raise InvalidInput("Pass --name and --endpoint-name (or -f FILE with 'name:' and 'endpoint_name:').")
    current = ws.get_deployment(endpoint_name, name)
    before = deployment_document(current)
    doc, file = _updated_document(before, args, {"name": current.name, "endpoint_name": current.endpoint_name})
    progress = progress_for(args)
    wanted = deployment_from_yaml(ws, None, data=doc, origin=file.parent if file else None, progress=progress)
    if (wanted.name.lower(), wanted.endpoint_name) != (current.name.lower(), current.endpoint_name):
        raise InvalidInput("A deployment's name and endpoint cannot change: create another deployment instead.")
    wanted = ws.resolve_deployment(wanted.replace(name=current.name))
    if _spec(wanted) == _spec(current):
        return current
    if _only_count_changed(current, wanted):
        result = ws.scale_deployment(endpoint_name, current.name, wanted.instance_count,
                                     wait=not args.no_wait, progress=progress)
    else:
        result = ws.create_or_update_deployment(wanted, wait=not args.no_wait, progress=progress)
    return _deployed(ws, args, result)




def _file_fields(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise InvalidInput(f"Deployment file {str(file)!r} does not exist: pass the path of a YAML file with -f.")
    try:
        given = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{file} is not YAML: {' '.join(str(exc).split())}") from None
    return given if isinstance(given, dict) else {}


_STATE = ("provisioning_state", "state_reason", "instances", "created_by", "created_at", "updated_at")


def _spec(dep: Deployment) -> dict[str, Any]:
    """What a deployment was asked to be, without what it is doing."""
    return {k: v for k, v in dep.to_dict().items() if k not in _STATE}


def _only_count_changed(before: Deployment, after: Deployment) -> bool:
    a, b = _spec(before), _spec(after)
    return a["instance_count"] != b["instance_count"] and {k: v for k, v in a.items() if k != "instance_count"} == {
        k: v for k, v in b.items() if k != "instance_count"}


def deployment_show(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.get_deployment(args.endpoint_name, args.name)


def deployment_list(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.list_deployments(args.endpoint_name)


def deployment_delete(ws: Workspace, args: argparse.Namespace) -> Any:
    ws.get_deployment(args.endpoint_name, args.name)
    confirm(args, f"delete deployment {args.name} of endpoint {args.endpoint_name}")
    ws.delete_deployment(args.endpoint_name, args.name, **_waiting(args))
    return None


def deployment_logs(ws: Workspace, args: argparse.Namespace) -> Any:
    _print_text(ws.get_deployment_logs(args.endpoint_name, args.name, lines=args.lines, container=args.container))
    return None


# ------------------------------------------------------------------- parsers


NO_WAIT = ("Return once the change is accepted, without waiting for it to finish (an Azure ML workspace goes "
           "on with it: see 'show'); on a local workspace the change is made at once either way.")


def register(groups: Any) -> None:
    ep = groups.add_parser("online-endpoint", help="Online endpoints: scoring URIs with keys and traffic.") \
        .add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    ep.required = True
    p = verb(ep, "create", endpoint_create, "Create an endpoint (two keys are issued).")
    p.add_argument("--name", "-n")
    p.add_argument("--file", "-f", help="Azure ML endpoint YAML.")
    add_set_argument(p)
    p.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    p = verb(ep, "update", endpoint_update, "Change an endpoint's description, tags, traffic or mirror traffic.")
    p.add_argument("--name", "-n")
    p.add_argument("--file", "-f", help="Azure ML endpoint YAML.")
    p.add_argument("--traffic", "-r", help='Live split, e.g. "blue=90 green=10" (totals 100, or 0).')
    p.add_argument("--mirror-traffic", help='Mirror split, e.g. "green=10" (one deployment, 1-50 %%; 0 removes).')
    add_update_arguments(p)
    p.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    verb(ep, "show", endpoint_show, "Show an endpoint.").add_argument("--name", "-n", required=True)
    verb(ep, "list", endpoint_list, "List endpoints.")
    p = verb(ep, "delete", endpoint_delete, "Delete an endpoint and its deployments.")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--yes", "-y", action="store_true", help="Do not ask for confirmation.")
    p.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    p = verb(ep, "invoke", endpoint_invoke, "Send a request file to an endpoint (or to one deployment).")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--request-file", "-r", required=True, help="JSON file to send.")
    p.add_argument("--deployment-name", "-d", help="Send to this deployment, bypassing the traffic split.")
    verb(ep, "get-credentials", endpoint_credentials, "Show the endpoint's keys.") \
        .add_argument("--name", "-n", required=True)
    p = verb(ep, "regenerate-keys", endpoint_regenerate, "Replace a key; the old value stops working at once.")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--key-type", choices=["primary", "secondary"], default="primary")
    p.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    verb(ep, "traffic-history", endpoint_traffic_history,
         "The endpoint's traffic changes, newest first: who, when, the splits before and after (byom's own).") \
        .add_argument("--name", "-n", required=True)
    p = verb(ep, "revert", endpoint_revert,
             "Set the traffic back to what it was before a change of its history (byom's own); the traffic rules "
             "apply and the revert is audited.")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--to", type=int, metavar="ID",
                   help="The change to undo, by its id in traffic-history (default: the latest change).")
    p.add_argument("--yes", "-y", action="store_true", help="Do not ask for confirmation.")
    p.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    register_compare(ep)
    register_rollout(ep)
    register_mirror_report(ep)

    dep = groups.add_parser("online-deployment", help="Deployments behind online endpoints.") \
        .add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    dep.required = True
    for name, handler, text in (
        ("create", deployment_create, "Create a deployment from its YAML; waits until Succeeded or Failed."),
        ("update", deployment_update, "Update a deployment from its YAML, or --set instance_count=2 and the like."),
    ):
        p = verb(dep, name, handler, text)
        p.add_argument("--name", "-n")
        p.add_argument("--endpoint-name", "-e")
        p.add_argument("--file", "-f", help="Azure ML deployment YAML.")
        (add_set_argument if name == "create" else add_update_arguments)(p)
        p.add_argument("--no-wait", action="store_true", help="Return once the work has started.")
        p.add_argument("--skip-script-validation", action="store_true", help="Accepted for az ml compatibility.")
        if name == "create":
            p.add_argument("--all-traffic", action="store_true", help="Give it all live traffic once it succeeds.")
    for name, handler, text in (("show", deployment_show, "Show a deployment and its instances."),
                                ("delete", deployment_delete, "Delete a deployment (refused while it has traffic).")):
        p = verb(dep, name, handler, text)
        p.add_argument("--name", "-n", required=True)
        p.add_argument("--endpoint-name", "-e", required=True)
        if name == "delete":
            p.add_argument("--yes", "-y", action="store_true", help="Do not ask for confirmation.")
            p.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    verb(dep, "list", deployment_list, "List an endpoint's deployments.") \
        .add_argument("--endpoint-name", "-e", required=True)
    p = verb(dep, "get-logs", deployment_logs, "The last lines of a deployment's logs.")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--endpoint-name", "-e", required=True)
    p.add_argument("--lines", "-l", type=int, default=100)
    p.add_argument("--container", "-c", choices=["inference-server", "storage-initializer"],
                   default="inference-server")
    for group in (ep, dep):
        for parser in set(group.choices.values()):
            add_local_argument(parser)
    register_consumers(ep)
    register_captures(ep)
