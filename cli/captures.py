"""``byom online-endpoint capture ...`` and ``byom online-endpoint replay``: record an endpoint's request bodies
and send them again to one deployment or two (byom's own; an Azure ML workspace says it has no such thing).

The rules (bounds, one capture at a time, what is kept) are :mod:`byom.core.captures`'.
"""

from __future__ import annotations

import argparse
from typing import Any

from byom.core import captures
from byom.core.workspace import Workspace

from .common import Parser, confirm, verb


def capture_start(ws: Workspace, args: argparse.Namespace) -> Any:
    return captures.start(ws, args.name, max_requests=args.max_requests, max_bytes=args.max_bytes,
                          sample_rate=args.sample_rate)


def capture_stop(ws: Workspace, args: argparse.Namespace) -> Any:
    return captures.stop(ws, args.name)


def capture_list(ws: Workspace, args: argparse.Namespace) -> Any:
    return captures.list_captures(ws, args.name)


def capture_show(ws: Workspace, args: argparse.Namespace) -> Any:
    found = captures.get(ws, args.capture)
    if not args.bodies:
        return found
    return {**found.to_dict(), "captured": [r.to_dict() for r in captures.requests_of(ws, args.capture)]}


def capture_delete(ws: Workspace, args: argparse.Namespace) -> Any:
    captures.get(ws, args.capture)
    confirm(args, f"delete capture {args.capture} and its request bodies")
    captures.delete(ws, args.capture)
    return None


def capture_create(ws: Workspace, args: argparse.Namespace) -> Any:
    return captures.create_from_file(ws, args.name, args.file, max_requests=args.max_requests,
                                     max_bytes=args.max_bytes)


def endpoint_replay(ws: Workspace, args: argparse.Namespace) -> Any:
    report = captures.replay(ws, args.name, args.capture, args.deployment, against=args.against,
                             concurrency=args.concurrency, timeout_s=args.timeout)
    return report.rows() if args.output in ("table", "tsv") else report


def _add_bounds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-requests", type=int, default=captures.DEFAULT_MAX_REQUESTS, metavar="N",
                        help="The most request bodies it keeps (default %(default)d).")
    parser.add_argument("--max-bytes", type=int, default=captures.DEFAULT_MAX_BYTES, metavar="B",
                        help="The most bytes of bodies it keeps, all together (default %(default)d).")


def register(endpoint_verbs: Any) -> None:
    group = endpoint_verbs.add_parser(
        "capture", help="Record the bodies of an endpoint's requests (never a header), bounded, for replay; "
                        "or save a prompt set from a file (byom's own).") \
        .add_subparsers(dest="capture_verb", metavar="VERB", parser_class=Parser)
    group.required = True
    for name, handler, text in (
        ("start", capture_start, "Record the bodies of requests sent through the endpoint's traffic split, "
                                 "within bounds; targeted requests (azureml-model-deployment) are not recorded."),
        ("stop", capture_stop, "Stop recording; the bodies stay until deleted."),
        ("list", capture_list, "The endpoint's captures, the newest first, with what each holds."),
        ("show", capture_show, "One capture; --bodies adds its request bodies in capture order."),
        ("delete", capture_delete, "Delete a capture and its request bodies."),
        ("create", capture_create, "Save a prompt set: one JSON request body per line of a file."),
    ):
        p = verb(group, name, handler, text)
        if name in ("show", "delete"):
            p.add_argument("--capture", required=True, metavar="ID", help="The capture's id.")
        else:
            p.add_argument("--name", "-n", required=True, help="The endpoint.")
        if name == "start":
            _add_bounds(p)
            p.add_argument("--sample-rate", type=float, default=1.0, metavar="R",
                           help="The share of requests recorded, above 0 and at most 1 (default %(default)g).")
        if name == "create":
            p.add_argument("--file", "-f", required=True, help="A JSON Lines file: one request body per line.")
            _add_bounds(p)
        if name == "show":
            p.add_argument("--bodies", action="store_true", help="Add the captured request bodies.")
        if name == "delete":
            p.add_argument("--yes", "-y", action="store_true", help="Do not ask for confirmation.")
    p = verb(endpoint_verbs, "replay", endpoint_replay,
             "Send a capture's request bodies, in capture order, to a deployment (and to --against, to compare "
             "the answers) and report requests, statuses, errors and latency per side (byom's own).")
    p.add_argument("--name", "-n", required=True, help="The endpoint.")
    p.add_argument("--capture", required=True, metavar="ID", help="The capture to replay.")
    p.add_argument("--deployment", "-d", required=True, help="The deployment to send them to.")
    p.add_argument("--against", metavar="DEPLOYMENT", help="A second deployment each request is sent to after, "
                                                           "to compare the answers.")
    p.add_argument("--concurrency", type=int, default=1, metavar="N",
                   help="Requests in flight at once (default 1: strictly one after another, in order).")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="How long each request may take (default %(default)g).")
