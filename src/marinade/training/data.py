"""Training data: corpora tokenised once, a held-out part set aside, blocks drawn by seed.

Each corpus becomes two token streams, training and held-out: its documents
joined with the end-of-text token between them, so short posts are packed
into blocks and the model learns where a post ends. Which documents are held
out depends only on their text (a hash), so the split stays the same across
runs and re-imports. The streams are cached per corpus version and tokenizer.

A training batch is a pure function of (seed, step): rows pick a corpus by the
phase's weights and a random window of its stream. So resuming at step s
draws exactly the batches an uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from marinade.errors import MarinadeError
from marinade.sampling import end_token_ids, start_token_id
from marinade.store import Store
from marinade.training.recipe import Phase

MIN_DOCUMENTS = 4  # at least 2 train and 2 held out
MIN_HELD_OUT = 2
EVAL_BLOCKS = 16  # held-out blocks per corpus and evaluation, at most


@dataclass
class CorpusStreams:
    name: str
    version: str
    train: torch.Tensor  # 1-D int64 token ids
    held_out: torch.Tensor
    train_documents: int
    held_out_documents: int


def corpus_version(store: Store, name: str) -> str:
    """Changes whenever a document is added to or removed from the corpus."""
    digest = hashlib.sha256()
    for row in store.db.query(
        "select dedup_key from documents where corpus = ? order by id", [name]
    ):
        digest.update(row["dedup_key"].encode())
    return digest.hexdigest()[:16]


def held_out_keys(keys: list[str], fraction: float) -> set[str]:
    """The documents set aside: those whose key hashes lowest, a `fraction` of them
    and at least MIN_HELD_OUT."""
    ranked = sorted(keys, key=lambda key: hashlib.sha256(key.encode()).hexdigest())
    count = max(MIN_HELD_OUT, round(len(keys) * fraction))
    return set(ranked[:count])


def load_streams(
    store: Store,
    cache_dir: Path,
    name: str,
    tokenizer: PreTrainedTokenizerBase,
    tokenizer_id: str,
    held_out: float,
) -> CorpusStreams:
    """A corpus's training and held-out token streams, from the cache when it has them."""
    store.corpus(name)  # unknown corpus: one clear line
    version = corpus_version(store, name)
    path = cache_dir / name / f"tokens-{tokenizer_id[:16]}-{version}-{held_out}.pt"
    if path.exists():
        cached = torch.load(path)
        return CorpusStreams(name=name, version=version, **cached)
    rows = list(
        store.db.query("select text, dedup_key from documents where corpus = ? order by id", [name])
    )
    if len(rows) < MIN_DOCUMENTS:
        raise MarinadeError(
            f"corpus {name} has {len(rows)} documents; training needs at least {MIN_DOCUMENTS} "
            "(a few are held out to measure the loss)"
        )
    set_aside = held_out_keys([row["dedup_key"] for row in rows], held_out)
    end = next(iter(sorted(end_token_ids(tokenizer))), start_token_id(tokenizer))
    train_ids: list[int] = []
    held_ids: list[int] = []
    texts = [row["text"] for row in rows]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    train_count = 0
    for row, ids in zip(rows, encoded, strict=True):
        target = held_ids if row["dedup_key"] in set_aside else train_ids
        target.extend(ids)
        target.append(end)
        train_count += target is train_ids
    streams = {
        "train": torch.tensor(train_ids, dtype=torch.int64),
        "held_out": torch.tensor(held_ids, dtype=torch.int64),
        "train_documents": train_count,
        "held_out_documents": len(rows) - train_count,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own, so two runs tokenising the same corpus never share a partial file
    handle, partial_name = tempfile.mkstemp(prefix="partial-", suffix=".pt", dir=path.parent)
    os.close(handle)
    torch.save(streams, partial_name)
    os.replace(partial_name, path)
    return CorpusStreams(name=name, version=version, **streams)  # type: ignore[arg-type]


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


def held_out_blocks(stream: torch.Tensor, block_size: int) -> torch.Tensor:
    """Consecutive held-out blocks (at most EVAL_BLOCKS), the same at every evaluation."""
    count = max(1, min(EVAL_BLOCKS, len(stream) // block_size))
    return torch.stack([_window(stream, i * block_size, block_size) for i in range(count)])


def phase_weights(phase: Phase, streams: dict[str, CorpusStreams]) -> list[tuple[str, float]]:
    """A phase's sampling weights: as given, or for a merge in proportion to each corpus's size."""
    if not phase.merge:
        return list(phase.corpora)
    sizes = [(name, float(len(streams[name].train))) for name, _ in phase.corpora]
    total = sum(size for _, size in sizes)
    return [(name, size / total) for name, size in sizes]
