"""Plain .txt/.md files and folders: the fallback importer."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.plaintext import IMPORTER
from marinade.errors import MarinadeError

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"


def read_all(path: Path) -> list[Document | Skipped]:
    archive = Archive(path)
    try:
        return list(IMPORTER.read(archive, ImportOptions()))
    finally:
        archive.close()


def cleaned(records: list[Document | Skipped], options: ImportOptions | None = None):
    out = []
    for record in records:
        if isinstance(record, Document):
            document, _ = clean(record, options or ImportOptions())
            assert document is not None
            out.append(document)
    return out


def test_a_text_file_is_one_document_without_a_date(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffI like tea.\r\n\r\nAnd toast, and rain on a tin roof.\r\n".encode())
    os.utime(path, (1_600_000_000, 1_600_000_000))  # an mtime is not when it was written
    assert IMPORTER.detect(Archive(path))
    [document] = cleaned(read_all(path))
    assert document.text == "I like tea.\n\nAnd toast, and rain on a tin roof."
    assert document.created_at is None
    assert document.source == "text:notes.txt"
    assert document.record_id == "notes.txt"


def test_a_folder_of_notes_with_front_matter_drafts_and_other_files(tmp_path):
    folder = tmp_path / "blog"
    (folder / "posts" / "2023").mkdir(parents=True)
    (folder / "posts" / "2023" / "quay.md").write_text(
        '---\ntitle: "The quay"\ndate: 2023-02-18T13:33:11+01:00\ntags:\n  - lamps\n---\n'
        "# The quay\n\nThe lamplighter came **along** the quay, see "
        "[his lamps](https://example.org/lamps) there.\n\n![a lamp](lamp.png)\n"
    )
    (folder / "posts" / "day.md").write_text("---\ndate: 2024-05-01\n---\nA short day.\n")
    (folder / "posts" / "next.md").write_text("---\ndraft: true\n---\nNot yet.\n")
    (folder / "diary.txt").write_text("Dear diary, nothing happened.\n")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "posts" / "lamp.png").write_bytes(PNG)
    assert IMPORTER.detect(Archive(folder))

    records = read_all(folder)
    skipped = sorted((r.reason, r.record) for r in records if isinstance(r, Skipped))
    assert skipped == [
        ("draft", "posts/next.md"),
        ("empty file", "empty.txt"),
        ("not text", "posts/lamp.png"),
    ]
    documents = {d.record_id: d for d in cleaned(records)}
    assert set(documents) == {"diary.txt", "posts/2023/quay.md", "posts/day.md"}
    quay = documents["posts/2023/quay.md"]
    assert quay.created_at == "2023-02-18T12:33:11+00:00"
    assert quay.text == "The quay\n\nThe lamplighter came along the quay, see his lamps there."
    assert quay.source == "text:posts/2023/quay.md"
    assert documents["posts/day.md"].created_at == "2024-05-01T00:00:00+00:00"
    assert documents["diary.txt"].created_at is None


def test_markdown_links_keep_their_address_with_keep_links(tmp_path):
    path = tmp_path / "post.md"
    path.write_text("Read [the essay](https://example.org/essay) tonight.\n")
    [document] = cleaned(read_all(path), ImportOptions(keep_links=True))
    assert document.text == "Read the essay https://example.org/essay tonight."


def test_a_file_is_split_at_percent_lines_and_dashes_after_a_blank_line(tmp_path):
    fortunes = tmp_path / "fortunes.txt"
    fortunes.write_text("A first saying.\n%\nA second\nsaying.\n%\n%\nA third.\n%\n")
    documents = cleaned(read_all(fortunes))
    assert [d.text for d in documents] == ["A first saying.", "A second\nsaying.", "A third."]
    assert [d.record_id for d in documents] == [
        "fortunes.txt#1",
        "fortunes.txt#2",
        "fortunes.txt#3",
    ]

    posts = tmp_path / "posts.md"
    posts.write_text("A heading\n---\n\nFirst post.\n\n---\n\nSecond post.\n")
    documents = cleaned(read_all(posts))
    # "---" right under a line of text underlines a Markdown heading: not a separator.
    assert [d.text for d in documents] == ["A heading\n---\n\nFirst post.", "Second post."]


STORY = (
    "The lamplighter came along the quay at dusk.\n\n"
    "He lit the lamps one by one, and the water under each turned gold.\n\n"
    "Nobody told him to stop."
)


def test_a_story_without_separators_is_one_document_by_default(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(STORY + "\n")
    [document] = cleaned(read_all(path))
    assert document.text == STORY
    assert document.record_id == "story.txt"


def test_the_shipped_example_story_is_one_document():
    example = Path(__file__).parent.parent / "examples" / "lamplighter.txt"
    [document] = cleaned(read_all(example))
    assert document.text.startswith("The lamplighter came along the quay at dusk")
    assert document.text.count("\n\n") >= 5 and "%" not in document.text


def read_split(path: Path, split: str) -> list[str]:
    archive = Archive(path)
    try:
        records = list(IMPORTER.read(archive, ImportOptions(split=split)))
    finally:
        archive.close()
    return [d.text for d in cleaned(records)]


def test_split_chooses_separators_paragraphs_or_none(tmp_path):
    posts = tmp_path / "posts.txt"
    posts.write_text(
        "First post,\nin two lines.\n\nStill the first.\n%\nSecond post.\n\n---\n\nThird.\n"
    )
    assert read_split(posts, "separators") == [
        "First post,\nin two lines.\n\nStill the first.",
        "Second post.",
        "Third.",
    ]
    assert read_split(posts, "paragraphs") == [
        "First post,\nin two lines.",
        "Still the first.\n%\nSecond post.",
        "---",
        "Third.",
    ]
    assert read_split(posts, "none") == [
        "First post,\nin two lines.\n\nStill the first.\n%\nSecond post.\n\n---\n\nThird."
    ]
    story = tmp_path / "story.md"
    story.write_text("---\ndate: 2024-05-01\n---\n# Quay\n\n" + STORY + "\n")
    assert read_split(story, "paragraphs") == ["Quay", *STORY.split("\n\n")]
    assert read_split(story, "none") == ["Quay\n\n" + STORY]


def test_an_unknown_split_is_refused_naming_the_choices():
    with pytest.raises(
        MarinadeError,
        match=r"unknown --split 'lines': use one of separators, "
        r"paragraphs, none",
    ):
        ImportOptions(split="lines")


def test_a_zip_of_notes(tmp_path):
    path = tmp_path / "notes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Notes/one.txt", "One.\n")
        archive.writestr("Notes/two.TXT", "Two.\n")
        archive.writestr("Notes/.DS_Store", b"\x00\x00\x00\x01Bud1")
    assert IMPORTER.detect(Archive(path))
    records = read_all(path)
    assert [d.text for d in cleaned(records)] == ["One.", "Two."]
    assert Skipped("not text", "Notes/.DS_Store") in records


def test_a_utf16_file_from_notepad(tmp_path):
    path = tmp_path / "windows.txt"
    path.write_bytes("Café au lait.\r\n".encode("utf-16"))
    assert IMPORTER.detect(Archive(path))
    assert [d.text for d in cleaned(read_all(path))] == ["Café au lait."]


def test_an_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(CorpusFormatError, match=r"empty\.txt: empty file"):
        read_all(path)


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("First line.\nCaf\xe9 second line.\n".encode("latin-1"))
    with pytest.raises(CorpusFormatError, match=r"latin\.txt.*not UTF-8 text \(line 2\)"):
        read_all(path)


def test_an_invalid_front_matter_date_names_the_file(tmp_path):
    path = tmp_path / "post.md"
    path.write_text("---\ndate: 2023-02-31\n---\nA post.\n")
    with pytest.raises(CorpusFormatError, match=r"post\.md.*invalid date.*2023-02-31"):
        read_all(path)


def test_detect_by_content(tmp_path):
    readme = tmp_path / "README"
    readme.write_text("A file without a suffix, but plainly text: ünïcode too.\n")
    assert IMPORTER.detect(Archive(readme))

    image = tmp_path / "photo.jpg"
    image.write_bytes(PNG)
    assert not IMPORTER.detect(Archive(image))
    latin = tmp_path / "latin.dat"
    latin.write_bytes("Caf\xe9".encode("latin-1"))
    assert not IMPORTER.detect(Archive(latin))
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "outbox.json").write_text('{"orderedItems": []}')
    assert not IMPORTER.detect(Archive(folder))
    photos = tmp_path / "photos.zip"
    with zipfile.ZipFile(photos, "w") as archive:
        archive.writestr("photo.png", PNG)
    assert not IMPORTER.detect(Archive(photos))
