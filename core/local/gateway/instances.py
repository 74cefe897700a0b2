"""Which instance of a deployment takes a request, written once for ``/score`` and the OpenAI routes.

The ready instances in round-robin order; one that refuses a connection is
marked down and the next is tried (nothing was sent); the request's whole
deadline spans the tries. A request is counted in ``in_flight_port`` from
before it goes out, so draining an instance waits for it; a timeout counts in
``timed_out_port``, which the control plane reads to restart a hung instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ...routing import DeploymentRoute, EndpointRoute
from .upstream import Dropped, Refused, Unreachable

T = TypeVar("T")


class Picking(Protocol):
    """What choosing an instance reads and counts on the gateway (proxy.py's ``Gateway``)."""

    round_robin: dict[tuple[str, str], int]
    in_flight_port: dict[int, int]
    timed_out_port: dict[int, int]

    def _is_down(self, port: int) -> bool: ...
    def _mark_down(self, port: int) -> None: ...
    def _unreachable(self, route: EndpointRoute, dep: DeploymentRoute, instance: str, exc: Exception) -> None: ...


@dataclass(frozen=True)
class Failure:
    """Why no instance answered: the HTTP status and what to tell the caller."""

    status: int
    message: str


def leave_port(gw: Picking, port: int) -> None:
    """A request that held ``port`` is done with it."""
    gw.in_flight_port[port] -= 1
    if not gw.in_flight_port[port]:
        del gw.in_flight_port[port]


async def send_to_an_instance(gw: Picking, route: EndpointRoute, dep: DeploymentRoute,
                              send: Callable[[int], Awaitable[T]], *, hold: bool = False) -> tuple[T, int] | Failure:
    """``send(port)`` to one ready instance of ``dep``: its result and the port, or the Failure.

    With ``hold`` the port stays counted in flight after a success (a stream holds it until it ends: the caller
    then calls :func:`leave_port`); otherwise it is released when ``send`` returns.
    """
    upstreams = [u for u in dep.upstreams if not gw._is_down(u.port)]
    if not upstreams:
        return Failure(503, f"Deployment {dep.name!r} has no ready instance right now: see its state with "
                            "'byom online-deployment show' and its logs with 'get-logs'.")
    rr_key = (route.name, dep.key)
    first = gw.round_robin[rr_key]
    gw.round_robin[rr_key] = first + 1
    deadline = asyncio.get_running_loop().time() + dep.timeout_s
    for attempt in range(len(upstreams)):
        upstream = upstreams[(first + attempt) % len(upstreams)]
        if gw._is_down(upstream.port):
            continue
        gw.in_flight_port[upstream.port] += 1
        held = False
        try:
            async with asyncio.timeout_at(deadline):
                result = await send(upstream.port)
            held = hold
            return result, upstream.port
        except Refused:
            gw._mark_down(upstream.port)  # nothing was sent: safe to try the next one
            continue
        except Unreachable as exc:
            gw._unreachable(route, dep, upstream.instance, exc)
            return Failure(503, f"The gateway cannot open a connection right now ({exc}): retry later.")
        except TimeoutError:
            gw.timed_out_port[upstream.port] += 1  # its worker may still be busy with it: the control plane looks
            return Failure(408, f"Deployment {dep.name!r} did not answer within request_timeout_ms="
                                f"{int(dep.timeout_s * 1000)}.")
        except Dropped as exc:
            return Failure(502, f"Instance {upstream.instance} of deployment {dep.name!r} dropped the request: "
                                f"{exc}.")
        finally:
            if not held:
                leave_port(gw, upstream.port)
    return Failure(502, f"No instance of deployment {dep.name!r} could be reached.")
