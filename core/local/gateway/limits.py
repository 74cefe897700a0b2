"""What the gateway's HTTP server gives one client: time to send a head and a body, idle time, connections, bytes.

Each has an environment variable, read when the gateway starts (the
control plane passes its environment on)::

    BYOM_GATEWAY_HEADER_TIMEOUT_S    a request head must arrive whole within this, from its first byte (10)
    BYOM_GATEWAY_IDLE_TIMEOUT_S      a kept-alive connection with no request for this long is closed (30)
    BYOM_GATEWAY_BODY_TIMEOUT_S      a request body must arrive whole within this, from the head (60)
    BYOM_GATEWAY_MAX_CONNECTIONS     client connections at once; beyond, 503 and Retry-After
                                     (half the open-file limit, at most 4096)
    BYOM_GATEWAY_MAX_BODY_MB         request body limit in MiB (8), and per endpoint: "8,chat=32,big=100"

A client past a time limit gets 408 (a head or body begun) or a closed
connection (idle); one over the body limit gets 413.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field

MIB = 1024 * 1024
DEFAULT_MAX_BODY_MB = 8


def _default_max_connections() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    # the other half for model-server connections, the databases and logs
    return max(16, min(4096, (soft if soft != resource.RLIM_INFINITY else 8192) // 2))


@dataclass(frozen=True)
class Limits:
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    body_timeout_s: float = 60.0
    max_connections: int = field(default_factory=_default_max_connections)
    max_body_bytes: int = DEFAULT_MAX_BODY_MB * MIB
    endpoint_body_bytes: Mapping[str, int] = field(default_factory=dict)

    def body_limit(self, path: str) -> int:
        """The body limit of a request to ``path`` (decoded): its endpoint's, or the default."""
        parts = path.split("/")
        if len(parts) >= 3 and parts[1] == "endpoints":
            return self.endpoint_body_bytes.get(parts[2], self.max_body_bytes)
        return self.max_body_bytes

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Limits:
        """The limits the environment sets; ValueError naming the variable when one is not a finite positive
        number ("inf" and "nan" are not: they would overflow or fail further on, without the variable's name)."""
        def number(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number.") from None
            if not math.isfinite(value):
                raise ValueError(f"{name}={raw!r} is not a finite number: give one above 0.")
            if value <= 0:
                raise ValueError(f"{name}={raw!r} must be above 0.")
            return value

        defaults = cls()
        body, per_endpoint = _body_limits(env.get("BYOM_GATEWAY_MAX_BODY_MB", ""), defaults.max_body_bytes)
        return cls(
            header_timeout_s=number("BYOM_GATEWAY_HEADER_TIMEOUT_S", defaults.header_timeout_s),
            idle_timeout_s=number("BYOM_GATEWAY_IDLE_TIMEOUT_S", defaults.idle_timeout_s),
            body_timeout_s=number("BYOM_GATEWAY_BODY_TIMEOUT_S", defaults.body_timeout_s),
            max_connections=int(number("BYOM_GATEWAY_MAX_CONNECTIONS", defaults.max_connections)),
            max_body_bytes=body, endpoint_body_bytes=per_endpoint,
        )


def _body_limits(raw: str, default: int) -> tuple[int, dict[str, int]]:
    """``"8,chat=32"``: 8 MiB for every endpoint but chat's, 32 MiB."""
    per_endpoint: dict[str, int] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, size = item.rpartition("=")
        try:
            megabytes = float(size)
        except ValueError:
            megabytes = -1
        if not math.isfinite(megabytes) or megabytes <= 0 or (sep and not name.strip()):
            raise ValueError(f"BYOM_GATEWAY_MAX_BODY_MB: {item!r} is not 'MIB' or 'ENDPOINT=MIB' "
                             "(MIB a finite number above 0).")
        if sep:
            per_endpoint[name.strip()] = int(megabytes * MIB)
        else:
            default = int(megabytes * MIB)
    return default, per_endpoint
