"""The lean decoder (byom_scoring/llama_decoder.py) against transformers' own modules, on the tiny random Llama."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pytest
import torch
from byom_scoring import llama_decoder
from byom_scoring.generation import BatchGenerator, GenerationRequest, TransformersRows
from byom_scoring.llama_decoder import SlotRows
from transformers import LlamaConfig, MistralConfig, MistralForCausalLM

PROMPTS = [
    "Hello there",
    "A much longer prompt that has quite a few more tokens in it, and then some more words",
    "Why?",
    "Three words here",
    "word " * 60,  # its answer grows its slot past the first 128 positions
]


def requests(lm: Any) -> list[GenerationRequest]:
    ids = [lm.tokenizer(p)["input_ids"] for p in PROMPTS]
    return [
        GenerationRequest(ids[0], max_new_tokens=20),
        GenerationRequest(ids[1], max_new_tokens=6),
        GenerationRequest(ids[2], max_new_tokens=15, do_sample=True, seed=3, temperature=1.2, top_p=0.9),
        GenerationRequest(ids[3], max_new_tokens=9),
        GenerationRequest(ids[4], max_new_tokens=80),
    ]


def run_schedule(generator: BatchGenerator, reqs: list[GenerationRequest]) -> tuple[dict[Hashable, list[int]],
                                                                                    list[torch.Tensor]]:
    """Rows joining a running batch at different steps; each row's tokens, and every step's logits."""
    batch = generator.batch()
    joins = {0: [0], 2: [1, 2], 5: [3], 7: [4]}  # step -> the requests that join before it
    tokens: dict[Hashable, list[int]] = {}
    logits = []
    for step in range(200):
        if step in joins:
            batch.admit([(i, reqs[i]) for i in joins[step]])
        if not batch and step > max(joins):
            break
        rows = list(batch.rows)
        logits.append(batch.logits.float().clone())
        batch.step()
        for row in rows:
            tokens[row.key] = list(row.generated)
    assert not batch, "the schedule ran past its step limit"
    return tokens, logits


# How far the logits may differ, relative to their largest. float32 activations (float32, and the packed float16
# weights) agree to rounding. Elsewhere the two decoders pad prompts differently (right, left) and attend over
# different widths: bfloat16 rounds the different sums differently (a few of its ulps), and int8 quantizes each
# product's input with one scale for the whole batch, padding included.
TOLERANCE = {"float32": 1e-4, "float16": 1e-4, "bfloat16": 3e-2, "int8": 3e-2}


@pytest.mark.parametrize("dtype", list(TOLERANCE))
def test_the_lean_decoder_chooses_the_tokens_transformers_chooses(tiny_lm_in: Any, one_torch_thread: None,
                                                                  dtype: str) -> None:
    lm = tiny_lm_in(dtype)
    lean, reference = BatchGenerator(lm, decoder="lean"), BatchGenerator(lm, decoder="transformers")
    assert isinstance(lean.batch().kv, SlotRows) and isinstance(reference.batch().kv, TransformersRows)
    reqs = requests(lm)
    lean_tokens, lean_logits = run_schedule(lean, reqs)
    ref_tokens, ref_logits = run_schedule(reference, reqs)
    assert lean_tokens == ref_tokens
    assert [len(t) for t in lean_tokens.values()] == [r.max_new_tokens for r in reqs]  # none stopped early
    assert len(reqs[4].prompt_ids) + reqs[4].max_new_tokens > llama_decoder.GROW
    for mine, theirs in zip(lean_logits, ref_logits, strict=True):
        assert mine.shape == theirs.shape
        assert (mine - theirs).abs().max() <= TOLERANCE[dtype] * theirs.abs().max()


def test_rows_that_leave_free_their_slots_for_the_next(tiny_lm_in: Any, one_torch_thread: None) -> None:
    lm = tiny_lm_in("float32")
    generator = BatchGenerator(lm, decoder="lean")
    reqs = requests(lm)
    batch = generator.batch()
    batch.admit([(i, r) for i, r in enumerate(reqs[:4])])
    while len(batch) == 4:
        batch.step()
    slots, capacity = batch.kv.slots, batch.kv.capacity
    done: dict[Hashable, Any] = {}
    while batch:
        done.update(batch.step())
    batch.admit([("again", reqs[0])])  # the batch emptied; its buffers stay
    while batch:
        done.update(batch.step())
    assert (batch.kv.slots, batch.kv.capacity) == (slots, capacity)
    assert done["again"] == done[0] == generator.generate([reqs[0]])[0]


def test_requests_arriving_one_by_one_grow_the_buffers_a_few_times_not_at_each_arrival(
        tiny_lm_in: Any, one_torch_thread: None) -> None:
    lm = tiny_lm_in("float32")
    batch = BatchGenerator(lm, decoder="lean").batch()
    assert isinstance(batch.kv, SlotRows)
    prompt = lm.tokenizer(PROMPTS[0])["input_ids"]
    allocations = []
    for i in range(16):  # one arrival per step, as streaming clients come
        batch.admit([(i, GenerationRequest(prompt, max_new_tokens=40))])
        allocations.append(batch.kv.slots)
        batch.step()
    assert len(set(allocations)) <= 5, f"the slots were reallocated at {allocations}"
    assert allocations[-1] >= 16

    sequential = BatchGenerator(lm, decoder="lean").generate([GenerationRequest(prompt, max_new_tokens=40)])[0]
    done: dict[Hashable, Any] = {}
    while batch:
        done.update(batch.step())
    assert done[15] == sequential, "a row in a grown buffer answers as it would alone"


def test_only_llama_shaped_models_take_the_lean_decoder(tiny_lm_in: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lm = tiny_lm_in("float32")
    assert llama_decoder.takes(lm.model)
    monkeypatch.setenv("BYOM_GENERATION_DECODER", "transformers")
    assert isinstance(BatchGenerator(lm).batch().kv, TransformersRows)
    monkeypatch.setenv("BYOM_GENERATION_DECODER", "fast")
    with pytest.raises(RuntimeError, match="BYOM_GENERATION_DECODER must be one of"):
        BatchGenerator(lm)
    small = {"vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
             "num_attention_heads": 2, "num_key_value_heads": 1}
    assert not llama_decoder.takes(MistralForCausalLM(MistralConfig(**small)))  # sliding window: transformers
    scaled = LlamaConfig(**small, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})
    assert not llama_decoder.takes(type(lm.model)(scaled))
