"""A CSV or TSV spreadsheet with the text in a column the user names (--column).

The generic table format: a spreadsheet of queued posts, or any export we have
no importer for. The delimiter is sniffed from the header line (the most
frequent of , ; tab |; always tab for .tsv). Rows are streamed.

- A table of one column (the header `text`, one post a row: the commonest queue
  sheet) has no delimiter to sniff. It is recognised by its header, a column
  name rather than a sentence, and that column is the text without --column. A
  cell is then a whole line (or a quoted cell), so an unquoted comma in a post
  stays in the post.
- Otherwise the text column is required; the date column is --date-column, else the
  first of date/created_at/timestamp/time that the header has. Dates may be
  ISO 8601, "YYYY-MM-DD HH:MM[:SS]" (UTC unless an offset is given, a trailing
  " UTC" allowed) or unix seconds (milliseconds when the number is that large);
  an empty date cell is no date.
- Rows are numbered as a spreadsheet shows them (the header is row 1); the
  record id is the `id` column where there is one, else the row number.
  Errors name the row, and the id too where there is one.
- Column names match case-insensitively, ignoring surrounding spaces.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from itertools import chain

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.limits import RECORD_FLAG, limited_lines, too_big
from marinade.timestamps import utc_iso

SUFFIXES = (".csv", ".tsv")
DELIMITERS = (",", ";", "\t", "|")
DATE_COLUMNS = ("date", "created_at", "timestamp", "time")
UNIX_TIME = re.compile(r"^-?\d+(?:\.\d+)?$")
# A header cell that names a column ("text", "Post text", "caption (en)"), not a post.
COLUMN_NAME = re.compile(r"^[^\W\d][\w ()/-]{0,39}$")
MAX_NAME_WORDS = 4
# The "delimiter" of a one-column table: a control character no post contains.
NO_DELIMITER = "\x1f"
MILLISECONDS_FROM = 100_000_000_000  # as unix seconds, this is in the year 5138


def _first_line(head: bytes) -> str | None:
    """The header line of a UTF-8 table, or None when the bytes are not text."""
    if b"\x00" in head:
        return None
    text = head.decode("utf-8-sig", errors="replace")
    line = text.splitlines()[0] if text else ""
    return line if "\ufffd" not in line else None


def _is_column_name(cell: str) -> bool:
    cell = cell.strip().strip('"').strip()
    return bool(COLUMN_NAME.match(cell)) and len(cell.split()) <= MAX_NAME_WORDS


def detect(archive: Archive) -> bool:
    """A .csv/.tsv file whose first line is text split by a delimiter, or one column's name."""
    try:
        if archive.is_container or not archive.names[0].lower().endswith(SUFFIXES):
            return False
        line = _first_line(archive.head(archive.names[0]))
        return line is not None and (any(d in line for d in DELIMITERS) or _is_column_name(line))
    except CorpusFormatError:
        return False


def _delimiter(name: str, header: str) -> str:
    if name.lower().endswith(".tsv"):
        return "\t"
    if not any(d in header for d in DELIMITERS):
        return NO_DELIMITER  # one column
    return max(DELIMITERS, key=header.count)


def _column(header: list[str], wanted: str) -> int | None:
    names = [h.strip().lower() for h in header]
    wanted = wanted.strip().lower()
    return names.index(wanted) if wanted in names else None


def _parse_date(value: str) -> datetime | None:
    if UNIX_TIME.match(value):
        seconds = float(value)
        if abs(seconds) >= MILLISECONDS_FROM:
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if value.endswith(" UTC"):
        value = value[:-4]
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _rows(archive: Archive, name: str, handle: io.TextIOWrapper) -> Iterator[list[str]]:
    """The table's rows, header first; undecodable or broken CSV is a CorpusFormatError."""
    label = archive.label(name)
    row_number = 1
    limit = archive.max_record_bytes
    csv.field_size_limit(limit)  # a cell of a quoted many-line text stops here
    lines = limited_lines(handle, limit, label)
    try:
        header_line = next(lines, "")
        delimiter = _delimiter(name, header_line)
        for row in csv.reader(chain([header_line], lines), delimiter=delimiter, strict=True):
            if sum(map(len, row)) > limit:
                problem = too_big("the row", limit, RECORD_FLAG)
                raise CorpusFormatError(label, f"row {row_number}", problem)
            yield row
            row_number += 1
    except UnicodeDecodeError as error:
        raise CorpusFormatError(label, f"row {row_number}", f"not UTF-8 text: {error}") from None
    except csv.Error as error:
        if "field limit" in str(error):
            problem = too_big("a cell", limit, RECORD_FLAG)
            raise CorpusFormatError(label, f"row {row_number}", problem) from None
        raise CorpusFormatError(label, f"row {row_number}", f"broken CSV: {error}") from None


def _find_columns(
    label: str, header: list[str], options: ImportOptions
) -> tuple[int, int | None, int | None]:
    """Where the text, the date and the id are, or a CorpusFormatError listing the columns."""
    columns = ", ".join(h.strip() for h in header)
    if not options.column and len(header) == 1:
        if not _is_column_name(header[0]):
            problem = (
                f"the first line reads like a post, not a column name ({_short(header[0])!r}):"
                " add a header line such as 'text'"
            )
            raise CorpusFormatError(label, "row 1", problem)
        return 0, None, None
    if not options.column:
        raise CorpusFormatError(
            label, None, f"which column holds the text? pass --column NAME (columns: {columns})"
        )
    text_index = _column(header, options.column)
    if text_index is None:
        problem = f"no column named {options.column!r} (columns: {columns})"
        raise CorpusFormatError(label, None, problem)
    if options.date_column:
        date_index = _column(header, options.date_column)
        if date_index is None:
            problem = f"no date column named {options.date_column!r} (columns: {columns})"
            raise CorpusFormatError(label, None, problem)
    else:
        found = (_column(header, c) for c in DATE_COLUMNS)
        date_index = next((i for i in found if i is not None), None)
    return text_index, date_index, _column(header, "id")


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _read_table(archive: Archive, name: str, options: ImportOptions) -> Records:
    label = archive.label(name)
    with archive.open(name) as raw:
        rows = _rows(archive, name, io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        header = next(rows, None)
        if not header:
            raise CorpusFormatError(label, None, "empty file: no header row")
        text_index, date_index, id_index = _find_columns(label, header, options)
        for row_number, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue  # a blank line between rows
            if text_index >= len(row):
                problem = f"{len(row)} cells, the header has {len(header)}: is the file cut short?"
                raise CorpusFormatError(label, f"row {row_number}", problem)
            record_id = _cell(row, id_index) or str(row_number)
            if not row[text_index].strip():
                yield Skipped("empty text", record_id)
                continue
            created_at = None
            value = _cell(row, date_index)
            if value and date_index is not None:
                moment = _parse_date(value)
                if moment is None:
                    where = f"row {row_number}"
                    if record_id != str(row_number):
                        where = f"{record_id} ({where})"
                    raise CorpusFormatError(
                        label,
                        where,
                        f"cannot read the date {value!r} in column {header[date_index].strip()!r}"
                        " (use ISO 8601, YYYY-MM-DD HH:MM:SS or unix seconds)",
                    )
                created_at = utc_iso(moment)
            yield Document(
                text=row[text_index],
                created_at=created_at,
                source=f"csv:{name}",
                record_id=record_id,
            )


def read(archive: Archive, options: ImportOptions) -> Records:
    tables = (
        archive.matching(lambda name: name.endswith(SUFFIXES))
        if archive.is_container
        else archive.names
    )
    if not tables:
        raise CorpusFormatError(str(archive.path), None, "no .csv or .tsv file in the archive")
    for name in tables:
        yield from _read_table(archive, name, options)


IMPORTER = Importer(
    name="csv",
    description="CSV/TSV spreadsheet with the text in --column NAME (and --date-column)",
    detect=detect,
    read=read,
    priority=20,
)
