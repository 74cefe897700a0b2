"""``byom online-endpoint`` and ``byom online-deployment``: az ml's verbs and flags.

``register(groups)`` adds both groups to the ``byom`` parser (each verb
gets the workspace and output flags from :func:`cli.common.verb`). What az ml prints, these print: the entity as
JSON (``-o``/``--query`` apply), the model's answer for ``invoke``, plain
text for ``get-logs``. Two verbs are byom's own, read from the audit
records (:mod:`byom.core.history`): ``traffic-history`` and ``revert``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from byom.core import history, openai_api
from byom.core.entities import Deployment, Endpoint, EndpointToken, ProbeSettings, RequestSettings
from byom.core.errors import BackendError, InvalidInput, NotFound
from byom.core.workspace import Capability, Workspace

from .common import Parser, apply_sets, confirm, verb
from .compare import register as register_compare
from .output import parse_key_values, progress_for, to_plain

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


_INT_FIELDS = {"instance_count"}
_SETTINGS = {"request_settings": RequestSettings, "liveness_probe": ProbeSettings, "readiness_probe": ProbeSettings}


def _apply_sets(dep: Deployment, sets: list[str] | None) -> Deployment:
    """az's --set PATH=VALUE on a deployment: instance_count, description, tags.K,
    environment_variables.K, request_settings.F, liveness_probe.F, readiness_probe.F."""
    data = dep.to_dict()
    for item in sets or []:
        if "=" not in item:
            raise InvalidInput(f"--set {item!r} is not PATH=VALUE (for example --set instance_count=2).")
        path, value = item.split("=", 1)
        head, _, field = path.partition(".")
        if path in _INT_FIELDS or head in _SETTINGS and field:
            if head in _SETTINGS and field not in data[head]:
                raise InvalidInput(f"--set {path!r}: {head} has no field {field!r}.")
            try:
                number = int(value)
            except ValueError:
                raise InvalidInput(f"--set {path}={value!r}: a whole number is needed.") from None
            if head in _SETTINGS:
                data[head][field] = number
            else:
                data[path] = number
        elif path == "description":
            data["description"] = value
        elif head in ("tags", "environment_variables") and field:
            data[head][field] = value
        else:
            raise InvalidInput(
                f"--set {path!r} cannot change. Use instance_count, description, tags.NAME, "
                "environment_variables.NAME, request_settings.FIELD or liveness_probe/readiness_probe.FIELD; "
                "change the rest with -f FILE."
            )
    return Deployment.from_dict(data)


def _waiting(args: argparse.Namespace) -> dict[str, Any]:
    """``wait`` and ``progress`` for a change (see ``progress_for``)."""
    return {"wait": not getattr(args, "no_wait", False), "progress": progress_for(args)}


def _print_text(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


# ------------------------------------------------------------------ endpoints


def endpoint_create(ws: Workspace, args: argparse.Namespace) -> Any:
    endpoint = Endpoint(name="")
    if args.file:
        from byom.core.endpoint_specs import endpoint_from_yaml

        endpoint = endpoint_from_yaml(args.file)
    if args.name:
        endpoint = endpoint.replace(name=args.name)
    if not endpoint.name:
        raise InvalidInput("Name the endpoint: pass --name or a file with 'name:' (-f endpoint.yml).")
    endpoint = _endpoint_sets(endpoint, args.set)
    try:
        current = ws.get_endpoint(endpoint.name)
    except NotFound:
        # traffic names deployments, which a new endpoint does not have yet
        return ws.create_or_update_endpoint(endpoint.replace(traffic={}, mirror_traffic={}), **_waiting(args))
    # Creating an endpoint that exists updates its description and tags; its traffic stays as it is,
    # so that a script run twice does not cut every request off (traffic changes go through update).
    return ws.create_or_update_endpoint(
        endpoint.replace(traffic=current.traffic, mirror_traffic=current.mirror_traffic), **_waiting(args))


def _endpoint_sets(endpoint: Endpoint, sets: list[str] | None) -> Endpoint:
    description, tags = apply_sets(sets, None, endpoint.tags)
    if description is not None:
        endpoint = endpoint.replace(description=description)
    if tags is not None:
        endpoint = endpoint.replace(tags=tags)
    return endpoint


def endpoint_update(ws: Workspace, args: argparse.Namespace) -> Any:
    name = args.name
    loaded = None
    if args.file:
        from byom.core.endpoint_specs import endpoint_from_yaml

        loaded = endpoint_from_yaml(args.file)
        name = name or loaded.name
    if not name:
        raise InvalidInput("Name the endpoint: pass --name or a file with 'name:' (-f endpoint.yml).")
    current = ws.get_endpoint(name)
    wanted = current
    if loaded is not None:
        wanted = wanted.replace(description=loaded.description or current.description,
                                tags=loaded.tags or current.tags)
    wanted = _endpoint_sets(wanted, args.set)
    traffic = _split(args.traffic, "Traffic")
    mirror = _split(args.mirror_traffic, "Mirror traffic")
    if loaded is not None and traffic is None and loaded.traffic:
        traffic = loaded.traffic
    if loaded is not None and mirror is None and loaded.mirror_traffic:
        mirror = loaded.mirror_traffic
    waiting = _waiting(args)
    traffic_follows = traffic is not None or mirror is not None
    if (wanted.description, wanted.tags) != (current.description, current.tags):
        # the traffic change that follows is refused while this one is still running: wait for it then
        ws.create_or_update_endpoint(wanted, **{**waiting, "wait": waiting["wait"] or traffic_follows})
    if traffic_follows:
        return ws.set_traffic(name, traffic if traffic is not None else current.traffic, mirror, **waiting)
    return ws.get_endpoint(name)


def endpoint_show(ws: Workspace, args: argparse.Namespace) -> Any:
    """The endpoint, with ``openai_base_url`` (null where the backend serves no OpenAI routes)."""
    endpoint = ws.get_endpoint(args.name)
    shown: dict[str, Any] = to_plain(endpoint)
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
        "after": history.split_text(change.after, change.mirror_after),
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
    progress = progress_for(args)
    if args.file:
        from byom.core.endpoint_specs import deployment_from_yaml

        dep = deployment_from_yaml(ws, args.file, progress=progress)
    else:
        raise InvalidInput("Pass the deployment's YAML file with -f (as az ml online-deployment create does).")
    if args.name:
        dep = dep.replace(name=args.name)
    if args.endpoint_name:
        dep = dep.replace(endpoint_name=args.endpoint_name)
    if not dep.name or not dep.endpoint_name:
        raise InvalidInput("Name the deployment and its endpoint: 'name:' and 'endpoint_name:' in the file, "
                           "or --name and --endpoint-name.")
    dep = _apply_sets(dep, args.set)
    result = ws.create_or_update_deployment(dep, wait=not args.no_wait, progress=progress)
    if result.provisioning_state == "Failed":
        raise BackendError(f"Deployment {result.name} failed: {result.state_reason}",
                           hint=f"See 'byom online-deployment get-logs -n {result.name} -e {result.endpoint_name}'.")
    if getattr(args, "all_traffic", False):
        ws.set_traffic(result.endpoint_name, {result.name: 100})
    return ws.get_deployment(result.endpoint_name, result.name)


def deployment_update(ws: Workspace, args: argparse.Namespace) -> Any:
    if args.file:
        return deployment_create(ws, args)
    if not args.name or not args.endpoint_name:
        raise InvalidInput("Pass --name and --endpoint-name (or -f FILE).")
    current = ws.get_deployment(args.endpoint_name, args.name)
    wanted = _apply_sets(current, args.set)
    progress = progress_for(args)
    if wanted.to_dict() == current.to_dict():
        return current
    if _only_count_changed(current, wanted):
        result = ws.scale_deployment(args.endpoint_name, args.name, wanted.instance_count,
                                     wait=not args.no_wait, progress=progress)
    else:
        result = ws.create_or_update_deployment(wanted, wait=not args.no_wait, progress=progress)
    if result.provisioning_state == "Failed":
        raise BackendError(f"Deployment {result.name} failed: {result.state_reason}")
    return ws.get_deployment(args.endpoint_name, args.name)


def _only_count_changed(before: Deployment, after: Deployment) -> bool:
    a, b = before.to_dict(), after.to_dict()
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
    p.add_argument("--set", action="append", metavar="PATH=VALUE", help="description=... or tags.NAME=VALUE.")
    p.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    p = verb(ep, "update", endpoint_update, "Change an endpoint's description, tags, traffic or mirror traffic.")
    p.add_argument("--name", "-n")
    p.add_argument("--file", "-f", help="Azure ML endpoint YAML.")
    p.add_argument("--traffic", "-r", help='Live split, e.g. "blue=90 green=10" (totals 100, or 0).')
    p.add_argument("--mirror-traffic", help='Mirror split, e.g. "green=10" (one deployment, 1-50 %%; 0 removes).')
    p.add_argument("--set", action="append", metavar="PATH=VALUE")
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
        p.add_argument("--set", action="append", metavar="PATH=VALUE")
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
            parser.add_argument("--local", action="store_true",
                                help="As az ml's --local: use the local workspace, even where an Azure one is set.")
