"""Conda specifications: parsing, mapping to PyPI, diffs and drift.

A conda file is read into the Python version it asks for and a list of PyPI
requirement strings: the ``pip:`` section as written, and conda packages
mapped to their PyPI names (``numpy=2.3.1`` → ``numpy==2.3.1``). Those
requirements are what a local build installs and what drift is measured on.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import yaml

from .entities import LOCAL_PYTHON, DiffLine, DriftEntry, EnvironmentDiff, EnvironmentVersion
from .errors import InvalidInput

# Conda names whose PyPI name differs. None: conda-only, nothing to install
# from PyPI (the interpreter, compilers, system libraries).
CONDA_TO_PYPI: dict[str, str | None] = {
    "python": None,
    "pip": None,
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "cpuonly": None,
    "pytorch-cuda": None,
    "cudatoolkit": None,
    "cuda-toolkit": None,
    "mkl": None,
    "libgcc-ng": None,
    "libstdcxx-ng": None,
    "openssl": None,
    "ca-certificates": None,
    "nomkl": None,
    "libblas": None,
    "libcblas": None,
    "liblapack": None,
    "libgomp": None,
    "_libgcc_mutex": None,
    "_openmp_mutex": None,
    "ld_impl_linux-64": None,
    "libffi": None,
    "libuuid": None,
    "libzlib": None,
    "zlib": None,
    "xz": None,
    "bzip2": None,
    "ncurses": None,
    "readline": None,
    "sqlite": None,
    "tk": None,
    "cudnn": None,
    "nccl": None,
    "setuptools": "setuptools",
    "wheel": "wheel",
    "py-xgboost": "xgboost",
    "pyyaml": "PyYAML",
    "scikit-learn": "scikit-learn",
    "matplotlib-base": "matplotlib",
    "tensorflow-base": "tensorflow",
    "huggingface_hub": "huggingface-hub",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "opencv": "opencv-python",
    "py-opencv": "opencv-python",
    "libopencv": None,
    "python-graphviz": "graphviz",
    "graphviz": None,  # conda's graphviz is the C program; the Python binding is python-graphviz
    "pytorch-gpu": "torch",
    "numpy-base": "numpy",
    "openblas": None,
    "libopenblas": None,
    "blas": None,
    "intel-openmp": None,
    "llvm-openmp": None,
    "tbb": None,
    "gcc": None,
    "gxx": None,
    "gcc_linux-64": None,
    "gxx_linux-64": None,
    "make": None,
    "libpng": None,
    "jpeg": None,
    "libjpeg-turbo": None,
    "freetype": None,
    "libxml2": None,
    "libiconv": None,
    "icu": None,
    "hdf5": None,
    "ffmpeg": None,
    "git": None,
}

_CONDA_SPEC = re.compile(r"^\s*(?:[\w.-]+::)?([A-Za-z0-9_.\-]+)\s*(.*)$")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)(\[[^\]]*\])?\s*(.*)$")
INFERENCE_SERVER = "azureml-inference-server-http"
# Bump when the way builds are made changes, so that older builds are not reused.
BUILD_RECIPE = 1


def conda_to_pip(spec: str) -> tuple[str | None, str | None]:
    """Map one conda dependency to (PyPI requirement or None, python version or None)."""
    match = _CONDA_SPEC.match(spec)
    if not match:
        raise InvalidInput(f"Cannot read conda dependency {spec!r}: write it as name, name=1.2 or name>=1.2.")
    name, constraint = match.group(1), match.group(2).strip()
    # conda "name 1.2.* build": a bare version after a space means the same as "name=1.2"
    if constraint[:1].isdigit():
        constraint = "=" + constraint.split()[0]
    # conda "name=1.2.3=build" → keep the version, drop the build string
    if constraint.startswith("=") and not constraint.startswith("=="):
        version = constraint[1:].split("=")[0]
        # conda's single '=' is a prefix match: numpy=1.26 means 1.26.*
        if "*" not in version and version.count(".") < 2:
            version += ".*"
        constraint = f"=={version}"
    elif constraint.startswith("=="):
        constraint = "==" + constraint[2:].split("=")[0]
    constraint = constraint.replace(" ", "")
    if name.lower() == "python":
        if re.search(r"[<>!~,]", constraint):
            return None, constraint  # a range, as PEP 440 writes it: ">=3.8,<3.12"
        version = re.sub(r"^[=<>!~]+", "", constraint).rstrip(".*") or None
        return None, version
    pypi = CONDA_TO_PYPI.get(name.lower(), name)
    if pypi is None:
        return None, None
    return f"{pypi}{constraint}", None


def parse_conda(text: str) -> tuple[dict[str, Any], str | None, list[str]]:
    """Read a conda YAML: (the document, python version asked for, PyPI requirements)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"The conda file is not valid YAML{where}: fix the syntax and try again.") from None
    if not isinstance(doc, dict):
        raise InvalidInput("The conda file must be a YAML mapping with a 'dependencies' list.")
    deps = doc.get("dependencies")
    if not isinstance(deps, list) or not deps:
        raise InvalidInput("The conda file has no dependencies: "
                           "add a 'dependencies:' list (for example python=3.11 and pip).")
    python: str | None = None
    requirements: list[str] = []
    for dep in deps:
        if isinstance(dep, dict) and "pip" in dep:
            pip_list = dep["pip"] or []
            if not isinstance(pip_list, list):
                raise InvalidInput("The 'pip:' section of the conda file must be a list of requirements.")
            requirements.extend(str(r).strip() for r in pip_list if str(r).strip())
        elif isinstance(dep, (str, int, float)):
            req, py = conda_to_pip(str(dep))
            python = py or python
            if req:
                requirements.append(req)
        else:
            raise InvalidInput(f"Cannot read conda dependency {dep!r}: use a name, or a 'pip:' list.")
    return doc, python, requirements


def requirement_name(requirement: str) -> str | None:
    """The normalised project name of a requirement (None for -r, URLs, options)."""
    if requirement.startswith(("-", "git+", "http:", "https:", "file:")):
        return None
    match = _REQ_NAME.match(requirement)
    return normalize(match.group(1)) if match else None


def requirement_pin(requirement: str) -> str | None:
    """The version a requirement pins with ==, if it pins one."""
    match = _REQ_NAME.match(requirement)
    if not match:
        return None
    pinned = re.match(r"^===?\s*([^,;\s]+)", match.group(3).strip())
    return pinned.group(1) if pinned else None


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def with_inference_server(requirements: list[str]) -> list[str]:
    """The model server must be in every built environment: add it if missing."""
    return list(requirements) if serves(requirements) else [*requirements, INFERENCE_SERVER]


def serves(requirements: list[str]) -> bool:
    """Whether these requirements (an environment's pip and conda packages) hold the model server."""
    return any(requirement_name(r) == INFERENCE_SERVER for r in requirements)


def build_key(python_version: str, requirements: list[str]) -> str:
    """The cache key of a local build: the interpreter version it uses and what it installs.

    Environment versions whose specs resolve to the same key share one build.
    """
    # pip resolves the requirements together: their order and spacing do not change what is built
    wanted = sorted({re.sub(r"\s+", "", r) for r in with_inference_server(requirements)})
    resolved = {"recipe": BUILD_RECIPE, "python": python_version, "requirements": wanted}
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:24]


def installed_packages() -> dict[str, str]:
    """Normalised name → version for the interpreter byom runs in."""
    from importlib import metadata

    return {normalize(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def freeze_to_versions(freeze_lines: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in freeze_lines:
        if "==" in line:
            name, version = line.split("==", 1)
            out[normalize(name)] = version.strip()
    return out


def drift(requirements: Iterable[str], installed: Mapping[str, str] | None, *, source: str = "",
          current: Mapping[str, str] | None = None) -> list[DriftEntry]:
    """Each requirement against what is installed (read from ``source``): ok, mismatch, missing or unpinned.

    ``installed`` None: the version has no build, so every pin is ``not built yet`` (compared with nothing:
    byom's own interpreter is not where it will run). ``current``, when given, is what byom's own
    interpreter has, reported beside it.
    """
    entries = []
    for req in requirements:
        name = requirement_name(req)
        if name is None:
            continue
        have = None if installed is None else installed.get(name)
        pin = requirement_pin(req)
        if installed is None:
            status = NOT_BUILT
        elif have is None:
            status = "missing"
        elif pin is None:
            status = "unpinned"
        else:
            status = "ok" if _same_version(pin, have) else "mismatch"
        entries.append(DriftEntry(package=name, pinned=req, installed=have, status=status, source=source,
                                  current=None if current is None else current.get(name)))
    return entries


def _same_version(pin: str, have: str) -> bool:
    if pin.endswith(".*"):
        return have == pin[:-2] or have.startswith(pin[:-1])
    # a local build tag (2.13.0+cpu) satisfies a pin without one
    return have == pin or have.split("+", 1)[0] == pin


def _build_text(env: EnvironmentVersion) -> str | None:
    return f"{env.build_context} ({env.dockerfile_path or 'Dockerfile'})" if env.build_context else None


def diff_environments(a: EnvironmentVersion, b: EnvironmentVersion) -> EnvironmentDiff:
    """Line diff of two versions' conda specs plus a package-level summary, and their images and build contexts."""
    left = (a.conda_file or "").splitlines()
    right = (b.conda_file or "").splitlines()
    lines = []
    for row in difflib.ndiff(left, right):
        tag = row[:1]
        if tag in (" ", "-", "+"):
            lines.append(DiffLine(tag=tag, text=row[2:]))
    reqs_a = {requirement_name(r) or r: r for r in a.pip_requirements}
    reqs_b = {requirement_name(r) or r: r for r in b.pip_requirements}
    return EnvironmentDiff(
        name=a.name,
        from_version=a.version,
        to_version=b.version,
        conda=lines,
        image=(a.image, b.image),
        build=(_build_text(a), _build_text(b)),
        added=sorted(reqs_b[k] for k in reqs_b.keys() - reqs_a.keys()),
        removed=sorted(reqs_a[k] for k in reqs_a.keys() - reqs_b.keys()),
        changed=sorted((k, reqs_a[k], reqs_b[k]) for k in reqs_a.keys() & reqs_b.keys() if reqs_a[k] != reqs_b[k]),
    )


BYOM_INTERPRETER = "byom's interpreter"
"""Where drift reads installed versions for the built-in environment, which runs in it."""
NOT_BUILT = "not built yet"
"""Drift's status (and its source) for a version with no build: nothing is installed where it would run."""


def local_python_environment() -> EnvironmentVersion:
    """The built-in environment: the interpreter byom runs in, with byom's own requirements."""
    try:
        requires = [r.split(";")[0].strip() for r in (metadata.requires("byom") or []) if "extra ==" not in r]
    except metadata.PackageNotFoundError:
        requires = []
    return EnvironmentVersion(
        name=LOCAL_PYTHON,
        version=1,
        description="The Python interpreter byom runs in (no build; fastest for development and tests).",
        python=".".join(map(str, sys.version_info[:3])),
        pip_requirements=requires,
        built_in=True,
        created_by="byom",
    )
