"""Token metrics of the OpenAI routes, named after OpenTelemetry's GenAI semantic conventions.

* ``gen_ai_client_token_usage`` (histogram, tokens per request, by
  ``gen_ai_token_type`` "input" or "output"): its ``_sum`` is the tokens used.
* ``gen_ai_server_time_to_first_token_seconds``: from the request's arrival at
  the gateway to its first token leaving it (streamed requests).
* ``gen_ai_server_time_per_output_token_seconds``: the time between output
  tokens after the first (streamed requests of two tokens or more).
* ``gen_ai_server_request_queue_time_seconds``: how long the request waited
  for a place in the model server's batch (as the server reports it).

Each by endpoint, deployment and model version, as the gateway's request metrics are; token usage also
by ``consumer`` (its name, "" for an endpoint key).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

from .metrics import _labels

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
QUEUE_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Labels = tuple[str, ...]
NAMES = ("endpoint", "deployment", "model_version")


class Histogram:
    def __init__(self, name: str, help: str, buckets: tuple[float, ...], label_names: tuple[str, ...]) -> None:
        self.name, self.help, self.bounds, self.label_names = name, help, buckets, label_names
        self.counts: dict[Labels, list[int]] = {}  # per bucket, not cumulative; the last slot: +Inf
        self.sums: dict[Labels, float] = defaultdict(float)

    def observe(self, labels: Labels, value: float) -> None:
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[labels] = [0] * (len(self.bounds) + 1)
        counts[bisect_left(self.bounds, value)] += 1
        self.sums[labels] += value

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, counts in sorted(self.counts.items()):
            cumulative = 0
            for bound, count in zip(self.bounds, counts, strict=False):
                cumulative += count
                le = f'le="{bound}"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, labels, le)} {cumulative}")
            total = cumulative + counts[-1]
            le = 'le="+Inf"'
            out.append(f"{self.name}_bucket{_labels(self.label_names, labels, le)} {total}")
            out.append(f"{self.name}_sum{_labels(self.label_names, labels)} {self.sums[labels]:.6f}")
            out.append(f"{self.name}_count{_labels(self.label_names, labels)} {total}")
        return out


class TokenMetrics:
    def __init__(self) -> None:
        self.usage = Histogram("gen_ai_client_token_usage", "Tokens per request, input (the prompt) or output.",
                               TOKEN_BUCKETS, (*NAMES, "consumer", "gen_ai_token_type"))
        self.ttft = Histogram("gen_ai_server_time_to_first_token_seconds",
                              "From a request's arrival at the gateway to its first token leaving it.",
                              TTFT_BUCKETS_S, NAMES)
        self.tpot = Histogram("gen_ai_server_time_per_output_token_seconds",
                              "Time between a streamed request's output tokens, after the first.",
                              TPOT_BUCKETS_S, NAMES)
        self.queue = Histogram("gen_ai_server_request_queue_time_seconds",
                               "How long a request waited for a place in the model server's batch.",
                               QUEUE_BUCKETS_S, NAMES)

    def tokens(self, labels: Labels, usage: object, consumer: str = "") -> None:
        """The input and output tokens of a request's ``usage`` (OpenAI's shape), by consumer ("" for an
        endpoint key: consumers are named by the operator, so the label's values stay few)."""
        if not isinstance(usage, dict):
            return
        for kind, field in (("input", "prompt_tokens"), ("output", "completion_tokens")):
            count = usage.get(field)
            if isinstance(count, int) and not isinstance(count, bool):
                self.usage.observe((*labels, consumer, kind), count)

    def render(self) -> str:
        lines = [*self.usage.render(), *self.ttft.render(), *self.tpot.render(), *self.queue.render()]
        return "\n".join(lines) + "\n"
