"""The local gateway: one async HTTP server per workspace home, on 127.0.0.1.

It answers every endpoint's scoring URI with Azure ML's managed-endpoint
semantics (see DESIGN.md, "Azure ML semantics to keep"):

* ``POST /endpoints/<name>/score`` and ``GET /endpoints/<name>/swagger.json``:
  ``Authorization: Bearer <key>`` (401), the ``azureml-model-deployment``
  header or a weighted choice (404 when there is nothing to route to),
  at most ``2 × max_concurrent_requests_per_instance × instance_count`` in
  flight per deployment (429), round robin over the ready instances, 408
  past ``request_timeout_ms``, 424 when the model server answers non-2xx,
  502/503 when no instance can be reached (one that refuses a connection
  gets no request for ``DOWN_S``); mirror copies after the live request,
  their answers discarded.
* ``/endpoints/<name>/v1/...``: the OpenAI API (openai_routes.py), under the same rules.
* ``GET /metrics``: Prometheus metrics; requests to endpoints that do not
  exist count under ``endpoint=""`` (their names come from the URL).
* ``POST /-/reload``: rebuild the routing table now (the library calls it
  after a traffic or key change, the control plane after instances change);
  ``GET /-/in-flight``: requests in flight per instance port (for draining);
  ``POST /-/flush``: write the buffered request facts and captured bodies now; ``GET /-/timed-out``:
  requests answered 408 per instance port (a worker may still hold one). These ask
  for the home's admin token (:mod:`.admin_token`), 401 without it.
* ``GET /-/health`` and ``GET /metrics`` need no key; like every route they
  are reachable only from this machine (the gateway listens on 127.0.0.1).

Keys never appear in a log: there is no access log, and errors name the
rule, not the header.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...entities import Deployment, Endpoint, EndpointKeys, RequestFact, utcnow
from ...mirror_report import Answer
from ...mirror_report import answers as mirrored_answers
from ...routing import ConsumerRoute, DeploymentRoute, EndpointRoute, build_routes, consumer_route
from ...serving import DEPLOYMENT_HEADER
from ..captures import CaptureStore
from ..model_server import KEEP_ALIVE_S
from ..processes import start_time
from ..request_facts import RequestFactStore
from ..serving_files import ServingFiles, read_json, start_service, write_json
from ..sqlite_store import SqliteStore
from ..state import read_state
from . import admin_token
from .capture import Capturer
from .consumer_limits import DAY_S, Admission, ConsumerLimits, Refusal, answer_usage, body_reservation, used_tokens
from .control_plane_watch import watch_control_plane
from .http_server import HttpServer, Request, Response, json_error, json_response
from .instances import Failure, send_to_an_instance
from .limits import Limits
from .metrics import GatewayMetrics
from .openai_routes import OpenAIRoutes
from .score_stream import stream_payload, stream_score
from .streaming import StreamingResponse
from .upstream import UpstreamPool

log = logging.getLogger("byom.gateway")

CLIENT_REQUEST_ID_MAX = 40
WATCH_EVERY_S = 0.5
FLUSH_EVERY_S = 1.0
DOWN_S = 2.0  # how long an instance that refused a connection gets no request
# request headers that are the gateway's business, not the model server's
_NOT_FORWARDED = {
    "host", "authorization", "content-length", "transfer-encoding", "connection", "keep-alive",
    "proxy-authorization", "te", "trailer", "upgrade", DEPLOYMENT_HEADER, "x-request-id", "x-ms-client-request-id",
}

# request.path is decoded once: /%2D/reload is here too
_NEEDS_TOKEN = {"/-/reload", "/-/flush", "/-/in-flight", "/-/timed-out"}


class Gateway:
    def __init__(self, files: ServingFiles) -> None:
        self.files = files
        self.routes: dict[str, EndpointRoute] = {}
        self.rng = random.Random()
        self.round_robin: dict[tuple[str, str], int] = defaultdict(int)
        self.in_flight: dict[tuple[str, str], int] = defaultdict(int)
        self.in_flight_port: dict[int, int] = defaultdict(int)
        self.timed_out_port: dict[int, int] = defaultdict(int)  # requests given up on (408), per instance port
        # ports that refused a connection, and until when they are skipped (the routes may not know yet
        # that the instance died; past that time the gateway tries again, in case it was wrong)
        self.down: dict[int, float] = {}
        self._unreachable_logged = -1e9
        self.metrics = GatewayMetrics()
        self.facts: list[tuple[Any, ...]] = []  # RequestFact fields, made into RequestFacts when written
        self.fact_store = RequestFactStore(files.requests_db)
        self.upstreams = UpstreamPool(max_idle_s=KEEP_ALIVE_S / 2)
        self.mirrors: set[asyncio.Task[None]] = set()
        # one thread for the database: SQLite connections stay on the thread that opened them
        self.db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db")
        self._store: SqliteStore | None = None
        self._watch: sqlite3.Connection | None = None
        self._seen: tuple[Any, ...] = ()
        self._reload_lock = asyncio.Lock()
        self._ports: set[int] = set()
        self.admin_token = admin_token.ensure_token(files.run)
        self.admin = {
            "/metrics": ("GET", self.metrics_page), "/-/health": ("GET", self.health_page),
            "/-/in-flight": ("GET", self.in_flight_page), "/-/reload": ("POST", self.reload_page),
            "/-/flush": ("POST", self.flush_page), "/-/timed-out": ("GET", self.timed_out_page),
        }
        self.consumer_limits = ConsumerLimits()
        self._restored = False  # whether the consumers' counts were read back from the request facts
        self.openai = OpenAIRoutes(self)
        self.capturer = Capturer(CaptureStore(files.captures_db))

    # ------------------------------------------------------------ routing

    def _load(self) -> dict[str, EndpointRoute]:
        if self._store is None:
            self._store = SqliteStore(self.files.db)
        with self._store.transaction() as txn:
            endpoints = [Endpoint.from_dict(doc) for doc in txn.list("endpoint")]
            keys = {e.name: EndpointKeys.from_dict(doc) for e in endpoints if (doc := txn.get("keys", e.name))}
            deployments = [Deployment.from_dict(doc) for doc in txn.list("deployment")]
            consumers: dict[str, list[ConsumerRoute]] = {}
            for doc in txn.list("consumer"):
                consumers.setdefault(doc["endpoint_name"], []).append(consumer_route(doc))
            captures = txn.list("capture")
        self.capturer.load(captures)
        if not self._restored:  # what consumers used before this gateway started still counts
            self.consumer_limits.restore(self.fact_store.consumed(time.time() - DAY_S))
            self._restored = True
        return build_routes(endpoints, keys, deployments, read_state(self.files.state).instances, consumers)

    def _changed(self) -> bool:
        if self._watch is None:
            self._watch = sqlite3.connect(self.files.db, timeout=30)
        try:
            stat = os.stat(self.files.state)
            state_seen: tuple[Any, ...] = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            state_seen = ()
        seen = (self._watch.execute("PRAGMA data_version").fetchone()[0], state_seen)
        changed, self._seen = seen != self._seen, seen
        return changed

    async def reload(self) -> None:
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            routes = await loop.run_in_executor(self.db_thread, self._load)
            self.routes = routes
            ports = {u.port for r in routes.values() for d in r.deployments.values() for u in d.upstreams}
            self.down = {port: until for port, until in self.down.items() if port in ports}
            for port in self._ports - ports:
                self.upstreams.forget(port)
            self._ports = ports

    async def watch(self) -> None:
        """Fallback for a missed reload call: notice changes by polling."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            try:
                if await loop.run_in_executor(self.db_thread, self._changed):
                    await self.reload()
            except Exception:
                log.exception("Reloading the routes failed")

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.flush_once(loop)

    async def flush_once(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self.facts = self.facts, []
        if batch:
            try:
                await loop.run_in_executor(self.db_thread, self._write_facts, batch)
            except Exception:
                log.exception("Recording %d request facts failed", len(batch))
        captured = self.capturer.take()
        if captured:
            try:
                await loop.run_in_executor(self.db_thread, self.capturer.write, captured)
            except Exception:
                log.exception("Recording %d captured requests failed", len(captured))

    def _write_facts(self, batch: list[tuple[Any, ...]]) -> None:
        self.fact_store.add([RequestFact(*fields) for fields in batch])

    # ----------------------------------------------------------- requests

    async def dispatch(self, request: Request) -> Response | StreamingResponse:
        parts = request.path.split("/")
        if len(parts) >= 5 and parts[1] == "endpoints" and parts[3] == "v1":
            return await self.openai.dispatch(request, parts[2], "/".join(parts[4:]))
        if len(parts) == 4 and parts[1] == "endpoints" and parts[3] in ("score", "swagger.json"):
            if parts[3] == "score":
                return await self.score(request, parts[2]) if request.method == "POST" else _not_allowed("POST")
            return await self.swagger(request, parts[2]) if request.method == "GET" else _not_allowed("GET")
        admin = self.admin.get(request.path)
        if admin is None:
            return json_error(404, "Not Found")
        method, page = admin
        if request.path in _NEEDS_TOKEN and not admin_token.admits(request.headers.get(admin_token.HEADER),
                                                                   self.admin_token):
            return json_error(401, f"This admin route needs the home's admin token in the {admin_token.HEADER} "
                                   "header (its file is run/admin-token in the workspace home).")
        allowed = request.method == method or (request.method, method) == ("HEAD", "GET")
        return await page(request) if allowed else _not_allowed(method)

    def _base_headers(self, request: Request) -> dict[str, str]:
        headers = {"x-request-id": str(uuid.uuid4())}
        client_id = request.headers.get("x-ms-client-request-id")
        if client_id:
            headers["x-ms-client-request-id"] = client_id[:CLIENT_REQUEST_ID_MAX]
        return headers

    def _record(self, endpoint: str, dep: DeploymentRoute | None, status: int, started: float,
                mirrored: bool = False, *, consumer: str = "", tokens: tuple[int, int] | None = None) -> None:
        seconds = time.perf_counter() - started
        if dep is None:
            # the name comes from the URL: a label only for endpoints that exist, or /metrics grows without bound
            self.metrics.observe(endpoint if endpoint in self.routes else "", "", "", status, seconds, mirrored)
        else:
            self.metrics.observe(endpoint, dep.name, dep.model, status, seconds, mirrored)
            self.facts.append((time.time(), endpoint, dep.name, dep.model, status, seconds * 1000, mirrored,
                               consumer, *(tokens or (0, 0))))

    def _route(self, request: Request, name: str, headers: dict[str, str]
               ) -> tuple[EndpointRoute, DeploymentRoute, bool, ConsumerRoute | None] | Response:
        route = self.routes.get(name)
        if route is None:
            return json_error(404, f"No endpoint named {name!r}.", headers)
        allowed, consumer = route.caller(request.headers.get("authorization"))
        if not allowed:
            return json_error(401, "Missing or invalid key: send 'Authorization: Bearer <key>' with the endpoint's "
                                   "primary or secondary key, or a consumer's key.", headers)
        targeted = request.headers.get(DEPLOYMENT_HEADER)
        if targeted is not None:
            dep = route.target(targeted)
            if dep is None:
                return json_error(404, f"Endpoint {name!r} has no deployment named {targeted.strip()[:64]!r}.", headers)
        else:
            dep = route.choose(self.rng)
            if dep is None:
                return json_error(404, f"No deployment of endpoint {name!r} has live traffic: set traffic, "
                                       "or name a deployment in the azureml-model-deployment header.", headers)
        return route, dep, targeted is not None, consumer

    def admit(self, route: EndpointRoute, consumer: ConsumerRoute | None, reserve: Callable[[], int],
              headers: dict[str, str]) -> Admission | Refusal | None:
        """A consumer's request let in under its limits (their headers added to ``headers``), or refused;
        None for a request sent with an endpoint key (no limits)."""
        if consumer is None:
            return None
        outcome = self.consumer_limits.admit(route.name, consumer, reserve())
        headers.update(outcome.headers)
        return outcome

    async def score(self, request: Request, name: str) -> Response | StreamingResponse:
        started = time.perf_counter()
        headers = self._base_headers(request)
        routed = self._route(request, name, headers)
        if isinstance(routed, Response):
            self._record(name, None, routed.status, started)
            return routed
        route, dep, targeted, consumer = routed
        who = consumer.name if consumer else ""
        headers[DEPLOYMENT_HEADER] = dep.name
        key = (route.name, dep.key)
        if self.in_flight[key] >= dep.max_in_flight:
            self._record(route.name, dep, 429, started, consumer=who)
            return json_error(429, f"Deployment {dep.name!r} already has {dep.max_in_flight} requests in flight "
                                   "(2 × max_concurrent_requests_per_instance × instance_count): retry later, "
                                   "or scale the deployment.", headers)
        admission = self.admit(route, consumer, lambda: body_reservation(request.body), headers)
        if isinstance(admission, Refusal):
            self._record(route.name, dep, 429, started, consumer=who)
            return json_error(429, admission.message, headers)
        if (payload := stream_payload(request.body)) is not None:
            forwarded = [(k, v) for k, v in request.raw_headers if k.lower() not in _NOT_FORWARDED]
            return await stream_score(self, self.openai.streams, route, dep, targeted, payload, request.body,
                                      forwarded, headers, started, who, admission)
        self._enter(key, +1)
        status, usage = 499, None  # until an answer says otherwise
        try:
            response = await self._forward(route, dep, "POST", "/score", request, headers)
            status = response.status
            usage = answer_usage(response.body) if 200 <= status < 300 else None
        finally:
            self._enter(key, -1)
            if admission is not None:
                self.consumer_limits.settle(admission, used_tokens(status, usage))
        self._record(route.name, dep, response.status, started, consumer=who, tokens=usage)
        self.capturer.observe(route.name, dep.name, targeted, request.body, response.status, response.body, started)
        if not targeted:
            shadow = route.mirror_to(self.rng)
            if shadow is not None:
                answered = Answer(dep.name, response.status, (time.perf_counter() - started) * 1000, response.body)
                task = asyncio.create_task(self._mirror(route, shadow, request, answered))
                self.mirrors.add(task)
                task.add_done_callback(self.mirrors.discard)
        return response

    async def swagger(self, request: Request, name: str) -> Response:
        headers = self._base_headers(request)
        routed = self._route(request, name, headers)
        if isinstance(routed, Response):
            return routed
        route, dep, _, _ = routed
        headers[DEPLOYMENT_HEADER] = dep.name
        return await self._forward(route, dep, "GET", "/swagger.json", request, headers)

    def _enter(self, key: tuple[str, str], delta: int) -> None:
        self.in_flight[key] += delta
        self.metrics.in_flight[key] = self.in_flight[key]

    async def _mirror(self, route: EndpointRoute, dep: DeploymentRoute, request: Request,
                      primary: Answer | None = None) -> None:
        """Send a copy to the mirror; with the primary's answer, keep both for the mirror report (a 429 for the
        mirror being full is not its answer: nothing is compared)."""
        started = time.perf_counter()
        key = (route.name, dep.key)
        if self.in_flight[key] >= dep.max_in_flight:
            self._record(route.name, dep, 429, started, mirrored=True)
            return
        self._enter(key, +1)
        try:
            response = await self._forward(route, dep, "POST", "/score", request, {})
        finally:
            self._enter(key, -1)
        if primary is not None:
            mirror = Answer(dep.name, response.status, (time.perf_counter() - started) * 1000, response.body)
            self.fact_store.hold(mirrored_answers(time.time(), route.name, primary, mirror))
        self._record(route.name, dep, response.status, started, mirrored=True)

    def _is_down(self, port: int) -> bool:
        until = self.down.get(port)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self.down[port]
        return False

    def _mark_down(self, port: int) -> None:
        """An instance refused a connection: it gets no request for ``DOWN_S``."""
        self.down[port] = time.monotonic() + DOWN_S
        self.upstreams.forget(port)

    def _unreachable(self, route: EndpointRoute, dep: DeploymentRoute, instance: str, exc: Exception) -> None:
        """No connection could be made: the gateway's own trouble (file descriptors, ports), not the instance's."""
        if time.monotonic() >= self._unreachable_logged + 10:  # once in a while, not once a request
            self._unreachable_logged = time.monotonic()
            log.warning("Cannot open a connection to instance %s of %s/%s: %s", instance, route.name, dep.name, exc)

    async def _forward(self, route: EndpointRoute, dep: DeploymentRoute, method: str, path: str, request: Request,
                       headers: dict[str, str]) -> Response:
        sent = [(k, v) for k, v in request.raw_headers if k.lower() not in _NOT_FORWARDED]
        if "x-request-id" in headers:
            sent.append(("x-request-id", headers["x-request-id"]))
        if "x-ms-client-request-id" in headers:
            sent.append(("x-ms-client-request-id", headers["x-ms-client-request-id"]))
        outcome = await send_to_an_instance(
            self, route, dep, lambda port: self.upstreams.request(port, method, path, sent, request.body))
        if isinstance(outcome, Failure):
            return json_error(outcome.status, outcome.message, headers)
        answer, _ = outcome
        headers["Content-Type"] = answer.content_type or "application/json"
        if 200 <= answer.status < 300:
            return Response(answer.status, headers, answer.body)
        headers["ms-azureml-model-error-statuscode"] = str(answer.status)
        headers["ms-azureml-model-error-reason"] = answer.reason
        return Response(424, headers, answer.body)

    # -------------------------------------------------------------- admin

    async def metrics_page(self, request: Request) -> Response:
        return Response(200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8",
                              "X-Content-Type-Options": "nosniff"},
                        (self.metrics.render() + self.openai.tokens.render()).encode())

    async def reload_page(self, request: Request) -> Response:
        await self.reload()
        return json_response(200, {"endpoints": len(self.routes)}, {})

    async def flush_page(self, request: Request) -> Response:
        await self.flush_once(asyncio.get_running_loop())
        return json_response(200, {"ok": True}, {})

    async def in_flight_page(self, request: Request) -> Response:
        return json_response(200, {str(port): n for port, n in self.in_flight_port.items()}, {})

    async def timed_out_page(self, request: Request) -> Response:
        return json_response(200, {str(port): n for port, n in self.timed_out_port.items()}, {})

    async def health_page(self, request: Request) -> Response:
        return json_response(200, {"ok": True, "endpoints": len(self.routes)}, {})


def _not_allowed(method: str) -> Response:
    return json_error(405, "Method Not Allowed", {"x-request-id": str(uuid.uuid4()), "Allow": method})


async def serve(files: ServingFiles, stop: asyncio.Event | None = None) -> int:
    try:
        limits = Limits.from_env()
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    gateway = Gateway(files)
    port = files.gateway_port()
    # the routes before the port: a gateway restarted after a crash must never answer 404 for a live endpoint
    await gateway.reload()
    try:
        server = await HttpServer(gateway.dispatch, limits=limits).start("127.0.0.1", port)
    except OSError as exc:
        log.error("Cannot listen on 127.0.0.1:%d (%s). Free that port, or delete %s to have a new one chosen.",
                  port, exc.strerror, files.port_file)
        return 1
    write_json(files.gateway, {"pid": os.getpid(), "start": start_time(os.getpid()), "port": port,
                               "started_at": utcnow()})
    log.info("Gateway for %s listening on http://127.0.0.1:%d", files.home, port)
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(gateway.watch()), asyncio.create_task(gateway.flush()),
             asyncio.create_task(watch_control_plane(files))]
    await stop.wait()
    for task in tasks:
        task.cancel()
    server.close()
    await gateway.flush_once(loop)
    gateway.upstreams.close()
    record = read_json(files.gateway) or {}
    if record.get("pid") == os.getpid():
        files.gateway.unlink(missing_ok=True)
    log.info("Gateway stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    started = start_service(argv, "python -m byom.core.local.gateway", "gateway_lock", "gateway")
    if started is None:
        return 0
    files, _lock = started
    return asyncio.run(serve(files))

