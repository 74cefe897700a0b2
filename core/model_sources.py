"""What a registration copies: the source as given, or a GGUF packaged first."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InvalidInput
from .progress import Progress

CUSTOM = "custom"
"""Files byom does not interpret (Azure ML's ``custom_model``): the scoring script knows what they are."""


def detect_format(src: Path) -> str:
    """gguf (one .gguf file), transformers (a folder whose config.json is a transformers config, or that holds
    one such folder and nothing else), else custom."""
    if src.is_file():
        return "gguf" if src.suffix.lower() == ".gguf" else CUSTOM
    if _transformers_config(src / "config.json"):
        return "transformers"
    entries = list(src.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and _transformers_config(entries[0] / "config.json"):
        return "transformers"
    return CUSTOM


def _transformers_config(path: Path) -> bool:
    """A config.json that transformers reads: a JSON object naming a model type or architectures.

    Any other config.json (a scikit-learn pipeline's settings, an app's) is not enough to call a folder transformers.
    """
    if not path.is_file():
        return False
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("model_type") or config.get("architectures"))


def prepare_model_source(
    src: Path, *, package: bool, scratch: Path, progress: Progress
) -> tuple[Path, str, dict[str, str]]:
    """(folder or file to store, its format, properties to record).

    A GGUF file is checked to be a model before anything is copied. With
    ``package``, a GGUF checkpoint (or a folder holding exactly one) becomes a
    transformers folder in ``scratch``.
    """
    gguf = src if src.is_file() and src.suffix.lower() == ".gguf" else None
    if gguf is None and src.is_dir() and package:
        from .packaging import find_gguf

        gguf = find_gguf(src)
    if package and gguf is None:
        raise InvalidInput(
            f"--package needs a GGUF checkpoint, and {str(src)!r} is not one (nor a folder holding exactly one .gguf).",
            hint="Register it without --package.",
        )
    if gguf is None:
        return src, detect_format(src), {}
    from .packaging import inspect_gguf, package_gguf

    meta = inspect_gguf(gguf)
    props = {f"gguf.{k}": str(v) for k, v in meta.items() if isinstance(v, (str, int, float))}
    if not package:
        return src, "gguf", props
    out = scratch / "packaged"
    out.mkdir()
    progress(f"Packaging {gguf.name} into a transformers folder", 0.0)
    package_gguf(gguf, out, progress)
    props["packaged_from"] = gguf.name
    return out, "transformers", props
