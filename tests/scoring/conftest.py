"""Fixtures for the scoring scripts: loaded models, and inference servers on loopback.

The model folders come from tests/conftest.py: ``tiny_model_dir`` (a tiny
random Llama with the SmolLM2 tokenizer, context 256) and ``sample_model_dir``
(SmolLM2-135M-Instruct packaged as a transformers folder).
"""

from __future__ import annotations

import sys

import pytest

from bench.servers import SCORING_DIR, inference_server

# The entry scripts import their shared code as the top-level package
# byom_scoring (from beside themselves); tests import it the same way.
if str(SCORING_DIR) not in sys.path:
    sys.path.insert(0, str(SCORING_DIR))


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir):
    from byom_scoring import common

    return common.load_model(tiny_model_dir)


@pytest.fixture(scope="session")
def tiny_lm_in(tiny_model_dir):
    """``tiny_lm_in(dtype)``: the tiny model loaded for generation in that BYOM_GENERATION_DTYPE (loaded once each)."""
    import os

    from byom_scoring import common

    loaded = {}

    def load(dtype):
        if dtype not in loaded:
            before = os.environ.get("BYOM_GENERATION_DTYPE")
            os.environ["BYOM_GENERATION_DTYPE"] = dtype
            try:
                loaded[dtype] = common.load_generation_model(tiny_model_dir)
            finally:
                if before is None:
                    del os.environ["BYOM_GENERATION_DTYPE"]
                else:
                    os.environ["BYOM_GENERATION_DTYPE"] = before
        return loaded[dtype]

    return load


@pytest.fixture(scope="session")
def sample_lm(sample_model_dir):
    from byom_scoring import common

    return common.load_model(sample_model_dir)


@pytest.fixture
def one_torch_thread():
    """Run torch on one thread: on a small machine shared with other test
    processes, two threads spinning for each other run several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_token_ranks_server(tiny_model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "token_ranks.log"
    with inference_server("token_ranks.py", tiny_model_dir, log, threads=4) as server:
        yield server


@pytest.fixture(scope="module")
def tiny_generate_server(tiny_model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "generate.log"
    with inference_server("generate.py", tiny_model_dir, log, threads=8) as server:
        yield server
