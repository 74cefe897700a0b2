"""Batched generation and the dynamic batcher, on the tiny random Llama."""

import threading
import time

import pytest
import torch
from byom_scoring.batching import DynamicBatcher
from byom_scoring.generation import BatchGenerator, GenerationRequest

PROMPTS = ["Hello there", "A much longer prompt that has quite a few more tokens in it", "Why?"]


def ids(lm, text):
    return lm.tokenizer(text)["input_ids"]


def hf_greedy(lm, prompt_ids, max_new_tokens):
    with torch.no_grad():
        out = lm.model.generate(
            torch.tensor([prompt_ids]), max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0
        )
    return lm.tokenizer.decode(out[0, len(prompt_ids) :], skip_special_tokens=True)


def test_a_batch_of_different_prompts_gives_what_each_gives_alone(tiny_lm):
    generator = BatchGenerator(tiny_lm)
    requests = [GenerationRequest(ids(tiny_lm, p), max_new_tokens=n) for p, n in zip(PROMPTS, (12, 5, 9), strict=True)]
    batched = generator.generate(requests)
    for request, result in zip(requests, batched, strict=True):
        alone = generator.generate([request])[0]
        assert result == alone
        assert result.text == hf_greedy(tiny_lm, request.prompt_ids, request.max_new_tokens)
        assert (result.finish_reason, result.completion_tokens) == ("length", request.max_new_tokens)
        assert result.prompt_tokens == len(request.prompt_ids)


def test_end_of_sequence_stops_a_row_and_the_others_go_on(tiny_lm):
    generator = BatchGenerator(tiny_lm)
    requests = [GenerationRequest(ids(tiny_lm, p), max_new_tokens=8) for p in PROMPTS[:2]]
    free = generator.generate(requests)
    # Declare the 4th token the first row writes an end-of-sequence token.
    fourth = tiny_lm.tokenizer(free[0].text, add_special_tokens=False)["input_ids"][3]
    generator.eos_ids = {fourth}
    stopped = generator.generate(requests)
    assert stopped[0].finish_reason == "stop"
    assert stopped[0].completion_tokens == 3
    assert free[0].text.startswith(stopped[0].text)
    if fourth not in tiny_lm.tokenizer(free[1].text, add_special_tokens=False)["input_ids"]:
        assert stopped[1] == free[1]


def test_stop_sequences_cut_the_text(tiny_lm):
    generator = BatchGenerator(tiny_lm)
    prompt = ids(tiny_lm, PROMPTS[0])
    free = generator.generate([GenerationRequest(prompt, max_new_tokens=10)])[0]
    stop = free.text[len(free.text) // 2 :][:3]
    assert stop.strip()
    result = generator.generate([GenerationRequest(prompt, max_new_tokens=10, stop=[stop])])[0]
    assert result.finish_reason == "stop"
    assert result.text == free.text[: free.text.index(stop)]


def test_sampling_is_reproducible_with_a_seed(tiny_lm):
    generator = BatchGenerator(tiny_lm)
    prompt = ids(tiny_lm, PROMPTS[0])

    def sample(seed, **params):
        request = GenerationRequest(prompt, max_new_tokens=12, do_sample=True, seed=seed, **params)
        return generator.generate([request])[0].text

    assert sample(7) == sample(7)
    assert len({sample(seed, temperature=1.5) for seed in range(4)}) > 1
    greedy = generator.generate([GenerationRequest(prompt, max_new_tokens=12)])[0].text
    # A tiny top_p keeps only the most likely token; temperature 0 means greedy.
    assert sample(3, top_p=1e-6) == greedy
    assert sample(3, temperature=0.0) == greedy


def test_rows_sample_with_their_own_parameters_in_one_batch(tiny_lm):
    generator = BatchGenerator(tiny_lm)
    prompt = ids(tiny_lm, PROMPTS[0])
    greedy = GenerationRequest(prompt, max_new_tokens=10)
    sampled = GenerationRequest(prompt, max_new_tokens=10, do_sample=True, temperature=1.5, seed=11)
    together = generator.generate([greedy, sampled])
    assert together[0] == generator.generate([greedy])[0]
    assert together[1] == generator.generate([sampled])[0]


def test_each_request_is_delivered_when_it_is_done(tiny_lm):
    generator = BatchGenerator(tiny_lm)
    prompt = ids(tiny_lm, PROMPTS[0])
    delivered = []
    results = generator.generate(
        [GenerationRequest(prompt, max_new_tokens=20), GenerationRequest(prompt, max_new_tokens=2)],
        deliver=lambda i, result: delivered.append((i, result)),
    )
    assert delivered == [(1, results[1]), (0, results[0])]


def deliver_all(function):
    """A batch function that delivers function(item) for each item at the end."""

    def run_batch(items, deliver):
        for i, result in enumerate([function(item) for item in items]):
            deliver(i, result)

    return run_batch


class TestDynamicBatcher:
    def test_concurrent_calls_run_as_one_batch_and_each_gets_its_result(self):
        started = threading.Event()

        def slow_times_ten(item):
            started.set()
            time.sleep(0.2)  # later callers queue up meanwhile
            return item * 10

        batcher = DynamicBatcher(deliver_all(slow_times_ten), max_batch=8, wait_ms=1)
        results = {}

        def call(i):
            results[i] = batcher.submit(i)

        first = threading.Thread(target=call, args=(0,))
        first.start()
        started.wait(5)
        others = [threading.Thread(target=call, args=(i,)) for i in range(1, 6)]
        for t in others:
            t.start()
        for t in [first, *others]:
            t.join(10)
        assert results == {i: i * 10 for i in range(6)}
        assert batcher.batch_sizes == [1, 5]

    def test_batches_are_capped(self):
        gate = threading.Event()

        def wait_for_gate(item):
            gate.wait(5)
            return item

        batcher = DynamicBatcher(deliver_all(wait_for_gate), max_batch=3, wait_ms=50)
        threads = [threading.Thread(target=batcher.submit, args=(i,)) for i in range(7)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        gate.set()
        for t in threads:
            t.join(10)
        assert sum(batcher.batch_sizes) == 7
        assert max(batcher.batch_sizes) == 3

    def test_an_error_reaches_every_caller_of_the_batch_and_the_batcher_lives_on(self):
        def fail_on_boom(item):
            if item == "boom":
                raise ValueError("boom")
            return item

        batcher = DynamicBatcher(deliver_all(fail_on_boom), max_batch=4, wait_ms=1)
        with pytest.raises(ValueError, match="boom"):
            batcher.submit("boom")
        assert batcher.submit("fine") == "fine"

    def test_an_item_the_batch_function_forgot_gets_an_error(self):
        batcher = DynamicBatcher(lambda items, deliver: None, max_batch=4, wait_ms=1)
        with pytest.raises(RuntimeError, match="without a result"):
            batcher.submit("lost")
