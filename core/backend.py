"""The Backend: the narrow seam under the one :class:`~core.workspace.Workspace`.

A backend keeps state and runs deployments; it knows no rule of Azure ML's
model (names, versions, ``latest``, traffic, stages, in-use checks, audit
records, waiting): the Workspace applies those once, for every backend, and
calls these primitives. It takes and returns core entities, never SDK
objects, and raises from the tree in :mod:`core.errors`.

Documents are models and environments (by name and version, ``Ref.version``),
endpoints (by name) and deployments (by name under ``Ref.endpoint``; compared
lower-cased). What a backend cannot do it leaves to the concrete defaults at
the end, which say so plainly.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from .artifacts import temporary_folder
from .entities import (
    AuditRecord,
    Capture,
    CapturedRequest,
    Consumer,
    Deployment,
    Endpoint,
    EndpointCredentials,
    EnvironmentBuild,
    EnvironmentVersion,
    InvokeResult,
    MirroredAnswers,
    ModelVersion,
    RequestFact,
    TrafficRollout,
    WorkspaceInfo,
)
from .errors import Unsupported
from .metrics_series import ResourceSample
from .progress import Progress, no_progress

Kind = Literal["model", "environment", "endpoint", "deployment"]
Asset = ModelVersion | EnvironmentVersion
Document = ModelVersion | EnvironmentVersion | Endpoint | Deployment


@dataclass(frozen=True)
class Ref:
    """Which document: ``Ref("model", "clf", 3)``, ``Ref("endpoint", "ep1")``,
    ``Ref("deployment", "blue", endpoint="ep1")``."""

    kind: Kind
    name: str
    version: int = 0  # models and environments only
    endpoint: str = ""  # deployments only


class Operation(Protocol):
    """A change the backend has accepted (azure-core's ``LROPoller`` has this shape)."""

    def done(self) -> bool: ...

    def status(self) -> str: ...

    def wait(self, timeout: float | None = None) -> None: ...

    def result(self) -> Any:
        """What the change produced; raises why it failed. Runs the change if it has not run yet."""


class Completed:
    """An operation whose work is done, or is done by ``result()`` on the caller's thread."""

    def __init__(self, value: Any = None, run: Callable[[], Any] | None = None) -> None:
        self._value, self._run = value, run

    def done(self) -> bool:
        return self._run is None

    def status(self) -> str:
        return "Succeeded" if self._run is None else "NotStarted"

    def wait(self, timeout: float | None = None) -> None:
        self.result()

    def result(self) -> Any:
        if self._run is not None:
            run, self._run = self._run, None
            self._value = run()
        return self._value


@runtime_checkable
class LocalProcesses(Protocol):
    """The processes a local backend runs for serving (``byom local status|start|stop``)."""

    def status(self) -> dict[str, Any]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Backend(ABC):
    long_running: bool = False
    """Whether changes of endpoints, keys and deployments are operations that go on after ``put``/``delete``
    return, for the Workspace to report and wait for; else ``Operation.result()`` does the whole change."""

    service: str = "the backend"  # who goes on with a change that was not waited for

    @abstractmethod
    def describe(self) -> WorkspaceInfo:
        """Which workspace this is (kind, name, location) and the capabilities it has."""

    # ------------------------------------------------------------ documents

    @abstractmethod
    def names(self, kind: Kind) -> list[str]:
        """Every model or environment name with at least one version, archived ones included."""

    @abstractmethod
    def list(self, kind: Kind, scope: str = "") -> list[Any]:
        """Models/environments: every version of the name ``scope``, ``archived`` set, [] for an unknown name.
        Endpoints: all of them. Deployments: those of endpoint ``scope``, with their observed state."""

    @abstractmethod
    def get(self, ref: Ref) -> Any:
        """The document (assets with ``archived`` set; deployments observed), or None where there is none."""

    def latest(self, kind: Kind, include_archived: bool) -> builtins.list[Any]:
        """The highest version of each model or environment name, of those not archived unless
        ``include_archived``, sorted by name. A backend whose calls cost more than a read of a file lists
        them its own way."""
        out = []
        for name in sorted(self.names(kind)):
            live = sorted((a for a in self.list(kind, name) if include_archived or not a.archived),
                          key=lambda a: a.version)
            if live:
                out.append(self.get(Ref(kind, name, live[-1].version)) or live[-1])
        return out

    @abstractmethod
    def add(self, asset: Asset, source: str | Path | None, progress: Progress) -> Asset:
        """Store a new version. ``asset.version`` 0 takes the highest + 1, allocated atomically so concurrent
        registrations get distinct numbers; a number that exists raises AlreadyExists. A model's files are
        copied from ``source`` (a local folder or file; or a cloud path, registered where it lies), a
        sha256 recorded for each; the version is visible only once the copy is complete."""

    @abstractmethod
    def put(self, doc: Document, *, wait: bool = True, progress: Progress = no_progress) -> Operation:
        """Write an existing version's description, tags and stage; or create/update an endpoint (a new one
        gets two keys and its URIs; routes follow) or a deployment (made to run as described: its
        ``Operation`` ends when it is Succeeded or Failed, the reason in ``state_reason``)."""

    @abstractmethod
    def archive(self, ref: Ref, archived: bool) -> None:
        """Set one version's archived flag; nothing else changes."""

    @abstractmethod
    def delete(self, ref: Ref) -> Operation:
        """Delete a model version and its files; an endpoint with its deployments and keys; or a deployment
        (its instances stopped, its entries in the endpoint's traffic and mirror traffic removed)."""

    @abstractmethod
    def scale(self, deployment: Deployment, *, wait: bool = True, progress: Progress = no_progress) -> Operation:
        """Change only the deployment's instance count to ``deployment.instance_count``."""

    # ------------------------------------------------------------ artifacts

    @abstractmethod
    def export(self, model: ModelVersion, target: Path) -> None:
        """Copy the version's files into ``target``, each checked against its recorded sha256."""

    def scratch(self) -> AbstractContextManager[Path]:
        """A folder for a registration's work files, removed after (the system's temporary folder here)."""
        return temporary_folder()

    # -------------------------------------------------------------- serving

    @abstractmethod
    def keys(self, endpoint: str) -> EndpointCredentials:
        """The endpoint's two keys, or its token when its auth mode is a token one; NotFound for an
        unknown endpoint."""

    @abstractmethod
    def regenerate_key(self, endpoint: str, key_type: str) -> Operation:
        """Replace the ``primary`` or ``secondary`` key; the old value stops working once done."""

    @abstractmethod
    def send(self, endpoint: Endpoint, body: bytes, headers: dict[str, str], timeout_s: float) -> InvokeResult:
        """POST ``body`` with exactly ``headers`` to the endpoint's scoring URI; non-2xx answers are returned."""

    @abstractmethod
    def logs(self, ref: Ref, lines: int, container: str) -> str:
        """The last ``lines`` lines of a deployment's ``inference-server`` or ``storage-initializer`` log."""

    # ---------------------------------------------------------------- audit

    @abstractmethod
    def record(self, record: AuditRecord) -> None:
        """Append to the audit log (it gets its id here)."""

    @abstractmethod
    def audit_log(self, limit: int, target_prefix: str | None) -> builtins.list[AuditRecord]:
        """Newest first; ``target_prefix`` matches a target or what starts with it."""

    # ------------------------------------- what not every backend has (concrete)

    def send_stream(self, endpoint: Endpoint, body: bytes, headers: dict[str, str],
                    timeout_s: float) -> Generator[InvokeResult | bytes, None, None]:
        """As :meth:`send`, the answer yielded as it comes: its head first (an InvokeResult, its body empty when
        the answer is a stream, ``text/event-stream``), then the stream's pieces as they arrive; closing the
        iterator closes the connection, which ends a generation. By default it sends once and yields the whole
        answer: for endpoints that answer whole (Azure ML's managed endpoints)."""
        yield self.send(endpoint, body, headers, timeout_s)

    def request_facts(self, endpoint: str, since: float) -> builtins.list[RequestFact]:
        """One row per request answered since ``since`` (epoch seconds)."""
        raise Unsupported("This workspace keeps no request facts.")

    def mirrored_answers(self, endpoint: str, since: float) -> builtins.list[MirroredAnswers]:
        """Both answers of each mirrored request since ``since``, oldest first (capability ``mirror-reports``)."""
        raise Unsupported("This workspace keeps no mirrored answers.")

    def consumers(self, endpoint: str) -> builtins.list[Consumer]:
        """The endpoint's consumers, their keys left out; NotFound for an unknown endpoint."""
        raise Unsupported("This workspace has no consumer keys.")

    def put_consumer(self, consumer: Consumer, key_sha256: str | None, *, new: bool = False) -> None:
        """Create (``new``: AlreadyExists where one of that lower-cased name is stored) or replace (NotFound where
        none is) a consumer under its endpoint, with the sha256 (hex) of its new key, or None to keep the stored
        one; the check and the write are one transaction. The endpoint's routes follow."""
        raise Unsupported("This workspace has no consumer keys.")

    def delete_consumer(self, endpoint: str, name: str) -> None:
        """Remove a consumer (by lower-cased name); its key stops working once the routes follow."""
        raise Unsupported("This workspace has no consumer keys.")

    def rollouts_unsupported(self) -> Unsupported:
        """Why this workspace cannot run progressive rollouts (capability ``traffic-rollouts``)."""
        return Unsupported("This workspace cannot run progressive rollouts.",
                           hint="Move traffic in steps with 'online-endpoint update --traffic'.")

    def traffic_rollout(self, endpoint: str) -> TrafficRollout | None:
        """The endpoint's latest progressive rollout, running or ended; None where it has had none."""
        raise self.rollouts_unsupported()

    def change_traffic_rollout(self, endpoint: str,
                               change: Callable[[TrafficRollout | None], TrafficRollout]) -> TrafficRollout:
        """Store ``change(current)`` as the endpoint's rollout, atomically (an error from ``change`` stores
        nothing); what was stored."""
        raise self.rollouts_unsupported()

    def drive_traffic_rollouts(self) -> None:
        """Make sure what advances running rollouts (``core.traffic_rollout.advance``) runs."""
        raise self.rollouts_unsupported()

    def captures_unsupported(self) -> Unsupported:
        """Why this workspace cannot capture and replay requests (capability ``captures``)."""
        return Unsupported("This workspace cannot capture or replay requests.",
                           hint="A local workspace's gateway captures them ('online-endpoint capture start').")

    def captures(self, endpoint: str | None) -> builtins.list[Capture]:
        """The endpoint's captures (every capture where None), with the ``requests`` and ``bytes`` they hold now."""
        raise self.captures_unsupported()

    def change_captures(self, endpoint: str, change: Callable[[builtins.list[Capture]], Capture]) -> Capture:
        """Store ``change(the endpoint's captures)`` (a new capture or one of them changed), atomically (an error
        from ``change`` stores nothing); NotFound for an unknown endpoint. A capture that stops capturing has
        its buffered bodies written by the time this returns."""
        raise self.captures_unsupported()

    def save_captured(self, capture: Capture, requests: builtins.list[CapturedRequest]) -> Capture:
        """Store a new capture that is not recorded into (a saved prompt set) with its bodies, within its
        bounds; all of it or, on an error, nothing."""
        raise self.captures_unsupported()

    def captured_requests(self, capture_id: str) -> builtins.list[CapturedRequest]:
        """The capture's bodies in capture order."""
        raise self.captures_unsupported()

    def delete_capture(self, capture_id: str) -> None:
        """Remove the capture's record and its bodies."""
        raise self.captures_unsupported()

    def build_status(self, env: EnvironmentVersion) -> EnvironmentBuild:
        """State, interpreter, packages and log of the version's build (the built-in one: where it runs)."""
        return EnvironmentBuild(name=env.name, version=env.version, state="NotStarted",
                                message="This workspace does not build environments.")

    def build(self, env: EnvironmentVersion, *, force: bool, wait: bool, progress: Progress) -> EnvironmentBuild:
        """Build (or reuse the cached build of) the version; the built-in one is never built: its status."""
        raise Unsupported("This workspace does not build environments.",
                          hint="Deploy with the built-in local-python environment instead.")

    def build_id(self, env: EnvironmentVersion) -> str | None:
        """What identifies the build ``env`` runs in (versions with one id share a build); None: no builds."""
        return None

    def installed(self, env: EnvironmentVersion) -> tuple[dict[str, str] | None, str]:
        """What is installed where the version runs (name → version), and where that was read.

        None (and why) for a version with no build yet: nothing is installed where it would run.
        """
        raise Unsupported("What is installed where this environment runs is not visible to this workspace.")

    def identity(self) -> str | None:
        """Who the backend is signed in as, for the audit log; None where it does not say."""
        return None

    def workspace_details(self) -> dict[str, str | None]:
        """What the service says of the workspace beyond ``describe()`` (``location``, the region, and
        ``container_registry``, its registry's ARM id); empty where it runs nowhere but here."""
        return {}
    def resource_usage(self, endpoint: str, since: float) -> builtins.list[ResourceSample]:
        """CPU and memory of the endpoint's deployments, one sample per deployment and moment, since ``since``."""
        raise Unsupported("This workspace does not show the CPU and memory of its deployments.")

    def local_processes(self) -> LocalProcesses | None:
        """The serving processes on this machine, for a backend that runs them."""
        return None

    def close(self) -> None:
        """Release connections. Running deployments are left running."""
