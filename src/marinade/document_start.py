"""How a document of a corpus begins: one convention for training text and for sampling.

A training stream is the corpus's documents one after another, each followed by the
end-of-text token. What comes *before* a document's text is the convention:

    "end-of-text"  nothing: the previous document's end-of-text is all that precedes it.
                   An unconditional sample starts from end-of-text, where the base model
                   has learnt to expect whatever followed end of text in its pretraining
                   (code, lists, maths), and a short fine-tune does not undo that.
                   Runs trained before conventions existed used it, and base models
                   sample with it.
    "bos"          the tokenizer's BOS token, where it has one distinct from end-of-text.
    "marker"       MARKER, a short text rare in pretraining, so the model has no habit
                   for what follows it and learns "a document of this corpus starts
                   here" in a few steps. It is made of ordinary tokens: no new vocabulary,
                   so LoRA adapters and GGUF exports work unchanged.

An unconditional sample starts from exactly what precedes a document inside a stream:
end-of-text, then the convention's start tokens. The run records its convention
(TrainSettings.document_start) and each checkpoint folder carries it in CONVENTION_FILE,
so a run is sampled as it was trained; a folder without the file (a base model, a run
from before) samples from end-of-text as before. Which convention is the default was
measured: see DESIGN.md and benchmarks/postable.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from marinade.errors import MarinadeError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DOCUMENT_STARTS = ("end-of-text", "bos", "marker")
LEGACY = "end-of-text"  # runs and models that do not say
MARKER = "¶"  # rare in web text, one or two tokens in byte-level vocabularies
END_OF_TEXT = "<|endoftext|>"
CONVENTION_FILE = "marinade-document-start.json"


def check_document_start(convention: str) -> None:
    if convention not in DOCUMENT_STARTS:
        raise MarinadeError(
            f"document_start must be one of {', '.join(DOCUMENT_STARTS)}, not {convention!r}"
        )


def end_token_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """Tokens that end a sample: the tokenizer's EOS and `<|endoftext|>` where it exists."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    if END_OF_TEXT in vocab:
        ids.add(vocab[END_OF_TEXT])
    return ids


def start_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token before every document: end-of-text, else BOS, else EOS."""
    vocab = tokenizer.get_vocab()
    if END_OF_TEXT in vocab:
        return vocab[END_OF_TEXT]
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise MarinadeError("the tokenizer has no end-of-text, BOS or EOS token to start from")


def document_end_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token written after every document in a training stream."""
    return next(iter(sorted(end_token_ids(tokenizer))), start_token_id(tokenizer))


def start_ids(tokenizer: PreTrainedTokenizerBase, convention: str) -> list[int]:
    """Token ids placed before each document's text in a training stream."""
    check_document_start(convention)
    if convention == "end-of-text":
        return []
    if convention == "bos":
        bos = tokenizer.bos_token_id
        if bos is None or int(bos) in end_token_ids(tokenizer) | {document_end_id(tokenizer)}:
            raise MarinadeError(
                "document_start 'bos': this tokenizer has no BOS token distinct from its "
                "end-of-text token; use 'marker'"
            )
        return [int(bos)]
    return list(tokenizer(MARKER, add_special_tokens=False)["input_ids"])


def sample_start_ids(tokenizer: PreTrainedTokenizerBase, convention: str) -> list[int]:
    """What an unconditional sample starts from: what precedes a document in a stream."""
    if convention == "end-of-text":
        return [start_token_id(tokenizer)]
    return [document_end_id(tokenizer), *start_ids(tokenizer, convention)]


def write_convention(folder: Path, convention: str) -> None:
    """Record a checkpoint's convention in its folder."""
    (folder / CONVENTION_FILE).write_text(json.dumps({"document_start": convention}) + "\n")


def read_convention(folder: Path) -> str:
    """A model folder's convention; LEGACY for a folder that does not say."""
    path = folder / CONVENTION_FILE
    if not path.exists():
        return LEGACY
    try:
        convention = json.loads(path.read_text())["document_start"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MarinadeError(f"{path}: cannot read the document start: {error}") from None
    check_document_start(convention)
    return str(convention)
