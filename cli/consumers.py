"""``byom online-endpoint consumer ...`` and ``byom online-endpoint usage``: named keys with limits, and
who used how many tokens (byom's own; an Azure ML workspace says where Azure does it).

``consumer create`` and ``consumer regenerate-key`` print the consumer with its ``key``: the only time it
is shown (``--query key`` prints the key alone). The rules (names, limits, windows) are the Workspace's.
"""

from __future__ import annotations

import argparse
from typing import Any

from byom.core.chargeback import report_row
from byom.core.entities import LIMITS
from byom.core.workspace import Workspace

from .common import Parser, add_local_argument, confirm, verb


def limit_value(text: str) -> int | None:
    """A limit as given: a whole number, or ``none`` (no limit); the Workspace checks the number."""
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (or none)") from None


def _limits(args: argparse.Namespace) -> dict[str, int | None]:
    """The limits the flags name (a flag left out is not in the result)."""
    return {name: getattr(args, name) for name in LIMITS if hasattr(args, name)}


def consumer_create(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.create_consumer(args.name, args.consumer, _limits(args))


def consumer_list(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.list_consumers(args.name)


def consumer_show(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.get_consumer(args.name, args.consumer)


def consumer_update(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.update_consumer(args.name, args.consumer, _limits(args))


def consumer_delete(ws: Workspace, args: argparse.Namespace) -> Any:
    ws.get_consumer(args.name, args.consumer)
    confirm(args, f"delete consumer {args.consumer} of endpoint {args.name} (its key stops working)")
    ws.delete_consumer(args.name, args.consumer)
    return None


def consumer_regenerate(ws: Workspace, args: argparse.Namespace) -> Any:
    return ws.regenerate_consumer_key(args.name, args.consumer)


def endpoint_usage(ws: Workspace, args: argparse.Namespace) -> Any:
    rows = ws.consumer_usage(args.name, args.since, consumer=args.consumer, by=args.by)
    return [report_row(row) for row in rows]


def _add_limits(parser: argparse.ArgumentParser, *, update: bool) -> None:
    said = " (none removes it)" if update else ""
    for name, text in (("tokens_per_minute", "Input and output tokens a minute, those of requests in flight too"),
                       ("requests_per_minute", "Requests a minute"),
                       ("tokens_per_day", "Input and output tokens in 24 hours")):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=limit_value, metavar="N",
                            default=argparse.SUPPRESS, help=f"{text}; no limit when left out{said}.")


def register(endpoint_verbs: Any) -> None:
    group = endpoint_verbs.add_parser(
        "consumer", help="Named keys of an endpoint with token and request limits (byom's own).") \
        .add_subparsers(dest="consumer_verb", metavar="VERB", parser_class=Parser)
    group.required = True
    leaves = []
    for name, handler, text in (
        ("create", consumer_create, "Issue a consumer's key with its limits; the key is printed once."),
        ("list", consumer_list, "The endpoint's consumers and their limits (never their keys)."),
        ("show", consumer_show, "One consumer and its limits."),
        ("update", consumer_update, "Change a consumer's limits; its key stays."),
        ("delete", consumer_delete, "Delete a consumer: its key stops working."),
        ("regenerate-key", consumer_regenerate, "A new key for a consumer, printed once; the old one stops working."),
    ):
        p = verb(group, name, handler, text)
        p.add_argument("--name", "-n", required=True, help="The endpoint.")
        if name != "list":
            p.add_argument("--consumer", "-c", required=True, help="The consumer's name.")
        if name in ("create", "update"):
            _add_limits(p, update=name == "update")
        if name == "delete":
            p.add_argument("--yes", "-y", action="store_true", help="Do not ask for confirmation.")
        leaves.append(p)
    p = verb(endpoint_verbs, "usage", endpoint_usage,
             "Requests, input and output tokens and errors per consumer and deployment (byom's own).")
    p.add_argument("--name", "-n", required=True, help="The endpoint.")
    p.add_argument("--consumer", "-c", help="Only this consumer.")
    p.add_argument("--since", default="24h", help="How far back: 30m, 24h, 7d (default 24h).")
    p.add_argument("--by", help="One row per hour or day (default: one per consumer and deployment).")
    for parser in (*leaves, p):
        add_local_argument(parser)
