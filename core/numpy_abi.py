"""NumPy 1.x pins: what a local build adds so that a conda spec with old pins installs an environment that imports.

A compiled package built against NumPy 1.x fails to import beside NumPy 2
("numpy.dtype size changed, may indicate binary incompatibility"). A conda
spec that pins ``scikit-learn=1.2.2`` and leaves numpy free builds on Azure
ML, because conda-forge's repodata carries a ``numpy <2.0a0`` bound for every
package built before NumPy 2; pip's metadata for those releases has no such
bound, so a local build would take the newest numpy and break. The local
build therefore adds ``numpy<2`` when the spec leaves numpy free and pins a
package below its first release built for NumPy 2 (the table below, from
NumPy's ecosystem tracking issue numpy/numpy#26191; rounded up where unsure:
a bound added to a release that would also run on NumPy 2 costs nothing).

This is the constraint conda's metadata applies, not a resolution "as of the
pins' era" (uv's ``--exclude-newer``): an era resolution would also age the
model server and every package left free, which Azure does not do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from .environments import normalize

NUMPY_1_BOUND = "numpy<2"

# PyPI name → the first release built for NumPy 2.
FIRST_BUILT_FOR_NUMPY_2: dict[str, str] = {
    "scikit-learn": "1.4.2",
    "scipy": "1.13.0",
    "pandas": "2.2.2",
    "matplotlib": "3.8.4",
    "pyarrow": "16.0.0",
    "scikit-image": "0.24.0",
    "statsmodels": "0.14.2",
    "h5py": "3.11.0",
    "numba": "0.60.0",
    "shap": "0.46.0",
    "opencv-python": "4.10.0.84",
    "opencv-python-headless": "4.10.0.84",
    "xgboost": "2.1.0",
    "lightgbm": "4.5.0",
    "catboost": "1.2.7",
    "onnxruntime": "1.19.0",
    "tensorflow": "2.18.0",
    "torch": "2.4.0",
    "tables": "3.10.0",
}

# A version no release will reach: a specifier that admits it admits new releases.
_FAR_FUTURE = Version("99999")


@dataclass(frozen=True)
class Bound:
    requirement: str  # what the build adds
    reason: str  # said in the build log


def numpy_bounds(requirements: Iterable[str]) -> list[Bound]:
    """``numpy<2`` with its reason when these requirements leave numpy free and pin a NumPy-1.x-era release."""
    parsed = [_parse(r) for r in requirements]
    named = [r for r in parsed if r is not None]
    if any(normalize(r.name) == "numpy" for r in named):
        return []  # the spec says which numpy it wants
    held = [str(r) for r in named if _held_before_numpy_2(r)]
    if not held:
        return []
    return [Bound(NUMPY_1_BOUND, f"added {NUMPY_1_BOUND}: {', '.join(held)} "
                                 f"{'was' if len(held) == 1 else 'were'} built against NumPy 1.x "
                                 "(conda-forge's metadata bounds it the same way)")]


def _parse(requirement: str) -> Requirement | None:
    try:
        return Requirement(requirement)
    except InvalidRequirement:  # -r files, URLs, options: nothing to read a version from
        return None


def _held_before_numpy_2(req: Requirement) -> bool:
    """Whether the requirement admits only releases older than its first release built for NumPy 2."""
    first = FIRST_BUILT_FOR_NUMPY_2.get(normalize(req.name))
    if first is None or not req.specifier:
        return False
    # the versions each clause names are the edges where what it admits changes
    candidates = {Version(first), _FAR_FUTURE, *(_version(s.version) for s in req.specifier)}
    newer = (v for v in candidates if v is not None and v >= Version(first))
    return not any(req.specifier.contains(v, prereleases=True) for v in newer)


def _version(text: str) -> Version | None:
    try:
        return Version(text.removesuffix(".*"))
    except InvalidVersion:
        return None
