"""Batched text generation: many prompts, each with its own parameters, decoded together.

A ``RunningBatch`` decodes one token for every row per ``step()``. Requests
join it between steps (``admit``): their prompts are prefilled as a batch of
their own and their KV cache is merged into the running one, left-padded to a
common width. Each row samples with its own temperature, top_p and seed, and
leaves the batch (and the cache) as soon as it stops (end-of-sequence token,
stop sequence or max_new_tokens), so a request's result never waits for the
others and the rest run on at their own cost.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache, DynamicLayer

from .common import LoadedModel
from .llama_decoder import lean_decoder


@dataclass
class GenerationRequest:
    prompt_ids: list[int]
    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class GenerationResult:
    text: str
    finish_reason: str  # "stop" (end-of-sequence token or stop sequence) or "length"
    prompt_tokens: int
    completion_tokens: int


@dataclass
class _Row:
    key: Hashable
    request: GenerationRequest
    generator: torch.Generator | None
    generated: list[int] = field(default_factory=list)


class BatchGenerator:
    def __init__(self, lm: LoadedModel, *, decoder: str | None = None):
        """``decoder``: "lean" or "transformers" (default: BYOM_GENERATION_DECODER, see llama_decoder.py)."""
        self.lm = lm
        self.decoder = lean_decoder(lm, decoder)
        tokenizer = lm.tokenizer
        eos: set[int] = set()
        for source in (
            tokenizer.eos_token_id,
            lm.model.config.eos_token_id,
            getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None),
        ):
            if isinstance(source, int):
                eos.add(source)
            elif source:
                eos.update(source)
        self.eos_ids = eos
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos or {0})

    def batch(self) -> RunningBatch:
        """An empty batch that requests can join while it runs."""
        return RunningBatch(self)

    def rows(self) -> Rows:
        """A running batch's keys and values: the lean decoder's where it takes the model, transformers' otherwise."""
        if self.decoder is not None:
            return self.decoder.rows()
        return TransformersRows(self.lm, self.pad_id)

    def generate(
        self,
        requests: list[GenerationRequest],
        deliver: Callable[[int, GenerationResult], None] | None = None,
    ) -> list[GenerationResult]:
        """Generate for every request; ``deliver(i, result)`` is called as soon as request i is done."""
        results: list[GenerationResult | None] = [None] * len(requests)
        batch = self.batch()
        batch.admit(list(enumerate(requests)))
        while batch:
            for key, result in batch.step():
                assert isinstance(key, int)  # generate() admits its requests under their index
                results[key] = result
                if deliver is not None:
                    deliver(key, result)
        done = [r for r in results if r is not None]
        assert len(done) == len(requests), "a generation batch ended with requests left in it"
        return done

    # --- per-row choices --------------------------------------------------------------------------

    def _generator(self, r: GenerationRequest) -> torch.Generator | None:
        if not r.do_sample or r.temperature == 0:
            return None
        seed = r.seed if r.seed is not None else random.getrandbits(63)
        return torch.Generator(device=self.lm.device).manual_seed(seed)

    @staticmethod
    def _choose(logits: torch.Tensor, rows: list[_Row]) -> list[int]:
        chosen = logits.argmax(dim=-1).tolist()
        for i, row in enumerate(rows):
            if row.generator is None:
                continue
            r = row.request
            probs = torch.softmax(logits[i] / r.temperature, dim=-1)
            if r.top_p < 1.0:
                sorted_probs, order = probs.sort(descending=True)
                # Keep the smallest set of tokens whose probability reaches top_p
                # (the first token always stays).
                drop = sorted_probs.cumsum(-1) - sorted_probs >= r.top_p
                sorted_probs[drop] = 0
                probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
            chosen[i] = int(torch.multinomial(probs, 1, generator=row.generator))
        return chosen

    def _finish(self, row: _Row, token: int) -> GenerationResult | None:
        """Take ``token`` into the row; the row's result when it is done, otherwise None."""
        r = row.request
        if token in self.eos_ids:
            return self._result(r, row.generated, "stop")
        row.generated.append(token)
        if r.stop:
            text = self.lm.tokenizer.decode(row.generated, skip_special_tokens=True)
            cuts = [text.find(s) for s in r.stop if s in text]
            if cuts:
                return GenerationResult(text[: min(cuts)], "stop", len(r.prompt_ids), len(row.generated))
        if len(row.generated) >= r.max_new_tokens:
            return self._result(r, row.generated, "length")
        return None

    def _result(self, r: GenerationRequest, ids: list[int], reason: str) -> GenerationResult:
        text = self.lm.tokenizer.decode(ids, skip_special_tokens=True)
        return GenerationResult(text, reason, len(r.prompt_ids), len(ids))


class Rows(Protocol):
    """The model's side of a running batch: each row's keys and values, and the forward passes over them."""

    def __len__(self) -> int: ...

    def mergeable(self) -> bool: ...  # whether rows may join rows already running

    def prefill(self, prompts: list[list[int]]) -> torch.Tensor: ...  # appends rows; their next-token logits

    def forward(self, tokens: list[int]) -> torch.Tensor: ...  # one position for every row; their logits

    def keep(self, index: list[int]) -> None: ...  # only these rows, in this order

    def clear(self) -> None: ...


def _growing_layers(cache: DynamicCache) -> list[DynamicLayer]:
    """The layers of a cache ``TransformersRows.mergeable`` found plain and growing."""
    return [layer for layer in cache.layers if isinstance(layer, DynamicLayer)]


def _filled(tensor: torch.Tensor | None) -> torch.Tensor:
    assert tensor is not None, "a layer of a running batch holds its keys and values"
    return tensor


class TransformersRows:
    """Rows decoded by the transformers model itself, in a DynamicCache: any architecture.

    Prompts are left-padded: ``mask`` marks the real positions of each row in
    the cache, and ``positions`` holds each row's next position id, so padding
    shifts nothing. A prefill's cache is merged into the running one, padded
    to a common width.
    """

    def __init__(self, lm: LoadedModel, pad_id: int):
        self.lm, self.pad_id, self.device = lm, pad_id, lm.device
        self.cache: DynamicCache | None = None  # set whenever rows are
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=self.device)
        self.positions = torch.zeros((0,), dtype=torch.long, device=self.device)

    def __len__(self) -> int:
        return len(self.positions)

    def mergeable(self) -> bool:
        # Only plain growing layers (Llama-like models) are merged and trimmed here; a
        # sliding-window or recurrent layer keeps state that left-padding would corrupt.
        return self.cache is None or all(type(layer) is DynamicLayer for layer in self.cache.layers)

    def prefill(self, prompts: list[list[int]]) -> torch.Tensor:
        lengths = [len(p) for p in prompts]
        width = max(lengths)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - lengths[i] :] = torch.tensor(prompt)
            mask[i, width - lengths[i] :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        cache = DynamicCache(config=self.lm.model.config)
        out = self.lm.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        positions = torch.tensor(lengths, device=self.device)
        if self.cache is None:
            self.cache, self.mask, self.positions = cache, mask, positions
        else:
            self._merge(cache, mask, positions)
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    def _merge(self, cache: DynamicCache, mask: torch.Tensor, positions: torch.Tensor) -> None:
        assert self.cache is not None, "rows without a cache"
        width = max(self.mask.shape[1], mask.shape[1])

        def pad(tensor: torch.Tensor, dim: int) -> torch.Tensor:
            missing = width - tensor.shape[dim]
            if missing == 0:
                return tensor
            # F.pad lists (before, after) pairs from the last dimension backwards.
            return F.pad(tensor, (0, 0) * (tensor.dim() - 1 - dim) + (missing, 0))

        for mine, theirs in zip(_growing_layers(self.cache), _growing_layers(cache), strict=True):
            mine.keys = torch.cat([pad(_filled(mine.keys), 2), pad(_filled(theirs.keys), 2)])
            mine.values = torch.cat([pad(_filled(mine.values), 2), pad(_filled(theirs.values), 2)])
        self.mask = torch.cat([pad(self.mask, 1), pad(mask, 1)])
        self.positions = torch.cat([self.positions, positions])

    def forward(self, tokens: list[int]) -> torch.Tensor:
        step_ids = torch.tensor(tokens, device=self.device)[:, None]
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(tokens), 1))], dim=1)
        out = self.lm.model(
            input_ids=step_ids,
            attention_mask=self.mask,
            position_ids=self.positions[:, None],
            cache=self.cache,
            use_cache=True,
        )
        self.positions = self.positions + 1
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    def keep(self, keep: list[int]) -> None:
        if not keep:
            self.clear()
            return
        index = torch.tensor(keep, device=self.device)
        self.positions, self.mask = self.positions[index], self.mask[index]
        assert self.cache is not None, "rows without a cache"
        if not self.mergeable():
            self.cache.batch_select_indices(index)
            return
        # Columns that only the departed rows used (padding for every row left) go too.
        start = int(self.mask.any(dim=0).int().argmax())
        self.mask = self.mask[:, start:]
        for layer in _growing_layers(self.cache):
            layer.keys = _filled(layer.keys)[index, :, start:]
            layer.values = _filled(layer.values)[index, :, start:]

    def clear(self) -> None:
        self.cache = None
        self.mask = self.mask.new_zeros((0, 0))
        self.positions = self.positions.new_zeros((0,))


class RunningBatch:
    """Rows being decoded together, one token per ``step()``; new rows may join between steps.

    Row i of every tensor belongs to ``rows[i]``; ``kv`` holds their keys and
    values and runs the model (``Rows``). ``logits`` are each row's scores for
    its next token.
    """

    def __init__(self, generator: BatchGenerator):
        self.g = generator
        self.device = generator.lm.device
        self.rows: list[_Row] = []
        self.kv: Rows = generator.rows()
        self.logits = torch.zeros((0, 0), device=self.device)

    def __len__(self) -> int:
        return len(self.rows)

    @torch.inference_mode()
    def admit(self, entries: list[tuple[Hashable, GenerationRequest]]) -> None:
        """Prefill these requests and add them to the batch; ``step()`` returns their results under their keys.

        Raises before changing the batch when the prefill fails, so the rows already running are unharmed.
        """
        if not entries:
            return
        if not self.accepts():
            raise RuntimeError("This model's cache cannot be merged: requests can only start in an empty batch.")
        logits = self.kv.prefill([r.prompt_ids for _, r in entries])
        rows = [_Row(key, r, self.g._generator(r)) for key, r in entries]
        self.logits = torch.cat([self.logits, logits]) if self.rows else logits
        self.rows.extend(rows)

    def accepts(self) -> bool:
        """Whether requests can join now: the batch is empty, or its cache can be merged with theirs."""
        return not self.rows or self.kv.mergeable()

    @torch.inference_mode()
    def step(self) -> list[tuple[Hashable, GenerationResult]]:
        """Choose every row's next token, retire the rows that are done, run the others one position on.

        Returns the finished rows' (key, result).
        """
        if not self.rows:
            return []
        chosen = self.g._choose(self.logits.float(), self.rows)
        done, keep = [], []
        for i, (row, token) in enumerate(zip(self.rows, chosen, strict=True)):
            result = self.g._finish(row, token)
            if result is None:
                keep.append(i)
            else:
                done.append((row.key, result))
        if len(keep) < len(self.rows):
            self._keep(keep)
        if self.rows:
            self.logits = self.kv.forward([row.generated[-1] for row in self.rows])
        return done

    def _keep(self, keep: list[int]) -> None:
        self.rows = [self.rows[i] for i in keep]
        if not self.rows:
            self.clear()
            return
        self.logits = self.logits[torch.tensor(keep, device=self.device)]
        self.kv.keep(keep)

    def clear(self) -> None:
        """Drop every row (after an error, the batch's state is not to be trusted)."""
        self.rows = []
        self.kv.clear()
        self.logits = self.logits.new_zeros((0, 0))
