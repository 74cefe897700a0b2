"""The naive generation script, kept as the benchmark's baseline: one ``model.generate`` per request.

It is what a first BYOM scoring script looks like: run() takes the JSON
string, calls generate for that request alone, answers the text. It loads the
model the same way as ../generate.py (same device and dtype) and reports usage
the same way, so that bench/generation.py compares batching and nothing else.
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from byom_scoring import common  # noqa: E402

lm = None


def init():
    global lm
    lm = common.load_model()


def run(raw_data):
    data = json.loads(raw_data)
    tokenizer = lm.tokenizer
    if "messages" in data:
        prompt = tokenizer.apply_chat_template(data["messages"], tokenize=False, add_generation_prompt=True)
    else:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": data["prompt"]}], tokenize=False, add_generation_prompt=True
        )
    inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(lm.device)
    with torch.inference_mode():
        output = lm.model.generate(
            **inputs,
            max_new_tokens=data.get("max_new_tokens", 64),
            do_sample=data.get("do_sample", False),
            pad_token_id=tokenizer.pad_token_id,
        )
    new_ids = output[0, inputs["input_ids"].shape[1] :].tolist()
    # Count what the model wrote, without the end-of-sequence token, as ../generate.py does.
    eos = lm.model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    while new_ids and new_ids[-1] in eos:
        new_ids.pop()
    prompt_tokens = inputs["input_ids"].shape[1]
    return {
        "model": lm.name,
        "text": tokenizer.decode(new_ids, skip_special_tokens=True),
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(new_ids),
            "total_tokens": prompt_tokens + len(new_ids),
        },
    }
