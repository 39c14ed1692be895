"""A loaded model as one GGUF file, for llama.cpp, Ollama, LM Studio and `llm`.

GGUF is llama.cpp's format: metadata (architecture sizes, the tokenizer) then every
tensor, named the llama.cpp way (`blk.0.attn_q.weight`) and stored in one of ggml's types.
The `gguf` package (llama.cpp's own Python half) does the file format, the names
(`get_tensor_name_map`) and the quantizing (`gguf.quants.quantize`); what is left here is
what llama.cpp's `convert_hf_to_gguf.py` does for the two families marinade trains:

- Llama (SmolLM2, the embedded default, and Llama-style hub models): llama.cpp applies
  rotary embeddings to interleaved pairs and Hugging Face to two halves, so each head's
  rows of q_proj and k_proj are reordered (`permute`, llama.cpp's `LlamaModel.permute`;
  transformers' GGUF reader undoes exactly this). Tied embeddings write no output.weight.
- GPT-2: its Conv1D layers store weights as (in, out); GGUF wants (out, in) like Linear.

The tokenizer goes in as llama.cpp's "gpt2" (byte-level BPE) vocabulary: tokens, merges,
token types, special ids and chat template (via gguf's SpecialVocab, which reads the
tokenizer folder the way the converter does) and the pre-tokenizer's name, which tells
llama.cpp how to split text before the merges.

Types: f32/f16/bf16 store 2-D weights as such; q8_0 and q4_0 quantize them in blocks of
32. 1-D tensors (norms, biases) and GPT-2's position table stay f32, a weight whose rows
are not a multiple of 32 falls back to f16 (as the converter does), and with q4_0 the
token embeddings and output stay q8_0 (the embedded SmolLM2 file does the same for its
4-bit type): they hurt most when coarse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gguf
import numpy as np

from marinade.errors import MarinadeError
from marinade.files import partial_file

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ARCHITECTURES = {"llama": gguf.MODEL_ARCH.LLAMA, "gpt2": gguf.MODEL_ARCH.GPT2}
GGML = gguf.GGMLQuantizationType
FILE_TYPES = {
    "f32": (GGML.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (GGML.F16, gguf.LlamaFileType.MOSTLY_F16),
    "bf16": (GGML.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "q8_0": (GGML.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (GGML.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
}
DEFAULT_TYPE = "q8_0"
# The pre-tokenizer of vocabularies whose tokenizer.json no longer says it: transformers'
# GGUF reader turns SmolLM2's "smollm" (digits split one by one) into plain byte-level,
# so the embedded model's converted folder would read as "gpt-2". Keyed by the sha256 of
# the token list, joined by newlines.
KNOWN_VOCABULARIES = {
    "d1f2ce856b324081b621d9e2e8dbd22879f462329f3fd4aa39fa758dddb2ce55": "smollm",
}
# Llama 3's split, as tokenizer.json writes it (llama.cpp calls it "llama-bpe").
LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"


@dataclass(frozen=True)
class Exported:
    path: Path
    architecture: str
    tensor_type: str
    tensors: int
    pre_tokenizer: str


def check_tensor_type(tensor_type: str) -> None:
    if tensor_type not in FILE_TYPES:
        raise MarinadeError(f"--type must be one of {', '.join(FILE_TYPES)}, not {tensor_type!r}")


def check_architecture(model_type: str) -> None:
    """One line for a model GGUF export cannot write, before any weights are read."""
    if model_type not in ARCHITECTURES:
        raise MarinadeError(
            f"cannot write a {model_type} model as GGUF; --format gguf writes "
            f"{', '.join(ARCHITECTURES)} models (--format hf writes any)"
        )


def write_gguf(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tokenizer_folder: Path,
    path: Path,
    name: str,
    tensor_type: str = DEFAULT_TYPE,
) -> Exported:
    """Write `model` (LoRA already merged) and its tokenizer (saved in `tokenizer_folder`)
    to `path`, through a partial file so an interrupted export leaves nothing half-made."""
    check_tensor_type(tensor_type)
    config = model.config
    check_architecture(config.model_type)
    arch = ARCHITECTURES[config.model_type]
    with partial_file(path, prefix=f".{path.stem}-", suffix=".gguf.partial") as partial:
        writer = gguf.GGUFWriter(partial, gguf.MODEL_ARCH_NAMES[arch])
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(name)
        writer.add_file_type(FILE_TYPES[tensor_type][1])
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        (_llama_sizes if arch == gguf.MODEL_ARCH.LLAMA else _gpt2_sizes)(writer, config)
        pre = add_tokenizer(writer, tokenizer, tokenizer_folder, config.vocab_size)
        count = 0
        for tensor_name, data in gguf_tensors(model, arch):
            qtype = tensor_ggml_type(tensor_name, data, tensor_type)
            writer.add_tensor(tensor_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
            count += 1
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return Exported(path, config.model_type, tensor_type, count, pre)


def _llama_sizes(writer: gguf.GGUFWriter, config: Any) -> None:
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise MarinadeError(
            f"cannot write this Llama model as GGUF: its rope scaling {rope['rope_type']!r} "
            "is not one marinade writes (only plain rotary embeddings)"
        )
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    theta = rope.get("rope_theta", getattr(config, "rope_theta", None) or 10000.0)
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(int(config.num_hidden_layers))
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.num_key_value_heads or heads))
    writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(config.vocab_size))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


def _gpt2_sizes(writer: gguf.GGUFWriter, config: Any) -> None:
    writer.add_context_length(int(config.n_positions))
    writer.add_embedding_length(int(config.n_embd))
    writer.add_feed_forward_length(int(config.n_inner or 4 * config.n_embd))
    writer.add_block_count(int(config.n_layer))
    writer.add_head_count(int(config.n_head))
    writer.add_layer_norm_eps(float(config.layer_norm_epsilon))
    writer.add_vocab_size(int(config.vocab_size))


def gguf_tensors(model: PreTrainedModel, arch: gguf.MODEL_ARCH) -> Iterator[tuple[str, np.ndarray]]:
    """(GGUF name, float32 array in llama.cpp's layout) for every weight of `model`.
    named_parameters() lists a tied output layer once, under the embeddings' name."""
    config = model.config
    blocks = config.num_hidden_layers
    names = gguf.get_tensor_name_map(arch, blocks)
    for hf_name, parameter in model.named_parameters():
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise MarinadeError(f"cannot write {hf_name} as GGUF: llama.cpp has no name for it")
        data = _float32(parameter)
        if arch == gguf.MODEL_ARCH.LLAMA:
            heads = config.num_attention_heads
            kv_heads = config.num_key_value_heads or heads
            if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
                data = permute(data, heads)
            elif hf_name.endswith(("k_proj.weight", "k_proj.bias")):
                data = permute(data, kv_heads)
        elif data.ndim == 2 and hf_name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            data = np.ascontiguousarray(data.T)  # Conv1D (in, out) -> (out, in)
        yield gguf_name, data


def permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """Each head's rows from two halves (Hugging Face's rotary layout) to interleaved pairs
    (llama.cpp's): rows [a0..a31, b0..b31] become [a0, b0, a1, b1, ...]."""
    shape = weights.shape
    return np.ascontiguousarray(
        weights.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


def _float32(parameter: torch.Tensor) -> np.ndarray:
    import torch

    return parameter.detach().to(torch.float32).cpu().numpy()


def tensor_ggml_type(name: str, data: np.ndarray, tensor_type: str) -> GGML:
    """The type one tensor is stored in, for the file's `tensor_type` (see the top)."""
    wanted = FILE_TYPES[tensor_type][0]
    if data.ndim < 2 or name.startswith("position_embd"):
        return GGML.F32
    if wanted == GGML.Q4_0 and name.startswith(("token_embd", "output.")):
        wanted = GGML.Q8_0
    if wanted in (GGML.Q8_0, GGML.Q4_0) and data.shape[-1] % 32:
        return GGML.F16
    return wanted


def add_tokenizer(
    writer: gguf.GGUFWriter,
    tokenizer: PreTrainedTokenizerBase,
    folder: Path,
    vocab_size: int,
) -> str:
    """A byte-level BPE tokenizer as llama.cpp's "gpt2" vocabulary; returns the
    pre-tokenizer name written. Rows the model has beyond the tokenizer are padding."""
    tokenizer_json = _tokenizer_json(folder)
    if tokenizer_json.get("model", {}).get("type") != "BPE" or not _byte_level(tokenizer_json):
        raise MarinadeError(
            f"cannot write this tokenizer as GGUF: {folder} holds a "
            f"{tokenizer_json.get('model', {}).get('type', 'unknown')} tokenizer that is not "
            "byte-level BPE (GPT-2 style), the one kind marinade writes"
        )
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for index in range(max(vocab_size, len(by_id))):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            tokens.append(by_id[index])
            types.append(
                gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED
            )
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    pre = pre_tokenizer_name(tokenizer_json, tokens)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_add_space_prefix(False)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise MarinadeError(f"cannot write this tokenizer as GGUF: {folder} has no BPE merges")
    special.add_to_gguf(writer, quiet=True)
    if "bos" not in special.add_special_token:
        writer.add_add_bos_token(False)  # marinade never adds BOS to a prompt by itself
    return pre


def _tokenizer_json(folder: Path) -> dict:
    try:
        return dict(json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise MarinadeError(
            f"cannot write this tokenizer as GGUF: {folder / 'tokenizer.json'}: {error}"
        ) from None


def _steps(part: dict | None) -> list[dict]:
    if not part:
        return []
    return list(part.get("pretokenizers", [part]))


def _byte_level(tokenizer_json: dict) -> bool:
    return any(step.get("type") == "ByteLevel" for step in _steps(tokenizer_json["pre_tokenizer"]))


def pre_tokenizer_name(tokenizer_json: dict, tokens: list[str]) -> str:
    """llama.cpp's name for how this tokenizer splits text before its merges."""
    digest = hashlib.sha256("\n".join(tokens).encode()).hexdigest()
    if digest in KNOWN_VOCABULARIES:
        return KNOWN_VOCABULARIES[digest]
    parts = _steps(tokenizer_json["pre_tokenizer"])
    steps = [part.get("type") for part in parts]
    first = parts[0]
    if steps == ["ByteLevel"] and first.get("use_regex", True):
        return "gpt-2"
    if steps == ["Digits", "ByteLevel"] and first.get("individual_digits"):
        return "smollm"
    if steps == ["Split", "ByteLevel"] and first.get("pattern", {}).get("Regex") == LLAMA3_SPLIT:
        return "llama-bpe"
    raise MarinadeError(
        "cannot write this tokenizer as GGUF: its pre-tokenizer "
        f"({' + '.join(str(s) for s in steps)}) is not one marinade can name for llama.cpp "
        "(gpt-2, smollm, llama-bpe)"
    )


def modelfile_text(gguf_name: str, stops: list[str], temperature: float) -> str:
    """An Ollama Modelfile: the file beside it, the prompt passed as it is (marinade's
    models continue text; they are not chat models), its stop tokens, its temperature."""
    lines = [
        f"FROM ./{gguf_name}",
        "# The prompt goes to the model as it is: it continues your text, as in marinade.",
        'TEMPLATE """{{ .Prompt }}"""',
        *(f"PARAMETER stop {json.dumps(stop)}" for stop in stops),
        f"PARAMETER temperature {temperature:g}",
    ]
    return "\n".join(lines) + "\n"


def readme_text(
    name: str, gguf_name: str, tensor_type: str, temperature: float, why: str, start: str
) -> str:
    """How to run the file in each tool, one line each."""
    ollama_name = name.lower().replace("@", "-")
    return "\n".join(
        [
            f"# {name}",
            "",
            f"`{gguf_name}` is the marinade run {name} (LoRA merged in), as GGUF ({tensor_type}).",
            f"Temperature {temperature:g}: {why}.",
            "It continues text: give it the start of a post. marinade starts a sample with "
            f"no prompt from {json.dumps(start)}.",
            "",
            f"- Ollama: `ollama create {ollama_name} -f Modelfile`, then "
            f'`ollama run {ollama_name} "The first words"`',
            f'- llama.cpp: `llama-cli -m {gguf_name} -p "The first words" -n 60 '
            f"--temp {temperature:g}`",
            f"- LM Studio: `lms import {gguf_name}` (or drop the file on My Models), then load "
            f"it and use its text-completion mode at temperature {temperature:g}",
            "",
        ]
    )
