"""A lean decoder for Llama-shaped models: the running batch's forward passes without transformers' modules.

transformers spends about 12 ms of Python per token on the sample (its
modules, wrappers and mask building for one position) and appends to its
cache with a ``torch.cat`` of the whole cache per layer and step. Here one
step for the whole batch is a plain loop over the layers that calls the
model's own weights directly (the packed float16/int8 products of
precision.py, or the float weights: held once, shared with the transformers
model), with RoPE tables computed once and keys and values written in place
into preallocated buffers, one slot per row.

It takes ``LlamaForCausalLM`` models whose computation it repeats exactly
(SiLU MLP, no biases, RoPE without scaling); any other model runs on
transformers (generation.TransformersRows). BYOM_GENERATION_DECODER=transformers
turns it off. In float32 it chooses the tokens transformers chooses
(tests/scoring/test_llama_decoder.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .common import LoadedModel
from .precision import linear_call

DECODERS = ("lean", "transformers")
GROW = 128  # positions added to the buffers at a time


def lean_decoder(lm: LoadedModel, choice: str | None = None) -> LlamaDecoder | None:
    """The lean decoder for ``lm``'s model, or None where transformers decodes it (not Llama-shaped, or turned off)."""
    choice = choice or os.environ.get("BYOM_GENERATION_DECODER") or "lean"
    if choice not in DECODERS:
        raise RuntimeError(f"BYOM_GENERATION_DECODER must be one of {', '.join(DECODERS)}, got {choice!r}.")
    if choice == "transformers" or not takes(lm.model):
        return None
    return LlamaDecoder(lm)


def takes(model: Any) -> bool:
    """Whether the lean decoder computes what transformers computes for ``model``."""
    if type(model).__name__ != "LlamaForCausalLM":
        return False
    config = model.config
    rope = getattr(config, "rope_parameters", None) or {}
    return (
        config.hidden_act == "silu"
        and not config.attention_bias
        and not config.mlp_bias
        and rope.get("rope_type", "default") == "default"
        and getattr(config, "pretraining_tp", 1) == 1
    )


Linear = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class _Layer:
    attn_norm: torch.Tensor
    q: Linear
    k: Linear
    v: Linear
    o: Linear
    mlp_norm: torch.Tensor
    gate: Linear
    up: Linear
    down: Linear


class LlamaDecoder:
    """The weights of a loaded Llama model, as the lean decoder reads them (references, not copies)."""

    def __init__(self, lm: LoadedModel):
        model = lm.model
        config = model.config
        self.device, self.dtype = lm.device, lm.dtype
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = config.rms_norm_eps
        self.context = lm.context_length
        self.embedding = model.get_input_embeddings().weight
        self.layers = [
            _Layer(
                layer.input_layernorm.weight,
                linear_call(layer.self_attn.q_proj),
                linear_call(layer.self_attn.k_proj),
                linear_call(layer.self_attn.v_proj),
                linear_call(layer.self_attn.o_proj),
                layer.post_attention_layernorm.weight,
                linear_call(layer.mlp.gate_proj),
                linear_call(layer.mlp.up_proj),
                linear_call(layer.mlp.down_proj),
            )
            for layer in model.model.layers
        ]
        self.norm = model.model.norm.weight
        self.head = linear_call(model.lm_head)
        # RoPE's tables for every position, as the model's own rotary module computes them.
        with torch.inference_mode():
            probe = torch.zeros((), dtype=self.dtype, device=self.device)
            cos, sin = model.model.rotary_emb(probe, torch.arange(self.context, device=self.device)[None])
        half = self.head_dim // 2
        # rotate_half(x) * sin == x.roll(half) * (sin with its first half negated): one operation instead of four.
        self.cos, self.sin = cos[0], torch.cat((-sin[0, :, :half], sin[0, :, half:]), dim=-1)  # (context, head_dim)

    def rows(self) -> SlotRows:
        return SlotRows(self)

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 and weight.dtype == torch.float32:
            # torch's own kernel: the same numbers as LlamaRMSNorm's five operations, in one call.
            return F.rms_norm(x, weight.shape, weight, self.eps)
        h = x.float()  # as LlamaRMSNorm computes it: in float32, then weighted in the model's dtype
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * h.to(x.dtype)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.embedding).to(self.dtype)  # a float16 embedding hands on float32 rows


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """RoPE: what transformers' apply_rotary_pos_emb computes, to the bit."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * signed_sin


class SlotRows:
    """A running batch's keys and values in preallocated buffers, row i in slot i; and its forward passes.

    Each layer's keys and values are one (slots, kv_heads, positions, head_dim)
    buffer; a row's prompt starts at position 0 of its slot, and each step
    writes one position per row in place. Buffers grow (by ``GROW``
    positions, or to twice the slots: requests arriving one by one would
    otherwise copy every buffer at each arrival) when a row needs more, and
    are kept when rows leave,
    so that the next requests reuse them. When a row leaves, the rows after it
    move up a slot.
    """

    def __init__(self, decoder: LlamaDecoder):
        self.d = decoder
        self.lengths: list[int] = []  # positions written in each row's slot
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.slots = self.capacity = 0
        self.arange = torch.arange(decoder.context, device=decoder.device)

    def __len__(self) -> int:
        return len(self.lengths)

    def mergeable(self) -> bool:
        return True

    def _ensure(self, slots: int, positions: int) -> None:
        if slots <= self.slots and positions <= self.capacity:
            return
        d = self.d
        capacity = self.capacity if positions <= self.capacity else min(d.context, -(-positions // GROW) * GROW)
        slots = max(slots, 2 * self.slots) if slots > self.slots else self.slots
        shape = (slots, d.kv_heads, capacity, d.head_dim)
        used, width = len(self.lengths), max(self.lengths, default=0)
        for buffers in (self.keys, self.values):
            # Zeros, not empty: a position no row wrote is masked, and 0 × NaN would not vanish.
            grown = [torch.zeros(shape, dtype=d.dtype, device=d.device) for _ in d.layers]
            for new, old in zip(grown, buffers, strict=False):
                new[:used, :, :width] = old[:used, :, :width]
            buffers[:] = grown
        self.slots, self.capacity = slots, capacity

    @torch.inference_mode()
    def prefill(self, prompts: list[list[int]]) -> torch.Tensor:
        d = self.d
        n, first = len(prompts), len(self.lengths)
        lengths = [len(p) for p in prompts]
        width = max(lengths)
        self._ensure(first + n, width)
        ids = torch.zeros((n, width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, : lengths[i]] = torch.tensor(prompt)  # right-padded: what follows a prompt is never read
        ids = ids.to(d.device)
        mask = None
        if min(lengths) < width:
            causal = torch.ones((width, width), dtype=torch.bool, device=d.device).tril()
            real = self.arange[:width] < torch.tensor(lengths, device=d.device)[:, None]
            mask = (causal[None] & real[:, None, :])[:, None]  # (rows, 1, query, key)
        cos, sin = d.cos[:width], d.sin[:width]
        x = d.embed(ids).view(n * width, -1)
        for i, layer in enumerate(d.layers):
            h = d.rms_norm(x, layer.attn_norm)
            q = _rotate(layer.q(h).view(n, width, d.heads, d.head_dim).transpose(1, 2), cos, sin)
            k = _rotate(layer.k(h).view(n, width, d.kv_heads, d.head_dim).transpose(1, 2), cos, sin)
            v = layer.v(h).view(n, width, d.kv_heads, d.head_dim).transpose(1, 2)
            self.keys[i][first : first + n, :, :width] = k
            self.values[i][first : first + n, :, :width] = v
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, enable_gqa=True)
            x = x + layer.o(attended.transpose(1, 2).reshape(n * width, -1))
            h = d.rms_norm(x, layer.mlp_norm)
            x = x + layer.down(F.silu(layer.gate(h)) * layer.up(h))
        last = x.view(n, width, -1)[torch.arange(n), torch.tensor(lengths) - 1]
        logits = d.head(d.rms_norm(last, d.norm))
        self.lengths += lengths
        return logits

    @torch.inference_mode()
    def forward(self, tokens: list[int]) -> torch.Tensor:
        d = self.d
        n = len(tokens)
        width = max(self.lengths) + 1
        self._ensure(n, width)
        at = torch.tensor(self.lengths, device=d.device)
        rows = self.arange[:n]
        # One cos/sin row per batch row, broadcast over the heads.
        cos, sin = d.cos[at][:, None], d.sin[at][:, None]
        mask = None if min(self.lengths) + 1 == width else (self.arange[:width] <= at[:, None])[:, None, None]
        x = d.embed(torch.tensor(tokens, device=d.device))
        for i, layer in enumerate(d.layers):
            h = d.rms_norm(x, layer.attn_norm)
            q = _rotate(layer.q(h).view(n, d.heads, d.head_dim), cos, sin)
            k = _rotate(layer.k(h).view(n, d.kv_heads, d.head_dim), cos, sin)
            keys, values = self.keys[i], self.values[i]
            keys[rows, :, at] = k
            values[rows, :, at] = layer.v(h).view(n, d.kv_heads, d.head_dim)
            attended = F.scaled_dot_product_attention(
                q[:, :, None], keys[:n, :, :width], values[:n, :, :width], attn_mask=mask, enable_gqa=True
            )
            x = x + layer.o(attended.view(n, -1))
            h = d.rms_norm(x, layer.mlp_norm)
            x = x + layer.down(F.silu(layer.gate(h)) * layer.up(h))
        self.lengths = [length + 1 for length in self.lengths]
        return d.head(d.rms_norm(x, d.norm))

    @torch.inference_mode()
    def keep(self, keep: list[int]) -> None:
        moved = [(new, old) for new, old in enumerate(keep) if new != old]
        if moved:
            width = max(self.lengths[old] for old in keep)
            new = torch.tensor([m[0] for m in moved], device=self.d.device)
            old = torch.tensor([m[1] for m in moved], device=self.d.device)
            for buffer in (*self.keys, *self.values):
                buffer[new, :, :width] = buffer[old, :, :width]
        self.lengths = [self.lengths[old] for old in keep]

    def clear(self) -> None:
        self.lengths = []  # the buffers stay for the next rows
