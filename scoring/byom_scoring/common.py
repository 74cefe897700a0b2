"""What both entry scripts share: finding and loading the model, reading requests, answering errors.

Environment variables (all optional):

``AZUREML_MODEL_DIR``
    Set by the inference server. A transformers folder (config.json + weights +
    tokenizer), such a folder nested one level down (as Azure lays out a
    registered folder), or a ``.gguf`` file / a folder holding one.
``BYOM_DEVICE``, ``BYOM_DTYPE``
    Override the hardware choice: CUDA with bfloat16 weights when a GPU is
    present, otherwise CPU with float32.
``BYOM_GENERATION_DTYPE``
    The precision of a generation deployment's weights: float32, bfloat16,
    float16 or int8 (default: float16 on a CPU, see precision.py). Token ranks
    ignore it.
``BYOM_GENERATION_DECODER``
    ``lean`` (default: llama_decoder.py for Llama-shaped models) or
    ``transformers`` (transformers' own modules for every step).
``BYOM_TORCH_THREADS``
    CPU threads for torch in each worker (default: the cores torch sees,
    divided by the inference server's ``WORKER_COUNT``, so that the workers
    together use every core once). ``OMP_WAIT_POLICY`` defaults to
    ``PASSIVE`` (see ``__init__.py``).
``BYOM_MODEL_NAME``
    The model name reported in responses (default: the model folder or file name).
``BYOM_MAX_BODY_BYTES``
    Request bodies above this size get 413 (default 1 MiB).
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import torch
from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

Run = Callable[[Any], AMLResponse]


def raw_http(run: Run) -> Run:
    """The server's ``rawhttp`` marker (``run`` gets the Flask request itself), with its type said."""
    marked: Run = rawhttp(run)
    return marked


DRAIN_BYTES = 16 << 20  # an over-limit body up to this size is read and dropped before the 413
MAX_JSON_DEPTH = 64  # no request of these scripts nests deeper than a few levels
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class BadRequest(Exception):
    """The caller sent something we cannot score; answered with ``status`` and a JSON body naming the problem."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status

    def response(self) -> AMLResponse:
        return error_response(self.status, self.message, field=self.field)


def error_response(status: int, message: str, *, field: str | None = None) -> AMLResponse:
    # Same shape as the inference server's own errors ({"message": ...}), so a
    # client reads one format whichever side refused the request.
    body: dict[str, Any] = {"message": message}
    if field is not None:
        body["field"] = field
    return AMLResponse(body, status, json_str=True)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"Environment variable {name} must be an integer, got {value!r}") from None


# --- requests -------------------------------------------------------------------------------------


def read_json_object(request: Any, *, max_bytes: int | None = None) -> dict[str, Any]:
    """The request body as a JSON object, or BadRequest (400, 405, 413) saying why not."""
    if max_bytes is None:
        max_bytes = env_int("BYOM_MAX_BODY_BYTES", 1 << 20)
    if request.method != "POST":
        raise BadRequest(f"Use POST with a JSON body; {request.method} is not supported here.", status=405)
    if request.content_length is not None and request.content_length > max_bytes:
        if request.content_length <= DRAIN_BYTES:
            # read and drop what the client is still sending: a connection closed with its body unread is reset,
            # and the client then sees a broken pipe instead of this 413
            while request.stream.read(1 << 16):
                pass
        raise BadRequest(f"Request body is {request.content_length} bytes; the limit is {max_bytes}.", status=413)
    # Read one byte past the limit so that a body without Content-Length
    # (chunked) is refused without reading all of it.
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BadRequest(f"Request body is over the limit of {max_bytes} bytes.", status=413)
    if not raw.strip():
        raise BadRequest("Request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as ex:
        raise BadRequest(f"Request body is not valid UTF-8 (byte {ex.start}).") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as ex:
        raise BadRequest(f"Request body is not valid JSON: {ex.msg} at line {ex.lineno} column {ex.colno}.") from None
    except RecursionError:  # nesting deeper than the interpreter's stack: the caller's doing, not ours
        raise BadRequest(f"Request body nests arrays or objects more than {MAX_JSON_DEPTH} deep.") from None
    if _depth_over(body, MAX_JSON_DEPTH):
        raise BadRequest(f"Request body nests arrays or objects more than {MAX_JSON_DEPTH} deep.")
    if not isinstance(body, dict):
        raise BadRequest(f"Request body must be a JSON object, got a JSON {_json_type(body)}.")
    return body


def _depth_over(value: Any, limit: int) -> bool:
    """True when arrays and objects nest more than ``limit`` deep (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def reject_unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.", field=unknown[0]
        )


@overload
def get_int(body: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int: ...
@overload
def get_int(body: dict[str, Any], name: str, default: None, lo: int, hi: int) -> int | None: ...
def get_int(body: dict[str, Any], name: str, default: int | None, lo: int, hi: int) -> int | None:
    value = body.get(name, default)
    if value is None:
        return default
    # bool is an int in Python; true/false is never a count.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise BadRequest(f"'{name}' must be an integer, got {_json_type(value)} {json.dumps(value)}.", field=name)
    value = int(value)
    if not lo <= value <= hi:
        raise BadRequest(f"'{name}' must be between {lo} and {hi}, got {value}.", field=name)
    return value


def get_float(body: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"'{name}' must be a number, got {json.dumps(value)}.", field=name)
    if not lo <= value <= hi:
        raise BadRequest(f"'{name}' must be between {lo} and {hi}, got {value}.", field=name)
    return float(value)


def get_bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be true or false, got {json.dumps(value)}.", field=name)
    return value


def get_text(value: Any, field: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"'{field}' must be a string, got {_json_type(value)}.", field=field)
    if not value.strip():
        raise BadRequest(f"'{field}' is empty.", field=field)
    if len(value) > max_chars:
        raise BadRequest(f"'{field}' has {len(value)} characters; the limit is {max_chars}.", field=field, status=413)
    return value


def publish_schema(run: Any, input_schema: dict[str, Any], output_schema: dict[str, Any]) -> None:
    """Describe ``run`` in the server's ``/swagger.json``.

    The server refuses a run() decorated with both ``@rawhttp`` and
    inference-schema's ``@input_schema``, yet only ``@rawhttp`` lets a script
    answer 400/413 itself for bodies that are not UTF-8 or not JSON. The
    server chooses its input parser when it loads the script and builds the
    swagger document after init(), so init() registers the schema in
    inference-schema's table: the parser stays raw and swagger describes the
    API. tests/scoring checks /swagger.json over HTTP, so a server that changes
    this order is noticed.
    """
    from inference_schema import schema_util

    key = f"{run.__module__}.{run.__name__}"
    schema_util.__functions_schema__[key] = {"input_schema": input_schema, "output_schema": output_schema}


# --- the model ------------------------------------------------------------------------------------


@dataclass
class ModelSource:
    folder: Path  # what from_pretrained gets
    gguf_file: str | None  # file name inside folder, for GGUF
    name: str


def find_model(model_dir: str | os.PathLike[str] | None = None) -> ModelSource:
    """Locate the model under AZUREML_MODEL_DIR (or ``model_dir``)."""
    if model_dir is None:
        model_dir = os.environ.get("AZUREML_MODEL_DIR")
        if not model_dir:
            raise RuntimeError("AZUREML_MODEL_DIR is not set; point it at a transformers folder or a .gguf file.")
    root = Path(model_dir)
    if not root.exists():
        raise RuntimeError(f"Model path {root} does not exist.")
    name = os.environ.get("BYOM_MODEL_NAME")

    if root.is_file():
        if root.suffix != ".gguf":
            raise RuntimeError(f"Model path {root} is a file but not a .gguf file.")
        return ModelSource(root.parent, root.name, name or root.stem)

    # The folder itself, then (Azure's layout) each folder one level down.
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if (folder / "config.json").is_file():
            return ModelSource(folder, None, name or folder.name)
        ggufs = sorted(folder.glob("*.gguf"))
        if len(ggufs) > 1:
            raise RuntimeError(f"{folder} holds several .gguf files ({', '.join(g.name for g in ggufs)}); keep one.")
        if ggufs:
            return ModelSource(folder, ggufs[0].name, name or ggufs[0].stem)
    listing = ", ".join(sorted(p.name for p in root.iterdir())) or "nothing"
    raise RuntimeError(
        f"No model found in {root} (it holds: {listing}). Expected config.json with weights, or one .gguf file, "
        "in that folder or one level below."
    )


def choose_device_and_dtype() -> tuple[torch.device, torch.dtype]:
    device_name = os.environ.get("BYOM_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device_name)
    dtype_name = os.environ.get("BYOM_DTYPE") or ("bfloat16" if device.type == "cuda" else "float32")
    if dtype_name not in DTYPES:
        raise RuntimeError(f"BYOM_DTYPE must be one of {', '.join(DTYPES)}, got {dtype_name!r}.")
    return device, DTYPES[dtype_name]


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    dtype: torch.dtype  # of the activations and of the weights not quantized
    precision: str = ""  # the weights' precision where it is not dtype's name (int8)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))


def load_model(model_dir: str | os.PathLike[str] | None = None) -> LoadedModel:
    """The model as token ranks use it: in BYOM_DTYPE (float32 on a CPU), whatever BYOM_GENERATION_DTYPE says."""
    device, dtype = choose_device_and_dtype()
    return _load(find_model(model_dir), device, dtype)


def load_generation_model(model_dir: str | os.PathLike[str] | None = None) -> LoadedModel:
    """The model as generation serves it: in the precision BYOM_GENERATION_DTYPE chooses (precision.py)."""
    from . import precision

    device, _ = choose_device_and_dtype()
    name = precision.generation_dtype(device)
    lm = _load(find_model(model_dir), device, precision.load_dtype(name))
    lm.model = precision.to_generation_dtype(lm.model, name)
    release_freed_memory()
    lm.dtype = torch.float32 if name in precision.PACKED else next(lm.model.parameters()).dtype
    lm.precision = name
    return lm


def release_freed_memory() -> bool:
    """Hand back to the system the heap that loading freed: glibc keeps it otherwise (250 MB for the packed sample).

    Whether memory was handed back; off glibc (macOS, musl) nothing is done and the answer is False.
    """
    gc.collect()
    libc = _glibc()
    if libc is None:
        return False
    trim = libc.malloc_trim
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(trim(0))


def _glibc() -> ctypes.CDLL | None:
    """The process's C library where it is glibc, else None."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"; unknown to other C libraries
    except (AttributeError, ValueError, OSError):  # no confstr (Windows), or no such name
        return None
    if not version or not version.startswith("glibc"):
        return None
    try:
        return ctypes.CDLL(None)  # the symbols already loaded, the C library's among them
    except OSError:
        return None


def _load(source: ModelSource, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    threads = env_int("BYOM_TORCH_THREADS", 0) or torch_threads_per_worker()
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    extra = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(source.folder, **extra)
    model: Any = AutoModelForCausalLM.from_pretrained(source.folder, dtype=dtype, **extra)
    model.to(device)
    model.eval()
    return LoadedModel(
        model=model, tokenizer=tokenizer, name=source.name, device=device, dtype=dtype, precision=str(dtype)[6:]
    )


def torch_threads_per_worker() -> int:
    return max(1, torch.get_num_threads() // max(1, env_int("WORKER_COUNT", 1)))


def bos_token_id(tokenizer: Any) -> int:
    """The token every analysed text starts from.

    SmolLM-family tokenizers (and GPT-2's) begin documents with
    ``<|endoftext|>`` even where an instruct tokenizer declares another bos
    token (SmolLM2-Instruct declares ``<|im_start|>``), so that token wins when
    the vocabulary has it.
    """
    vocab = tokenizer.get_vocab()
    if "<|endoftext|>" in vocab:
        return int(vocab["<|endoftext|>"])
    for candidate in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    raise RuntimeError("The tokenizer has neither <|endoftext|>, a bos token nor an eos token to start texts from.")
