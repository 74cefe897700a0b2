"""The quality guard: what each generation precision costs against float32, on fixed prompts and a fixed text.

    .venv/bin/python -m bench.generation_quality [--model DIR] [--dtype float32 bfloat16 int8] [--new-tokens 48]

Top-1 agreement: float32 writes its greedy answer to each prompt; each
precision then reads the same answer back, one token per forward pass as in
decoding, and the agreement is the share of positions where its first choice
is float32's token. Reading float32's tokens back (rather than letting each
precision write its own) keeps one early difference from counting every
token after it. Perplexity: of a fixed English text, in one forward pass.

A precision below 97 % agreement is not to be the default (issue 21).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from bench.generation import QUESTIONS
from bench.servers import SCORING_DIR

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if str(SCORING_DIR) not in sys.path:
    sys.path.insert(0, str(SCORING_DIR))

MIN_AGREEMENT = 0.97
TEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after "
    "the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889. Locally nicknamed "
    "the Iron Lady, it was constructed as the centrepiece of the 1889 World's Fair, and to crown the centennial "
    "anniversary of the French Revolution. Although initially criticised by some of France's leading artists and "
    "intellectuals for its design, it has since become a global cultural icon of France and one of the most "
    "recognisable structures in the world."
)


def prompt_ids(lm, question: str) -> list[int]:
    messages = [{"role": "user", "content": question}]
    text = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return lm.tokenizer(text, add_special_tokens=False)["input_ids"]


def greedy(lm, ids: list[int], new_tokens: int) -> list[int]:
    """The tokens of lm's greedy answer (end-of-sequence tokens taken as any other, so that every answer is full)."""
    from byom_scoring.generation import BatchGenerator, GenerationRequest

    generator = BatchGenerator(lm)
    generator.eos_ids = set()
    batch = generator.batch()
    batch.admit([(0, GenerationRequest(ids, max_new_tokens=new_tokens))])
    row = batch.rows[0]
    while batch:
        batch.step()
    return row.generated


def first_choices(lm, ids: list[int], answer: list[int]) -> list[int]:
    """The model's first choice at each position of ``answer`` after ``ids``, reading one token per forward."""
    import torch
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache(config=lm.model.config)
    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1)
        choices = [int(out.logits[0, -1].argmax())]
        for token in answer[:-1]:
            out = lm.model(input_ids=torch.tensor([[token]]), cache=cache, use_cache=True)
            choices.append(int(out.logits[0, -1].argmax()))
    return choices


def perplexity(lm, text: str) -> float:
    import torch
    from byom_scoring.common import bos_token_id

    ids = torch.tensor([[bos_token_id(lm.tokenizer), *lm.tokenizer(text, add_special_tokens=False)["input_ids"]]])
    with torch.inference_mode():
        logits = lm.model(input_ids=ids, use_cache=False).logits[0, :-1].float()
    return math.exp(torch.nn.functional.cross_entropy(logits, ids[0, 1:]).item())


def load(model: Path, dtype: str):
    from byom_scoring import common

    os.environ["BYOM_GENERATION_DTYPE"] = dtype
    return common.load_generation_model(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="transformers folder (default: the packaged SmolLM2 sample)")
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16", "int8"])
    parser.add_argument("--new-tokens", type=int, default=48)
    args = parser.parse_args()

    from bench.generation import default_model

    model = args.model or default_model()
    reference = load(model, "float32")
    prompts = [prompt_ids(reference, q) for q in QUESTIONS]
    answers = [greedy(reference, ids, args.new_tokens) for ids in prompts]
    del reference
    print(
        f"model {model.name}; {len(prompts)} prompts x {args.new_tokens} tokens; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'dtype':>9} {'top-1 agreement':>16} {'perplexity':>11}  default allowed")
    for dtype in args.dtype:
        lm = load(model, dtype)
        same = total = 0
        for ids, answer in zip(prompts, answers, strict=True):
            choices = first_choices(lm, ids, answer)
            same += sum(c == a for c, a in zip(choices, answer, strict=True))
            total += len(answer)
        agreement = same / total
        print(
            f"{dtype:>9} {agreement * 100:15.1f}% {perplexity(lm, TEXT):11.2f}  "
            f"{'yes' if agreement >= MIN_AGREEMENT else 'no'}",
            flush=True,
        )
        del lm


if __name__ == "__main__":
    main()
