"""Turning a GGUF checkpoint into a transformers folder.

A GGUF file (llama.cpp's format) holds quantized weights, the tokenizer and
the hyper-parameters in one file. transformers can load it with
``from_pretrained(folder, gguf_file=name)``, but it dequantizes every tensor
and re-parses the file's metadata (tens of thousands of vocabulary strings)
each time, which takes tens of seconds. Registering a GGUF model with
packaging does that work once and stores the result as a normal folder
(``model.safetensors``, ``config.json``, ``generation_config.json``, tokenizer
files) that a deployment loads in about a second.

:func:`inspect_gguf` checks a file quickly, from its metadata only, so that a
bad file is refused before anything is copied.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidInput, Unsupported
from .progress import Progress, no_progress

GGUF_MAGIC = b"GGUF"

# llama.cpp spells some architectures differently from the keys of
# transformers' GGUF config mapping; transformers renames them the same way
# when it loads the file (modeling_gguf_pytorch_utils.load_gguf_checkpoint).
_ARCHITECTURE_ALIASES = {
    "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe",
    "gpt-oss": "gpt_oss",
    "minimax-m2": "minimax_m2",
    "t5encoder": "t5",
}


def inspect_gguf(path: Path | str, *, for_transformers: bool = True) -> dict[str, Any]:
    """Read a GGUF file's metadata and check that it holds a model.

    Returns the facts worth recording on a model version: ``architecture``
    (as llama.cpp names it, "llama"), ``name``, ``file_type`` ("MOSTLY_Q4_1"),
    ``tensor_count``, ``parameter_count``, ``tensor_types`` ({"Q4_1": 210,
    ...}), ``context_length``, ``vocab_size``, ``license`` and
    ``has_chat_template``; a fact the file does not state is None.

    Raises :class:`InvalidInput` when ``path`` is missing, is not a GGUF file,
    is damaged, holds no tensors or something other than a model (a LoRA
    adapter, a vocabulary), or, with ``for_transformers``, holds an
    architecture transformers cannot load. No tensor data is read.
    """
    import gguf

    path = Path(path)
    _check_is_gguf(path)
    try:
        reader = gguf.GGUFReader(path)
    except Exception as error:  # the reader raises anything from ValueError to struct and numpy errors
        raise InvalidInput(
            f"{path} is not a readable GGUF file ({type(error).__name__}: {error}).",
            hint="The file may be truncated or damaged: download or copy it again.",
        ) from error

    def value(key: str) -> object | None:
        found = reader.get_field(key)
        return None if found is None else found.contents()

    architecture = value("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise InvalidInput(
            f"{path} has no general.architecture in its metadata, so it does not describe a model.",
            hint="Pass a GGUF model checkpoint, such as one written by llama.cpp's convert_hf_to_gguf.py.",
        )
    kind = value("general.type")
    if kind is not None and kind != "model":
        raise InvalidInput(
            f"{path} is a GGUF {kind}, not a model.",
            hint="Register the base model's GGUF file; adapters cannot be packaged on their own.",
        )
    if not reader.tensors:
        raise InvalidInput(
            f"{path} holds no tensors (a vocabulary-only GGUF file?), so there are no weights to register.",
            hint="Pass the GGUF file that holds the model's weights.",
        )
    if for_transformers and not _transformers_loads(architecture):
        raise InvalidInput(
            f"{path} holds a '{architecture}' model, an architecture transformers cannot load from GGUF.",
            hint="Register it without packaging, to serve it with a scoring script of your own (llama.cpp, for one).",
        )

    file_type = value("general.file_type")
    file_type_name = None
    if isinstance(file_type, int):
        with contextlib.suppress(ValueError):
            file_type_name = gguf.LlamaFileType(file_type).name
    context_length = value(f"{architecture}.context_length")
    vocab_size = value(f"{architecture}.vocab_size")
    if vocab_size is None:
        tokens = reader.get_field("tokenizer.ggml.tokens")
        vocab_size = None if tokens is None else len(tokens.data)
    name = value("general.name")
    license_ = value("general.license")
    return {
        "architecture": architecture,
        "name": name if isinstance(name, str) else None,
        "file_type": file_type_name,
        "tensor_count": len(reader.tensors),
        "parameter_count": sum(int(tensor.n_elements) for tensor in reader.tensors),
        "tensor_types": dict(Counter(tensor.tensor_type.name for tensor in reader.tensors)),
        "context_length": context_length if isinstance(context_length, int) else None,
        "vocab_size": vocab_size if isinstance(vocab_size, int) else None,
        "license": license_ if isinstance(license_, str) else None,
        "has_chat_template": reader.get_field("tokenizer.chat_template") is not None,
    }


def find_gguf(folder: Path | str) -> Path | None:
    """The one ``.gguf`` file at the top of ``folder``; None when there is none.

    Raises :class:`InvalidInput` when there are several, since which one is
    the model cannot be guessed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".gguf")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise InvalidInput(
            f"{folder} holds {len(found)} GGUF files ({names}); byom cannot tell which one is the model.",
            hint="Pass the path of the one .gguf file to register.",
        )
    return found[0] if found else None


def package_gguf(gguf_file: Path | str, out_dir: Path | str, progress: Progress = no_progress) -> None:
    """Write a transformers folder for the causal language model in ``gguf_file``.

    ``out_dir`` must be empty or absent (the caller gives a fresh temporary
    folder and renames it into place once this returns). It receives
    ``model.safetensors``, ``config.json``, ``generation_config.json`` and
    the tokenizer files.

    Weights are stored in float32, the type transformers dequantizes GGUF
    blocks into, so the folder holds the very numbers the GGUF-loaded model
    computes with: a scoring script loading it in float32 on CPU gets that
    model's logits bit for bit, and one loading it in bfloat16 on a GPU
    rounds each weight once, as it would from the GGUF. Storing bfloat16
    would halve the disk but round every weight before any script sees it (a
    4-bit code times a float16 scale plus a float16 offset does not fit its
    8-bit mantissa). The cost is 4 bytes per parameter on disk, and a peak
    memory of about twice the float32 model while transformers loads it.
    """
    gguf_file = Path(gguf_file)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise InvalidInput(f"{out_dir} is not empty.", hint="Package into a new, empty folder.")

    progress(f"Reading the metadata of {gguf_file.name}", 0.0)
    info = inspect_gguf(gguf_file)

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    _check_accelerate()
    source = dict(pretrained_model_name_or_path=str(gguf_file.parent), gguf_file=str(gguf_file))
    progress("Reading the model's configuration", 0.12)
    try:
        config = AutoConfig.from_pretrained(**source)
    except ValueError as error:  # transformers' word for "this GGUF is not one I can read"
        raise InvalidInput(
            f"transformers cannot read {gguf_file} ({error}).",
            hint="Register it without packaging, to serve it with a scoring script of your own.",
        ) from error
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise InvalidInput(
            f"{gguf_file} holds a '{config.model_type}' model, which is not a causal language model; "
            "packaging supports causal language models only.",
            hint="Register it without packaging.",
        )

    progress("Reading the tokenizer", 0.25)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(**source)
    # A GGUF carries no model_max_length, so transformers writes its "no
    # limit" sentinel (1e30); scoring scripts read it to size their windows.
    if tokenizer.model_max_length > config.max_position_embeddings:
        tokenizer.model_max_length = config.max_position_embeddings

    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(info["tensor_types"].items()))
    progress(f"Dequantizing {info['tensor_count']} tensors ({kinds}) to float32", 0.4)
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(
            **source,
            config=config,
            dtype=torch.float32,
            # Unpack every tensor into plain float32 weights, even where a GGUF
            # matmul kernel is installed: packed blocks cannot be saved.
            quantization_config=GgufConfig(dequantize=True),
        )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)

    size_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
    progress(f"Writing model.safetensors ({size_mb:.0f} MB) and the tokenizer", 0.9)
    save_transformers_folder(model, tokenizer, out_dir)
    progress(f"Packaged {gguf_file.name} into {out_dir}", 1.0)


def save_transformers_folder(model: Any, tokenizer: Any, out_dir: Path) -> None:
    """``save_pretrained`` both into ``out_dir``, readable by other users.

    safetensors writes the weights through a private temporary file (mode
    0600), so a model server running as another user could not read them:
    they get the mode of the other files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    mode = (out_dir / "config.json").stat().st_mode & 0o777
    for weights in out_dir.glob("*.safetensors"):
        weights.chmod(mode)


def _check_is_gguf(path: Path) -> None:
    if not path.exists():
        raise InvalidInput(f"{path} does not exist.", hint="Pass the path of a .gguf file.")
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder, not a GGUF file.", hint="Pass the path of the .gguf file inside it.")
    with path.open("rb") as handle:
        magic = handle.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise InvalidInput(
            f"{path} is not a GGUF file (bad magic: it starts with {magic!r}, not {GGUF_MAGIC!r}).",
            hint="Pass a .gguf model file, or register the file as it is (--no-package).",
        )


def _transformers_loads(architecture: str) -> bool:
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    legacy = set(GGUF_CONFIG_MAPPING) - {"general", "tokenizer"}
    if _ARCHITECTURE_ALIASES.get(architecture, architecture) in legacy:
        return True
    try:
        # transformers' newer GGUF loader, which keeps weights packed, covers a few more.
        from transformers.integrations.gguf.utils import is_gguf_arch_supported
    except ImportError:
        return False
    return is_gguf_arch_supported(architecture)


def _check_accelerate() -> None:
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise Unsupported(
            "Packaging a GGUF file needs the 'accelerate' package, which transformers uses to load GGUF weights.",
            hint="Install it with: pip install 'accelerate>=1.10,<2'",
        )


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' own progress bars: progress goes through our callback."""
    from transformers.utils import logging

    hf_logging: Any = logging  # its functions carry no annotations
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
