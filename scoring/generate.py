"""Text generation: an Azure ML entry script (init()/run()).

POST ``{"prompt": "..."}`` or ``{"messages": [{"role": "user", "content": "..."}]}``
with optional ``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``,
``seed``, ``stop``, ``chat_template``, ``frequency_penalty``, ``presence_penalty``, ``logprobs`` (0 to 20:
each token's logprob and that many alternatives) and ``stream``. Answers
``{"model", "text", "finish_reason", "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}``
(with ``"logprobs": [{"id", "token", "logprob", "top_logprobs"}]`` when asked). With ``"stream": true`` the
answer is server-sent events as the tokens are chosen (byom_scoring/streaming.py); a client that closes the
stream cancels its generation. ``GET`` answers the batch's state: ``{"running", "queued", "max_batch",
"cancelled"}``.

Requests that reach one worker are decoded together, one token for the
whole batch per forward pass (continuous batching): a request joins the
running batch at the next step and is answered as soon as it is done. That
needs a server that runs requests concurrently, and gunicorn's default
worker runs one at a time: deploy with ``GUNICORN_CMD_ARGS="--threads 32"``
in the deployment's environment variables (azmlinfsrv passes it on to
gunicorn), i.e. at least BYOM_MAX_BATCH threads and some to spare, so that
health probes still get a thread while a full batch runs. Keep one worker
per machine (``WORKER_COUNT=1``, the default) with torch on every core (the
default, see byom_scoring/common.py): one batch of 16 reads the weights once
per step where two workers would read them twice, and each worker holds its
own copy of the model.

Precision (environment): BYOM_GENERATION_DTYPE, float32, bfloat16, float16
or int8 (default float16 on a CPU, see byom_scoring/precision.py).

Limits (environment): BYOM_MAX_NEW_TOKENS (512), BYOM_MAX_PROMPT_CHARS
(100000), BYOM_MAX_BATCH (16 requests decoded together; more wait their
turn), BYOM_BATCH_WAIT_MS (5: how long an idle worker waits for more
requests to start with), BYOM_MAX_BODY_BYTES (1 MiB).
"""

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

# The server loads this file by path, with AML_APP_ROOT on sys.path; on Azure
# that is the parent of the code folder, so put this folder there to find the
# byom_scoring package beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402
from byom_scoring import common, streaming  # noqa: E402
from byom_scoring.batching import ContinuousBatcher  # noqa: E402
from byom_scoring.common import BadRequest  # noqa: E402
from byom_scoring.generation import GenerationRequest, GenerationResult  # noqa: E402
from byom_scoring.schemas import GENERATE_INPUT, GENERATE_OUTPUT  # noqa: E402
from byom_scoring.streaming import (  # noqa: E402
    MAX_TOP_LOGPROBS,
    StreamingBatch,
    StreamingGenerator,
    StreamRequest,
    TokenFeed,
)

logger = logging.getLogger("byom.generate")

FIELDS = {"prompt", "messages", "chat_template", "max_new_tokens", "do_sample", "temperature", "top_p", "seed", "stop",
          "frequency_penalty", "presence_penalty", "logprobs", "stream"}
ROLES = {"system", "user", "assistant"}
MAX_STOP = 4
MAX_STOP_CHARS = 64


@dataclass
class Served:
    """What init() loads: the model, its running batch and the batcher that feeds it."""

    lm: common.LoadedModel
    engine: StreamingBatch
    batcher: ContinuousBatcher[GenerationRequest, GenerationResult]


served: Served | None = None
limits: dict[str, int] = {}


def _served() -> Served:
    if served is None:
        raise RuntimeError("init() has not run: the server calls it before the first request")
    return served


def init() -> None:
    global served, limits
    lm = common.load_generation_model()
    engine = StreamingGenerator(lm).batch()
    batcher: ContinuousBatcher[GenerationRequest, GenerationResult] = ContinuousBatcher(
        engine,
        max_batch=common.env_int("BYOM_MAX_BATCH", 16),
        wait_ms=common.env_int("BYOM_BATCH_WAIT_MS", 5),
    )
    served = Served(lm, engine, batcher)
    limits = {
        "new_tokens": common.env_int("BYOM_MAX_NEW_TOKENS", 512),
        "prompt_chars": common.env_int("BYOM_MAX_PROMPT_CHARS", 100_000),
    }
    common.publish_schema(run, GENERATE_INPUT, GENERATE_OUTPUT)
    if "--threads" not in os.environ.get("GUNICORN_CMD_ARGS", ""):
        logger.warning(
            "GUNICORN_CMD_ARGS sets no --threads: unless the server is configured otherwise, this worker answers "
            "one request at a time and nothing is batched (see the top of generate.py)."
        )
    logger.info("generation ready: model %s on %s (%s weights)", lm.name, lm.device, lm.precision)


@common.raw_http
def run(request: Any) -> AMLResponse:
    lm, batcher = _served().lm, _served().batcher
    if request.method == "GET":
        return AMLResponse(batch_state(), 200, json_str=True)
    try:
        body = common.read_json_object(request)
        generation = parse(body)
        stream = common.get_bool(body, "stream", False)
    except BadRequest as ex:
        return ex.response()
    if stream:
        generation.feed = TokenFeed()
        future = batcher.start(generation)
        generation.attach(future)
        events = AMLResponse(streaming.events(lm.tokenizer, generation, future), 200)
        events.headers["Content-Type"] = "text/event-stream; charset=utf-8"
        events.headers["Cache-Control"] = "no-cache"
        return events
    if generation.logprobs is not None:
        generation.feed = TokenFeed()
        future = batcher.start(generation)
        generation.attach(future)
        result = future.result()
        logprobs = streaming.token_entries(lm.tokenizer, generation.feed.take_all())
    else:
        result = batcher.submit(generation)
        logprobs = None
    answer: dict[str, Any] = {
        "model": lm.name,
        "text": result.text,
        "finish_reason": result.finish_reason,
        "usage": streaming.usage(result),
    }
    if logprobs is not None:
        answer["logprobs"] = logprobs
    return AMLResponse(answer, 200, json_str=True)


def batch_state() -> dict[str, int]:
    now = _served()
    return {
        "running": len(now.engine),
        "queued": now.batcher.queued(),
        "max_batch": now.batcher.max_batch,
        "cancelled": now.engine.cancelled,
    }


def parse(body: dict[str, Any]) -> StreamRequest:
    """A GenerationRequest from a request body, or BadRequest naming the problem."""
    lm = _served().lm
    common.reject_unknown_fields(body, FIELDS)
    if ("prompt" in body) == ("messages" in body):
        raise BadRequest(
            "Send exactly one of 'prompt' (a string) or 'messages' (a list of chat messages).", field="prompt"
        )
    use_template = common.get_bool(body, "chat_template", True) and bool(lm.tokenizer.chat_template)
    if "prompt" in body:
        prompt = common.get_text(body["prompt"], "prompt", limits["prompt_chars"])
        messages = [{"role": "user", "content": prompt}] if use_template else None
    else:
        messages = parse_messages(body["messages"])
        prompt = None
    if messages is not None:
        if use_template:
            prompt = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            prompt = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        prompt_ids = lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    else:
        prompt_ids = lm.tokenizer(prompt)["input_ids"]

    max_new_tokens = common.get_int(body, "max_new_tokens", min(64, limits["new_tokens"]), 1, limits["new_tokens"])
    room = lm.context_length - max_new_tokens
    if len(prompt_ids) > room:
        raise BadRequest(
            f"The prompt has {len(prompt_ids)} tokens; with max_new_tokens={max_new_tokens} it may have at most "
            f"{max(room, 0)} (the model's context is {lm.context_length} tokens).",
            field="messages" if "messages" in body else "prompt",
            status=413,
        )
    return StreamRequest(
        prompt_ids=prompt_ids,
        max_new_tokens=max_new_tokens,
        do_sample=common.get_bool(body, "do_sample", False),
        temperature=common.get_float(body, "temperature", 1.0, 0.0, 2.0),
        top_p=common.get_float(body, "top_p", 1.0, 1e-6, 1.0),
        seed=common.get_int(body, "seed", None, 0, 2**63 - 1),
        stop=parse_stop(body.get("stop")),
        logprobs=common.get_int(body, "logprobs", None, 0, MAX_TOP_LOGPROBS),
        frequency_penalty=common.get_float(body, "frequency_penalty", 0.0, -2.0, 2.0),
        presence_penalty=common.get_float(body, "presence_penalty", 0.0, -2.0, 2.0),
    )


def parse_messages(messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list of {role, content} objects.", field="messages")
    total = 0
    for i, m in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise BadRequest(f"'{field}' must be an object with exactly 'role' and 'content'.", field=field)
        if m["role"] not in ROLES:
            raise BadRequest(f"'{field}.role' must be one of {', '.join(sorted(ROLES))}.", field=f"{field}.role")
        if not isinstance(m["content"], str):
            raise BadRequest(f"'{field}.content' must be a string.", field=f"{field}.content")
        total += len(m["content"])
    if total > limits["prompt_chars"]:
        raise BadRequest(
            f"'messages' hold {total} characters; the limit is {limits['prompt_chars']}.", field="messages", status=413
        )
    return messages


def parse_stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if (
        not isinstance(stop, list)
        or len(stop) > MAX_STOP
        or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stop)
    ):
        raise BadRequest(
            f"'stop' must be a string or a list of at most {MAX_STOP} non-empty strings of at most "
            f"{MAX_STOP_CHARS} characters.",
            field="stop",
        )
    return stop
