"""The reference token-rank algorithm, as the Azure BYOM article publishes it.

One forward pass per prefix; the rank of a token is its position in the
``argsort`` (descending) of the last position's logits. Ties are broken by
argsort's order, so on tied positions it may differ from the strict count of
../byom_scoring/ranks.py; elsewhere both must agree. Used by the exactness
tests and as the baseline of bench/token_ranks.py.
"""

import torch


@torch.inference_mode()
def reference_ranks(model, input_ids, first=1):
    """Rank of ``input_ids[i]`` after ``input_ids[:i]``, for i from ``first`` on.

    ``input_ids`` starts with the BOS token; the result has one rank per later token.
    """
    device = next(model.parameters()).device
    ranks = []
    for i in range(first, len(input_ids)):
        prefix = torch.tensor([input_ids[:i]], device=device)
        logits = model(prefix).logits[0, -1, :].float()
        order = torch.argsort(logits, descending=True)
        ranks.append(int((order == input_ids[i]).nonzero()[0, 0]))
    return ranks
