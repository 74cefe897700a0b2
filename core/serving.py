"""The serving seam: what runs deployments and answers their endpoints.

:class:`core.store.backend.StoreBackend` keeps the desired state
(endpoints, keys, traffic, deployments) in its store and hands the running of
it to a :class:`Serving`:

* ``FakeServing`` (here) for the in-memory workspace: deployments succeed at
  once and requests are answered by a responder function, the way
  ``httpx.MockTransport`` answers requests. It applies the endpoint's routing
  rules (keys, weights, the ``azureml-model-deployment`` header) so that
  console tests see the same behaviour as a real endpoint.
* the local control plane and gateway (``core.local.serving``): real
  model-server processes behind a real gateway.

A Serving never writes the store; it reads the desired state it is given and
reports observed state back.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import mirror_report, sse
from .entities import (
    CapturedRequest,
    Deployment,
    Endpoint,
    EndpointKeys,
    InvokeResult,
    MirroredAnswers,
    RequestFact,
)
from .errors import NotFound, Unsupported
from .metrics_series import ResourceSample
from .progress import Progress
from .routing import build_routes

DEPLOYMENT_HEADER = "azureml-model-deployment"


@dataclass
class EndpointState:
    """Everything a Serving needs to know about one endpoint."""

    endpoint: Endpoint
    keys: EndpointKeys
    deployments: dict[str, Deployment] = field(default_factory=dict)  # by lower-cased name


class CaptureBodies(Protocol):
    """Where captured request bodies are kept (:class:`core.local.captures.CaptureStore` locally)."""

    def add(self, capture: str, requests: Sequence[CapturedRequest], max_requests: int, max_bytes: int) -> int:
        """Append in order what fits the bounds; how many were kept."""
        ...

    def counts(self, captures: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
        """Bodies and bytes per capture."""
        ...

    def requests(self, capture: str) -> list[CapturedRequest]:
        """The capture's bodies in capture order."""
        ...

    def delete(self, capture: str) -> None: ...


class Serving(ABC):
    """Runs deployments and routes requests. Implementations declare capabilities."""

    capabilities: tuple[str, ...] = ()

    @abstractmethod
    def scoring_uri(self, endpoint_name: str) -> str: ...

    def swagger_uri(self, endpoint_name: str) -> str:
        return self.scoring_uri(endpoint_name).rsplit("/", 1)[0] + "/swagger.json"

    @abstractmethod
    def apply(self, state: EndpointState, deployment: Deployment, progress: Progress, wait: bool) -> Deployment:
        """Make the deployment run as described; return it with its observed state.

        With ``wait`` this blocks until the deployment is Succeeded or Failed;
        without, it returns once the work has started.
        """

    @abstractmethod
    def observe(self, deployment: Deployment) -> Deployment:
        """The deployment with its current provisioning state and instances."""

    @abstractmethod
    def remove(self, endpoint_name: str, deployment_name: str) -> None:
        """Stop a deployment's instances. Idempotent."""

    @abstractmethod
    def routes_changed(self, state: EndpointState) -> None:
        """Traffic or keys changed: route new requests accordingly from now on."""

    @abstractmethod
    def invoke(
        self,
        state: EndpointState,
        body: bytes,
        *,
        deployment: str | None,
        headers: dict[str, str],
        timeout_s: float,
    ) -> InvokeResult: ...

    def invoke_stream(self, state: EndpointState, body: bytes, *, headers: dict[str, str],
                      timeout_s: float) -> Generator[InvokeResult | bytes, None, None]:
        """As ``Backend.send_stream``: the head, then the stream's pieces; by default the whole answer, once."""
        yield self.invoke(state, body, deployment=None, headers=headers, timeout_s=timeout_s)

    @abstractmethod
    def logs(self, endpoint_name: str, deployment_name: str, lines: int, container: str) -> str: ...

    @abstractmethod
    def request_facts(self, endpoint_name: str, since: float) -> list[RequestFact]: ...

    def mirrored_answers(self, endpoint_name: str, since: float) -> list[MirroredAnswers]:
        """Both answers of each mirrored request since ``since`` (capability ``mirror-reports``)."""
        raise Unsupported("This workspace keeps no mirrored answers.")

    def rollouts_unsupported(self) -> Unsupported:
        return Unsupported("This workspace has nothing that drives progressive rollouts.",
                           hint="A local workspace's control plane drives them; here, move traffic in steps with "
                                "'online-endpoint update --traffic'.")

    def drive_rollouts(self) -> None:
        """Make sure what advances the rollouts recorded in the store runs (capability ``traffic-rollouts``)."""
        raise self.rollouts_unsupported()

    def captures_unsupported(self) -> Unsupported:
        return Unsupported("This workspace has no gateway of its own that could capture requests.",
                           hint="A local workspace's gateway captures them ('online-endpoint capture start').")

    def capture_bodies(self) -> CaptureBodies:
        """The captured bodies, with what the gateway still buffers written first (capability ``captures``)."""
        raise self.captures_unsupported()

    def resource_usage(self, endpoint_name: str, since: float) -> list[ResourceSample]:
        """CPU and memory of the endpoint's model-server processes, sampled now and kept since ``since``."""
        raise Unsupported("This workspace runs no model-server processes of its own, so it has no CPU or "
                          "memory to show.", hint="A local workspace samples its model servers' processes.")


class NoServing(Serving):
    """For a workspace that only keeps a registry: deployments cannot run."""

    def _refuse(self) -> Unsupported:
        return Unsupported(
            "This workspace cannot run deployments.",
            hint="Use the local or Azure ML backend to deploy.",
        )

    def scoring_uri(self, endpoint_name: str) -> str:
        return ""

    def swagger_uri(self, endpoint_name: str) -> str:
        return ""

    def apply(self, state: EndpointState, deployment: Deployment, progress: Progress, wait: bool) -> Deployment:
        raise self._refuse()

    def observe(self, deployment: Deployment) -> Deployment:
        return deployment

    def remove(self, endpoint_name: str, deployment_name: str) -> None:
        pass

    def routes_changed(self, state: EndpointState) -> None:
        pass

    def invoke(self, state: EndpointState, body: bytes, *, deployment: str | None, headers: dict[str, str],
               timeout_s: float) -> InvokeResult:
        raise self._refuse()

    def logs(self, endpoint_name: str, deployment_name: str, lines: int, container: str) -> str:
        raise self._refuse()

    def request_facts(self, endpoint_name: str, since: float) -> list[RequestFact]:
        return []


def _fake_token_ranks(text: str) -> dict[str, Any]:
    """Word i of ``text`` at rank (i * 37) % 1500; the word in capitals as the model's one alternative."""
    tokens, offset = [], 0
    for i, word in enumerate(text.split()):
        start = text.index(word, offset)
        offset = start + len(word)
        rank = (i * 37) % 1500
        tokens.append(
            {
                "token": word,
                "token_id": _fake_token_id(word),
                "rank": rank,
                "ties": 0,
                "logprob": -0.01 * (rank + 1),
                "prob": 1.0 / (rank + 2),
                "entropy": 1.0 + (i % 5) * 0.5,
                "start": start,
                "end": offset,
                "top_k": [{"token": word.upper(), "token_id": _fake_token_id(word.upper()), "prob": 0.5}],
            }
        )
    return {"token_ranks": tokens}


def _fake_token_id(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) % 50_000


Responder = Callable[[str, str, Any], tuple[int, Any]]
"""(endpoint, deployment, parsed JSON body) -> (status code, JSON-able body)."""


def echo_responder(endpoint: str, deployment: str, payload: Any) -> tuple[int, Any]:
    """Default fake model: generation-shaped and token-rank-shaped answers (``text``, or ``texts`` answered with
    ``{"results": [...]}`` as scoring/token_ranks.py does)."""
    if isinstance(payload, dict) and "texts" in payload:
        return 200, {"results": [_fake_token_ranks(str(text)) for text in payload.get("texts") or []]}
    if isinstance(payload, dict) and "text" in payload:
        return 200, _fake_token_ranks(str(payload.get("text") or ""))
    prompt = ""
    if isinstance(payload, dict):
        prompt = str(payload.get("prompt") or payload.get("messages") or "")
    text = f"[{deployment}] {prompt[::-1]}"
    return 200, {
        "text": text,
        "finish_reason": "stop",
        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())},
        "model": deployment,
    }


class FakeServing(Serving):
    """In-process serving for the in-memory workspace.

    ``responder`` plays the model; ``history`` keeps every request it answered
    as ``(endpoint, deployment, payload)``; ``fail_next(reason)`` makes the next
    ``apply`` end in Failed. A streamed generation answer comes word by word, ``word_s`` apart (0: at once),
    as a model's tokens would.
    """

    capabilities = ("deployments", "metrics", "consumers", "mirror-reports")  # kept, not enforced: the gateway enforces

    def __init__(self, responder: Responder = echo_responder, *, seed: int | None = None,
                 word_s: float = 0.0) -> None:
        self.responder = responder
        self.word_s = word_s
        self.history: list[tuple[str, str, Any]] = []
        self._facts: list[RequestFact] = []
        self._mirrored: list[MirroredAnswers] = []
        self._logs: dict[tuple[str, str], list[str]] = {}
        self._fail_reason: str | None = None
        self._random = random.Random(seed)

    def fail_next(self, reason: str) -> None:
        self._fail_reason = reason

    def scoring_uri(self, endpoint_name: str) -> str:
        return f"memory://endpoints/{endpoint_name}/score"

    def apply(self, state: EndpointState, deployment: Deployment, progress: Progress, wait: bool) -> Deployment:
        key = (deployment.endpoint_name, deployment.name.lower())
        log = self._logs.setdefault(key, [])
        progress(f"Starting {deployment.instance_count} instance(s)", 0.5)
        if self._fail_reason is not None:
            reason, self._fail_reason = self._fail_reason, None
            log.append(f"init() failed: {reason}")
            return deployment.replace(provisioning_state="Failed", state_reason=reason, instances=[])
        log.append(f"Deployment {deployment.name} ready with model {deployment.model}")
        progress("Ready", 1.0)
        return deployment.replace(provisioning_state="Succeeded", state_reason="")

    def observe(self, deployment: Deployment) -> Deployment:
        return deployment

    def remove(self, endpoint_name: str, deployment_name: str) -> None:
        self._logs.pop((endpoint_name, deployment_name.lower()), None)

    def routes_changed(self, state: EndpointState) -> None:
        pass

    def invoke(self, state: EndpointState, body: bytes, *, deployment: str | None, headers: dict[str, str],
               timeout_s: float) -> InvokeResult:
        start = time.perf_counter()
        request_id = str(uuid.uuid4())
        name = state.endpoint.name
        base = {"x-request-id": request_id}
        route = build_routes([state.endpoint], {name: state.keys}, state.deployments.values(), ())[name]
        if not route.authorized(headers.get("Authorization")):
            return InvokeResult(401, json.dumps({"error": "Invalid or missing key."}), base, None, 0.0, request_id)
        target = deployment or headers.get(DEPLOYMENT_HEADER) or ""
        if target:
            chosen = route.target(target)
            if chosen is None:
                error = f"No deployment named {target.lower()}."
                return InvokeResult(404, json.dumps({"error": error}), base, None, 0.0, request_id)
        else:
            chosen = route.choose(self._random)
            if chosen is None:
                error = "No deployment has traffic."
                return InvokeResult(404, json.dumps({"error": error}), base, None, 0.0, request_id)
        dep = state.deployments[chosen.key]
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        self.history.append((name, dep.name, payload))
        status, answer = self.responder(name, dep.name, payload)
        latency = (time.perf_counter() - start) * 1000
        self._facts.append(RequestFact(time.time(), name, dep.name, dep.model, status, latency))
        out_headers = {**base, DEPLOYMENT_HEADER: dep.name}
        if "x-ms-client-request-id" in headers:
            out_headers["x-ms-client-request-id"] = headers["x-ms-client-request-id"][:40]
        result = InvokeResult(status, json.dumps(answer), out_headers, dep.name, latency, request_id)
        shadow = None if target else route.mirror_to(self._random)
        if shadow is not None:
            mirrored = state.deployments[shadow.key]
            self.history.append((name, mirrored.name, payload))
            m_status, m_answer = self.responder(name, mirrored.name, payload)
            self._facts.append(RequestFact(time.time(), name, mirrored.name, mirrored.model, m_status, 0.0, True))
            self._mirrored.append(mirror_report.answers(
                time.time(), name, mirror_report.Answer(dep.name, status, latency, result.body.encode()),
                mirror_report.Answer(mirrored.name, m_status, 0.0, json.dumps(m_answer).encode())))
        return result

    def invoke_stream(self, state: EndpointState, body: bytes, *, headers: dict[str, str],
                      timeout_s: float) -> Generator[InvokeResult | bytes, None, None]:
        """A generation answer (a JSON object with ``text``) to a payload with ``"stream": true`` comes word by
        word as generate.py's events, the last with its finish reason and usage; anything else whole."""
        answer = self.invoke(state, body, deployment=None, headers=headers, timeout_s=timeout_s)
        data = _json_object(answer.body) if answer.ok and _json_object(body).get("stream") is True else {}
        if not isinstance(data.get("text"), str):
            yield answer
            return
        yield answer.replace(body="", headers={**answer.headers, "Content-Type": "text/event-stream; charset=utf-8"})
        words = re.findall(r"\s*\S+", data["text"]) or [""]
        for word in words[:-1]:
            yield sse.encode({"text": word})
            time.sleep(self.word_s)  # the fake model's time per token
        yield sse.encode({"text": words[-1], "finish_reason": data.get("finish_reason"), "usage": data.get("usage")})

    def logs(self, endpoint_name: str, deployment_name: str, lines: int, container: str) -> str:
        key = (endpoint_name, deployment_name.lower())
        if key not in self._logs:
            raise NotFound(f"No logs for deployment {deployment_name} of endpoint {endpoint_name}.")
        return "\n".join(self._logs[key][-lines:])

    def request_facts(self, endpoint_name: str, since: float) -> list[RequestFact]:
        return [f for f in self._facts if f.endpoint == endpoint_name and f.at >= since]

    def mirrored_answers(self, endpoint_name: str, since: float) -> list[MirroredAnswers]:
        return [p for p in self._mirrored if p.endpoint == endpoint_name and p.at >= since]


def _json_object(raw: str | bytes) -> dict[str, Any]:
    """``raw`` as a JSON object; empty when it is not one."""
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
