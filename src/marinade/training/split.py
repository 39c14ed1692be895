"""Which text of a corpus is held out: a share of its tokens, chosen by hash from segments.

A corpus is often one long text (a book as one file) or a few books, so holding
out whole documents either refuses to train (one document) or hides whole books
from the model. Instead every document is cut into segments: a short post stays
whole; a long document is cut at paragraph boundaries into pieces of at most
SEGMENT_TOKENS tokens, fewer in a small corpus (a paragraph longer than that is
cut between tokens). Segments are ranked by a hash of (document key, position) and the
lowest are held out until `fraction` of the corpus's tokens, and at least one
evaluation block, are set aside (more where a small fraction would leave
the loss measured on one or two blocks). The choice depends only on the text, so it is
the same across runs and re-imports, and every book of a corpus keeps most of
its text for training.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `runs show` describes a split without loading transformers
    from transformers import PreTrainedTokenizerBase

SEGMENT_TOKENS = 256  # a long document is cut into segments of at most about this many tokens
MIN_SEGMENT_TOKENS = 32  # ... and at least this many, where held-out text is scarce
EVAL_BLOCKS = 8  # blocks the held-out part should hold, where the corpus is large enough
_PARAGRAPH_END = re.compile(r"\n[ \t\r]*\n\s*")  # a blank line ends a paragraph


@dataclass
class Segment:
    document: int  # index of its document in the corpus
    position: int  # its place within that document
    ids: list[int]
    key: str  # what ranks it: a hash of the document's key and its position
    ends_document: bool  # the document's last segment: end-of-text follows it
    starts_document: bool = False  # its first: the run's document start goes before it


@dataclass
class Split:
    train: list[Segment]
    held_out: list[Segment]

    @property
    def train_tokens(self) -> int:
        return sum(len(segment.ids) for segment in self.train)

    @property
    def held_out_tokens(self) -> int:
        return sum(len(segment.ids) for segment in self.held_out)


def paragraphs(text: str) -> list[str]:
    """`text` cut after each blank line; joined again they are exactly `text`."""
    pieces, start = [], 0
    for match in _PARAGRAPH_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def split_documents(
    texts: Sequence[str],
    keys: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    fraction: float,
    min_held_out: int,
) -> Split:
    """A corpus's documents cut into segments and split into training and held-out parts.

    Segments are at most SEGMENT_TOKENS long, and at most half of what is to be held
    out, so a small text (a short story trained in blocks of 64) does not lose most
    of itself to one big held-out segment."""
    whole = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    target = held_out_target(sum(len(ids) for ids in whole), fraction, min_held_out)
    size = min(SEGMENT_TOKENS, max(MIN_SEGMENT_TOKENS, target // 2))
    segments = segment_documents(texts, keys, tokenizer, size, whole)
    return split_segments(segments, fraction, min_held_out)


def segment_documents(
    texts: Sequence[str],
    keys: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    max_tokens: int = SEGMENT_TOKENS,
    whole: list[list[int]] | None = None,
) -> list[Segment]:
    """Every document as one segment or, when longer than `max_tokens`, as several
    (`whole`: the documents' tokens, when the caller has them already)."""
    if whole is None:
        whole = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    segments: list[Segment] = []
    for index, (text, key, ids) in enumerate(zip(texts, keys, whole, strict=True)):
        pieces = [ids] if len(ids) <= max_tokens else _cut(text, tokenizer, max_tokens)
        for position, piece in enumerate(pieces):
            digest = hashlib.sha256(f"{key}:{position}".encode()).hexdigest()
            last = position == len(pieces) - 1
            segments.append(Segment(index, position, piece, digest, last, position == 0))
    return segments


def _cut(text: str, tokenizer: PreTrainedTokenizerBase, max_tokens: int) -> list[list[int]]:
    """A long text's tokens in pieces of at most `max_tokens`, cut at paragraph ends
    where the paragraphs allow it."""
    encoded = tokenizer(paragraphs(text), add_special_tokens=False)["input_ids"]
    pieces: list[list[int]] = []
    current: list[int] = []
    for ids in encoded:
        if current and len(current) + len(ids) > max_tokens:
            pieces.append(current)
            current = []
        current = current + ids
        while len(current) > max_tokens:  # one paragraph longer than a segment
            pieces.append(current[:max_tokens])
            current = current[max_tokens:]
    if current:
        pieces.append(current)
    return pieces


def held_out_target(total: int, fraction: float, block: int) -> int:
    """How many tokens to hold out: `fraction` of them, but enough for EVAL_BLOCKS blocks
    where that is at most a tenth of the corpus, and never less than one block.

    One block's loss varies a lot (SmolLM2 on 29 blocks of 256 tokens of plain
    prose: 0.32 between blocks), so a held-out part of one or two blocks would
    make a noisy curve; eight give a standard error near 0.11."""
    return max(math.ceil(total * fraction), min(EVAL_BLOCKS * block, total // 10), block)


def split_segments(segments: list[Segment], fraction: float, min_held_out: int) -> Split:
    """Hold out the lowest-hashed segments until held_out_target tokens (at least
    `min_held_out`, one block) are set aside, never leaving fewer than `min_held_out`
    tokens to train on. Both parts keep the corpus's order."""
    total = sum(len(segment.ids) for segment in segments)
    target = held_out_target(total, fraction, min_held_out)
    chosen: set[int] = set()
    held = 0
    for index in sorted(range(len(segments)), key=lambda i: segments[i].key):
        if held >= target:
            break
        size = len(segments[index].ids)
        if total - held - size < min_held_out:
            continue  # taking it would leave too little to train on
        chosen.add(index)
        held += size
    train = [s for i, s in enumerate(segments) if i not in chosen]
    held_out = [s for i, s in enumerate(segments) if i in chosen]
    if held < min_held_out and train:
        # segments too big to take whole (a few long posts): the end of the lowest-ranked
        # training segment makes up the rest
        donor = min(train, key=lambda segment: segment.key)
        need = min(min_held_out - held, len(donor.ids) - 1)
        piece = replace(donor, ids=donor.ids[-need:], starts_document=False)
        train[train.index(donor)] = replace(donor, ids=donor.ids[:-need], ends_document=False)
        held_out.append(piece)
        held_out.sort(key=lambda segment: (segment.document, segment.position))
    return Split(train=train, held_out=held_out)


def tokens_needed(min_held_out: int) -> int:
    """The fewest tokens a corpus needs: one held-out block and as much to train on."""
    return 2 * min_held_out


def describe_split(corpus: str, summary: dict[str, Any]) -> str:
    """One line of what a corpus trains on and holds out (`CorpusStreams.summary()`)."""
    trained, held = summary["train_tokens"], summary["held_out_tokens"]
    share = 100 * held / max(1, trained + held)
    if summary["split"] == "documents":
        train_count, held_count = summary["train_documents"], summary["held_out_documents"]
        head = f"{train_count + held_count} documents"
    else:
        train_count, held_count = summary["train_segments"], summary["held_out_segments"]
        head = f"{summary['documents']} documents in {train_count + held_count} segments"
    return (
        f"{corpus}: {head}; {train_count} trained on ({trained:,} tokens), "
        f"{held_count} held out ({held:,} tokens, {share:.1f}%)"
    )
