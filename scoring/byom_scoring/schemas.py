"""Request and response schemas of the two entry scripts, as the server's /swagger.json shows them."""

_ALTERNATIVE = {
    "type": "object",
    "properties": {"token": {"type": "string"}, "token_id": {"type": "integer"}, "prob": {"type": "number"}},
}

_TOKEN = {
    "type": "object",
    "properties": {
        "token": {"type": "string", "description": "the token as text"},
        "token_id": {"type": "integer"},
        "rank": {
            "type": "integer",
            "description": "vocabulary entries whose logit is strictly greater than this token's (0 = first choice)",
        },
        "ties": {"type": "integer", "description": "other vocabulary entries with exactly this token's logit"},
        "logprob": {"type": "number", "description": "natural log of the token's probability"},
        "prob": {"type": "number"},
        "entropy": {"type": "number", "description": "entropy (nats) of the next-token distribution"},
        "start": {"type": "integer", "description": "first character of the text this token covers"},
        "end": {
            "type": "integer",
            "description": "one past its last character; start == end for the later byte "
            "pieces of a character split over several tokens",
        },
        "top_k": {"type": "array", "items": _ALTERNATIVE, "description": "the model's top choices at this position"},
    },
    "required": ["token", "rank"],
}

_SUMMARY = {
    "type": "object",
    "properties": {
        "tokens": {"type": "integer"},
        "mean_log_rank": {"type": "number", "description": "mean of ln(1 + rank)"},
        "mean_logprob": {"type": "number"},
        "perplexity": {"type": "number"},
        "top_10": {"type": "number", "description": "share of tokens with rank < 10"},
        "top_100": {"type": "number"},
        "top_1000": {"type": "number"},
    },
}

_TEXT_RESULT = {
    "type": "object",
    "properties": {"token_ranks": {"type": "array", "items": _TOKEN}, "summary": _SUMMARY},
}

TOKEN_RANKS_INPUT = {
    "type": "object",
    "description": "Send exactly one of text or texts.",
    "properties": {
        "text": {"type": "string", "minLength": 1},
        "texts": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        "top_k": {"type": "integer", "minimum": 0, "maximum": 20, "default": 5},
    },
    "example": {"text": "This is a test.", "top_k": 5},
}

TOKEN_RANKS_OUTPUT = {
    "type": "object",
    "description": "For text: model, token_ranks and summary. For texts: model and results, one per text.",
    "properties": {
        "model": {"type": "string"},
        "token_ranks": {"type": "array", "items": _TOKEN},
        "summary": _SUMMARY,
        "results": {"type": "array", "items": _TEXT_RESULT},
    },
    "example": {"model": "SmolLM2-135M-Instruct", "token_ranks": [{"token": "This", "rank": 518, "ties": 0}]},
}

_MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
        "content": {"type": "string"},
    },
    "required": ["role", "content"],
}

GENERATE_INPUT = {
    "type": "object",
    "description": "Send exactly one of prompt or messages.",
    "properties": {
        "prompt": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "items": _MESSAGE, "minItems": 1},
        "chat_template": {
            "type": "boolean",
            "default": True,
            "description": "wrap a prompt as a user message in the model's chat template, when it has one",
        },
        "max_new_tokens": {"type": "integer", "minimum": 1, "default": 64},
        "do_sample": {"type": "boolean", "default": False},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 1.0},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1.0},
        "seed": {"type": "integer", "minimum": 0},
        "stop": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4},
        "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2, "default": 0},
        "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2, "default": 0},
        "logprobs": {
            "type": "integer",
            "minimum": 0,
            "maximum": 20,
            "description": "list each token's logprob and this many top alternatives",
        },
        "stream": {"type": "boolean", "default": False, "description": "answer server-sent events as tokens come"},
    },
    "example": {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_new_tokens": 32},
}

GENERATE_OUTPUT = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "text": {"type": "string"},
        "finish_reason": {"type": "string", "enum": ["stop", "length"]},
        "usage": {
            "type": "object",
            "properties": {
                "prompt_tokens": {"type": "integer"},
                "completion_tokens": {"type": "integer"},
                "total_tokens": {"type": "integer"},
            },
        },
    },
    "example": {
        "model": "SmolLM2-135M-Instruct",
        "text": "The capital of France is Paris.",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 36, "completion_tokens": 8, "total_tokens": 44},
    },
}
