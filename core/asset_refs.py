"""How a user names a model or environment version: ``name:3``, ``azureml:name:3``, ``name@latest``, an ARM id."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInput

ASSET_ID = re.compile(r"/(?P<kind>models|environments|codes)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")
"""The tail of an asset's ARM id or azureml:// URI, as ``az ml ... show --query id`` prints it."""


REGISTRY_ASSET = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/(?P<kind>models|environments)/(?P<name>[^/]+)"
    r"(?:/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+)))?/?$")


@dataclass(frozen=True)
class RegistryRef:
    """An asset in an Azure ML registry: ``azureml://registries/R/environments/N/versions/V`` (or ``labels/L``)."""

    uri: str
    registry: str
    kind: str  # "model" or "environment"
    name: str
    version: str  # a version, a label, or "latest"


def registry_ref(ref: str) -> RegistryRef | None:
    """The registry asset ``ref`` names; None when it names no registry. InvalidInput when it is malformed."""
    text = ref.strip()
    if "/registries/" not in text:
        return None
    match = REGISTRY_ASSET.match(text)
    if not match:
        raise InvalidInput(f"{text!r} is not a registry asset URI.",
                           hint="Write azureml://registries/REGISTRY/environments/NAME/versions/VERSION "
                                "(or /labels/latest), as az ml does.")
    return RegistryRef(uri=text, registry=match.group("registry"), kind=match.group("kind")[:-1],
                       name=match.group("name"), version=match.group("version") or match.group("label") or "latest")


def parse_asset_ref(ref: str, kind: str) -> tuple[str, str]:
    """'name:3', 'azureml:name:3', 'name@latest', 'name', or an ARM id → (name, version ref)."""
    text = ref.strip()
    if "/registries/" in text:
        raise InvalidInput(f"{text!r} is in an Azure ML registry, which byom does not deploy from.",
                           hint=f"Register the {kind} in this workspace and name it as NAME:VERSION.")
    match = ASSET_ID.search(text)
    if match:
        if match.group("kind") != f"{kind}s":
            raise InvalidInput(f"{text!r} is the id of {match.group('kind')}/{match.group('name')}, "
                               f"not of a {kind}: name a {kind} version.")
        return match.group("name"), match.group("version")
    if text.startswith("azureml:"):
        text = text[len("azureml:") :]
    if "@" in text:
        name, label = text.split("@", 1)
        return name, label
    if ":" in text:
        name, version = text.rsplit(":", 1)
        return name, version
    if not text:
        raise InvalidInput(f"No {kind} given: name one as NAME:VERSION.")
    return text, "latest"
