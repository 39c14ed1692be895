"""Project Gutenberg books: header, licence and footer gone, paragraphs rejoined,
one document per chapter."""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Notice, Skipped
from marinade.corpus.importers.gutenberg import IMPORTER, MAX_CHARS
from marinade.corpus.importing import import_corpus

HEADER = """\
The Project Gutenberg eBook of The Lamplighter's Quay, by Ada Example

This eBook is for the use of anyone anywhere in the United States and
most other parts of the world at no cost and with almost no restrictions
whatsoever. You may copy it, give it away or re-use it under the terms
of the Project Gutenberg License included with this eBook or online
at www.gutenberg.org. If you are not located in the United States,
you will have to check the laws of the country where you are located
before using this eBook.

Title: The Lamplighter's Quay

Author: Ada Example

Release date: March 1, 2024 [eBook #99999]

Language: English

Credits: Produced by Jane Volunteer and the Online Distributed Proofreading Team


*** START OF THE PROJECT GUTENBERG EBOOK THE LAMPLIGHTER'S QUAY ***




Produced by Jane Volunteer and the Online Distributed
Proofreading Team at https://www.pgdp.net

"""

FOOTER = """

*** END OF THE PROJECT GUTENBERG EBOOK THE LAMPLIGHTER'S QUAY ***



Updated editions will replace the previous one--the old editions will
be renamed.

Creating the works from print editions not protected by U.S. copyright
law means that no one owns a United States copyright in these works,
so the Foundation (and you!) can copy and distribute it in the United
States without permission and without paying copyright royalties.

START: FULL LICENSE

THE FULL PROJECT GUTENBERG LICENSE
PLEASE READ THIS BEFORE YOU DISTRIBUTE OR USE THIS WORK
"""

TITLE_PAGE = """\
THE LAMPLIGHTER'S QUAY

by Ada Example

CONTENTS

    CHAPTER I.    The Lamps Along the Water
    CHAPTER II.   A Letter From the Harbour Master
    CHAPTER III.  Rain on a Tin Roof
"""

CHAPTER_ONE = [
    "The lamplighter came along the quay at dusk, as he had done every evening for "
    "forty years, and lit the lamps one by one. The sailors on the moored boats "
    "watched him go by without a word, for they knew that a man at his work does "
    "not care to be spoken to, and the water took each new light and broke it into "
    "a hundred small pieces.",
    "He had a long pole with a hook at the end of it, and a little flame in a brass "
    "cup that he carried as carefully as another man might carry a letter from his "
    "mother. It was _his_ flame, he said, and nobody else's; it had been lit from "
    "the lamp at the end of the pier on the day the old lamplighter died.",
]
VERSE = """\
    Light the lamps along the water,
      One by one and two by two;
    Every lamp a harbour's daughter,
      Every flame a sailor's due."""
CHAPTER_TWO = [
    "The letter from the harbour master arrived on a Tuesday, which was the day on "
    "which nothing of importance had ever happened on the quay before, and so the "
    "lamplighter left it unopened on the mantelpiece until the Wednesday morning, "
    "when he read it twice over and then sat down heavily in his chair.",
    '"They are putting in the electric," he told the cat, and the cat, who had '
    "heard worse news in her time, went on washing her ears.",
]
CHAPTER_THREE = [
    "It rained all that week, a fine grey rain that came in off the sea and drummed "
    "on the tin roof of the lamp store, and the lamplighter did his rounds in an old "
    "oilskin that smelled of tar and pipe smoke and the years.",
]


def wrap(paragraphs: list[str]) -> str:
    """Paragraphs hard-wrapped at 70 columns, as Project Gutenberg ships them."""
    return "\n\n".join(textwrap.fill(p, width=70) for p in paragraphs)


def book_text(body: str, header: str = HEADER, footer: str = FOOTER) -> str:
    return header + body + footer


def standard_body() -> str:
    return (
        TITLE_PAGE
        + "\n\n\nCHAPTER I.\nThe Lamps Along the Water\n\n\n"
        + wrap(CHAPTER_ONE[:1])
        + "\n\n"
        + VERSE
        + "\n\n[Illustration: The lamplighter at the end of the pier.]\n\n"
        + wrap(CHAPTER_ONE[1:])
        + "\n\n\n\n\nCHAPTER II.\nA Letter From the Harbour Master\n\n\n"
        + wrap(CHAPTER_TWO)
        + "\n\n\n\n\nCHAPTER III.\nRain on a Tin Roof\n\n\n"
        + wrap(CHAPTER_THREE)
        + "\n\n\n                                THE END\n"
    )


def write_book(path: Path, text: str, encoding: str = "utf-8-sig", crlf: bool = True) -> Path:
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes(text.encode(encoding))
    return path


def read_all(path: Path) -> list[Document | Skipped]:
    archive = Archive(path)
    try:
        return list(IMPORTER.read(archive, ImportOptions()))
    finally:
        archive.close()


def cleaned(records: list[Document | Skipped]) -> list[Document]:
    out = []
    for record in records:
        if isinstance(record, Document):
            document, _ = clean(record, ImportOptions())
            assert document is not None
            out.append(document)
    return out


def test_a_book_becomes_one_document_per_chapter_without_header_or_licence(tmp_path):
    path = write_book(tmp_path / "pg99999.txt", book_text(standard_body()))
    assert IMPORTER.detect(Archive(path))

    records = read_all(path)
    skipped = [r for r in records if isinstance(r, Skipped)]
    assert skipped == [Skipped("front matter without prose (title page, contents)", "pg99999#0")]
    documents = cleaned(records)
    assert [d.record_id for d in documents] == ["pg99999#1", "pg99999#2", "pg99999#3"]
    assert {d.source for d in documents} == {"gutenberg:pg99999.txt"}
    assert {d.created_at for d in documents} == {None}
    assert {d.language for d in documents} == {"en"}

    first, second, third = (d.text for d in documents)
    paragraphs = first.split("\n\n")
    assert paragraphs[0] == "CHAPTER I. The Lamps Along the Water"
    # Hard-wrapped prose is one line again; verse keeps its lines; italics lose "_".
    assert paragraphs[1] == CHAPTER_ONE[0]
    assert paragraphs[2].splitlines() == [line.strip() for line in VERSE.splitlines()]
    assert paragraphs[3] == CHAPTER_ONE[1].replace("_his_", "his")
    assert len(paragraphs) == 4  # the illustration is gone
    assert second.split("\n\n")[1:] == CHAPTER_TWO
    assert third.split("\n\n")[1:] == [*CHAPTER_THREE, "THE END"]

    everything = "\n".join(d.text for d in documents)
    for leftover in ("Project Gutenberg", "Produced by", "License", "\r", "\ufeff", "Title:"):
        assert leftover not in everything


def test_a_preface_before_the_first_chapter_is_kept(tmp_path):
    preface = (
        "This little book was written in the winter of the great storm, when the "
        "lamps along the quay were put out one after another by the wind, and the "
        "author, who lived above the lamp store, watched them go dark from her window."
    )
    body = "PREFACE\n\n" + wrap([preface]) + "\n\n\nCHAPTER I.\n\n" + wrap(CHAPTER_THREE)
    documents = cleaned(read_all(write_book(tmp_path / "pg1.txt", book_text(body))))
    assert [d.record_id for d in documents] == ["pg1#0", "pg1#1"]
    assert documents[0].text == "PREFACE\n\n" + preface
    assert documents[1].text == "CHAPTER I.\n\n" + CHAPTER_THREE[0]


def test_contents_entries_as_separate_lines_make_no_documents(tmp_path):
    contents = "".join(f"CHAPTER {n}\n\n" for n in ("I", "II", "III"))
    body = contents + "\n\nCHAPTER I\n\n" + wrap(CHAPTER_TWO)
    documents = cleaned(read_all(write_book(tmp_path / "pg2.txt", book_text(body))))
    assert [d.text for d in documents] == ["\n\n".join(["CHAPTER I", *CHAPTER_TWO])]


def test_a_book_without_chapters_comes_in_chunks_of_paragraphs(tmp_path):
    paragraphs = [f"Paragraph {n}. " + CHAPTER_TWO[0] for n in range(120)]
    documents = cleaned(
        read_all(write_book(tmp_path / "pg3.txt", book_text(wrap(paragraphs)), crlf=False))
    )
    assert len(documents) >= sum(len(p) for p in paragraphs) // MAX_CHARS >= 2
    for document in documents:  # cut at the first paragraph boundary past MAX_CHARS
        assert sum(len(p) for p in document.text.split("\n\n")[:-1]) < MAX_CHARS
    rejoined = [p for d in documents for p in d.text.split("\n\n")]
    assert rejoined == paragraphs


def test_an_old_small_print_latin1_book(tmp_path):
    header = (
        "The Project Gutenberg Etext of Quay Songs, by Ada Example\n\n"
        "Character set encoding: ISO-8859-1\n\n"
        "**Welcome To The World of Free Plain Vanilla Electronic Texts**\n\n"
        "*****SMALL PRINT!*****\nThe legal small print goes here.\n"
        "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n\n"
    )
    footer = "\n\nEnd of the Project Gutenberg Etext of Quay Songs, by Ada Example\n"
    body = "Chapter 1\n\n" + wrap(["Le café était fermé, et la mer était grise. " * 3])
    path = write_book(tmp_path / "quay10.txt", header + body + footer, encoding="latin-1")
    assert IMPORTER.detect(Archive(path))
    documents = cleaned(read_all(path))
    assert len(documents) == 1
    assert "Le café était fermé, et la mer était grise." in documents[0].text
    assert "SMALL PRINT" not in documents[0].text and "End of" not in documents[0].text


def test_a_zip_holding_the_book(tmp_path):
    path = tmp_path / "99999-0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("99999-0/99999-0.txt", book_text(standard_body()))
    assert IMPORTER.detect(Archive(path))
    documents = cleaned(read_all(path))
    assert [d.record_id for d in documents] == ["99999-0#1", "99999-0#2", "99999-0#3"]
    assert documents[0].source == "gutenberg:99999-0/99999-0.txt"


# A 1990s e-text: the small print at the top, the book, and no END line at all.
OLD_ETEXT_HEADER = """\
**The Project Gutenberg Etext of The Lamplighter's Quay, by Ada Example**
*This 10th edition should be labeled quay10.txt or quay10.zip.
***This Edition Is Being Officially Released On March 8, 1994***

**Welcome To The World of Free Plain Vanilla Electronic Texts**
**Etexts Readable By Both Humans and By Computers, Since 1971**
*These Etexts Prepared By Hundreds of Volunteers and Donations*

Information on contacting Project Gutenberg to get Etexts, and
further information is included below.  We need your donations.

**START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***
Why is this "Small Print!" statement here?  You know: lawyers.
They tell us you might sue us if there is something wrong with
your copy of this etext, even if you got it for free from
someone other than us, and even if what's wrong is not our
fault.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*




"""


def notices(records: list) -> list[Notice]:
    return [r for r in records if isinstance(r, Notice)]


def test_an_old_etext_without_an_end_line_imports_with_a_warning(tmp_path):
    body = "CHAPTER I\n\n" + wrap(CHAPTER_ONE) + "\n\nCHAPTER II\n\n" + wrap(CHAPTER_TWO)
    path = write_book(tmp_path / "quay10.txt", OLD_ETEXT_HEADER + body + "\n\nTHE END\n")
    assert IMPORTER.detect(Archive(path))
    records = read_all(path)
    documents = cleaned(records)
    assert [d.text.split("\n\n")[0] for d in documents] == ["CHAPTER I", "CHAPTER II"]
    assert documents[1].text.split("\n\n")[1:] == [*CHAPTER_TWO, "THE END"]
    assert "SMALL PRINT" not in documents[0].text
    [notice] = notices(records)
    assert notice.file == str(path)
    assert "no '*** END OF THE PROJECT GUTENBERG EBOOK' line" in notice.problem
    assert "old e-text" in notice.problem and "\n" not in str(notice)


def test_an_old_etext_ending_with_its_own_end_line_has_no_warning(tmp_path):
    footer = "End of this Etext of The Lamplighter's Quay, by Ada Example\n"
    # Some e-texts repeat their title line after the small print, before the book.
    title = "**The Project Gutenberg Etext of The Lamplighter's Quay, by Ada Example**\n\n"
    text = OLD_ETEXT_HEADER + title + wrap(CHAPTER_ONE) + "\n\n" + footer
    records = read_all(write_book(tmp_path / "quay10.txt", text))
    assert notices(records) == []
    [document] = cleaned(records)
    assert document.text.split("\n\n") == [
        CHAPTER_ONE[0],
        CHAPTER_ONE[1].replace("_his_", "his"),
    ]
    assert "End of this Etext" not in document.text


def test_an_old_etext_without_an_end_line_reports_its_warning(tmp_path, store):
    path = write_book(tmp_path / "quay10.txt", OLD_ETEXT_HEADER + wrap(CHAPTER_ONE) + "\n")
    report = import_corpus(store, path, "quay")
    assert (report.format, report.kept, report.read) == ("gutenberg", 1, 1)
    [warning] = report.warnings
    assert warning.startswith(f"{path}: no '*** END OF THE PROJECT GUTENBERG EBOOK' line")


def test_a_newer_book_cut_short_imports_what_it_has_with_a_warning(tmp_path):
    text = book_text(standard_body())
    path = write_book(tmp_path / "pg99999.txt", text[: text.rindex("CHAPTER III.")])
    records = read_all(path)
    assert [d.record_id for d in cleaned(records)] == ["pg99999#1", "pg99999#2"]
    [notice] = notices(records)
    assert "cut short" in notice.problem and "pg99999.txt" in str(notice)


def test_a_complete_book_has_no_warning(tmp_path):
    assert notices(read_all(write_book(tmp_path / "pg1.txt", book_text(standard_body())))) == []


def test_underscores_of_identifiers_stay_and_only_italics_lose_them(tmp_path):
    paragraphs = [
        "The rule _assignment_stmt_ is defined below, and assignment_stmt is the name "
        "the grammar uses for it; __debug__ is true unless Python runs with -O, and "
        "_thread, sys._getframe and __init__.py keep their underscores too.",
        "It was _his_ flame, _not theirs_, and the _Harbour Gazette_'s reporter said so.",
    ]
    body = "CHAPTER I\n\n" + wrap(paragraphs)
    [document] = cleaned(read_all(write_book(tmp_path / "pg7.txt", book_text(body))))
    assert document.text.split("\n\n")[1:] == [
        "The rule assignment_stmt is defined below, and assignment_stmt is the name "
        "the grammar uses for it; __debug__ is true unless Python runs with -O, and "
        "_thread, sys._getframe and __init__.py keep their underscores too.",
        "It was his flame, not theirs, and the Harbour Gazette's reporter said so.",
    ]


def test_a_text_without_the_start_line_is_refused_when_forced(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Just some notes of mine.\n\nAnother line.\n")
    with pytest.raises(CorpusFormatError, match=r"notes\.txt.*START OF THE PROJECT GUTENBERG"):
        read_all(path)


def test_invalid_utf8_names_the_file(tmp_path):
    path = tmp_path / "pg5.txt"
    path.write_bytes(book_text(standard_body()).encode() + b"\n\xff\xfe broken\n")
    with pytest.raises(CorpusFormatError, match=r"pg5\.txt.*not UTF-8"):
        read_all(path)


def test_detect_is_false_for_other_files(tmp_path):
    plain = tmp_path / "diary.txt"
    plain.write_text("Dear diary, the Project Gutenberg site was down today.\n")
    table = tmp_path / "queue.csv"
    table.write_text("id,text,date\n1,hello,2024-01-01\n")
    tweets = tmp_path / "tweets.js"
    tweets.write_text('window.YTD.tweets.part0 = [{"tweet": {"full_text": "hi"}}]')
    twitter = tmp_path / "twitter.zip"
    with zipfile.ZipFile(twitter, "w") as archive:
        archive.writestr("data/tweets.js", tweets.read_text())
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for path in (plain, table, tweets, twitter, empty):
        assert not IMPORTER.detect(Archive(path)), path
