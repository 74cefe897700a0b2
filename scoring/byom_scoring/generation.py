"""Batched text generation: many prompts, each with its own parameters, decoded together.

Prompts are left-padded into one batch and decoded step by step with a KV
cache; each row samples with its own temperature, top_p and seed, and stops on
its own (end-of-sequence token, stop sequence or max_new_tokens). Finished
rows leave the batch (and the cache) so that the rest run on at their own cost.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .common import LoadedModel


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


class BatchGenerator:
    def __init__(self, lm: LoadedModel):
        self.lm = lm
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

    @torch.inference_mode()
    def generate(
        self,
        requests: list[GenerationRequest],
        deliver: Callable[[int, GenerationResult], None] | None = None,
    ) -> list[GenerationResult]:
        """Generate for every request; ``deliver(i, result)`` is called as soon as request i is done."""
        device = self.lm.device
        n = len(requests)
        lengths = [len(r.prompt_ids) for r in requests]
        width = max(lengths)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, r in enumerate(requests):
            input_ids[i, width - lengths[i] :] = torch.tensor(r.prompt_ids)
            mask[i, width - lengths[i] :] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generators = [self._generator(r) for r in requests]

        out = self.lm.model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
        cache = out.past_key_values
        logits = out.logits[:, -1, :]
        next_positions = torch.tensor(lengths, device=device)
        active = list(range(n))  # which request each row of the batch belongs to
        generated: list[list[int]] = [[] for _ in requests]
        results: list[GenerationResult | None] = [None] * n

        while True:
            chosen = self._choose(logits.float(), [requests[i] for i in active], [generators[i] for i in active])
            keep = []
            for row, i in enumerate(active):
                token = chosen[row]
                r = requests[i]
                if token in self.eos_ids:
                    results[i] = self._result(r, generated[i], "stop")
                else:
                    generated[i].append(token)
                    text_if_stopped = self._stopped_text(r, generated[i])
                    if text_if_stopped is not None:
                        results[i] = GenerationResult(text_if_stopped, "stop", len(r.prompt_ids), len(generated[i]))
                    elif len(generated[i]) >= r.max_new_tokens:
                        results[i] = self._result(r, generated[i], "length")
                if results[i] is None:
                    keep.append(row)
                elif deliver is not None:
                    deliver(i, results[i])
            if not keep:
                return results  # type: ignore[return-value]
            if len(keep) < len(active):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, next_positions = mask[index], next_positions[index]
                active = [active[row] for row in keep]
            step_ids = torch.tensor([[generated[i][-1]] for i in active], device=device)
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            out = self.lm.model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=next_positions[:, None],
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            logits = out.logits[:, -1, :]
            next_positions = next_positions + 1

    # --- per-row choices --------------------------------------------------------------------------

    def _generator(self, r: GenerationRequest) -> torch.Generator | None:
        if not r.do_sample or r.temperature == 0:
            return None
        seed = r.seed if r.seed is not None else random.getrandbits(63)
        return torch.Generator(device=self.lm.device).manual_seed(seed)

    @staticmethod
    def _choose(
        logits: torch.Tensor, requests: list[GenerationRequest], generators: list[torch.Generator | None]
    ) -> list[int]:
        chosen = logits.argmax(dim=-1).tolist()
        for row, (r, generator) in enumerate(zip(requests, generators, strict=True)):
            if generator is None:
                continue
            probs = torch.softmax(logits[row] / r.temperature, dim=-1)
            if r.top_p < 1.0:
                sorted_probs, order = probs.sort(descending=True)
                # Keep the smallest set of tokens whose probability reaches top_p
                # (the first token always stays).
                drop = sorted_probs.cumsum(-1) - sorted_probs >= r.top_p
                sorted_probs[drop] = 0
                probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
            chosen[row] = int(torch.multinomial(probs, 1, generator=generator))
        return chosen

    def _stopped_text(self, r: GenerationRequest, ids: list[int]) -> str | None:
        """The text up to the first stop sequence, when one has appeared; otherwise None."""
        if not r.stop:
            return None
        text = self.lm.tokenizer.decode(ids, skip_special_tokens=True)
        cuts = [text.find(s) for s in r.stop if s in text]
        return text[: min(cuts)] if cuts else None

    def _result(self, r: GenerationRequest, ids: list[int], reason: str) -> GenerationResult:
        text = self.lm.tokenizer.decode(ids, skip_special_tokens=True)
        return GenerationResult(text, reason, len(r.prompt_ids), len(ids))
