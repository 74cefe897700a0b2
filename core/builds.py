"""The environment-build seam: turning an environment version into something runnable.

The local backend builds a virtual environment per conda spec (see the
environment-builds work); Azure ML builds images remotely and exposes no build
status, so its backend has no builder. ``FakeBuilder`` serves the in-memory
workspace: every build succeeds at once with the spec's pins as its packages.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod

from .entities import EnvironmentBuild, EnvironmentVersion, utcnow
from .environments import requirement_name, requirement_pin
from .progress import Progress


class EnvironmentBuilder(ABC):
    @abstractmethod
    def build(self, env: EnvironmentVersion, *, force: bool, wait: bool, progress: Progress) -> EnvironmentBuild: ...

    @abstractmethod
    def status(self, env: EnvironmentVersion) -> EnvironmentBuild: ...

    def build_id(self, env: EnvironmentVersion) -> str:
        """What identifies the build that ``env`` runs in: versions with the same id share one build."""
        return env.ref


class FakeBuilder(EnvironmentBuilder):
    def __init__(self) -> None:
        self._builds: dict[tuple[str, int], EnvironmentBuild] = {}

    def build(self, env: EnvironmentVersion, *, force: bool, wait: bool, progress: Progress) -> EnvironmentBuild:
        key = (env.name, env.version)
        if key in self._builds and not force:
            return self._builds[key]
        packages = []
        for req in env.pip_requirements:
            name, pin = requirement_name(req), requirement_pin(req)
            if name:
                packages.append(f"{name}=={pin or '0.0.0'}")
        progress("Installing packages", 0.5)
        now = utcnow()
        build = EnvironmentBuild(
            name=env.name, version=env.version, state="Succeeded", started_at=now, ended_at=now,
            interpreter=sys.executable, packages=packages,
            log="\n".join(f"Installed {p}" for p in packages),
        )
        self._builds[key] = build
        progress("Built", 1.0)
        return build

    def status(self, env: EnvironmentVersion) -> EnvironmentBuild:
        return self._builds.get((env.name, env.version)) or EnvironmentBuild(name=env.name, version=env.version)
