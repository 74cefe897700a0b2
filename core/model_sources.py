"""What a registration copies: the source as given, or a GGUF packaged first."""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidInput
from .progress import Progress


def detect_format(src: Path) -> str:
    """transformers (a folder with config.json), gguf (one .gguf file) or files."""
    if src.is_file():
        return "gguf" if src.suffix.lower() == ".gguf" else "files"
    if (src / "config.json").is_file():
        return "transformers"
    nested = [p for p in src.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    if len(nested) == 1 and len(list(src.iterdir())) == 1:
        return "transformers"
    return "files"


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
