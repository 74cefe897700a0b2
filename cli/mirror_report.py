"""``byom online-endpoint mirror-report``: how the mirrored deployment answered beside the primary (byom's own).

One row per mirrored deployment: requests compared, identical, differing, errors on either side, latency
p50/p95 of each, and for generation answers the exact-match rate and the mean first differing word
(:mod:`core.mirror_report`). The window and names are the Workspace's rules; an Azure ML workspace says
what Azure lacks (it discards the mirror's answers).
"""

from __future__ import annotations

import argparse
from typing import Any

from byom.core.mirror_report import report_row
from byom.core.workspace import Workspace

from .common import verb


def endpoint_mirror_report(ws: Workspace, args: argparse.Namespace) -> Any:
    return [report_row(row) for row in ws.mirror_report(args.name, args.deployment, args.since)]


def register(endpoint_verbs: Any) -> None:
    p = verb(endpoint_verbs, "mirror-report", endpoint_mirror_report,
             "Compare the mirrored deployment's answers with the primary's: identical, differing, errors, latency, "
             "and for generations the exact-match rate and first differing word (byom's own).")
    p.add_argument("--name", "-n", required=True, help="The endpoint.")
    p.add_argument("--deployment", "-d", help="Only this mirrored deployment.")
    p.add_argument("--since", default="1h", help="How far back: 30m, 1h, 7d (default 1h).")
