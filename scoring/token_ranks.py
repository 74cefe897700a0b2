"""Token-rank analysis: an Azure ML entry script (init()/run()).

POST ``{"text": "..."}`` or ``{"texts": ["...", ...]}``, optionally with
``top_k`` (alternatives per token, 0-20, default 5). For one text the answer is
``{"token_ranks": [{"token": "This", "rank": 518, ...}, ...], "summary": {...}}``
(the reference shape, with more fields); for several, ``{"results": [...]}``
with one such object per text. See byom_scoring/ranks.py for the definitions.

Limits (environment): BYOM_MAX_TEXTS (32), BYOM_MAX_TEXT_CHARS (100000),
BYOM_MAX_TEXT_TOKENS (16384; beyond the model's context the text is scored in
sliding windows), BYOM_WINDOW / BYOM_STRIDE (default: the model's context and
half of it), BYOM_MAX_BODY_BYTES (1 MiB).
"""

import logging
import os
import sys
import threading
from typing import Any

# The server loads this file by path, with AML_APP_ROOT on sys.path; on Azure
# that is the parent of the code folder, so put this folder there to find the
# byom_scoring package beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402
from byom_scoring import common  # noqa: E402
from byom_scoring.common import BadRequest  # noqa: E402
from byom_scoring.ranks import RankScorer  # noqa: E402
from byom_scoring.schemas import TOKEN_RANKS_INPUT, TOKEN_RANKS_OUTPUT  # noqa: E402

logger = logging.getLogger("byom.token_ranks")

MAX_TOP_K = 20
FIELDS = {"text", "texts", "top_k"}

scorer: RankScorer | None = None
limits: dict[str, int] = {}
# One computation at a time per worker: concurrent forward passes only fight
# over the same cores and multiply peak memory.
_lock = threading.Lock()


def init() -> None:
    global scorer, limits
    lm = common.load_model()
    scorer = loaded = RankScorer(
        lm,
        window=common.env_int("BYOM_WINDOW", 0) or None,
        stride=common.env_int("BYOM_STRIDE", 0) or None,
        max_batch_tokens=common.env_int("BYOM_MAX_BATCH_TOKENS", 8192),
    )
    limits = {
        "texts": common.env_int("BYOM_MAX_TEXTS", 32),
        "chars": common.env_int("BYOM_MAX_TEXT_CHARS", 100_000),
        "tokens": common.env_int("BYOM_MAX_TEXT_TOKENS", 16_384),
    }
    common.publish_schema(run, TOKEN_RANKS_INPUT, TOKEN_RANKS_OUTPUT)
    logger.info(
        "token ranks ready: model %s on %s (%s), window %d, stride %d",
        lm.name,
        lm.device,
        lm.dtype,
        loaded.window,
        loaded.stride,
    )


def _scorer() -> RankScorer:
    if scorer is None:
        raise RuntimeError("init() has not run: the server calls it before the first request")
    return scorer


@common.raw_http
def run(request: Any) -> AMLResponse:
    ranker = _scorer()
    try:
        body = common.read_json_object(request)
        texts, single, top_k = parse(body)
        encoded = [ranker.tokenize(text) for text in texts]
        for i, (ids, _) in enumerate(encoded):
            if len(ids) > limits["tokens"]:
                field = "text" if single else f"texts[{i}]"
                raise BadRequest(
                    f"'{field}' has {len(ids)} tokens; the limit is {limits['tokens']}.", field=field, status=413
                )
        with _lock:
            results = ranker.score_encoded(encoded, top_k=top_k)
    except BadRequest as ex:
        return ex.response()
    if single:
        return AMLResponse({"model": ranker.lm.name, **results[0]}, 200, json_str=True)
    return AMLResponse({"model": ranker.lm.name, "results": results}, 200, json_str=True)


def parse(body: dict[str, Any]) -> tuple[list[str], bool, int]:
    """(texts, whether one text was sent as "text", top_k) from a request body, or BadRequest."""
    common.reject_unknown_fields(body, FIELDS)
    if ("text" in body) == ("texts" in body):
        raise BadRequest("Send exactly one of 'text' (a string) or 'texts' (a list of strings).", field="text")
    top_k = common.get_int(body, "top_k", 5, 0, MAX_TOP_K)
    if "text" in body:
        return [common.get_text(body["text"], "text", limits["chars"])], True, top_k
    texts = body["texts"]
    if not isinstance(texts, list) or not texts:
        raise BadRequest("'texts' must be a non-empty list of strings.", field="texts")
    if len(texts) > limits["texts"]:
        raise BadRequest(f"'texts' has {len(texts)} items; the limit is {limits['texts']}.", field="texts", status=413)
    return [common.get_text(t, f"texts[{i}]", limits["chars"]) for i, t in enumerate(texts)], False, top_k
