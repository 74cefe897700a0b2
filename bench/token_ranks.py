"""Token ranks: scoring/byom_scoring/ranks.py against the reference per-prefix loop, side by side in one run.

    .venv/bin/python -m bench.token_ranks [--model DIR] [--lengths 256 1024] [--threads N]

Both sides get the same token ids ([BOS] + N tokens of English text) and the
same model in the same process. Ours computes rank, ties, log-probability,
entropy and the top 5 alternatives; the reference only the rank. For long
texts the reference loop (one forward pass per prefix, quadratic) runs for
many minutes (256 tokens: 5 minutes on 2 busy cores), so by default its time
is estimated from --reference-samples prefixes spread over the text: each of
those passes is timed and the total is the sum over every prefix length,
interpolated. --full-reference runs the whole loop instead. The output says
which figures are estimates.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.servers import REPO, SCORING_DIR

sys.path.insert(0, str(SCORING_DIR))

from byom_scoring import common  # noqa: E402
from byom_scoring.ranks import RankScorer  # noqa: E402
from reference.token_ranks_naive import reference_ranks  # noqa: E402

PARAGRAPH = (
    "The history of the city is long and varied. Merchants came by river and by road, and the market square "
    "grew into the heart of a busy town. In the winter the streets were quiet, but every spring brought fairs, "
    "music and travellers from distant countries who told stories of mountains, deserts and the sea. "
)


def default_model() -> Path:
    from byom.core.sample import cached_packaged_sample

    return cached_packaged_sample(REPO / ".cache" / "byom")


def text_ids(scorer: RankScorer, n_tokens: int) -> list[int]:
    ids = scorer.tokenize(PARAGRAPH * (n_tokens // 40 + 1))[0][:n_tokens]
    assert len(ids) == n_tokens
    return [scorer.bos, *ids]


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_ours(scorer: RankScorer, ids: list[int], repeats: int) -> float:
    scorer.score_ids([ids], top_k=5)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scorer.score_ids([ids], top_k=5)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_reference(model, ids: list[int], samples: int | None) -> tuple[float, bool]:
    """Seconds for the whole per-prefix loop, and whether that figure is an estimate."""
    reference_ranks(model, ids[:3])  # warm-up
    if samples is None:
        start = time.perf_counter()
        reference_ranks(model, ids)
        return time.perf_counter() - start, False
    n = len(ids)
    prefix_lengths = sorted({int(x) for x in np.linspace(1, n - 1, samples)})
    seconds = []
    for length in prefix_lengths:
        start = time.perf_counter()
        reference_ranks(model, ids[: length + 1], first=length)  # one pass over a prefix of `length` tokens
        seconds.append(time.perf_counter() - start)
    every_length = np.arange(1, n)
    return float(np.interp(every_length, prefix_lengths, seconds).sum()), True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, help="transformers folder or .gguf (default: the packaged SmolLM2 sample)"
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-reference", action="store_true", help="time the whole reference loop")
    parser.add_argument("--reference-samples", type=int, default=24)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = common.load_model(args.model or default_model())
    scorer = RankScorer(lm)
    print(f"model {lm.name} on {lm.device} ({lm.dtype}), torch {torch.__version__}")
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, {torch.get_num_threads()} torch threads"
    )
    print()
    print(f"{'tokens':>6}  {'ours s':>8}  {'reference s':>12}  {'speed-up':>9}  ours tokens/s")
    peak_after_ours = 0.0
    for n in args.lengths:
        ids = text_ids(scorer, n)
        ours = time_ours(scorer, ids, args.repeats)
        peak_after_ours = max(peak_after_ours, peak_rss_mib())
        samples = None if args.full_reference else args.reference_samples
        reference, estimated = time_reference(lm.model, ids, samples)
        mark = "*" if estimated else " "
        print(f"{n:>6}  {ours:>8.3f}  {reference:>11.1f}{mark}  {reference / ours:>8.0f}×  {n / ours:>8.0f}")
    print()
    if not args.full_reference:
        print(f"* estimated from timed passes over {args.reference_samples} sampled prefix lengths")
    print(f"peak resident memory of this process after scoring (model loaded): {peak_after_ours:.0f} MiB")


if __name__ == "__main__":
    main()
