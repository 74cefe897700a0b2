"""Python interpreters on this machine, and the one an environment's spec gets.

A conda spec's ``python=X.Y`` is honoured when an interpreter of that version
is installed: byom's own, one on ``PATH`` (``python3.X``), a pyenv or uv
version, or one named in ``BYOM_PYTHONS`` (paths separated by ``os.pathsep``).
Otherwise the nearest version is used, with a warning: conda would install
the version asked for, byom has no way to.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Builds run the host's pip against the new environment (pip --python), and
# pip supports targets from 3.9 on.
OLDEST_SUPPORTED = (3, 9)


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def _candidate_paths() -> list[str]:
    paths = [getattr(sys, "_base_executable", None) or sys.executable]
    for minor in range(OLDEST_SUPPORTED[1], 20):
        found = shutil.which(f"python3.{minor}")
        if found:
            paths.append(found)
    for pattern in (
        os.path.join(os.environ.get("PYENV_ROOT") or "~/.pyenv", "versions", "*", "bin", "python3"),
        "~/.local/share/uv/python/*/bin/python3",
        "/usr/bin/python3.*[0-9]",
        "/usr/local/bin/python3.*[0-9]",
    ):
        paths.extend(sorted(glob.glob(os.path.expanduser(pattern))))
    paths.extend(p for p in os.environ.get("BYOM_PYTHONS", "").split(os.pathsep) if p)
    unique: dict[str, None] = {}
    for path in paths:
        real = os.path.realpath(path)
        if f"{os.sep}shims{os.sep}" in real:  # pyenv's shims are slow shell scripts that exec a real version
            continue
        if os.access(real, os.X_OK) and not os.path.isdir(real):
            unique.setdefault(real)
    return list(unique)


def _probe(paths: list[str]) -> dict[str, tuple[int, int, int]]:
    """Run each interpreter once, in parallel, for its version."""
    probe = "import sys; print(*sys.version_info[:3])"
    procs = []
    for path in paths:
        try:
            procs.append((path, subprocess.Popen([path, "-I", "-c", probe], stdout=subprocess.PIPE,
                                                 stderr=subprocess.DEVNULL, text=True)))
        except OSError:
            continue
    versions = {}
    for path, proc in procs:
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            continue
        parts = out.split()
        if proc.returncode == 0 and len(parts) == 3 and all(p.isdigit() for p in parts):
            versions[path] = (int(parts[0]), int(parts[1]), int(parts[2]))
    return versions


def find_interpreters(cache_file: Path | None = None) -> list[Interpreter]:
    """Every working interpreter of a supported version, byom's own first.

    With ``cache_file``, versions are remembered by path, size and mtime, so
    that asking for a build's status does not start every interpreter again.
    """
    paths = _candidate_paths()
    stamps = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        stamps[path] = f"{st.st_size}:{st.st_mtime_ns}"
    paths = [p for p in paths if p in stamps]
    cached: dict[str, list[Any]] = {}
    if cache_file is not None:
        try:
            cached = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cached = {}
    known = {p: tuple(cached[p][1]) for p in paths if p in cached and cached[p][0] == stamps[p]}
    fresh = _probe([p for p in paths if p not in known])
    versions = {**known, **fresh}
    if cache_file is not None and fresh:
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({p: [stamps[p], list(v)] for p, v in versions.items()}))
            os.replace(tmp, cache_file)
        except OSError:
            pass  # a cache we cannot write only costs time
    return [Interpreter(p, versions[p]) for p in paths if p in versions and versions[p][:2] >= OLDEST_SUPPORTED]


def parse_python_request(text: str | None) -> tuple[int, ...] | None:
    """'3.11' → (3, 11); '3.11.4' → (3, 11, 4); None or unreadable → None."""
    if not text:
        return None
    parts = text.strip().split(".")
    numbers = []
    for part in parts[:3]:
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers) if numbers else None


def choose_interpreter(requested: str | None, interpreters: list[Interpreter]) -> tuple[Interpreter, str | None]:
    """The interpreter for a spec's python pin, and a warning when the pin is not met.

    ``interpreters`` lists byom's own first: it wins among equals, so that a
    spec without a pin (or pinning byom's version) runs on what byom is tested on.
    """
    if not interpreters:
        raise LookupError("No Python interpreter of version 3.9 or later was found on this machine.")
    if requested and re.match(r"^\s*[<>!~=]", requested):
        return _choose_in_range(requested, interpreters)
    wanted = parse_python_request(requested)
    if wanted is None:
        return interpreters[0], None
    exact = [i for i in interpreters if i.version[: len(wanted)] == wanted]
    if exact:
        return exact[0], None

    def distance(interp: Interpreter) -> tuple[int, ...]:
        padded = (*wanted, *interp.version[len(wanted):])  # unpinned parts count as matching
        gaps = tuple(abs(a - b) for a, b in zip(interp.version, padded, strict=True))
        return (*gaps, -interp.version[1], -interp.version[2])  # between equals, the newer

    nearest = min(interpreters, key=distance)
    available = ", ".join(".".join(map(str, v)) for v in sorted({i.version for i in interpreters}))
    warning = (f"The spec asks for python {requested}, which is not installed on this machine "
               f"(available: {available}); built with the nearest, Python {nearest.version_text}. "
               f"Install Python {requested} (or name it in BYOM_PYTHONS) and build again to honour the pin.")
    return nearest, warning


def _choose_in_range(requested: str, interpreters: list[Interpreter]) -> tuple[Interpreter, str | None]:
    """For a range such as ``>=3.8,<3.12``: byom's own interpreter when it is in range, else the newest that is."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        spec = SpecifierSet(requested.replace(" ", ""))
    except InvalidSpecifier:
        spec = None
    if spec is not None:
        inside = [i for i in interpreters if spec.contains(i.version_text)]
        if inside:
            best = inside[0] if inside[0] is interpreters[0] else max(inside, key=lambda i: i.version)
            return best, None
    available = ", ".join(".".join(map(str, v)) for v in sorted({i.version for i in interpreters}))
    chosen = interpreters[0]
    return chosen, (f"The spec asks for python {requested}, which no Python on this machine meets "
                    f"(available: {available}); built with Python {chosen.version_text}. Install a Python in "
                    f"that range (or name it in BYOM_PYTHONS) and build again to honour the pin.")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
