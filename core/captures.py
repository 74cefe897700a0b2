"""Capture and replay (``byom online-endpoint capture`` / ``replay``): the rules, over any workspace that has them.

A capture records the bodies of requests sent to an endpoint's scoring URI
through the split (opt-in, sampled, bounded in count and bytes; never a
header), with the deployment that answered and its status, latency and the
answer's sha256. A saved prompt set is a capture made from a file. A replay
sends a capture's bodies, in their order, to one deployment (or two, to
compare them) through the endpoint with the ``azureml-model-deployment``
header, and reports each side and, with two, how their answers compare
(:mod:`core.answer_pairs`). See docs/rollouts.md, "Capture and replay".
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .answer_pairs import (
    Answer,
    PairSummary,
    SideSummary,
    answer,
    first_difference,
    generation_text,
    identical,
    pair_summary,
    side_summary,
)
from .entities import Capture, CapturedRequest, CaptureState, InvokeResult, utcnow
from .errors import ByomError, InUse, InvalidInput, NotFound
from .workspace import Capability, Workspace

DEFAULT_MAX_REQUESTS = 1000
MAX_REQUESTS = 100_000
DEFAULT_MAX_BYTES = 10 * 2**20
MAX_BYTES = 2**30
MAX_CONCURRENCY = 64
MODEL_STATUS_HEADER = "ms-azureml-model-error-statuscode"


def _supported(ws: Workspace) -> None:
    if not ws.supports(Capability.CAPTURES):
        raise ws.backend.captures_unsupported()


def check_bounds(max_requests: int, max_bytes: int, sample_rate: float = 1.0) -> None:
    if not 1 <= max_requests <= MAX_REQUESTS:
        raise InvalidInput(f"--max-requests is {max_requests}: give a whole number from 1 to {MAX_REQUESTS}.")
    if not 1 <= max_bytes <= MAX_BYTES:
        raise InvalidInput(f"--max-bytes is {max_bytes}: give a number of bytes from 1 to {MAX_BYTES} (1 GiB).")
    if not 0 < sample_rate <= 1:
        raise InvalidInput(f"--sample-rate is {sample_rate:g}: give a fraction above 0 and at most 1 "
                           "(0.1 keeps one request in ten).")


def _audit_view(capture: Capture) -> dict[str, Any]:
    return {"id": capture.id, "state": capture.state, "max_requests": capture.max_requests,
            "max_bytes": capture.max_bytes, "sample_rate": capture.sample_rate}


# --------------------------------------------------------------- captures


def start(ws: Workspace, endpoint: str, *, max_requests: int = DEFAULT_MAX_REQUESTS,
          max_bytes: int = DEFAULT_MAX_BYTES, sample_rate: float = 1.0) -> Capture:
    """Have the endpoint's requests captured from now on; InUse while it has a capture capturing."""
    _supported(ws)
    check_bounds(max_requests, max_bytes, sample_rate)
    ws.get_endpoint(endpoint)
    capture = Capture(id=uuid.uuid4().hex[:12], endpoint=endpoint, max_requests=max_requests, max_bytes=max_bytes,
                      sample_rate=sample_rate, actor=ws.actor, started_at=utcnow())

    def begin(current: list[Capture]) -> Capture:
        running = next((c for c in current if c.capturing), None)
        if running is not None:
            raise InUse(f"Endpoint {endpoint!r} is already being captured ({running.id}, started by "
                        f"{running.actor} at {running.started_at}).",
                        hint=f"Stop it first with 'online-endpoint capture stop -n {endpoint}'.")
        return capture

    started = ws.backend.change_captures(endpoint, begin)
    ws.record_change("capture.start", f"endpoint/{endpoint}", None, _audit_view(started))
    return started


def stop(ws: Workspace, endpoint: str) -> Capture:
    """End the endpoint's running capture; its bodies stay. NotFound where none runs."""
    _supported(ws)
    ws.get_endpoint(endpoint)

    def end(current: list[Capture]) -> Capture:
        running = next((c for c in current if c.capturing), None)
        if running is None:
            raise NotFound(f"Endpoint {endpoint!r} is not being captured.",
                           hint=f"Start with 'online-endpoint capture start -n {endpoint}'.")
        return running.replace(state=CaptureState.STOPPED, stopped_at=utcnow())

    stopped = ws.backend.change_captures(endpoint, end)
    ws.record_change("capture.stop", f"endpoint/{endpoint}", {"id": stopped.id, "state": CaptureState.CAPTURING},
                     _audit_view(stopped))
    return get(ws, stopped.id)


def list_captures(ws: Workspace, endpoint: str) -> list[Capture]:
    """The endpoint's captures, the newest first."""
    _supported(ws)
    ws.get_endpoint(endpoint)
    return sorted(ws.backend.captures(endpoint), key=lambda c: c.started_at, reverse=True)


def get(ws: Workspace, capture_id: str) -> Capture:
    _supported(ws)
    found = next((c for c in ws.backend.captures(None) if c.id == capture_id), None)
    if found is None:
        raise NotFound(f"No capture with id {capture_id!r}.",
                       hint="See 'online-endpoint capture list -n ENDPOINT'.")
    return found


def delete(ws: Workspace, capture_id: str) -> None:
    """Remove a capture and its bodies; InUse while it captures."""
    capture = get(ws, capture_id)
    if capture.capturing:
        raise InUse(f"Capture {capture_id!r} is capturing.",
                    hint=f"Stop it first with 'online-endpoint capture stop -n {capture.endpoint}'.")
    ws.backend.delete_capture(capture_id)
    ws.record_change("capture.delete", f"endpoint/{capture.endpoint}", _audit_view(capture), None)


def parse_prompt_lines(text: str) -> list[str]:
    """A saved prompt set's lines (JSON Lines: one JSON object per line; blank lines skipped), each as it was
    written. InvalidInput naming every line that is not one (the first ten)."""
    bodies, bad = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            bad.append(f"line {number}: a JSON {type(value).__name__}, not an object")
            continue
        bodies.append(line.strip())
    if bad:
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise InvalidInput(f"--file has lines that are not a JSON request body: {'; '.join(bad[:10])}{more}. "
                           "Nothing was saved.")
    if not bodies:
        raise InvalidInput("--file has no request body: write one JSON object per line.")
    return bodies


def create_from_file(ws: Workspace, endpoint: str, path: str | Path, *, max_requests: int = DEFAULT_MAX_REQUESTS,
                     max_bytes: int = DEFAULT_MAX_BYTES) -> Capture:
    """A saved prompt set from a JSON Lines file: all its lines or, on any bad one, nothing."""
    _supported(ws)
    check_bounds(max_requests, max_bytes)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"--file {str(path)!r} cannot be read: {exc}.") from None
    bodies = parse_prompt_lines(text)
    size = sum(len(b.encode("utf-8")) for b in bodies)
    if len(bodies) > max_requests or size > max_bytes:
        raise InvalidInput(f"--file has {len(bodies)} requests of {size} bytes in all: more than --max-requests "
                           f"{max_requests} or --max-bytes {max_bytes}. Nothing was saved.")
    ws.get_endpoint(endpoint)
    now, at = utcnow(), time.time()
    capture = Capture(id=uuid.uuid4().hex[:12], endpoint=endpoint, max_requests=max_requests, max_bytes=max_bytes,
                      state=CaptureState.SAVED, actor=ws.actor, started_at=now, stopped_at=now,
                      source=Path(path).name)
    saved = ws.backend.save_captured(capture, [CapturedRequest(seq=0, at=at, body=b) for b in bodies])
    ws.record_change("capture.create", f"endpoint/{endpoint}", None, {**_audit_view(saved), "source": saved.source})
    return saved


def requests_of(ws: Workspace, capture_id: str) -> list[CapturedRequest]:
    """A capture's bodies in capture order."""
    get(ws, capture_id)
    return ws.backend.captured_requests(capture_id)


# ----------------------------------------------------------------- replay


@dataclass
class ReplayedRequest:
    """One captured request as replayed: its answer on each side."""

    seq: int
    status: int
    latency_ms: float
    digest: str
    model_status: int | None = None  # the model server's own status behind a 424
    error: str = ""  # why there was no answer
    against_status: int | None = None
    against_latency_ms: float | None = None
    against_digest: str | None = None
    against_model_status: int | None = None
    against_error: str = ""
    identical: bool | None = None
    first_difference: int | None = None  # generation answers: the first differing whitespace token


@dataclass
class ReplaySide:
    deployment: str
    summary: SideSummary
    model_status_codes: dict[str, int] = field(default_factory=dict)  # behind the 424s


@dataclass
class ReplayReport:
    capture: str
    endpoint: str
    concurrency: int
    requests: int
    sides: list[ReplaySide]
    comparison: PairSummary | None
    results: list[ReplayedRequest]

    def rows(self) -> list[dict[str, Any]]:
        """One row per side, for a table."""
        out = []
        for side in self.sides:
            s = side.summary
            row: dict[str, Any] = {"deployment": side.deployment, "requests": s.requests, "errors": s.errors,
                                   "status_codes": " ".join(f"{k}:{v}" for k, v in s.status_codes.items()),
                                   "model_status_codes": " ".join(f"{k}:{v}"
                                                                  for k, v in side.model_status_codes.items()),
                                   "p50_ms": _round(s.latency_p50_ms), "p95_ms": _round(s.latency_p95_ms)}
            if self.comparison is not None:
                c = self.comparison
                row.update(identical=c.identical, differing=c.differing, exact_match_rate=c.exact_match_rate,
                           mean_first_difference=c.mean_first_difference)
            out.append(row)
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass
class _Sent:
    answer: Answer
    model_status: int | None
    error: str


def _send(ws: Workspace, endpoint: str, deployment: str, body: str, timeout_s: float) -> _Sent:
    started = time.perf_counter()
    try:
        result: InvokeResult = ws.invoke(endpoint, body.encode("utf-8"), deployment=deployment, timeout_s=timeout_s)
    except ByomError as exc:  # no answer at all: reported, the replay goes on
        return _Sent(Answer(0, (time.perf_counter() - started) * 1000, ""), None, str(exc))
    model = {k.lower(): v for k, v in result.headers.items()}.get(MODEL_STATUS_HEADER)
    return _Sent(answer(result.status_code, result.latency_ms, result.body),
                 int(model) if model and model.isdigit() else None, "")


def replay(ws: Workspace, endpoint: str, capture_id: str, deployment: str, *, against: str | None = None,
           concurrency: int = 1, timeout_s: float = 60.0) -> ReplayReport:
    """Send the capture's bodies in capture order to ``deployment`` (and each, after, to ``against``) through
    the endpoint; with ``concurrency`` 1 one at a time, else that many in flight, the results in capture order.
    Answers of any status are reported, never raised."""
    _supported(ws)
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(f"--concurrency is {concurrency}: give a whole number from 1 to {MAX_CONCURRENCY}.")
    capture = get(ws, capture_id)
    ws.get_endpoint(endpoint)
    if capture.endpoint != endpoint:
        raise InvalidInput(f"Capture {capture_id!r} is of endpoint {capture.endpoint!r}, not {endpoint!r}.",
                           hint="Replay it there, or give the endpoint it was captured on.")
    names = [ws.get_deployment(endpoint, deployment).name]
    if against is not None:
        other = ws.get_deployment(endpoint, against).name
        if other.lower() == names[0].lower():
            raise InvalidInput(f"--against names {against!r}, the deployment replayed to: name another one.")
        names.append(other)
    requests = ws.backend.captured_requests(capture_id)

    def one(request: CapturedRequest) -> list[_Sent]:
        return [_send(ws, endpoint, name, request.body, timeout_s) for name in names]

    if concurrency == 1:
        sent = [one(r) for r in requests]
    else:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="replay") as pool:
            sent = list(pool.map(one, requests))  # map keeps the capture's order
    results = [_result(r.seq, answers) for r, answers in zip(requests, sent, strict=True)]
    sides = [ReplaySide(name, side_summary([s[i].answer for s in sent]),
                        _counts(s[i].model_status for s in sent)) for i, name in enumerate(names)]
    comparison = pair_summary([(s[0].answer, s[1].answer) for s in sent]) if against is not None else None
    return ReplayReport(capture_id, endpoint, concurrency, len(requests), sides, comparison, results)


def _counts(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        if value is not None:
            out[str(value)] = out.get(str(value), 0) + 1
    return dict(sorted(out.items()))


def _result(seq: int, answers: list[_Sent]) -> ReplayedRequest:
    a = answers[0]
    result = ReplayedRequest(seq, a.answer.status, round(a.answer.latency_ms, 2), a.answer.digest, a.model_status,
                             a.error)
    if len(answers) > 1:
        b = answers[1]
        result.against_status, result.against_latency_ms = b.answer.status, round(b.answer.latency_ms, 2)
        result.against_digest, result.against_model_status, result.against_error = (b.answer.digest,
                                                                                    b.model_status, b.error)
        result.identical = identical(a.answer, b.answer)
        ta, tb = generation_text(a.answer.body), generation_text(b.answer.body)
        if ta is not None and tb is not None:
            result.first_difference = first_difference(ta, tb)
    return result
