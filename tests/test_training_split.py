"""Held-out text by span: books train as they are, every book keeps most of its text,
the choice is reproducible, and a corpus too small says how many tokens it needs."""

from __future__ import annotations

import hashlib

import pytest
import torch
from transformers import AutoTokenizer

from marinade.errors import MarinadeError
from marinade.training.data import SPAN_EVAL_BLOCKS, held_out_blocks, load_streams
from marinade.training.split import (
    SEGMENT_TOKENS,
    held_out_target,
    paragraphs,
    segment_documents,
    split_documents,
    split_segments,
)

WORDS = "the lamplighter walked along the quay at dusk and lit every lamp while rain fell".split()


def book(seed: int, paragraph_count: int = 120) -> str:
    """A plain book: chapters of paragraphs of a few sentences, about 50 KB at 120."""
    out = [f"THE BOOK NUMBER {seed}\n\n"]
    for p in range(paragraph_count):
        if p % 20 == 0:
            out.append(f"CHAPTER {p // 20 + 1}\n\n")
        words = [WORDS[(seed * 7 + p * 3 + i) % len(WORDS)] for i in range(70)]
        out.append(" ".join(words).capitalize() + ".\n\n")
    return "".join(out)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_paragraphs_join_back_to_the_text():
    text = "One.\n\nTwo, still two.\r\n\r\nThree\n  \n\n\nFour\nand four."
    parts = paragraphs(text)
    assert "".join(parts) == text
    assert [part.split()[0] for part in parts] == ["One.", "Two,", "Three", "Four"]


def test_a_long_text_is_cut_at_paragraphs_and_a_short_post_stays_whole(tokenizer):
    text = book(1)
    post = "I like tea and toast."
    segments = segment_documents([text, post], [key(text), key(post)], tokenizer)
    book_segments = [s for s in segments if s.document == 0]
    assert len(book_segments) > 10
    assert all(len(s.ids) <= SEGMENT_TOKENS for s in segments)
    # nothing lost or repeated: the pieces are the paragraphs' tokens in order
    whole = [i for p in tokenizer(paragraphs(text))["input_ids"] for i in p]
    assert [i for s in book_segments for i in s.ids] == whole
    assert [s.ends_document for s in book_segments] == [False] * (len(book_segments) - 1) + [True]
    (post_segment,) = [s for s in segments if s.document == 1]
    assert post_segment.ids == tokenizer(post)["input_ids"] and post_segment.ends_document


def test_a_share_of_the_tokens_is_held_out_reproducibly(tokenizer):
    text = book(2)
    segments = segment_documents([text], [key(text)], tokenizer)
    split = split_segments(segments, 0.05, min_held_out=64)
    total = split.train_tokens + split.held_out_tokens
    assert total == sum(len(s.ids) for s in segments)
    assert 0.05 <= split.held_out_tokens / total < 0.05 + SEGMENT_TOKENS / total
    again = split_segments(segment_documents([text], [key(text)], tokenizer), 0.05, 64)
    assert [s.position for s in again.held_out] == [s.position for s in split.held_out]


def test_four_books_each_train_on_most_of_their_text(tokenizer):
    books = [book(seed) for seed in range(4)]
    segments = segment_documents(books, [key(b) for b in books], tokenizer)
    split = split_segments(segments, 0.05, min_held_out=256)
    for document in range(4):
        trained = sum(len(s.ids) for s in split.train if s.document == document)
        held = sum(len(s.ids) for s in split.held_out if s.document == document)
        assert trained / (trained + held) > 0.85, document


def test_a_short_story_keeps_most_of_itself_for_training(tokenizer):
    story = book(4, paragraph_count=6)
    (whole,) = tokenizer([story])["input_ids"]
    assert 300 < len(whole) < 1500
    split = split_documents([story], [key(story)], tokenizer, 0.03, min_held_out=64)
    assert split.held_out_tokens >= 64
    assert split.held_out_tokens / len(whole) < 0.2
    assert len(split.train) + len(split.held_out) >= 8  # small segments, not two big ones


def test_one_block_is_held_out_even_from_a_few_long_posts(tokenizer):
    posts = [" ".join(WORDS * 4) + f" {i}." for i in range(3)]
    segments = segment_documents(posts, [key(p) for p in posts], tokenizer)
    sizes = [len(s.ids) for s in segments]
    block = max(sizes) + 5  # no post alone makes a block, and two leave too little to train
    assert sum(sizes) >= 2 * block
    split = split_segments(segments, 0.01, min_held_out=block)
    assert split.held_out_tokens >= block and split.train_tokens >= block
    assert split.train_tokens + split.held_out_tokens == sum(sizes)


def test_small_fractions_still_hold_out_enough_blocks_to_measure():
    assert held_out_target(1_000_000, 0.03, 256) == 30_000  # a big corpus: the fraction
    assert held_out_target(30_000, 0.03, 256) == 8 * 256  # a book: eight blocks, not 3.5
    assert held_out_target(5_000, 0.03, 256) == 500  # a short text: a tenth of it
    assert held_out_target(1_200, 0.03, 256) == 256  # never less than one block


def test_evaluation_blocks_spread_over_the_whole_held_out_part():
    stream = torch.arange(100 * 16)
    blocks = held_out_blocks(stream, 16, "spans")
    assert blocks.shape == (SPAN_EVAL_BLOCKS, 16)
    assert blocks[0, 0] == 0 and blocks[-1, -1] == len(stream) - 1  # first page to last
    assert len({int(b[0]) for b in blocks}) == SPAN_EVAL_BLOCKS
    old = held_out_blocks(stream, 16)  # older runs: the first 16 consecutive blocks
    assert old.shape == (16, 16) and old[-1, -1] == 16 * 16 - 1


def test_load_streams_trains_a_single_book_and_records_what_it_held_out(store, tmp_path, tokenizer):
    text = book(3, paragraph_count=12)  # about 5 KB
    _add(store, "book", [text])
    streams = load_streams(store, tmp_path, "book", tokenizer, "tiny", 0.05, "spans", 128)
    summary = streams.summary()
    assert summary["train_documents"] == summary["held_out_documents"] == 1
    assert summary["held_out_tokens"] >= 128
    assert summary["train_tokens"] > 2 * summary["held_out_tokens"]
    assert summary["train_segments"] + summary["held_out_segments"] > 2
    # cached: the same streams come back, under the same split
    cached = load_streams(store, tmp_path, "book", tokenizer, "tiny", 0.05, "spans", 128)
    assert cached.summary() == summary
    assert cached.train.tolist() == streams.train.tolist()


def test_a_corpus_too_small_says_how_many_tokens_it_has_and_needs(store, tmp_path, tokenizer):
    _add(store, "tiny", ["I like tea."])
    with pytest.raises(MarinadeError, match=r"corpus tiny has \d+ tokens; .*at least 512"):
        load_streams(store, tmp_path, "tiny", tokenizer, "tiny", 0.05, "spans", 256)


def test_the_documents_split_of_older_runs_is_unchanged(store, tmp_path, tokenizer):
    texts = [f"Post number {i} about tea." for i in range(10)]
    _add(store, "posts", texts)
    streams = load_streams(store, tmp_path, "posts", tokenizer, "tiny", 0.03)
    assert (streams.train_documents, streams.held_out_documents) == (8, 2)
    with pytest.raises(MarinadeError, match="at least 4"):
        _add(store, "few", ["one", "two"])
        load_streams(store, tmp_path, "few", tokenizer, "tiny", 0.03, "documents")


def _add(store, corpus: str, texts: list[str]) -> None:
    with store.transaction():
        import_id = store.start_import(corpus, "test", "plain", "{}", "2026-01-01T00:00:00Z")
        store.add_documents([_document(corpus, import_id, text) for text in texts])


def _document(corpus: str, import_id: int, text: str) -> dict:
    return {
        "corpus": corpus,
        "import_id": import_id,
        "text": text,
        "created_at": None,
        "source": "test",
        "record_id": key(text)[:8],
        "is_reply": 0,
        "is_repost": 0,
        "language": None,
        "dedup_key": key(text),
    }
