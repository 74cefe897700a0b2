"""Code shared by the entry scripts in this folder (uploaded with them as the deployment's code)."""

import os

# Torch's OpenMP threads otherwise spin while they wait for each other: on a
# machine whose cores are also busy with other work (other workers, other
# processes), a spinning thread takes the core from the one it waits for and
# a forward pass runs several times slower (see BENCHMARKS.md). libgomp reads
# this once, when torch loads it, so it is set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
