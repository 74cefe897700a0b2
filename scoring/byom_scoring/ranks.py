"""Token ranks: for each token of a text, where the actual token stood in the model's next-token ranking.

rank = the number of vocabulary entries whose logit is strictly greater than
the actual token's logit (0 = the model's first choice); ties = how many other
entries have exactly the actual token's logit. Logits are computed in float32
from the model's last hidden states, also when the model itself runs in
bfloat16, so that ranks are not blurred by bf16's coarse steps.

Every position of a text comes from one forward pass over ``[BOS] + tokens``.
A text longer than the window (the model's context) is covered by windows
``stride`` tokens apart; each token is scored once, in the first window that
holds it past the previous window's end, with at least ``window - stride``
tokens of context before it. Rows of several texts or windows run as one
right-padded batch with an attention mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .common import LoadedModel, bos_token_id

SUMMARY_TOPS = (10, 100, 1000)


@dataclass
class Row:
    """One window of one text: positions [start, end) of ``[BOS] + tokens``, scoring [first, end)."""

    text: int
    start: int
    end: int
    first: int


def plan_windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, end, first scored position) for each window over ``[BOS] + n_tokens`` tokens."""
    if not 1 <= stride < window:
        raise ValueError(f"stride must be at least 1 and below the window ({window}), got {stride}")
    total = n_tokens + 1
    windows = []
    start, first = 0, 1
    while True:
        end = min(start + window, total)
        windows.append((start, end, first))
        if end == total:
            return windows
        first = end
        start += stride


class RankScorer:
    def __init__(
        self,
        lm: LoadedModel,
        *,
        window: int | None = None,
        stride: int | None = None,
        max_batch_tokens: int = 8192,
        chunk_positions: int = 512,
    ):
        self.lm = lm
        self.window = min(window or lm.context_length, lm.context_length)
        self.stride = stride or max(1, self.window // 2)
        if not 1 <= self.stride < self.window:
            raise ValueError(f"stride must be at least 1 and below the window ({self.window}), got {self.stride}")
        self.max_batch_tokens = max(max_batch_tokens, self.window)
        self.chunk_positions = chunk_positions
        self.bos = bos_token_id(lm.tokenizer)
        head = lm.model.get_output_embeddings()
        # float32 copy of the output layer (no copy when the model already is float32).
        self._head_weight = head.weight.detach().float()
        self._head_bias = head.bias.detach().float() if getattr(head, "bias", None) is not None else None
        config = lm.model.config
        self._softcap = getattr(config, "final_logit_softcapping", None)
        self._logit_scale = getattr(config, "logit_scale", None)
        self._decoded: dict[int, str] = {}

    # --- public -----------------------------------------------------------------------------------

    def tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.lm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(span) for span in enc["offset_mapping"]]

    def score(self, texts: list[str], top_k: int = 5) -> list[dict[str, Any]]:
        return self.score_encoded([self.tokenize(text) for text in texts], top_k)

    def score_encoded(
        self, encoded: list[tuple[list[int], list[tuple[int, int]]]], top_k: int = 5
    ) -> list[dict[str, Any]]:
        """Like score(), for texts already tokenized by tokenize()."""
        sequences = [[self.bos, *ids] for ids, _ in encoded]
        stats = self.score_ids(sequences, top_k)
        return [self._text_result(ids, spans, stat, top_k) for (ids, spans), stat in zip(encoded, stats, strict=True)]

    @torch.inference_mode()
    def score_ids(self, sequences: list[list[int]], top_k: int = 0) -> list[dict[str, torch.Tensor]]:
        """Per-position figures for each sequence (BOS included; position 0 is not scored).

        Returns for each sequence tensors over positions 1..n-1: ``rank``,
        ``ties``, ``logprob``, ``entropy`` and, with top_k > 0, ``top_ids`` and
        ``top_logprobs``.
        """
        rows = [
            Row(i, start, end, first)
            for i, seq in enumerate(sequences)
            for start, end, first in plan_windows(len(seq) - 1, self.window, self.stride)
        ]
        # Hidden states of the scored positions, per sequence and window start.
        hidden_parts: list[dict[int, torch.Tensor]] = [{} for _ in sequences]
        for batch in self._batches(rows):
            hidden = self._hidden_states(batch, sequences)
            for b, row in enumerate(batch):
                # Position p of the row is predicted by the hidden state at p - 1.
                hidden_parts[row.text][row.start] = hidden[b, row.first - row.start - 1 : row.end - row.start - 1]
        results = []
        for seq, parts in zip(sequences, hidden_parts, strict=True):
            targets = torch.tensor(seq[1:], device=self.lm.device)
            hidden = torch.cat([parts[start] for start in sorted(parts)])
            results.append(self._figures(hidden, targets, top_k))
        return results

    # --- internals --------------------------------------------------------------------------------

    def _batches(self, rows: list[Row]) -> list[list[Row]]:
        # Longest first, so that each batch pads little.
        rows = sorted(rows, key=lambda r: r.end - r.start, reverse=True)
        batches: list[list[Row]] = []
        for row in rows:
            if batches:
                longest = batches[-1][0].end - batches[-1][0].start
                if longest * (len(batches[-1]) + 1) <= self.max_batch_tokens:
                    batches[-1].append(row)
                    continue
            batches.append([row])
        return batches

    def _hidden_states(self, batch: list[Row], sequences: list[list[int]]) -> torch.Tensor:
        length = max(row.end - row.start for row in batch)
        input_ids = torch.full((len(batch), length), self.bos, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), length), dtype=torch.long)
        for b, row in enumerate(batch):
            n = row.end - row.start
            input_ids[b, :n] = torch.tensor(sequences[row.text][row.start : row.end])
            attention_mask[b, :n] = 1
        base = self.lm.model.base_model
        out = base(
            input_ids=input_ids.to(self.lm.device), attention_mask=attention_mask.to(self.lm.device), use_cache=False
        )
        hidden: torch.Tensor = out.last_hidden_state
        return hidden

    def _figures(self, hidden: torch.Tensor, targets: torch.Tensor, top_k: int) -> dict[str, torch.Tensor]:
        parts: dict[str, list[torch.Tensor]] = {}
        for lo in range(0, len(targets), self.chunk_positions):
            h = hidden[lo : lo + self.chunk_positions].float()
            t = targets[lo : lo + self.chunk_positions]
            logits = self._logits(h)
            actual = logits.gather(1, t[:, None])
            logprobs = torch.log_softmax(logits, dim=-1)
            figures = {
                "rank": (logits > actual).sum(dim=-1),
                "ties": (logits == actual).sum(dim=-1) - 1,
                "logprob": logprobs.gather(1, t[:, None])[:, 0],
                "entropy": -(logprobs.exp() * logprobs).sum(dim=-1),
            }
            if top_k:
                top = logprobs.topk(top_k, dim=-1)
                figures["top_ids"], figures["top_logprobs"] = top.indices, top.values
            for key, value in figures.items():
                parts.setdefault(key, []).append(value.cpu())
        return {key: torch.cat(value) for key, value in parts.items()}

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = h @ self._head_weight.T
        if self._head_bias is not None:
            logits = logits + self._head_bias
        if self._logit_scale:
            logits = logits * self._logit_scale
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits

    def _token_text(self, token_id: int) -> str:
        text = self._decoded.get(token_id)
        if text is None:
            text = self._decoded[token_id] = self.lm.tokenizer.decode([token_id])
        return text

    def _text_result(
        self, ids: list[int], spans: list[tuple[int, int]], stat: dict[str, torch.Tensor], top_k: int
    ) -> dict[str, Any]:
        ranks = stat["rank"].tolist()
        ties = stat["ties"].tolist()
        logprobs = stat["logprob"].tolist()
        entropies = stat["entropy"].tolist()
        top_ids: list[list[int]] = stat["top_ids"].tolist() if top_k else []
        top_probs: list[list[float]] = stat["top_logprobs"].exp().tolist() if top_k else []
        tokens = []
        covered = 0
        for i, token_id in enumerate(ids):
            # Byte-level tokenizers may split one character over several
            # tokens, whose offsets then overlap; the first of them gets the
            # character and the rest an empty span, so the spans tile the text.
            start, end = spans[i]
            start = min(max(start, covered), max(end, covered))
            end = max(end, start)
            covered = end
            entry = {
                "token": self._token_text(token_id),
                "token_id": token_id,
                "rank": ranks[i],
                "ties": ties[i],
                "logprob": logprobs[i],
                "prob": math.exp(logprobs[i]),
                "entropy": entropies[i],
                "start": start,
                "end": end,
            }
            if top_k:
                entry["top_k"] = [
                    {"token": self._token_text(alt), "token_id": alt, "prob": p}
                    for alt, p in zip(top_ids[i], top_probs[i], strict=True)
                ]
            tokens.append(entry)
        return {"token_ranks": tokens, "summary": summarize(ranks, logprobs)}


def summarize(ranks: list[int], logprobs: list[float]) -> dict[str, Any]:
    n = len(ranks)
    mean_logprob = sum(logprobs) / n
    summary: dict[str, Any] = {
        "tokens": n,
        # natural log of (1 + rank), so that rank 0 counts as 0
        "mean_log_rank": sum(math.log1p(r) for r in ranks) / n,
        "mean_logprob": mean_logprob,
        "perplexity": math.exp(-mean_logprob),
    }
    for top in SUMMARY_TOPS:
        summary[f"top_{top}"] = sum(r < top for r in ranks) / n
    return summary
