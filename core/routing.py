"""An endpoint's routing rules, written once: keys, traffic weights, the deployment header, the mirror.

Pure functions over entities. The local gateway routes real requests with
them (its table rebuilt on every change); the in-memory fake
(:class:`core.serving.FakeServing`) routes its answers with them, so that a
console test sees the rules a real endpoint applies.

A table is immutable: the gateway builds a new one on every change and swaps
it in with one assignment, so a request sees either the old routes or the
new ones, never a mix (this is what makes a traffic shift lossless).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from . import consumer_keys
from .entities import Consumer, Deployment, Endpoint, EndpointKeys, InstanceState
from .rules import bearer_authorized


class RoutedInstance(Protocol):
    """What routing reads of a running instance (the local state file's ``InstanceRecord``)."""

    @property
    def id(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def deployment(self) -> str: ...  # lower-cased
    @property
    def state(self) -> str: ...
    @property
    def port(self) -> int: ...


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
class ConsumerRoute:
    """A consumer's key (its sha256) and limits, as the gateway enforces them."""

    name: str
    key_sha256: bytes
    tokens_per_minute: int | None = None
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None


def consumer_route(doc: Mapping[str, Any]) -> ConsumerRoute:
    """A consumer's stored document (:mod:`core.consumer_keys`) as its route."""
    consumer = Consumer.from_dict(dict(doc))
    return ConsumerRoute(consumer.name, bytes.fromhex(str(doc.get(consumer_keys.STORED) or "")),
                         consumer.tokens_per_minute, consumer.requests_per_minute, consumer.tokens_per_day)


@dataclass(frozen=True)
class EndpointRoute:
    name: str
    keys: tuple[bytes, ...]
    traffic: tuple[tuple[str, int], ...]  # deployments with weight > 0
    mirror: tuple[str, int] | None
    deployments: Mapping[str, DeploymentRoute]  # by lower-cased name
    keyless: bool = False  # an az ml --local endpoint: no key is asked for
    consumers: tuple[ConsumerRoute, ...] = ()

    def authorized(self, authorization: str | None) -> bool:
        """``Bearer <key>`` with either key (:func:`byom.core.rules.bearer_authorized`); anything, keyless."""
        return self.keyless or bearer_authorized(authorization, self.keys)

    def caller(self, authorization: str | None) -> tuple[bool, ConsumerRoute | None]:
        """Whether ``Bearer <key>`` is let in, and the consumer whose key it is (None: an endpoint key, or any
        caller of a keyless endpoint; a consumer's key is still known there, so its limits hold)."""
        if not self.keyless and bearer_authorized(authorization, self.keys):
            return True, None
        name = consumer_keys.matching(authorization, ((c.name, c.key_sha256) for c in self.consumers))
        consumer = next((c for c in self.consumers if c.name == name), None)
        return consumer is not None or self.keyless, consumer

    def target(self, header: str | None) -> DeploymentRoute | None:
        """The deployment an ``azureml-model-deployment`` header names, whatever its traffic."""
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


def deployment_route(dep: Deployment, upstreams: Iterable[Upstream] = ()) -> DeploymentRoute:
    settings = dep.request_settings
    per_instance = int(settings.max_concurrent_requests_per_instance or 1)
    return DeploymentRoute(
        name=dep.name, key=dep.name.lower(), model=dep.model or "",
        timeout_s=int(settings.request_timeout_ms or 5000) / 1000,
        max_in_flight=2 * per_instance * max(1, int(dep.instance_count or 1)),
        upstreams=tuple(sorted(upstreams, key=lambda u: u.instance)),
    )


def endpoint_route(endpoint: Endpoint, keys: EndpointKeys | None, deployments: Mapping[str, DeploymentRoute],
                   consumers: Iterable[ConsumerRoute] = ()) -> EndpointRoute:
    secrets = tuple(k.encode() for k in ((keys.primary_key, keys.secondary_key) if keys else ()) if k)
    if endpoint.local:  # its one deployment gets every request, whatever the traffic says
        return EndpointRoute(endpoint.name, secrets, tuple((n, 100) for n in sorted(deployments)[:1]), None,
                             deployments, keyless=True, consumers=tuple(consumers))
    traffic = tuple(sorted((n.lower(), int(w)) for n, w in endpoint.traffic.items() if int(w) > 0))
    mirror = next(((n.lower(), int(p)) for n, p in endpoint.mirror_traffic.items() if int(p) > 0), None)
    return EndpointRoute(endpoint.name, secrets, traffic, mirror, deployments, consumers=tuple(consumers))


def build_routes(
    endpoints: Iterable[Endpoint],
    keys: Mapping[str, EndpointKeys],
    deployments: Iterable[Deployment],
    instances: Iterable[RoutedInstance],
    consumers: Mapping[str, Iterable[ConsumerRoute]] | None = None,
) -> dict[str, EndpointRoute]:
    """Endpoints, their keys (by endpoint name), deployments, running instances and consumers (by endpoint
    name) → routes by endpoint.

    Only Ready instances with a port are routed to.
    """
    ready: dict[tuple[str, str], list[Upstream]] = {}
    for inst in instances:
        if inst.state == InstanceState.READY and inst.port:
            ready.setdefault((inst.endpoint, inst.deployment), []).append(Upstream(inst.id, int(inst.port)))
    by_endpoint: dict[str, dict[str, DeploymentRoute]] = {}
    for dep in deployments:
        route = deployment_route(dep, ready.get((dep.endpoint_name, dep.name.lower()), []))
        by_endpoint.setdefault(dep.endpoint_name, {})[route.key] = route
    named = consumers or {}
    return {ep.name: endpoint_route(ep, keys.get(ep.name), by_endpoint.get(ep.name, {}), named.get(ep.name, ()))
            for ep in endpoints}
