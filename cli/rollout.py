"""``byom online-endpoint rollout``: move traffic to a deployment step by step, rolled back on a breach (byom's own).

``rollout -n EP --to D --steps 10,50,100 --step-seconds S`` starts it in the
workspace's driver (the local control plane) and follows it until it ends:
exit 0 when it reached its last step, 1 with the reason when it was rolled
back, aborted or stopped; ``--no-wait`` returns the record at once.
``rollout status`` prints the endpoint's latest rollout; ``rollout abort``
asks the running one to set the split back.
"""

from __future__ import annotations

import argparse
from typing import Any

from byom.core import traffic_rollout
from byom.core.errors import InvalidInput
from byom.core.workspace import Workspace

from .common import verb
from .output import progress_for

ABORT_WAIT_S = 60.0


def endpoint_rollout(ws: Workspace, args: argparse.Namespace) -> Any:
    if args.action == "status":
        return traffic_rollout.status(ws, args.name)
    if args.action == "abort":
        asked = traffic_rollout.abort(ws, args.name)
        if args.no_wait:
            return asked
        try:
            traffic_rollout.wait(ws, args.name, asked.id, timeout_s=ABORT_WAIT_S, progress=progress_for(args))
        except traffic_rollout.RolloutFailed:
            pass  # aborted (or ended otherwise meanwhile): what the record says is the answer
        return traffic_rollout.status(ws, args.name)
    if not args.to:
        raise InvalidInput("Name the deployment to move traffic to with --to (or ask 'rollout status' or "
                           "'rollout abort').")
    plan = traffic_rollout.RolloutPlan(
        endpoint=args.name, target=args.to, steps=traffic_rollout.parse_steps(args.steps),
        step_seconds=args.step_seconds, max_error_rate=args.max_error_rate, max_p95_ms=args.max_p95_ms,
        min_requests=args.min_requests,
    )
    started = traffic_rollout.start(ws, plan)
    if args.no_wait:
        return started
    return traffic_rollout.wait(ws, args.name, started.id, progress=progress_for(args))


def register(endpoint_verbs: Any) -> None:
    defaults = traffic_rollout.RolloutPlan("", "")
    p = verb(endpoint_verbs, "rollout", endpoint_rollout,
             "Move live traffic to a deployment step by step; after each step its error rate and p95 latency are "
             "checked, and a breach sets the split back to what it was (byom's own). 'rollout status' and "
             "'rollout abort' follow or stop a running one.")
    p.add_argument("action", nargs="?", choices=("status", "abort"), help="Follow or stop the running rollout.")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--to", metavar="DEPLOYMENT", help="The deployment that gets the traffic.")
    p.add_argument("--steps", default=",".join(map(str, defaults.steps)),
                   help="Its share at each step, rising, ending at 100 (default %(default)s); the other "
                        "deployments share the rest in their proportions before the rollout.")
    p.add_argument("--step-seconds", type=float, default=defaults.step_seconds,
                   help="How long each step lasts before it is checked (default %(default)g).")
    p.add_argument("--max-error-rate", type=float, default=defaults.max_error_rate,
                   help="The most errors (status 4xx/5xx) per request the target may answer in a step "
                        "(default %(default)g).")
    p.add_argument("--max-p95-ms", type=float, default=None,
                   help="The highest p95 latency in milliseconds the target may have in a step (default: none).")
    p.add_argument("--min-requests", type=int, default=defaults.min_requests,
                   help="A step waits for this many requests to the target (default %(default)d), at most "
                        f"{traffic_rollout.MIN_REQUESTS_WAIT_STEPS} step lengths; fewer fail it.")
    p.add_argument("--no-wait", action="store_true",
                   help="Return once the rollout is started (or the abort asked); it goes on in the control plane.")
