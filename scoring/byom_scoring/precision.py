"""The precision generation runs in: BYOM_GENERATION_DTYPE=float32|bfloat16|float16|int8.

Decoding reads every weight once per step, so on a CPU its speed is set by
the bytes the weights take and by how well the kernels read them:

- ``float32``: as trained (or as dequantized from a GGUF file).
- ``bfloat16``: the whole model cast to bfloat16 (activations too).
- ``float16``: each linear layer's weight (the output head included) held
  as float16, packed for fbgemm's kernels; activations, norms and the
  embedding stay float32. Half float32's bytes and float32's choices.
- ``int8``: the same with int8 weights (one scale per output channel) and
  activations quantized per call, except the MLP's down projection, which
  stays float16. A step's rows are quantized together, so a row's tokens
  can differ with its batch mates.

The default is the fastest that passes the quality guard
(bench/generation_quality.py: at least 97 % top-1 agreement with float32 on
the sample; figures in BENCHMARKS.md): float16 on a CPU; on CUDA, where the
packed kernels do not run, bfloat16. BYOM_DTYPE, where it is set and
BYOM_GENERATION_DTYPE is not, is taken as the generation precision too.

Token ranks never come here: their scores stay float32 and exact whatever
BYOM_GENERATION_DTYPE says (see common.load_model).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

GENERATION_DTYPES = ("float32", "bfloat16", "float16", "int8")
PACKED = {"float16", "int8"}  # linear layers packed for fbgemm; activations stay float32

# The overloads themselves: calling the packet checks every argument for fake
# script objects in Python first, a few microseconds on each of a step's ~200 calls.
_LINEAR_FP16 = torch.ops.quantized.linear_dynamic_fp16.default
_LINEAR_INT8 = torch.ops.quantized.linear_dynamic.default


def generation_dtype(device: torch.device) -> str:
    name = os.environ.get("BYOM_GENERATION_DTYPE") or os.environ.get("BYOM_DTYPE")
    if not name:
        return "float16" if device.type == "cpu" else "bfloat16"
    if name not in GENERATION_DTYPES:
        raise RuntimeError(f"BYOM_GENERATION_DTYPE must be one of {', '.join(GENERATION_DTYPES)}, got {name!r}.")
    if name in PACKED and device.type != "cpu":
        raise RuntimeError(f"BYOM_GENERATION_DTYPE={name} runs on a CPU only; use bfloat16 on CUDA.")
    return name


class Float16Linear(nn.Module):
    """A linear layer whose weight is held once, as float16 packed for torch's fbgemm kernels; float32 in and out."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = linear.bias.detach().float() if linear.bias is not None else None
        self._packed = torch.ops.quantized.linear_prepack_fp16(linear.weight.detach().float(), bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = _LINEAR_FP16(x, self._packed)
        return out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, float16"


class Int8Linear(nn.Module):
    """A linear layer whose weight is held once, as int8 per output channel, packed for torch's int8 kernels."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
        bias = linear.bias.detach().float() if linear.bias is not None else None
        with warnings.catch_warnings():
            # torch 2.13 deprecates creating quantized tensors, and its int8
            # linear kernels take their weight in no other form; the kernels
            # themselves are not deprecated. tests/scoring/test_precision.py
            # fails when a torch release removes them.
            warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions", category=UserWarning)
            quantized = torch.quantize_per_channel(
                weight, scales, torch.zeros(len(scales), dtype=torch.long), 0, torch.qint8
            )
        self._packed = torch.ops.quantized.linear_prepack(quantized, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range=False: 8-bit activations (7-bit ones lose a third of the
        # agreement with float32 on the sample); fbgemm's kernels on AVX512-VNNI
        # and AVX2 without it accumulate in 32 bits for this range.
        out: torch.Tensor = _LINEAR_INT8(x, self._packed, False)
        return out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


# Inputs whose channels carry outliers that one int8 scale per row of activations
# loses: the MLP's down projection (after SiLU(gate) * up) costs the sample 12
# points of top-1 agreement in int8, so it stays float16 (see BENCHMARKS.md).
KEEP_FLOAT16 = {"down_proj", "fc2", "c_proj", "dense_4h_to_h", "w2"}


def pack_linears(model: nn.Module, name: str) -> int:
    """Replace every nn.Linear in ``model`` by its packed float16 or int8 form, freeing its float weight."""
    replaced = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child) is not nn.Linear:
                continue
            int8 = name == "int8" and child_name not in KEEP_FLOAT16
            setattr(parent, child_name, Int8Linear(child) if int8 else Float16Linear(child))
            replaced += 1
    return replaced


def load_dtype(name: str) -> torch.dtype:
    """The dtype to load the weights in for precision ``name``.

    Packed precisions load in float16, so that the whole model is never held
    in float32 on the way (the process's peak memory would keep it): each
    layer is packed from float16, the precision fbgemm's float16 kernels hold
    anyway and finer than int8's.
    """
    return torch.float16 if name in PACKED else getattr(torch, name)


def to_generation_dtype(model: nn.Module, name: str) -> nn.Module:
    """``model``, loaded in ``load_dtype(name)``, in the precision ``name``."""
    if name in PACKED:
        # The output head may share its weight with the embedding (tied): the
        # head gets its own packed copy. The norms run in float32 like the
        # packed layers' activations; the embedding stays float16 (as loaded:
        # a float32 copy would add 113 MB to the sample) and hands on the rows
        # it looks up in float32.
        pack_linears(model, name)
        assert isinstance(model, PreTrainedModel), "a transformers model"
        embedding = model.get_input_embeddings()
        for module in model.modules():
            if module is embedding:
                continue
            for param in module.parameters(recurse=False):
                param.data = param.data.float()
            for key, buffer in module.named_buffers(recurse=False):
                if buffer.is_floating_point():
                    setattr(module, key, buffer.float())
        embedding.register_forward_hook(_float32_output)
    return model


def _float32_output(module: nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
    return output.float()


def linear_call(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module``'s forward (a linear layer, packed or not), called without nn.Module's per-call machinery."""
    if isinstance(module, Float16Linear):
        packed = module._packed
        return lambda x: _LINEAR_FP16(x, packed)
    if isinstance(module, Int8Linear):
        packed = module._packed
        return lambda x: _LINEAR_INT8(x, packed, False)
    if type(module) is nn.Linear:
        weight, bias = module.weight, module.bias
        return lambda x: F.linear(x, weight, bias)
    raise TypeError(f"not a linear layer: {type(module).__name__}")
