"""Training data: corpora tokenised once, a held-out part set aside, blocks drawn by seed.

Each corpus becomes two token streams, training and held-out: its documents
joined with the end-of-text token between them, so short posts are packed
into blocks and the model learns where a post ends, and the run's start
convention before each (document_start.py), so it learns where one begins. What is held out is a
share of the corpus's tokens, in segments chosen by hash (training/split.py),
so a book in one file trains and four books each train on most of their
text; the split stays the same across runs and re-imports. Runs trained
before this held out whole documents ("documents"); they record that and keep
it. The streams are cached per corpus version, tokenizer and split.

A training batch is a pure function of (seed, step): rows pick a corpus by the
phase's weights and a random window of its stream. So resuming at step s
draws exactly the batches an uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from marinade.document_start import LEGACY, document_end_id, start_ids
from marinade.errors import MarinadeError
from marinade.files import partial_file
from marinade.store import Store
from marinade.store.corpora import finished
from marinade.training.recipe import HELD_OUT_SPLITS, Phase
from marinade.training.split import Segment, split_documents, tokens_needed

MIN_DOCUMENTS = 4  # the "documents" split: at least 2 train and 2 held out
MIN_HELD_OUT = 2
EVAL_BLOCKS = 16  # the "documents" split: held-out blocks per corpus and evaluation, at most
SPAN_EVAL_BLOCKS = 32  # the "spans" split: the same (standard error near 0.06 at 32)


@dataclass
class CorpusStreams:
    name: str
    version: str
    train: torch.Tensor  # 1-D int64 token ids
    held_out: torch.Tensor
    train_documents: int
    held_out_documents: int
    split: str = "documents"
    documents: int = 0
    train_segments: int = 0  # the "spans" split: segments on each side
    held_out_segments: int = 0

    def summary(self) -> dict[str, int | str]:
        """What was trained on and what held out, as `train` prints and a run records."""
        return {
            "split": self.split,
            "documents": self.documents,
            "train_documents": self.train_documents,
            "held_out_documents": self.held_out_documents,
            "train_segments": self.train_segments or self.train_documents,
            "held_out_segments": self.held_out_segments or self.held_out_documents,
            "train_tokens": len(self.train),
            "held_out_tokens": len(self.held_out),
        }


def corpus_version(store: Store, name: str) -> str:
    """Changes whenever a document is added to or removed from the corpus."""
    digest = hashlib.sha256()
    for row in store.db.query(
        f"select dedup_key from documents where corpus = ? and {finished()} order by id", [name]
    ):
        digest.update(row["dedup_key"].encode())
    return digest.hexdigest()[:16]


def held_out_keys(keys: list[str], fraction: float) -> set[str]:
    """The documents set aside: those whose key hashes lowest, a `fraction` of them
    and at least MIN_HELD_OUT."""
    ranked = sorted(keys, key=lambda key: hashlib.sha256(key.encode()).hexdigest())
    count = max(MIN_HELD_OUT, round(len(keys) * fraction))
    return set(ranked[:count])


def _read_cache(path: Path) -> dict[str, Any] | None:
    """A token cache, read as tensors and plain values only; a damaged or foreign one
    (a pickle weights_only refuses) is None and is built again."""
    import pickle

    try:
        cached = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError):
        return None
    return cached if isinstance(cached, dict) else None


def load_streams(
    store: Store,
    cache_dir: Path,
    name: str,
    tokenizer: PreTrainedTokenizerBase,
    tokenizer_id: str,
    held_out: float,
    split: str = "documents",
    min_held_out: int = 1,
    document_start: str = LEGACY,
) -> CorpusStreams:
    """A corpus's training and held-out token streams, from the cache when it has them.

    `split` "spans" holds out `held_out` of the tokens and at least `min_held_out`
    (one evaluation block); "documents" is the whole-document split of older runs.
    `document_start` (document_start.py) says what is placed before each document."""
    if split not in HELD_OUT_SPLITS:
        raise MarinadeError(f"held-out split must be 'spans' or 'documents', not {split!r}")
    store.corpus(name)  # unknown corpus: one clear line
    version = corpus_version(store, name)
    suffix = "" if split == "documents" else f"-spans{min_held_out}"
    if document_start != LEGACY:
        suffix += f"-start-{document_start}"
    path = cache_dir / name / f"tokens-{tokenizer_id[:16]}-{version}-{held_out}{suffix}.pt"
    cached = _read_cache(path) if path.exists() else None
    if cached is not None:
        return CorpusStreams(name=name, version=version, split=split, **cached)
    rows = list(
        store.db.query(
            f"select text, dedup_key from documents where corpus = ? and {finished()} order by id",
            [name],
        )
    )
    end = document_end_id(tokenizer)
    start = start_ids(tokenizer, document_start)
    if split == "documents":
        streams = _document_split(name, rows, tokenizer, start, end, held_out)
    else:
        streams = _span_split(name, rows, tokenizer, start, end, held_out, min_held_out)
    # a name of its own, so two runs tokenising the same corpus never share a partial file
    with partial_file(path, suffix=".pt") as partial:
        torch.save(streams, partial)
    return CorpusStreams(name=name, version=version, split=split, **streams)  # type: ignore[arg-type]


def _span_split(
    name: str,
    rows: list[dict],
    tokenizer: PreTrainedTokenizerBase,
    start: list[int],
    end: int,
    held_out: float,
    min_held_out: int,
) -> dict[str, object]:
    """Streams of the "spans" split: segments joined in corpus order, `start` before each
    document's first segment and the end-of-text token after its last."""
    texts, keys = [row["text"] for row in rows], [row["dedup_key"] for row in rows]
    chosen = split_documents(texts, keys, tokenizer, held_out, min_held_out)
    total = chosen.train_tokens + chosen.held_out_tokens
    needed = tokens_needed(min_held_out)
    if total < needed or chosen.held_out_tokens < min_held_out:
        raise MarinadeError(
            f"corpus {name} has {total} tokens; training needs at least {needed} "
            f"(one held-out block of {min_held_out} tokens to measure the loss, and as many "
            "to train on): import more text, or train with a smaller --block-size"
        )

    def stream(part: list[Segment]) -> list[int]:
        ids: list[int] = []
        for segment in part:
            if segment.starts_document:
                ids.extend(start)
            ids.extend(segment.ids)
            if segment.ends_document:
                ids.append(end)
        return ids

    held_documents = {segment.document for segment in chosen.held_out}
    train_documents = {segment.document for segment in chosen.train}
    return {
        "train": torch.tensor(stream(chosen.train), dtype=torch.int64),
        "held_out": torch.tensor(stream(chosen.held_out), dtype=torch.int64),
        "documents": len(rows),
        "train_documents": len(train_documents),
        "held_out_documents": len(held_documents),
        "train_segments": len(chosen.train),
        "held_out_segments": len(chosen.held_out),
    }


def _document_split(
    name: str,
    rows: list[dict],
    tokenizer: PreTrainedTokenizerBase,
    start: list[int],
    end: int,
    held_out: float,
) -> dict[str, object]:
    """Streams of the "documents" split that runs trained before spans keep."""
    if len(rows) < MIN_DOCUMENTS:
        raise MarinadeError(
            f"corpus {name} has {len(rows)} documents; training needs at least {MIN_DOCUMENTS} "
            "(a few are held out to measure the loss)"
        )
    set_aside = held_out_keys([row["dedup_key"] for row in rows], held_out)
    train_ids: list[int] = []
    held_ids: list[int] = []
    texts = [row["text"] for row in rows]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    train_count = 0
    for row, ids in zip(rows, encoded, strict=True):
        target = held_ids if row["dedup_key"] in set_aside else train_ids
        target.extend(start)
        target.extend(ids)
        target.append(end)
        train_count += target is train_ids
    return {
        "train": torch.tensor(train_ids, dtype=torch.int64),
        "held_out": torch.tensor(held_ids, dtype=torch.int64),
        "documents": len(rows),
        "train_documents": train_count,
        "held_out_documents": len(rows) - train_count,
    }


def _window(stream: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """`length` tokens from `start`, wrapping around a stream shorter than a block."""
    if len(stream) >= start + length:
        return stream[start : start + length]
    repeats = -(-(start + length) // len(stream))
    return stream.repeat(repeats)[start : start + length]


def draw_batch(
    streams: dict[str, CorpusStreams],
    weights: list[tuple[str, float]],
    batch_size: int,
    block_size: int,
    seed: int,
    step: int,
) -> torch.Tensor:
    """[batch_size, block_size] token ids for global optimizer step `step` (and micro-batch)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    names = [name for name, _ in weights]
    probabilities = torch.tensor([weight for _, weight in weights], dtype=torch.float64)
    picks = torch.multinomial(probabilities, batch_size, replacement=True, generator=generator)
    rows = []
    for pick in picks.tolist():
        stream = streams[names[pick]].train
        span = max(1, len(stream) - block_size)
        start = int(torch.randint(0, span, (1,), generator=generator))
        rows.append(_window(stream, start, block_size))
    return torch.stack(rows)


def held_out_blocks(
    stream: torch.Tensor, block_size: int, split: str = "documents"
) -> torch.Tensor:
    """The held-out blocks a run is measured on, the same at every evaluation.

    The "documents" split of older runs: its first EVAL_BLOCKS consecutive blocks.
    "spans": up to SPAN_EVAL_BLOCKS blocks spread evenly over the whole held-out
    part, so a book's loss is not measured on its first pages only."""
    if split == "documents":
        count = max(1, min(EVAL_BLOCKS, len(stream) // block_size))
        return torch.stack([_window(stream, i * block_size, block_size) for i in range(count)])
    count = max(1, min(SPAN_EVAL_BLOCKS, len(stream) // block_size))
    spare = max(0, len(stream) - count * block_size)  # shared out as gaps between blocks
    starts = [i * block_size + (spare * i) // max(1, count - 1) for i in range(count)]
    return torch.stack([_window(stream, start, block_size) for start in starts])


def phase_weights(phase: Phase, streams: dict[str, CorpusStreams]) -> list[tuple[str, float]]:
    """A phase's sampling weights: as given, or for a merge in proportion to each corpus's size.
    Beside ratings (`mine=0.3,ratings=0.7`) the corpora's weights are scaled to add up to 1:
    the loop weighs the corpora's loss and the ratings' loss itself."""
    if phase.ratings_source():
        corpora = [(name, weight) for name, weight in phase.corpora if name in streams]
        total = sum(weight for _, weight in corpora)
        return [(name, weight / total) for name, weight in corpora]
    if not phase.merge:
        return list(phase.corpora)
    sizes = [(name, float(len(streams[name].train))) for name, _ in phase.corpora]
    total = sum(size for _, size in sizes)
    return [(name, size / total) for name, size in sizes]
