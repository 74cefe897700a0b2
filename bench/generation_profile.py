"""Where one decode step's time goes: RunningBatch.step() on the sample model, at batch 1 and 16.

    .venv/bin/python -m bench.generation_profile [--model DIR] [--batch 1 16] [--threads 1 2] [--steps 20]
        [--dtype float32 bfloat16 int8] [--decoder lean transformers]

For each dtype, decoder (byom_scoring/llama_decoder.py's lean one, or
transformers' modules), torch thread count and batch size: the wall time of one step
(median over --steps, after a warm-up), then the same steps under
torch.profiler, with the operators' own CPU time summed by kind: matmuls
(the linear layers and the output head), attention (scaled dot product and
its mask), KV cache (appending to and selecting from it), sampling (choosing
the next tokens), other tensor operators (norms, rotary embedding,
activations, copies). What the profiler cannot assign to an operator is the
interpreter's own time: Python overhead. The profiler itself adds time to each
operator, so compare the shares, not the sums, with the wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench.servers import SCORING_DIR

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if str(SCORING_DIR) not in sys.path:
    sys.path.insert(0, str(SCORING_DIR))

PROMPT = "Explain what a neural network is in simple words."

KINDS = {
    "matmuls": ("mm", "addmm", "bmm", "matmul", "linear", "quantized::linear_dynamic", "mkldnn", "onednn", "fbgemm"),
    "attention": ("scaled_dot_product", "flash_attention", "sdpa", "softmax", "masked_fill", "where", "causal"),
    "KV cache": ("cat", "index_put", "index_copy", "index_select", "index", "slice_scatter", "copy_"),
    "sampling": ("argmax", "multinomial", "sort", "cumsum", "topk", "scatter", "_local_scalar_dense", "item"),
}


def kind_of(name: str) -> str:
    op = name.split("::")[-1] if not name.startswith("quantized::") else name
    for kind, keys in KINDS.items():
        if any(op == k or op.startswith(k) or k in name for k in keys):
            return kind
    return "other operators"


def running_batch(lm, rows: int, decoder: str, prompt_tokens: int = 24):
    from byom_scoring.generation import BatchGenerator, GenerationRequest

    ids = lm.tokenizer(PROMPT)["input_ids"][:prompt_tokens]
    batch = BatchGenerator(lm, decoder=decoder).batch()
    # Long enough never to finish while measured.
    batch.admit([(i, GenerationRequest(ids, max_new_tokens=10_000)) for i in range(rows)])
    return batch


def profile(lm, rows: int, steps: int, decoder: str) -> tuple[float, dict[str, float], list[tuple[str, float]]]:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    batch = running_batch(lm, rows, decoder)
    for _ in range(3):
        batch.step()
    walls = []
    for _ in range(steps):
        start = time.perf_counter()
        batch.step()
        walls.append(time.perf_counter() - start)
    wall = statistics.median(walls)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            batch.step()
        profiled = (time.perf_counter() - start) / steps
    shares: dict[str, float] = defaultdict(float)
    ops = []
    for event in prof.key_averages():
        seconds = event.self_cpu_time_total / 1e6 / steps
        shares[kind_of(event.key)] += seconds
        ops.append((event.key, seconds / profiled))
    shares["Python overhead"] = max(0.0, profiled - sum(shares.values()))
    del torch
    top = sorted(ops, key=lambda op: -op[1])[:4]
    return wall, {k: v / profiled for k, v in shares.items()}, top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="transformers folder (default: the packaged SmolLM2 sample)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dtype", nargs="+", default=["float32"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--decoder", nargs="+", default=["lean", "transformers"])
    args = parser.parse_args()

    import torch
    from byom_scoring import common

    from bench.generation import default_model

    model = args.model or default_model()
    print(f"model {model.name}; {len(os.sched_getaffinity(0))} cores; load average {os.getloadavg()[0]:.2f}")
    order = ["Python overhead", "matmuls", "attention", "KV cache", "sampling", "other operators"]
    print(f"{'dtype':>9} {'decoder':>12} {'threads':>7} {'batch':>5} {'step ms':>8} {'tok/s':>7}  " + "  ".join(order))
    for dtype in args.dtype:
        os.environ["BYOM_GENERATION_DTYPE"] = dtype
        lm = common.load_generation_model(model)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for rows in args.batch:
                for decoder in args.decoder:  # side by side, at the same load
                    wall, shares, top = profile(lm, rows, args.steps, decoder)
                    cells = "  ".join(f"{shares.get(k, 0) * 100:{len(k)}.0f}" for k in order)
                    print(
                        f"{dtype:>9} {decoder:>12} {threads:>7} {rows:>5} {wall * 1000:8.1f} {rows / wall:7.1f}  "
                        f"{cells}   (load average {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
                    print(" " * 49 + "top: " + ", ".join(f"{name} {share * 100:.0f}%" for name, share in top))
        del lm


if __name__ == "__main__":
    main()
