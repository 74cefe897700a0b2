"""Batched generation, requests joining a running batch, and the continuous batcher."""

import threading
import time

import pytest
import torch
from byom_scoring.batching import ContinuousBatcher
from byom_scoring.generation import BatchGenerator, GenerationRequest

PROMPTS = ["Hello there", "A much longer prompt that has quite a few more tokens in it", "Why?"]


@pytest.fixture(params=["float32", "bfloat16", "float16", "int8"])
def gen_lm(request, tiny_lm_in):
    """The tiny model as generation serves it, in each precision BYOM_GENERATION_DTYPE offers."""
    return tiny_lm_in(request.param)


@pytest.fixture(params=["float32", "bfloat16", "float16"])
def row_independent_lm(request, tiny_lm_in):
    """The precisions whose rows do not depend on their batch mates (int8 quantizes a step's rows together)."""
    return tiny_lm_in(request.param)


def ids(lm, text):
    return lm.tokenizer(text)["input_ids"]


def hf_greedy(lm, prompt_ids, max_new_tokens):
    with torch.no_grad():
        out = lm.model.generate(
            torch.tensor([prompt_ids]), max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0
        )
    return lm.tokenizer.decode(out[0, len(prompt_ids) :], skip_special_tokens=True)


def test_a_batch_of_different_prompts_gives_what_each_gives_alone(row_independent_lm):
    generator = BatchGenerator(row_independent_lm)
    requests = [
        GenerationRequest(ids(row_independent_lm, p), max_new_tokens=n)
        for p, n in zip(PROMPTS, (12, 5, 9), strict=True)
    ]
    batched = generator.generate(requests)
    for request, result in zip(requests, batched, strict=True):
        alone = generator.generate([request])[0]
        assert result == alone
        assert result.text == hf_greedy(row_independent_lm, request.prompt_ids, request.max_new_tokens)
        assert (result.finish_reason, result.completion_tokens) == ("length", request.max_new_tokens)
        assert result.prompt_tokens == len(request.prompt_ids)


def test_end_of_sequence_stops_a_row_and_the_others_go_on(row_independent_lm):
    generator = BatchGenerator(row_independent_lm)
    requests = [GenerationRequest(ids(row_independent_lm, p), max_new_tokens=8) for p in PROMPTS[:2]]
    free = generator.generate(requests)
    # Declare the 4th token the first row writes an end-of-sequence token.
    fourth = row_independent_lm.tokenizer(free[0].text, add_special_tokens=False)["input_ids"][3]
    generator.eos_ids = {fourth}
    stopped = generator.generate(requests)
    assert stopped[0].finish_reason == "stop"
    assert stopped[0].completion_tokens == 3
    assert free[0].text.startswith(stopped[0].text)
    if fourth not in row_independent_lm.tokenizer(free[1].text, add_special_tokens=False)["input_ids"]:
        assert stopped[1] == free[1]


def test_stop_sequences_cut_the_text(gen_lm):
    generator = BatchGenerator(gen_lm)
    prompt = ids(gen_lm, PROMPTS[0])
    free = generator.generate([GenerationRequest(prompt, max_new_tokens=10)])[0]
    stop = free.text[len(free.text) // 2 :][:3]
    assert stop.strip()
    result = generator.generate([GenerationRequest(prompt, max_new_tokens=10, stop=[stop])])[0]
    assert result.finish_reason == "stop"
    assert result.text == free.text[: free.text.index(stop)]


def test_sampling_is_reproducible_with_a_seed(gen_lm):
    generator = BatchGenerator(gen_lm)
    prompt = ids(gen_lm, PROMPTS[0])

    def sample(seed, **params):
        request = GenerationRequest(prompt, max_new_tokens=12, do_sample=True, seed=seed, **params)
        return generator.generate([request])[0].text

    assert sample(7) == sample(7)
    assert len({sample(seed, temperature=1.5) for seed in range(4)}) > 1
    greedy = generator.generate([GenerationRequest(prompt, max_new_tokens=12)])[0].text
    # A tiny top_p keeps only the most likely token; temperature 0 means greedy.
    assert sample(3, top_p=1e-6) == greedy
    assert sample(3, temperature=0.0) == greedy


def test_rows_sample_with_their_own_parameters_in_one_batch(row_independent_lm):
    generator = BatchGenerator(row_independent_lm)
    prompt = ids(row_independent_lm, PROMPTS[0])
    greedy = GenerationRequest(prompt, max_new_tokens=10)
    sampled = GenerationRequest(prompt, max_new_tokens=10, do_sample=True, temperature=1.5, seed=11)
    together = generator.generate([greedy, sampled])
    assert together[0] == generator.generate([greedy])[0]
    assert together[1] == generator.generate([sampled])[0]


def test_each_request_is_delivered_when_it_is_done(gen_lm):
    generator = BatchGenerator(gen_lm)
    prompt = ids(gen_lm, PROMPTS[0])
    delivered = []
    results = generator.generate(
        [GenerationRequest(prompt, max_new_tokens=20), GenerationRequest(prompt, max_new_tokens=2)],
        deliver=lambda i, result: delivered.append((i, result)),
    )
    assert delivered == [(1, results[1]), (0, results[0])]


def run_to_end(batch):
    results = {}
    while batch:
        results.update(batch.step())
    return results


def test_requests_joining_a_running_batch_give_what_they_give_alone(row_independent_lm):
    generator = BatchGenerator(row_independent_lm)
    first = GenerationRequest(ids(row_independent_lm, PROMPTS[0]), max_new_tokens=16)
    # Joins later with a longer prompt than the batch is wide (the running row gets padded)...
    longer = GenerationRequest(ids(row_independent_lm, PROMPTS[1] + " " + PROMPTS[1]), max_new_tokens=4)
    # ...and a shorter one, sampled, joining while the longer one runs and leaving after it.
    sampled = GenerationRequest(
        ids(row_independent_lm, PROMPTS[2]), max_new_tokens=10, do_sample=True, seed=5, temperature=1.3
    )
    batch = generator.batch()
    batch.admit([("first", first)])
    results = {}
    for _ in range(3):
        results.update(batch.step())
    batch.admit([("longer", longer)])
    results.update(batch.step())
    batch.admit([("sampled", sampled)])
    results.update(run_to_end(batch))
    for key, request in {"first": first, "longer": longer, "sampled": sampled}.items():
        assert results[key] == generator.generate([request])[0], key
    assert results["first"].text == hf_greedy(row_independent_lm, first.prompt_ids, 16)
    assert results["longer"].text == hf_greedy(row_independent_lm, longer.prompt_ids, 4)


@pytest.mark.parametrize("decoder", ["lean", "transformers"])
def test_the_batch_narrows_when_its_widest_rows_leave(row_independent_lm, decoder):
    generator = BatchGenerator(row_independent_lm, decoder=decoder)
    long_prompt = GenerationRequest(ids(row_independent_lm, "word " * 100), max_new_tokens=2)
    short_prompt = GenerationRequest(ids(row_independent_lm, PROMPTS[0]), max_new_tokens=12)
    batch = generator.batch()
    batch.admit([("short", short_prompt), ("long", long_prompt)])
    results = {}
    while "long" not in results:
        results.update(batch.step())
    # What is left is as wide as the short row's prompt and tokens, not the long prompt.
    if decoder == "transformers":
        assert batch.kv.mask.shape[1] <= len(short_prompt.prompt_ids) + 12
        assert all(layer.keys.shape[2] == batch.kv.mask.shape[1] for layer in batch.kv.cache.layers)
    else:  # each step attends over the longest row left
        assert batch.kv.lengths == [len(short_prompt.prompt_ids) + len(batch.rows[0].generated)]
    results.update(run_to_end(batch))
    assert results["short"] == generator.generate([short_prompt])[0]


def test_int8_rows_are_quantized_together_and_still_deterministic(tiny_lm_in):
    lm = tiny_lm_in("int8")
    generator = BatchGenerator(lm)
    requests = [GenerationRequest(ids(lm, p), max_new_tokens=8) for p in PROMPTS]
    assert generator.generate(requests) == generator.generate(requests)
    alone = generator.generate([requests[0]])[0]
    assert alone.text == hf_greedy(lm, requests[0].prompt_ids, 8)


class Countdown:
    """A fake engine: item (name, steps) is done after that many steps, with result name."""

    def __init__(self, step_s=0.01, mergeable=True):
        self.rows = {}
        self.step_s = step_s
        self.mergeable = mergeable
        self.widest = 0
        self.admitted = threading.Event()
        self.finished = []  # names, in the order the engine finished them

    def __len__(self):
        return len(self.rows)

    def accepts(self):
        return self.mergeable or not self.rows

    def admit(self, entries):
        if any(name == "bad" for _, (name, _) in entries):
            raise ValueError("bad item")
        self.rows.update((key, list(item)) for key, item in entries)
        self.widest = max(self.widest, len(self.rows))
        self.admitted.set()

    def step(self):
        time.sleep(self.step_s)
        if any(name == "boom" for name, _ in self.rows.values()):
            raise ValueError("boom")
        done = []
        for key, row in list(self.rows.items()):
            row[1] -= 1
            if row[1] <= 0:
                done.append((key, row[0]))
                self.finished.append(row[0])
                del self.rows[key]
        return done

    def clear(self):
        self.rows.clear()


def submit_in_threads(batcher, items, results):
    def call(item):
        results[item[0]] = batcher.submit(item)

    threads = [threading.Thread(target=call, args=(item,)) for item in items]
    for t in threads:
        t.start()
    return threads


class TestContinuousBatcher:
    def test_requests_join_a_running_batch_and_are_answered_when_done(self):
        engine = Countdown()
        batcher = ContinuousBatcher(engine, max_batch=8, wait_ms=1)
        results = {}
        threads = submit_in_threads(batcher, [("long", 100)], results)
        assert engine.admitted.wait(5)
        threads += submit_in_threads(batcher, [(f"short{i}", 3) for i in range(5)], results)
        for t in threads:
            t.join(10)
        assert results == {"long": "long", **{f"short{i}": f"short{i}" for i in range(5)}}
        assert batcher.admissions[0] == (0, 1)
        assert all(running >= 1 for running, _ in batcher.admissions[1:])  # they joined the long one
        assert engine.finished[-1] == "long"

    def test_the_batch_never_exceeds_max_batch(self):
        engine = Countdown()
        batcher = ContinuousBatcher(engine, max_batch=3, wait_ms=1)
        results = {}
        for t in submit_in_threads(batcher, [(f"item{i}", 1 + i % 4) for i in range(10)], results):
            t.join(10)
        assert len(results) == 10
        assert engine.widest == 3

    def test_an_engine_that_cannot_merge_takes_requests_only_when_empty(self):
        engine = Countdown(mergeable=False)
        batcher = ContinuousBatcher(engine, max_batch=8, wait_ms=1)
        results = {}
        threads = submit_in_threads(batcher, [("first", 20)], results)
        assert engine.admitted.wait(5)
        threads += submit_in_threads(batcher, [("second", 1)], results)
        for t in threads:
            t.join(10)
        assert results == {"first": "first", "second": "second"}
        assert [running for running, _ in batcher.admissions] == [0, 0]
        assert engine.finished == ["first", "second"]

    def test_an_error_in_a_step_reaches_every_running_caller_and_the_batcher_lives_on(self):
        batcher = ContinuousBatcher(Countdown(), max_batch=4, wait_ms=1)
        with pytest.raises(ValueError, match="boom"):
            batcher.submit(("boom", 2))
        assert batcher.submit(("fine", 2)) == "fine"

    def test_a_request_that_cannot_join_fails_alone(self):
        engine = Countdown()
        batcher = ContinuousBatcher(engine, max_batch=4, wait_ms=1)
        results = {}
        threads = submit_in_threads(batcher, [("long", 30)], results)
        assert engine.admitted.wait(5)
        with pytest.raises(ValueError, match="bad item"):
            batcher.submit(("bad", 1))
        for t in threads:
            t.join(10)
        assert results == {"long": "long"}
