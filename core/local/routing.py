"""The gateway's routing table, built from the desired state and the running instances.

A table is immutable: the gateway builds a new one on every change and swaps
it in with one assignment, so a request sees either the old routes or the
new ones, never a mix (this is what makes a traffic shift lossless).
"""

from __future__ import annotations

import hmac
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Upstream:
    instance: str
    port: int


@dataclass(frozen=True)
class DeploymentRoute:
    name: str  # as the user spelled it
    key: str  # lower-cased
    model: str  # name:version
    timeout_s: float
    max_in_flight: int  # beyond this many requests in flight: 429
    upstreams: tuple[Upstream, ...]


@dataclass(frozen=True)
class EndpointRoute:
    name: str
    keys: tuple[bytes, ...]
    traffic: tuple[tuple[str, int], ...]  # deployments with weight > 0
    mirror: tuple[str, int] | None
    deployments: Mapping[str, DeploymentRoute]  # by lower-cased name

    def authorized(self, authorization: str | None) -> bool:
        """``Bearer <key>`` with either key, compared in constant time."""
        if not authorization:
            return False
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        presented = given.strip().encode("utf-8", "replace")
        matches = [hmac.compare_digest(presented, key) for key in self.keys]  # always compare both
        return any(matches)

    def target(self, header: str | None) -> DeploymentRoute | None:
        return self.deployments.get(header.strip().lower()) if header is not None else None

    def choose(self, rng: random.Random) -> DeploymentRoute | None:
        """Weighted random choice among the deployments with live traffic."""
        if not self.traffic:
            return None
        names = [n for n, _ in self.traffic]
        picked = rng.choices(names, weights=[w for _, w in self.traffic])[0]
        return self.deployments.get(picked)

    def mirror_to(self, rng: random.Random) -> DeploymentRoute | None:
        """The shadow deployment for a copy of this request, or None (most of the time)."""
        if self.mirror is None:
            return None
        name, percent = self.mirror
        return self.deployments.get(name) if rng.random() * 100 < percent else None


def build_routes(
    endpoints: Iterable[Mapping[str, Any]],
    keys: Mapping[str, Mapping[str, Any]],
    deployments: Iterable[Mapping[str, Any]],
    instances: Iterable[Mapping[str, Any]],
) -> dict[str, EndpointRoute]:
    """Endpoint and key documents, deployment documents and instance records → routes by endpoint."""
    ready: dict[tuple[str, str], list[Upstream]] = {}
    for inst in instances:
        if inst.get("state") == "Ready" and inst.get("port"):
            ready.setdefault((inst["endpoint"], inst["deployment"]), []).append(Upstream(inst["id"], int(inst["port"])))
    by_endpoint: dict[str, dict[str, DeploymentRoute]] = {}
    for doc in deployments:
        settings = doc.get("request_settings") or {}
        key = doc["name"].lower()
        upstreams = sorted(ready.get((doc["endpoint_name"], key), []), key=lambda u: u.instance)
        per_instance = int(settings.get("max_concurrent_requests_per_instance") or 1)
        by_endpoint.setdefault(doc["endpoint_name"], {})[key] = DeploymentRoute(
            name=doc["name"], key=key, model=doc.get("model", ""),
            timeout_s=int(settings.get("request_timeout_ms") or 5000) / 1000,
            max_in_flight=2 * per_instance * max(1, int(doc.get("instance_count") or 1)),
            upstreams=tuple(upstreams),
        )
    routes = {}
    for doc in endpoints:
        name = doc["name"]
        found = keys.get(name) or {}
        secrets = tuple(k.encode() for k in (found.get("primary_key"), found.get("secondary_key")) if k)
        traffic = tuple(sorted((n.lower(), int(w)) for n, w in (doc.get("traffic") or {}).items() if int(w) > 0))
        mirror = next(((n.lower(), int(p)) for n, p in (doc.get("mirror_traffic") or {}).items() if int(p) > 0), None)
        routes[name] = EndpointRoute(name, secrets, traffic, mirror, by_endpoint.get(name, {}))
    return routes
