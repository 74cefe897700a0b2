"""Generation precisions (BYOM_GENERATION_DTYPE), and token ranks staying float32 whatever it says."""

import pytest
import torch
from byom_scoring import common, precision
from byom_scoring.ranks import RankScorer
from reference.token_ranks_naive import reference_ranks

from .test_ranks import TEXT, assert_ranks_match

CPU = torch.device("cpu")


def test_the_default_precision_is_float16_on_a_cpu_and_bfloat16_on_cuda(monkeypatch):
    monkeypatch.delenv("BYOM_GENERATION_DTYPE", raising=False)
    monkeypatch.delenv("BYOM_DTYPE", raising=False)
    assert precision.generation_dtype(CPU) == "float16"
    assert precision.generation_dtype(torch.device("cuda")) == "bfloat16"
    monkeypatch.setenv("BYOM_DTYPE", "bfloat16")
    assert precision.generation_dtype(CPU) == "bfloat16"
    monkeypatch.setenv("BYOM_GENERATION_DTYPE", "int8")
    assert precision.generation_dtype(CPU) == "int8"


@pytest.mark.parametrize(("value", "device", "words"), [("int4", CPU, "must be one of"), ("int8", None, "CPU only")])
def test_a_precision_that_cannot_run_is_refused(monkeypatch, value, device, words):
    monkeypatch.setenv("BYOM_GENERATION_DTYPE", value)
    with pytest.raises(RuntimeError, match=words):
        precision.generation_dtype(device or torch.device("cuda"))


@pytest.mark.parametrize(("layer", "tolerance"), [(precision.Float16Linear, 2e-3), (precision.Int8Linear, 0.05)])
def test_packed_layers_compute_what_the_float_layer_computes(layer, tolerance):
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 40)
    x = torch.randn(3, 5, 96)
    expected = linear(x)
    got = layer(linear)(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert (got - expected).abs().max() <= tolerance * expected.abs().max()


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_packed_weights_are_held_once(tiny_lm_in, tiny_lm, dtype):
    lm = tiny_lm_in(dtype)
    model = lm.model
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    packed = [m for m in model.modules() if isinstance(m, (precision.Float16Linear, precision.Int8Linear))]
    assert len(packed) == sum(type(m) is torch.nn.Linear for m in tiny_lm.model.modules())
    # What is left as parameters: the embedding, held float16 as loaded, and the float32 norms; no copy of any
    # linear weight.
    left = dict(model.named_parameters())
    assert left and all("embed" in name or "norm" in name for name in left), left
    assert all(p.dtype == (torch.float16 if "embed" in name else torch.float32) for name, p in left.items())
    assert model.get_input_embeddings()(torch.tensor([[1, 2]])).dtype == torch.float32
    assert lm.precision == dtype and lm.dtype == torch.float32


def test_token_ranks_ignore_the_generation_precision(monkeypatch, tiny_model_dir, tiny_lm, one_torch_thread):
    monkeypatch.setenv("BYOM_GENERATION_DTYPE", "int8")
    lm = common.load_model(tiny_model_dir)
    assert lm.dtype == torch.float32 and lm.precision == "float32"
    assert all(p.dtype == torch.float32 for p in lm.model.parameters())
    scorer = RankScorer(lm)
    ranks = [t["rank"] for t in scorer.score([TEXT], top_k=0)[0]["token_ranks"]]
    assert ranks == [t["rank"] for t in RankScorer(tiny_lm).score([TEXT], top_k=0)[0]["token_ranks"]]
    ties = [t["ties"] for t in scorer.score([TEXT], top_k=0)[0]["token_ranks"]]
    assert_ranks_match(ranks, reference_ranks(lm.model, [scorer.bos, *scorer.tokenize(TEXT)[0]]), ties)
