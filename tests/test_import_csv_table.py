"""CSV/TSV spreadsheets with a chosen text column."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import detect_importer
from marinade.corpus.importers.csv_table import IMPORTER


def write_table(path: Path, rows: list[list[str]], delimiter: str = ",", bom: bool = False):
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def read_all(path: Path, **options: str) -> list[Document | Skipped]:
    archive = Archive(path)
    try:
        return list(IMPORTER.read(archive, ImportOptions(**options)))
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


QUEUE = [
    ["id", "Post", "date", "status"],
    ["q1", "Tea, toast,\nand the sound of rain.", "2024-03-01T09:30:00Z", "queued"],
    ["q2", "The lamps along the quay.", "2024-03-02 10:15", "queued"],
    ["q3", "A 'quoted' \"post\".", "1709460000", "posted"],
    ["q4", "   ", "2024-03-04", "draft"],
    ["q5", "Milliseconds.", "1709546400000", "queued"],
    ["q6", "With an offset.", "2024-03-06T12:00:00+02:00", "queued"],
    ["q7", "Reddit style.", "2024-03-07 08:00:00 UTC", "queued"],
    ["", "No id, no date.", "", "queued"],
]


def test_a_spreadsheet_of_queued_posts(tmp_path):
    path = write_table(tmp_path / "queue.csv", QUEUE, bom=True)
    assert IMPORTER.detect(Archive(path))
    records = read_all(path, column="post")  # column names match in any case
    assert [r for r in records if isinstance(r, Skipped)] == [Skipped("empty text", "q4")]
    documents = cleaned(records)
    assert [(d.record_id, d.text, d.created_at) for d in documents] == [
        ("q1", "Tea, toast,\nand the sound of rain.", "2024-03-01T09:30:00+00:00"),
        ("q2", "The lamps along the quay.", "2024-03-02T10:15:00+00:00"),
        ("q3", "A 'quoted' \"post\".", "2024-03-03T10:00:00+00:00"),
        ("q5", "Milliseconds.", "2024-03-04T10:00:00+00:00"),
        ("q6", "With an offset.", "2024-03-06T10:00:00+00:00"),
        ("q7", "Reddit style.", "2024-03-07T08:00:00+00:00"),
        ("9", "No id, no date.", None),  # row 9 as a spreadsheet numbers it
    ]
    assert {d.source for d in documents} == {"csv:queue.csv"}


def test_semicolons_crlf_and_a_created_at_column(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(
        b"created_at;text;likes\r\n2023-01-15 12:34:56;Bonjour, le monde;3\r\n"
        b"2023-01-16 08:00:00;Au revoir;1\r\n"
    )
    documents = cleaned(read_all(path, column="text"))
    assert [(d.record_id, d.text, d.created_at) for d in documents] == [
        ("2", "Bonjour, le monde", "2023-01-15T12:34:56+00:00"),
        ("3", "Au revoir", "2023-01-16T08:00:00+00:00"),
    ]


def test_a_tsv_with_a_named_date_column(tmp_path):
    rows = [["Posted on", "Body", "date"], ["2022-12-24", "Happy holidays, all", "not a date"]]
    path = write_table(tmp_path / "posts.tsv", rows, delimiter="\t")
    assert IMPORTER.detect(Archive(path))
    [document] = cleaned(read_all(path, column="Body", date_column="posted on"))
    assert document.text == "Happy holidays, all"
    assert document.created_at == "2022-12-24T00:00:00+00:00"


def test_without_column_the_error_says_to_pass_one_and_lists_columns(tmp_path):
    path = write_table(tmp_path / "queue.csv", QUEUE)
    with pytest.raises(CorpusFormatError) as error:
        read_all(path)
    message = str(error.value)
    assert "queue.csv" in message and "--column NAME" in message
    assert "id, Post, date, status" in message


def test_a_missing_column_names_the_file_and_lists_columns(tmp_path):
    path = write_table(tmp_path / "queue.csv", QUEUE)
    with pytest.raises(CorpusFormatError, match=r"queue\.csv.*'body'.*id, Post, date, status"):
        read_all(path, column="body")
    with pytest.raises(CorpusFormatError, match=r"queue\.csv.*'when'.*id, Post, date, status"):
        read_all(path, column="post", date_column="when")


def test_an_invalid_date_names_the_file_and_row(tmp_path):
    rows = [*QUEUE[:3], ["q9", "Bad date.", "31/02/2024", "queued"]]
    path = write_table(tmp_path / "queue.csv", rows)
    with pytest.raises(CorpusFormatError) as error:
        read_all(path, column="post")
    assert "queue.csv, record q9 (row 4)" in str(error.value)
    assert "'31/02/2024'" in str(error.value)


def test_a_truncated_file_names_the_file_and_row(tmp_path):
    path = tmp_path / "queue.csv"
    path.write_text('id,text\n1,"a whole post"\n2,"a post cut off in the midd')
    with pytest.raises(CorpusFormatError, match=r"queue\.csv, record row 3: broken CSV"):
        read_all(path, column="text")
    short = tmp_path / "short.csv"
    short.write_text("id,date,text\n1,2024-01-01,fine\n2,2024-01")
    with pytest.raises(CorpusFormatError, match=r"short\.csv, record row 3: .*cut short"):
        read_all(short, column="text")


def test_invalid_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,text\n1,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusFormatError, match=r"latin\.csv.*not UTF-8"):
        read_all(path, column="text")


def test_rows_are_streamed(tmp_path):
    path = tmp_path / "big.csv"
    rows = ([str(n), f"post number {n}", "2024-01-01 00:00:00"] for n in range(50_000))
    write_table(path, [["id", "text", "date"], *rows])
    archive = Archive(path)
    records = IMPORTER.read(archive, ImportOptions(column="text"))
    first = list(itertools.islice(records, 2))
    assert [r.text for r in first if isinstance(r, Document)] == ["post number 0", "post number 1"]
    assert sum(1 for _ in records) == 49_998


def test_detect_only_csv_and_tsv_tables(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("id,text\n1,looks like a table but is a .txt\n")
    binary = tmp_path / "data.csv"
    binary.write_bytes(b"\x00\x01\x02binary, with a comma")
    single = tmp_path / "words.csv"  # one column without a header: its first line is a post
    single.write_text("Woke up before the alarm again.\nThe kettle knows.\n")
    outbox = tmp_path / "outbox.json"
    outbox.write_text('{"orderedItems": []}')
    for path in (notes, binary, single, outbox, tmp_path):
        assert not IMPORTER.detect(Archive(path)), path


def test_a_single_column_queue_sheet_is_recognised_and_needs_no_column(tmp_path):
    path = tmp_path / "queue.csv"
    # As a spreadsheet writes it (cells with commas or line breaks quoted), and a row
    # typed by hand with an unquoted comma.
    path.write_text(
        "text\r\n"
        '"Tea, toast, and the sound of rain."\r\n'
        "The lamps along the quay.\r\n"
        '"Two lines,\r\none post."\r\n'
        "\r\n"
        "Typed by hand, with a comma.\r\n",
        newline="",
    )
    archive = Archive(path)
    assert detect_importer(archive).name == "csv"
    records = read_all(path)
    assert [(d.record_id, d.text) for d in cleaned(records)] == [
        ("2", "Tea, toast, and the sound of rain."),
        ("3", "The lamps along the quay."),
        ("4", "Two lines,\none post."),
        ("6", "Typed by hand, with a comma."),
    ]
    assert [r.text for r in read_all(path, column="TEXT") if isinstance(r, Document)][0] == (
        "Tea, toast, and the sound of rain."
    )


def test_single_column_headers_are_names_not_posts(tmp_path):
    for header in ("text", "Post", '"Tweet text"', "caption (en)"):
        path = tmp_path / "queue.csv"
        path.write_text(f"{header}\nhello\n")
        assert IMPORTER.detect(Archive(path)), header
    headerless = tmp_path / "posts.csv"
    headerless.write_text("Woke up before the alarm again.\nThe kettle knows.\n")
    assert detect_importer_or_none(headerless) is None
    with pytest.raises(CorpusFormatError) as error:
        read_all(headerless)
    message = str(error.value)
    assert "posts.csv, record row 1" in message and "add a header line such as 'text'" in message


def detect_importer_or_none(path: Path) -> str | None:
    try:
        return detect_importer(Archive(path)).name
    except CorpusFormatError:
        return None
