"""The serving-state file, ``run/serving-state.json``: what the control plane runs, as typed records.

The control plane is its one writer (whole, by rename: a reader never sees
half a file); the gateway reads the instances to route to, ``LocalServing``
reads instances and rollouts to report and to wait. A control plane started
again reads it back to adopt what still runs.

The JSON shape is the one earlier versions wrote, key for key, so that a
file written before an upgrade is read (and adopted) after it, and the
other way round. Unknown keys are ignored; missing ones take defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..entities import InstanceState, ProbeSettings
from .model_server import InstanceSpec
from .serving_files import read_json, write_json


class RolloutPhase(StrEnum):
    ROLLING = "rolling"  # a generation (or an instance count) is being brought up
    STEADY = "steady"  # the last change succeeded: what runs is what the document asks for
    FAILED = "failed"  # the last change failed; the previous generation, if any, still serves


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class InstanceRecord:
    """One model-server instance as the state file keeps it."""

    id: str
    endpoint: str
    deployment: str  # lower-cased
    generation: str
    index: int
    port: int = 0
    state: InstanceState = InstanceState.STARTING
    restarts: int = 0
    started_at: str | None = None
    reason: str = ""
    ever_ready: bool = False
    pid: int | None = None
    start: int | None = None  # the kernel's start time of ``pid`` (see processes.ProcessRef)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "state": str(self.state)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstanceRecord:
        record = cls(**_known(cls, data))
        record.state = InstanceState(record.state)
        return record


@dataclass
class RolloutRecord:
    """What the control plane does for one deployment."""

    endpoint: str
    deployment: str  # lower-cased
    name: str  # as the user spelled it
    token: str | None = ""  # updated_at of the document being carried out; None: not started, look again
    generation: str | None = None
    previous: str | None = None  # the generation that serves until the new one is ready
    phase: RolloutPhase = RolloutPhase.STEADY
    reason: str = ""  # why the last rollout failed
    count: int = 1
    request_timeout_s: float = 5.0
    readiness: ProbeSettings = field(default_factory=ProbeSettings)
    liveness: ProbeSettings = field(default_factory=ProbeSettings)

    @property
    def key(self) -> tuple[str, str]:
        return (self.endpoint, self.deployment)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["phase"] = str(self.phase)
        out["readiness"], out["liveness"] = self.readiness.to_dict(), self.liveness.to_dict()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RolloutRecord:
        known = _known(cls, data)
        known["readiness"] = ProbeSettings.from_dict(data.get("readiness") or {})
        known["liveness"] = ProbeSettings.from_dict(data.get("liveness") or {})
        record = cls(**known)
        record.phase = RolloutPhase(record.phase)
        return record


@dataclass
class ServingState:
    """The whole file."""

    control_plane_pid: int | None = None
    updated_at: str = ""
    reconciles: int = 0  # counted, so that anyone can tell a reconcile has run since they looked
    rollouts: list[RolloutRecord] = field(default_factory=list)
    specs: dict[str, InstanceSpec] = field(default_factory=dict)  # by generation
    instances: list[InstanceRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "control_plane": {"pid": self.control_plane_pid},
            "updated_at": self.updated_at,
            "reconciles": self.reconciles,
            "rollouts": [r.to_json() for r in self.rollouts],
            "specs": {g: dataclasses.asdict(s) for g, s in self.specs.items()},
            "instances": [i.to_json() for i in self.instances],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServingState:
        return cls(
            control_plane_pid=(data.get("control_plane") or {}).get("pid"),
            updated_at=data.get("updated_at") or "",
            reconciles=int(data.get("reconciles") or 0),
            rollouts=[RolloutRecord.from_json(r) for r in data.get("rollouts") or []],
            specs={g: InstanceSpec(**_known(InstanceSpec, s)) for g, s in (data.get("specs") or {}).items()},
            instances=[InstanceRecord.from_json(i) for i in data.get("instances") or []],
        )

    def rollout(self, endpoint: str, deployment: str) -> RolloutRecord | None:
        return next((r for r in self.rollouts if r.key == (endpoint, deployment.lower())), None)

    def instances_of(self, endpoint: str, deployment: str) -> list[InstanceRecord]:
        """The deployment's instances that are not being stopped, in generation and index order."""
        rows = [i for i in self.instances if (i.endpoint, i.deployment) == (endpoint, deployment.lower())
                and i.state != InstanceState.STOPPING]
        return sorted(rows, key=lambda i: (i.generation, i.index))


def read_state(path: Path) -> ServingState:
    """The file's state; an empty one when there is no file yet (or it cannot be read as JSON)."""
    return ServingState.from_json(read_json(path) or {})


def write_state(path: Path, state: ServingState) -> None:
    write_json(path, state.to_json())
