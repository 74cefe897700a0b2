"""The nouns of the Workspace contract, as plain dataclasses.

Every operation of :class:`core.workspace.Workspace` takes and returns these,
never SDK or database objects. ``to_dict()`` gives the JSON shape the CLI
prints and the stores persist; ``from_dict()`` reads it back (unknown keys
are ignored so that older rows stay readable).

Times are ISO-8601 strings in UTC; versions are integers from 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, TypeVar

T = TypeVar("T", bound="Entity")

Stage = Literal["dev", "staging", "production"]
STAGES: tuple[str, ...] = ("dev", "staging", "production")



# A state is a StrEnum: it compares equal to its string, so callers that spell "Succeeded" keep working.
# Entities hold plain strings (what from_dict reads back, what YAML output can print); members are
# written where a state is set.


class ProvisioningState(StrEnum):
    """A deployment's (or an endpoint's) state, as Azure ML names it."""

    CREATING = "Creating"
    UPDATING = "Updating"
    SCALING = "Scaling"
    DELETING = "Deleting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class BuildState(StrEnum):
    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"  # the backend does not report builds (Azure ML builds an image when a deployment first uses it)


class InstanceState(StrEnum):
    """A model-server instance's state, as the local control plane supervises it."""

    STARTING = "Starting"
    READY = "Ready"
    CRASHED = "Crashed"  # started again after a backoff
    STOPPING = "Stopping"  # out of the routes, drained, then ended

LOCAL_PYTHON = "local-python"
"""Built-in environment: the interpreter byom itself runs in."""

TASK_GENERATION = "generation"  # a Deployment.task: text generation from a prompt or chat messages
TASK_TOKEN_RANKS = "token_ranks"  # a Deployment.task: the rank of each token of a text


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def utcnow_after(previous: str | None) -> str:
    """``utcnow()``, or one millisecond past ``previous`` when the clock has not moved beyond it.

    A deployment's ``updated_at`` names the change the control plane carries out: two changes in
    one millisecond (or after the clock stepped back) must still get different stamps.
    """
    now = utcnow()
    if previous and now <= previous:
        return (datetime.fromisoformat(previous) + timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
    return now


class Entity:
    """Mixin: dict round trip for nested dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dict(dataclasses.asdict(self))  # type: ignore[call-overload]  # a mixin: its subclasses are dataclasses

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        kwargs: dict[str, Any] = {}
        hints = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # a mixin: cls is a dataclass
        for key, value in data.items():
            if key not in hints:
                continue
            nested = _NESTED.get((cls.__name__, key))
            if nested is not None and value is not None:
                if isinstance(value, list):
                    value = [nested.from_dict(v) for v in value]
                else:
                    value = nested.from_dict(value)
            kwargs[key] = value
        return cls(**kwargs)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]  # a mixin: self is a dataclass


# ---------------------------------------------------------------- models


@dataclass
class ModelFile(Entity):
    path: str  # relative to the model's root, forward slashes
    size: int
    sha256: str


@dataclass
class StageChange(Entity):
    from_stage: str
    to_stage: str
    approver: str
    note: str
    at: str


@dataclass
class ModelSpec(Entity):
    """What a caller asks to register. ``path`` is a folder or a single file."""

    name: str
    path: str
    version: int | None = None  # None: next free version
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    type: str = "custom_model"  # Azure ML asset type: custom_model, mlflow_model, triton_model
    package: bool = False  # GGUF → transformers folder (safetensors + tokenizer) before storing
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelVersion(Entity):
    name: str
    version: int
    type: str = "custom_model"
    format: str = "custom"  # transformers | gguf | custom (files byom does not interpret; older versions: "files")
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    stage: str = "dev"
    archived: bool = False
    files: list[ModelFile] = field(default_factory=list)
    size_bytes: int = 0
    source: str = ""  # where it was registered from
    path: str = ""  # where the backend keeps the artifacts (store path or azureml:// URI)
    created_by: str = ""
    created_at: str = ""
    stage_history: list[StageChange] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


# ---------------------------------------------------------- environments


@dataclass
class EnvironmentSpec(Entity):
    name: str
    conda_file: str | None = None  # YAML text of the conda specification
    image: str | None = None
    build_context: str | None = None  # a folder holding a Dockerfile (Capability.DOCKER_BUILDS)
    dockerfile_path: str | None = None  # inside build_context; None: "Dockerfile"
    version: int | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class EnvironmentVersion(Entity):
    name: str
    version: int
    conda_file: str | None = None
    image: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    build_context: str | None = None  # where the Docker build context was stored
    dockerfile_path: str | None = None
    python: str | None = None  # the python=X.Y the spec asks for
    pip_requirements: list[str] = field(default_factory=list)  # resolved PyPI requirement strings
    built_in: bool = False
    archived: bool = False
    created_by: str = ""
    created_at: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass
class EnvironmentBuild(Entity):
    name: str
    version: int
    state: str = BuildState.NOT_STARTED.value  # a BuildState
    started_at: str | None = None
    ended_at: str | None = None
    interpreter: str | None = None
    packages: list[str] = field(default_factory=list)  # pip freeze lines
    message: str = ""  # warning or failure reason
    log: str = ""


@dataclass
class DriftEntry(Entity):
    package: str
    pinned: str | None  # the requirement as the spec writes it ("numpy==2.3.1"), None if only installed
    installed: str | None  # version installed, None if missing
    status: str  # ok | mismatch | missing | unpinned
    source: str = ""  # where ``installed`` was read: "build", or byom's interpreter when there is no build
    current: str | None = None  # the version in the interpreter byom runs in, for comparison


@dataclass
class DiffLine(Entity):
    tag: str  # " " same, "-" only in the first, "+" only in the second
    text: str


@dataclass
class EnvironmentDiff(Entity):
    name: str
    from_version: int
    to_version: int
    conda: list[DiffLine] = field(default_factory=list)
    image: tuple[str | None, str | None] = (None, None)
    build: tuple[str | None, str | None] = (None, None)  # Docker build context (and Dockerfile) of each
    added: list[str] = field(default_factory=list)  # requirements only in to_version
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (package, from, to)


# ------------------------------------------------------------- endpoints


@dataclass
class EndpointIdentity(Entity):
    """Whom an endpoint acts as on Azure ML (``system_assigned``, ``user_assigned`` with its identities'
    ARM ids, or ``none``); a local endpoint acts as nobody."""

    type: str = "system_assigned"
    user_assigned_identities: list[str] = field(default_factory=list)


@dataclass
class Endpoint(Entity):
    name: str
    auth_mode: str = "key"
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    scoring_uri: str = ""
    swagger_uri: str = ""
    # az ml's --local endpoint: a single deployment takes every request, with no traffic rule and no key
    local: bool = False
    # Azure's network access to the scoring URI; a local endpoint listens on 127.0.0.1 whatever it says
    public_network_access: str = "enabled"
    identity: EndpointIdentity | None = None  # None: what the service gives (system-assigned on Azure)
    provisioning_state: str = ProvisioningState.SUCCEEDED.value  # a ProvisioningState
    created_by: str = ""
    created_at: str = ""
    updated_at: str = ""


@dataclass
class EndpointKeys(Entity):
    primary_key: str
    secondary_key: str

    @property
    def authorization(self) -> str:
        return f"Bearer {self.primary_key}"


@dataclass
class EndpointToken(Entity):
    """The credential of an endpoint whose auth mode is ``aml_token`` or ``aad_token`` (Azure ML only)."""

    access_token: str
    expires_at: float = 0.0  # epoch seconds; 0 when the service did not say
    refresh_after: float = 0.0  # epoch seconds: ask for a new one from then on
    token_type: str = "Bearer"

    @property
    def authorization(self) -> str:
        return f"Bearer {self.access_token}"


EndpointCredentials = EndpointKeys | EndpointToken

LIMITS = ("tokens_per_minute", "requests_per_minute", "tokens_per_day")
"""A consumer's limits: None where it has none. Tokens are input and output tokens together."""


@dataclass
class Consumer(Entity):
    """A named key of one endpoint, with its own limits (byom's own; Azure ML has none)."""

    name: str
    endpoint_name: str
    tokens_per_minute: int | None = None
    requests_per_minute: int | None = None
    tokens_per_day: int | None = None
    created_by: str = ""
    created_at: str = ""
    updated_at: str = ""

    def limits(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in LIMITS}


@dataclass
class IssuedConsumer(Consumer):
    """A consumer with its key, as create and regenerate-key give it: the only time the key is shown."""

    key: str = ""


@dataclass
class ConsumerUsage(Entity):
    """What one consumer used of one deployment in one period (the whole window where ``period`` is "")."""

    consumer: str  # "" for requests sent with an endpoint key
    deployment: str
    requests: int
    input_tokens: int
    output_tokens: int
    errors: int  # answers of status 400 and above, 429 included
    period: str = ""  # the period's start, ISO-8601 UTC
TOKEN_AUTH_MODES = ("aml_token", "aad_token")


@dataclass
class RequestSettings(Entity):
    request_timeout_ms: int = 5000
    max_concurrent_requests_per_instance: int = 1
    max_queue_wait_ms: int = 500


@dataclass
class ProbeSettings(Entity):
    """Azure ML's defaults for both liveness and readiness probes."""

    initial_delay: int = 10
    period: int = 10
    timeout: int = 2
    success_threshold: int = 1
    failure_threshold: int = 30


@dataclass
class InstanceStatus(Entity):
    id: str
    state: str  # an InstanceState
    pid: int | None = None
    port: int | None = None
    restarts: int = 0
    started_at: str | None = None


@dataclass
class Deployment(Entity):
    name: str
    endpoint_name: str
    model: str  # "name:version" of a registered model
    environment: str = LOCAL_PYTHON  # "name:version", or the built-in local-python
    code_path: str | None = None  # folder uploaded as the deployment's code
    scoring_script: str | None = None  # path of the entry script inside code_path
    instance_type: str = "local"
    instance_count: int = 1
    request_settings: RequestSettings = field(default_factory=RequestSettings)
    liveness_probe: ProbeSettings = field(default_factory=ProbeSettings)
    readiness_probe: ProbeSettings = field(default_factory=ProbeSettings)
    environment_variables: dict[str, str] = field(default_factory=dict)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    provisioning_state: str = ProvisioningState.CREATING.value  # a ProvisioningState
    state_reason: str = ""  # why it Failed, or what it is doing
    instances: list[InstanceStatus] = field(default_factory=list)
    created_by: str = ""
    created_at: str = ""
    updated_at: str = ""

    @property
    def task(self) -> str:
        """What its scoring script does: ``token_ranks`` (scoring/token_ranks.py) or ``generation`` (any other)."""
        return TASK_TOKEN_RANKS if (self.scoring_script or "").endswith("token_ranks.py") else TASK_GENERATION


# ------------------------------------------------------ invoke & metrics


@dataclass
class InvokeResult(Entity):
    status_code: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    deployment: str | None = None  # the deployment that served it
    latency_ms: float = 0.0
    request_id: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class StreamEvent(Entity):
    """One piece of a streamed invoke (``Workspace.invoke_stream``), in the order it came, ``at_ms`` after the
    request was sent: first the answer's ``head`` (status, headers, the deployment that serves it, request id,
    latency to the head; the whole body too when the answer is not a stream), then one per event of the stream
    (``data``: the model server's event, generate.py's ``{"text"}`` ... ``{"text", "finish_reason", "usage"}``).
    A 2xx JSON object answered whole is one such event (its ``text`` is the whole text)."""

    at_ms: float
    head: InvokeResult | None = None
    data: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """The text this event adds to the answer ("" for none)."""
        text = (self.data or {}).get("text")
        return text if isinstance(text, str) else ""


@dataclass
class RequestFact(Entity):
    """One request seen at an endpoint, as the gateway records it."""

    at: float  # unix seconds
    endpoint: str
    deployment: str
    model_version: str
    status_code: int
    latency_ms: float
    mirrored: bool = False
    consumer: str = ""  # the consumer whose key was sent; "" for an endpoint key
    input_tokens: int = 0  # as the answer's usage says; 0 where it says nothing
    output_tokens: int = 0
    ttft_ms: float | None = None  # arrival to first token out, streamed answers only (None for the rest)
    tpot_ms: float | None = None  # between output tokens after the first, streamed answers of two tokens or more


@dataclass
class MirroredAnswers(Entity):
    """Both answers to one mirrored request, as the gateway keeps them: never a header, never a key."""

    at: float  # unix seconds
    endpoint: str
    deployment: str  # the mirror
    primary: str  # the deployment that answered the caller
    primary_status: int  # as the caller got it (424 for a model server's non-2xx)
    primary_ms: float
    primary_sha256: str  # of the answer's body
    mirror_status: int
    mirror_ms: float
    mirror_sha256: str
    primary_body: bytes | None = None  # kept only when small (core.mirror_report.BODY_KEPT_MAX)
    mirror_body: bytes | None = None


@dataclass
class MirrorReport(Entity):
    """How one mirrored deployment answered, beside the primary, over a window (core.mirror_report)."""

    endpoint: str
    deployment: str
    primaries: list[str]
    requests: int  # mirrored requests compared
    identical: int  # both 2xx, bodies with one sha256
    differing: int  # both 2xx, bodies that differ
    primary_errors: int  # the primary's answer was not 2xx
    mirror_errors: int  # the mirror's answer was not 2xx
    primary_p50_ms: float | None
    primary_p95_ms: float | None
    mirror_p50_ms: float | None
    mirror_p95_ms: float | None
    generations: int = 0  # pairs of 2xx answers both JSON with a "text", both bodies kept
    exact_match_rate: float | None = None  # of those generations
    mean_first_difference: float | None = None  # word position, over the generations that differ


@dataclass
class MetricsPoint(Entity):
    at: float  # start of the bucket, unix seconds
    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    status_codes: dict[str, int] = field(default_factory=dict)  # "200" → requests answered so in the bucket
    input_tokens: int = 0
    output_tokens: int = 0
    ttft_p50_ms: float | None = None  # over the bucket's streamed answers; None where there were none
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None
    tpot_p50_ms: float | None = None
    tpot_p95_ms: float | None = None
    tpot_p99_ms: float | None = None


@dataclass
class DeploymentMetrics(Entity):
    endpoint: str
    deployment: str
    window_s: int
    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mirrored: bool = False
    series: list[MetricsPoint] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


# ----------------------------------------------------------------- audit


@dataclass
class AuditRecord(Entity):
    at: str
    actor: str
    action: str  # e.g. model.create, endpoint.traffic
    target: str  # e.g. model/bert:3, endpoint/chat, deployment/chat/blue
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    id: int | None = None


class RolloutState(StrEnum):
    """A progressive traffic rollout's state (``byom online-endpoint rollout``)."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"  # every step was healthy: the target has its last step's share
    ROLLED_BACK = "RolledBack"  # a step breached a limit: the split before the rollout is back
    ABORTED = "Aborted"  # asked to stop: the split before the rollout is back
    STOPPED = "Stopped"  # the split was changed by hand or the target deleted: the split left as it is
    FAILED = "Failed"  # its moves kept failing: the split before it set back where the split was still its own


@dataclass
class RolloutBreach(Entity):
    """Why a step failed: ``metric`` (error_rate, p95_ms, requests) was ``value`` against ``limit``."""

    metric: str
    value: float
    limit: float
    step: int  # the step's percentage


@dataclass
class RolloutStep(Entity):
    """What the target answered while it had ``percent`` of the traffic."""

    percent: int
    started_at: float  # unix seconds
    ended_at: float | None = None
    requests: int = 0
    errors: int = 0
    error_rate: float | None = None
    p95_ms: float | None = None


@dataclass
class TrafficRollout(Entity):
    """A progressive rollout of one endpoint's traffic to ``target``, step by step, as its driver records it."""

    id: str
    endpoint: str
    target: str  # lower-cased
    steps: list[int]
    step_seconds: float
    max_error_rate: float
    max_p95_ms: float | None
    min_requests: int
    actor: str
    started_at: str
    before: dict[str, int]  # the live split when it started: what a rollback restores
    state: str = RolloutState.RUNNING
    applied: dict[str, int] = field(default_factory=dict)  # the split the rollout set last
    pending: dict[str, int] | None = None  # a split being set: written first, so that a restart knows it
    history: list[RolloutStep] = field(default_factory=list)  # one per step begun
    abort_requested: str = ""  # who asked to abort
    reason: str = ""
    breach: RolloutBreach | None = None
    updated_at: str = ""
    ended_at: str = ""

    @property
    def running(self) -> bool:
        return self.state == RolloutState.RUNNING


class CaptureState(StrEnum):
    """A request capture's state (``byom online-endpoint capture``)."""

    CAPTURING = "Capturing"  # the gateway records the endpoint's requests, within the bounds
    STOPPED = "Stopped"  # recording ended ('capture stop'); the bodies stay until deleted
    SAVED = "Saved"  # a saved prompt set, made from a file ('capture create'); never recorded into


@dataclass
class Capture(Entity):
    """A bounded set of request bodies sent to an endpoint's scoring URI (or read from a file), for replay.

    Only the bodies are kept, never a header (no keys, no auth); ``requests`` and ``bytes`` are what is
    stored now, read where the bodies are.
    """

    id: str
    endpoint: str
    max_requests: int
    max_bytes: int
    sample_rate: float = 1.0
    state: str = CaptureState.CAPTURING
    actor: str = ""
    started_at: str = ""
    stopped_at: str = ""
    source: str = ""  # the file a saved prompt set was read from
    requests: int = 0
    bytes: int = 0

    @property
    def capturing(self) -> bool:
        return self.state == CaptureState.CAPTURING


@dataclass
class CapturedRequest(Entity):
    """One captured body, with what answered it: the deployment, status, latency and the answer's sha256
    (empty for a saved prompt set's lines, which nothing answered)."""

    seq: int  # its place in the capture, from 1
    at: float  # unix seconds the request arrived
    body: str
    deployment: str = ""
    status_code: int = 0
    latency_ms: float = 0.0
    digest: str = ""


@dataclass
class WorkspaceInfo(Entity):
    kind: str  # memory | local | azure
    name: str
    location: str  # home folder, or the Azure workspace's resource id
    capabilities: list[str] = field(default_factory=list)


_NESTED: dict[tuple[str, str], type[Entity]] = {
    ("ModelVersion", "files"): ModelFile,
    ("Endpoint", "identity"): EndpointIdentity,
    ("ModelVersion", "stage_history"): StageChange,
    ("Deployment", "request_settings"): RequestSettings,
    ("Deployment", "liveness_probe"): ProbeSettings,
    ("Deployment", "readiness_probe"): ProbeSettings,
    ("Deployment", "instances"): InstanceStatus,
    ("DeploymentMetrics", "series"): MetricsPoint,
    ("EnvironmentDiff", "conda"): DiffLine,
    ("TrafficRollout", "history"): RolloutStep,
    ("TrafficRollout", "breach"): RolloutBreach,
}
