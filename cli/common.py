"""What every verb of the CLI shares: the workspace flags, confirmation, az's --set, the parser."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from byom.core.errors import InvalidInput
from byom.core.factory import choose_target, open_workspace
from byom.core.workspace import Workspace

from .generic_update import truthy
from .output import add_output_arguments

Handler = Callable[[Workspace, argparse.Namespace], Any]


def add_workspace_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workspace")
    group.add_argument("--workspace-dir", help="Local workspace home (default: $BYOM_HOME or ~/.byom).")
    group.add_argument("--subscription", help="Azure subscription id (Azure ML workspace).")
    group.add_argument("--resource-group", "-g", help="Azure resource group (Azure ML workspace).")
    group.add_argument("--workspace-name", "-w", help="Azure ML workspace name.")
    group.add_argument("--workspace-config", help="Azure ML config.json (default: $BYOM_AZURE_CONFIG).")


def workspace_from(args: argparse.Namespace) -> Workspace:
    """The workspace the flags name (see :func:`byom.core.factory.choose_target` for the precedence)."""
    return open_workspace(choose_target(
        home=args.workspace_dir or None, local=getattr(args, "local", False),
        config=getattr(args, "workspace_config", None), subscription=args.subscription,
        resource_group=args.resource_group, workspace_name=args.workspace_name,
    ))


# --------------------------------------------------------------- parsing help


def version_arg(text: str) -> str:
    return text


def apply_sets(
    sets: list[str] | None, removes: list[str] | None, current_tags: dict[str, str]
) -> tuple[str | None, dict[str, str] | None]:
    """az's ``--set description=... --set tags.k=v --remove tags.k`` → (description, tags)."""
    description = None
    tags = dict(current_tags)
    changed_tags = False
    for item in sets or []:
        if "=" not in item:
            raise InvalidInput(f"--set {item!r} is not PATH=VALUE (for example --set tags.team=nlp).")
        path, value = item.split("=", 1)
        if path == "description":
            description = value
        elif path.startswith("tags."):
            tags[path[len("tags."):]] = value
            changed_tags = True
        elif path == "tags":
            tags, changed_tags = _tags_object(value), True
        else:
            raise InvalidInput(f"--set {path!r} cannot change: only description and tags.<name> can, "
                               "the rest is immutable.")
    for path in removes or []:
        if not path.startswith("tags."):
            raise InvalidInput(f"--remove {path!r}: only tags.<name> can be removed.")
        tags.pop(path[len("tags."):], None)
        changed_tags = True
    return description, (tags if changed_tags else None)


def _tags_object(text: str) -> dict[str, str]:
    """``--set tags='{"team": "nlp"}'``: all the tags at once, as a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidInput(f"--set tags={text!r} is not a JSON object: write tags='{{\"team\": \"nlp\"}}' "
                           "or --set tags.team=nlp.")
    return {str(k): str(v) for k, v in value.items()}


def confirm(args: argparse.Namespace, what: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise InvalidInput(f"Refusing to {what} without confirmation: pass --yes.")
    answer = input(f"Are you sure you want to {what}? (y/n): ").strip().lower()
    if answer not in ("y", "yes"):
        raise InvalidInput("Cancelled: nothing was changed.")



# --------------------------------------------------------------------- parser


class Parser(argparse.ArgumentParser):
    """argparse that prints a usage error with the az-style hint and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"ERROR: {message}. See '{self.prog} --help'.\n")
        raise SystemExit(2)


def verb(group: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
    add_workspace_arguments(parser)
    add_output_arguments(parser)
    parser.set_defaults(handler=handler)
    return parser


LOCAL_HELP = ("As az ml's --local: the local workspace, even where an Azure one is set; an endpoint created so has "
              "a single deployment that gets every request, without a traffic rule or a key, and "
              "'online-deployment create --local' creates its endpoint when it is missing.")


def add_local_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local", nargs="?", const=True, default=False, type=truthy, metavar="BOOL", help=LOCAL_HELP)
