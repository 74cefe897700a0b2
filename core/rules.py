"""Validation rules of Azure ML, shared by every backend.

Each function raises :class:`core.errors.InvalidInput` with a message that
names the rule and what to do, or returns the normalised value.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .artifacts import is_remote, refuse_asset_reference
from .entities import LIMITS, LOCAL_PYTHON, Deployment, Endpoint, EnvironmentSpec
from .errors import InUse, InvalidInput

ENDPOINT_NAME = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
ASSET_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
MIRROR_MAX_PERCENT = 50
CONSUMER_NAME = re.compile(r"^[a-zA-Z0-9][-_.a-zA-Z0-9]*$")
CONSUMER_NAME_MAX = 64
LIMIT_MAX = 10**12
WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WINDOW_MAX_S = 366 * 86400
USAGE_PERIODS = {"hour": 3600, "day": 86400}


def validate_endpoint_name(name: str, kind: str = "endpoint") -> str:
    """Endpoint and deployment names: 3–32 characters, letters, digits and '-'."""
    if not isinstance(name, str) or not 3 <= len(name) <= 32 or not ENDPOINT_NAME.match(name):
        raise InvalidInput(
            f"Invalid {kind} name {name!r}: use 3-32 characters, letters, digits and '-', "
            "starting with a letter and not ending with '-'."
        )
    return name


def validate_deployment_name(name: str) -> str:
    return validate_endpoint_name(name, "deployment")


def validate_asset_name(name: str, kind: str = "model") -> str:
    """Model and environment names: letters, digits, '-', '_', '.'; ≤ 255."""
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or not ASSET_NAME.match(name):
        raise InvalidInput(
            f"Invalid {kind} name {name!r}: use up to 255 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit."
        )
    return name


def refuse_built_in_environment(name: str, done: str, hint: str = "") -> None:
    """``local-python`` is the interpreter byom runs in, not a registered asset: it cannot be ``done``."""
    if name == LOCAL_PYTHON:
        raise InvalidInput(f"{LOCAL_PYTHON!r} is built in and cannot be {done}{hint}.")


def check_environment_source(spec: EnvironmentSpec, docker_builds: bool) -> None:
    """An environment comes from a conda file and/or an image, or (where Docker builds exist) a build context alone."""
    if not spec.build_context:
        if spec.dockerfile_path:
            raise InvalidInput("A Dockerfile path names a file inside a build context: pass the context too "
                               "(--build-context).")
        if not spec.conda_file and not spec.image:
            raise InvalidInput("An environment needs a conda file, an image, or both: pass --conda-file or --image.")
        return
    if not docker_builds:
        raise InvalidInput("This workspace cannot build a Docker context: it runs no Docker.",
                           hint="Use a conda file (and an image name) instead, or create the environment in an "
                                "Azure ML workspace, which builds the image.")
    if spec.conda_file or spec.image:
        raise InvalidInput("A build context brings its own Dockerfile: leave out the image and the conda file.")
    inside = Path(spec.dockerfile_path or "Dockerfile")
    if inside.is_absolute() or ".." in inside.parts:
        raise InvalidInput(f"Dockerfile path {spec.dockerfile_path!r} must be relative to the build context, "
                           "inside it.")
    if is_remote(spec.build_context):
        return
    context = Path(spec.build_context).expanduser()
    if not context.is_dir():
        raise InvalidInput(f"Build context {str(context)!r} is not a folder: "
                           "pass the folder that holds the Dockerfile.")
    if not (context / inside).is_file():
        raise InvalidInput(f"Build context {str(context)!r} has no {inside}.",
                           hint="Add it, or name the file inside the context with --dockerfile-path.")


def validate_version(version: object, kind: str = "model", *, latest_ok: bool = True) -> int:
    """A version given by a user: a whole number from 1 (or its text). ``latest_ok``: whether the message
    may offer 'latest' (where a version is looked up; not where a new one is named)."""
    if isinstance(version, int) and not isinstance(version, bool):
        number = version
    elif isinstance(version, str) and version.strip().isdigit():
        number = int(version)
    else:
        number = 0
    if number < 1:
        raise InvalidInput(f"Invalid {kind} version {version!r}: use a whole number from 1"
                           + (", or 'latest'." if latest_ok else " (or leave it out for the next one)."))
    return number


def validate_tags(tags: Mapping[str, object] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput("Tags must be a mapping of names to values, for example --set tags.team=nlp.")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput(f"Invalid tag name {key!r}: tag names must be non-empty text.")
        out[key] = "" if value is None else str(value)
    return out


def validate_instance_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 20:
        raise InvalidInput(f"Invalid instance_count {count!r}: use a whole number from 1 to 20.")
    return count


def _percentages(split: Mapping[str, object], what: str) -> dict[str, int]:
    if not isinstance(split, Mapping):
        raise InvalidInput(f"{what} must map deployment names to percentages, for example blue=90 green=10.")
    out: dict[str, int] = {}
    for name, pct in split.items():
        if isinstance(pct, bool) or not isinstance(pct, int):
            try:
                if isinstance(pct, str) and pct.strip().lstrip("-").isdigit():
                    pct = int(pct)
                else:
                    raise ValueError
            except ValueError:
                raise InvalidInput(f"{what} for {name!r} is {pct!r}: percentages are whole numbers.") from None
        if not 0 <= pct <= 100:
            raise InvalidInput(f"{what} for {name!r} is {pct}: percentages go from 0 to 100.")
        key = str(name).lower()
        if key in out:
            raise InvalidInput(f"{what} names deployment {name!r} twice (names are compared lower-cased).")
        out[key] = pct
    return out


def validate_traffic(
    traffic: Mapping[str, object],
    mirror_traffic: Mapping[str, object] | None,
    deployments: Iterable[str],
) -> tuple[dict[str, int], dict[str, int]]:
    """Check a live split and a mirror split against an endpoint's deployments.

    Live traffic: integer percentages per existing deployment, totalling 0 or
    100. Mirror traffic: at most one deployment, 1–50 %, with no live
    traffic. Returns both splits with lower-cased names, zero entries kept.
    """
    existing = {d.lower() for d in deployments}
    live = _percentages(traffic, "Traffic")
    mirror = _percentages(mirror_traffic or {}, "Mirror traffic")
    for name in list(live) + list(mirror):
        if name not in existing:
            known = ", ".join(sorted(existing)) or "none yet"
            raise InvalidInput(
                f"Traffic names deployment {name!r}, which this endpoint does not have (it has: {known})."
            )
    total = sum(live.values())
    if total not in (0, 100):
        raise InvalidInput(f"Traffic adds up to {total} %: it must total exactly 100 (or 0 to stop all traffic).")
    mirror = {name: pct for name, pct in mirror.items() if pct > 0}
    if len(mirror) > 1:
        raise InvalidInput("Mirror traffic can go to one deployment only.")
    for name, pct in mirror.items():
        if pct > MIRROR_MAX_PERCENT:
            raise InvalidInput(f"Mirror traffic to {name!r} is {pct} %: "
                               f"at most {MIRROR_MAX_PERCENT} % can be mirrored.")
        if live.get(name, 0) > 0:
            raise InvalidInput(
                f"Deployment {name!r} has live traffic, so it cannot also receive mirror traffic: "
                "set its live traffic to 0 first."
            )
    return live, mirror


def check_deployment_deletable(name: str, traffic: Mapping[str, int]) -> None:
    if traffic.get(name.lower(), 0) > 0:
        raise InUse(
            f"Deployment {name!r} still has {traffic[name.lower()]} % of live traffic.",
            hint="Move its traffic to another deployment first (set-traffic), then delete it.",
        )


STAGE_ORDER = {"dev": 0, "staging": 1, "production": 2}


def check_promotion(current: str, target: str, approver: str) -> None:
    """dev → staging → production; production only from staging; back to dev always."""
    if target not in STAGE_ORDER:
        raise InvalidInput(f"Unknown stage {target!r}: use dev, staging or production.")
    if not approver or not approver.strip():
        raise InvalidInput("A promotion needs an approver: pass --approver NAME.")
    if target == current:
        raise InvalidInput(f"The version is already in {current}.")
    if target == "production" and current != "staging":
        raise InvalidInput(
            f"Only a version in staging can go to production; this one is in {current}.",
            hint="Promote it to staging first.",
        )


def _is_asset_ref(code: str) -> bool:
    """``name:version`` of a registered code asset, not a folder on this machine."""
    name, sep, version = code.rpartition(":")
    return bool(sep and name and version.isdigit()) and not Path(code).expanduser().is_dir()


def check_deployment(deployment: Deployment, running_code: str | None = None) -> None:
    """Name, instance count, code configuration (the scoring script inside the code folder) and request settings.

    The code is a folder to upload, or on an update the code asset the deployment already runs
    (``running_code``, read back as ``name:version`` where the backend keeps code as an asset).
    """
    validate_deployment_name(deployment.name)
    validate_instance_count(deployment.instance_count)
    kept = deployment.code_path is not None and deployment.code_path == running_code and _is_asset_ref(running_code)
    if deployment.code_path is not None and not kept:
        code = Path(deployment.code_path).expanduser()
        if not code.is_dir():
            raise InvalidInput(f"Code folder {str(code)!r} does not exist: point code_configuration.code at a folder.")
        script = deployment.scoring_script or ""
        if not script or not (code / script).is_file():
            raise InvalidInput(f"Scoring script {script!r} is not in {str(code)!r}: "
                               "check code_configuration.scoring_script.")
    settings = deployment.request_settings
    if settings.request_timeout_ms < 1 or settings.max_concurrent_requests_per_instance < 1:
        raise InvalidInput("request_settings must be positive: request_timeout_ms ≥ 1 and "
                           "max_concurrent_requests_per_instance ≥ 1.")


def check_remote_model_path(path: str, package: bool) -> str:
    """A model path in cloud storage, as a workspace's model registry takes it where it lies."""
    path = path.strip()
    refuse_asset_reference(path)
    if package:
        raise InvalidInput(f"--package converts a GGUF file on this machine, and {path!r} is in remote storage.",
                           hint="Download the file first and register it with --package, or register it as it is.")
    if path.lower().startswith("azureml://registries/"):
        raise InvalidInput(f"{path!r} is in an Azure ML registry, not in this workspace's storage.",
                           hint="Deploy the registry's model by its id, or download it and register the files.")
    return path


def check_log_request(lines: int, container: str) -> None:
    if container not in ("inference-server", "storage-initializer"):
        raise InvalidInput(f"Unknown container {container!r}: use inference-server or storage-initializer.")
    if lines < 1:
        raise InvalidInput("--lines must be at least 1.")


def bearer_authorized(authorization: str | None, keys: Iterable[str | bytes]) -> bool:
    """``Authorization: Bearer <key>`` (the scheme in any case) with one of the endpoint's keys.

    Compared in constant time, against every key whatever the first gives.
    """
    if not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    presented = given.strip().encode("utf-8", "replace")
    wanted = [k.encode("utf-8") if isinstance(k, str) else k for k in keys]
    matches = [hmac.compare_digest(presented, key) for key in wanted if key]
    return any(matches)


def check_local_endpoint_deployment(endpoint: Endpoint, name: str, existing: list[str]) -> None:
    """An az ml ``--local`` endpoint holds a single deployment (which gets every request)."""
    others = [d for d in existing if d.lower() != name.lower()]
    if endpoint.local and others:
        raise InvalidInput(
            f"Endpoint {endpoint.name!r} is a local endpoint (--local), which holds a single deployment, and it "
            f"has {others[0]!r}: delete that one first, or create the deployment under another endpoint.")


def check_traffic_settable(endpoint: Endpoint) -> None:
    if endpoint.local:
        raise InvalidInput(
            f"Endpoint {endpoint.name!r} is a local endpoint (--local): its one deployment gets every request, "
            "so it takes no traffic split. Create an endpoint without --local for blue/green traffic.")


# ------------------------------------------------------------ consumers


def validate_consumer_name(name: object) -> str:
    """A consumer's name: 1–64 letters, digits, '-', '_' or '.', starting with a letter or digit."""
    if not isinstance(name, str) or not 1 <= len(name) <= CONSUMER_NAME_MAX or not CONSUMER_NAME.match(name):
        raise InvalidInput(f"Invalid consumer name {name!r} (--consumer): use 1-{CONSUMER_NAME_MAX} letters, digits, "
                           "'-', '_' or '.', starting with a letter or digit.")
    return name


def validate_limits(limits: Mapping[str, object]) -> dict[str, int | None]:
    """A consumer's limits by name (``tokens_per_minute``...): whole numbers from 1; None for no limit."""
    out: dict[str, int | None] = {}
    for name, value in limits.items():
        flag = "--" + name.replace("_", "-")
        if name not in LIMITS:
            raise InvalidInput(f"Unknown limit {name!r}: a consumer has {', '.join(LIMITS)}.")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 1 <= value <= LIMIT_MAX):
            raise InvalidInput(f"Invalid {flag} {value!r}: a limit is a whole number from 1 to {LIMIT_MAX} "
                               "(leave it out for no limit).")
        out[name] = value
    return out


def parse_window(text: object) -> int:
    """``"90s"``, ``"30m"``, ``"24h"``, ``"7d"`` → seconds (at most a year)."""
    raw = text.strip().lower() if isinstance(text, str) else ""
    number, unit = raw[:-1], raw[-1:]
    if unit not in WINDOW_UNITS or not number.isdigit() or not 1 <= int(number) * WINDOW_UNITS[unit] <= WINDOW_MAX_S:
        raise InvalidInput(f"Invalid --since {text!r}: write a whole number and a unit, s, m, h or d "
                           "(such as 30m, 24h or 7d; at most 366d).")
    return int(number) * WINDOW_UNITS[unit]


def validate_usage_period(by: object) -> int | None:
    """``--by hour|day`` → the period in seconds; None (or "") for one row per consumer and deployment."""
    if by is None or by == "":
        return None
    if by not in USAGE_PERIODS:
        raise InvalidInput(f"Invalid --by {by!r}: use hour or day (or leave it out for the whole window).")
    return USAGE_PERIODS[str(by)]
