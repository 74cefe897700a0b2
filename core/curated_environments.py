"""Azure ML's curated environments (the ``azureml`` registry) and what a local workspace builds in their place.

A deployment that names ``azureml://registries/azureml/environments/sklearn-1.5/labels/latest``
runs on Azure in Microsoft's image. Locally there is no image to pull, so
the Workspace registers (once) an environment of the same name whose conda
file holds what the curated one is for: its framework at the version its
name says, the usual companions, and the model server. The Python is the
one the name gives, else this machine's. GPU images and environments not in
the table are refused with what to use instead: a guess at their contents
would run the score script somewhere it was never tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from .asset_refs import RegistryRef
from .entities import EnvironmentSpec
from .errors import InvalidInput

CURATED_REGISTRY = "azureml"
CURATED_TAG = "byom.curated"  # on the local equivalent: the registry asset it stands for


@dataclass(frozen=True)
class Curated:
    python: str | None
    packages: tuple[str, ...]


CURATED: dict[str, Curated] = {
    "sklearn-1.5": Curated(None, ("scikit-learn==1.5.*", "pandas", "scipy", "joblib")),
    "sklearn-1.1": Curated(None, ("scikit-learn==1.1.*", "pandas", "scipy", "joblib")),
    "lightgbm-3.3": Curated(None, ("lightgbm==3.3.*", "scikit-learn", "pandas")),
    "minimal-py311-inference": Curated("3.11", ()),
    "minimal-py312-inference": Curated("3.12", ()),
    "minimal-ubuntu22.04-py39-cpu-inference": Curated("3.9", ()),
    "minimal-ubuntu20.04-py38-cpu-inference": Curated("3.8", ()),
    "mlflow-py312-inference": Curated("3.12", ("mlflow-skinny", "pandas")),
    "mlflow-ubuntu22.04-py311-cpu-inference": Curated("3.11", ("mlflow-skinny", "pandas")),
}


def local_equivalent(ref: RegistryRef) -> EnvironmentSpec:
    """The environment a local workspace registers for a curated one; InvalidInput when there is none."""
    instead = ("create an environment with a conda file that pins what the score script imports "
               "(byom environment create -n NAME --conda-file conda.yml) and name it as NAME:VERSION")
    if ref.registry != CURATED_REGISTRY:
        raise InvalidInput(f"{ref.uri!r} is in the Azure ML registry {ref.registry!r}, "
                           "which a local workspace cannot reach.", hint=f"Locally, {instead}.")
    curated = CURATED.get(ref.name)
    if curated is None:
        gpu = any(word in ref.name for word in ("cuda", "gpu", "acpt"))
        known = ", ".join(sorted(CURATED))
        raise InvalidInput(
            f"The curated environment {ref.name!r} has no local equivalent"
            + (" (it is a GPU image; this machine runs on the CPU)" if gpu else "") + f": known here are {known}.",
            hint=f"Name one of those, or {instead}.")
    lines = ["name: " + ref.name, "dependencies:"]
    if curated.python:
        lines.append(f"  - python={curated.python}")
    lines += ["  - pip", "  - pip:", *(f"      - {p}" for p in (*curated.packages, "azureml-inference-server-http"))]
    return EnvironmentSpec(
        name=ref.name, conda_file="\n".join(lines) + "\n",
        description=f"Local equivalent of Azure ML's curated environment {ref.name}: the same framework version, "
                    "built with pip on this machine's Python (not Microsoft's image).",
        tags={CURATED_TAG: f"azureml://registries/{ref.registry}/environments/{ref.name}"},
    )
