"""Books as people have them, imported from real files and trained on as they are:
a Gutenberg book, an old e-text without markers, a 50 KB plain text, and a corpus
of four books that each train on most of their text."""

from __future__ import annotations

import json
import textwrap

from transformers import AutoTokenizer

from marinade.training.split import split_documents
from test_import_gutenberg import (
    CHAPTER_ONE,
    CHAPTER_TWO,
    OLD_ETEXT_HEADER,
    book_text,
    standard_body,
    wrap,
    write_book,
)

FLAGS = ["--batch-size", "2", "--block-size", "32", "--warmup", "1", "--eval-every", "2"]
WORDS = (
    "the harbour lamps were lit one by one while the fishermen mended nets and the rain "
    "came in from the sea over the roofs of the market and the children counted"
).split()


def plain_book(seed: int, size: int) -> str:
    """A plain-text book of about `size` characters: paragraphs under chapter headings."""
    paragraphs, length, p = [], 0, 0
    while length < size:
        if p % 12 == 0:
            paragraphs.append(f"CHAPTER {p // 12 + 1}")
        words = [WORDS[(seed * 11 + p * 5 + i * 3) % len(WORDS)] for i in range(60)]
        paragraphs.append(textwrap.fill(" ".join(words).capitalize() + ".", width=70))
        length += len(paragraphs[-1])
        p += 1
    return "\n\n".join(paragraphs) + "\n"


def train_on(cli, corpus: str, tiny_model, name: str):
    return cli("train", name, "--model", str(tiny_model), "--phase", f"{corpus}:2", *FLAGS)


def test_a_gutenberg_book_imports_and_trains(cli, tmp_path, tiny_model):
    path = write_book(tmp_path / "pg99999.txt", book_text(standard_body()))
    assert cli("corpus", "import", str(path), "--name", "quay").exit_code == 0
    result = train_on(cli, "quay", tiny_model, "quayrun")
    assert result.exit_code == 0, result.stderr
    assert "run quayrun: finished" in result.stdout


def test_an_old_etext_without_markers_imports_with_a_warning_and_trains(cli, tmp_path, tiny_model):
    body = "CHAPTER I\n\n" + wrap(CHAPTER_ONE) + "\n\nCHAPTER II\n\n" + wrap(CHAPTER_TWO)
    path = write_book(tmp_path / "quay10.txt", OLD_ETEXT_HEADER + body + "\n")
    imported = cli("corpus", "import", str(path), "--name", "old")
    assert imported.exit_code == 0, imported.stderr
    assert "warning:" in imported.stderr
    result = train_on(cli, "old", tiny_model, "oldrun")
    assert result.exit_code == 0, result.stderr


def test_a_50kb_plain_text_is_one_document_and_trains(cli, store, tmp_path, tiny_model):
    path = tmp_path / "novel.txt"
    path.write_text(plain_book(1, 50_000))
    assert cli("corpus", "import", str(path), "--name", "novel").exit_code == 0
    assert store.corpus("novel")["documents"] == 1
    result = train_on(cli, "novel", tiny_model, "novelrun")
    assert result.exit_code == 0, result.stderr
    split = json.loads(cli("runs", "show", "novelrun", "--json").stdout)["corpora"]["novel"]
    share = split["held_out_tokens"] / (split["train_tokens"] + split["held_out_tokens"])
    assert 0.02 < share < 0.06  # the 3% asked for, give or take a segment


def test_four_books_in_one_corpus_each_train_on_most_of_their_text(
    cli, store, tmp_path, tiny_model
):
    folder = tmp_path / "shelf"
    folder.mkdir()
    for seed in range(4):
        (folder / f"book-{seed}.txt").write_text(plain_book(seed, 20_000))
    assert cli("corpus", "import", str(folder), "--name", "shelf").exit_code == 0
    rows = list(  # as training reads them
        store.db.query("select text, dedup_key from documents where corpus = 'shelf' order by id")
    )
    assert len(rows) == 4
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    split = split_documents(
        [r["text"] for r in rows], [r["dedup_key"] for r in rows], tokenizer, 0.03, 32
    )
    for document in range(4):
        trained = sum(len(s.ids) for s in split.train if s.document == document)
        held = sum(len(s.ids) for s in split.held_out if s.document == document)
        assert trained / (trained + held) > 0.9, document
    result = train_on(cli, "shelf", tiny_model, "shelfrun")
    assert result.exit_code == 0, result.stderr
    assert "shelf: 4 documents in" in result.stderr
