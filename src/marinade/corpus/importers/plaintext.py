"""Plain .txt and .md files, or a folder (zip, tar) of them: the fallback format.

How a file is cut into documents is `--split` (ImportOptions.split):

- "separators" (the default): at lines of only "%" (the fortune-file
  convention) and lines of only "---" after a blank line (or at the top of the
  file). The blank line is required for "---" because in Markdown "---" right
  under a line of text underlines a heading. A file without such lines, a
  story or a whole book, is one document; a file of short posts between them
  is one document per post.
- "paragraphs": at blank lines, for a file of posts written one per paragraph.
- "none": never; the "%" and "---" lines stay in the text.

Markdown front matter (a "---" line, "key: value" lines, a "---" line at the
very top) is removed; its `date:` becomes created_at (all pieces of the file
share it) and `draft: true` or `published: false` skips the file. Without
front matter created_at is None: a file's modification time says when it was
last touched, not when it was written.

Markdown markup is taken out (headings' "#", emphasis, code fences,
comments, images; a link keeps its text and address).

Other files in a folder are Skipped as "not text"; an empty file in a folder
is Skipped, but an empty file given on its own is an error.

A file is read line by line and cut as it goes, so memory holds one piece at a
time: a line or a piece longer than --max-record-size is an error naming it.
UTF-16 is recognised by its BOM, or without one by where its NUL bytes fall;
other NUL bytes mean the file is not text.
"""

from __future__ import annotations

import codecs
import io
import itertools
import re
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.limits import RECORD_FLAG, limited_lines, too_big
from marinade.timestamps import utc_iso

HEAD_BYTES = 4096
TEXT_SUFFIXES = (".txt", ".md", ".markdown")
MARKDOWN_SUFFIXES = (".md", ".markdown")
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
FRONT_MATTER_FIELD = re.compile(r"^([\w-]+):\s*(.*?)\s*$")
MD_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_FENCE = re.compile(r"^\s*(?:```|~~~).*$", re.MULTILINE)
MD_HEADING = re.compile(r"^ {0,3}#{1,6}\s+", re.MULTILINE)
MD_EMPHASIS = re.compile(r"(?<!\w)(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1(?!\w)")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _is_text_name(name: str) -> bool:
    return name.lower().endswith(TEXT_SUFFIXES)


def _looks_like_text(head: bytes, whole: bool) -> bool:
    """UTF-8 without NULs, or UTF-16 (with its BOM or without); a character cut by `head`
    is fine."""
    try:
        if _encoding(head, "") != "utf-8-sig":
            return True
    except CorpusFormatError:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        return False
    return True


def detect(archive: Archive) -> bool:
    """A .txt/.md file or a folder holding some; a file without an extension that reads
    as UTF-8 text. A file with another extension (.json, .html, .zip) is not claimed:
    its markup would end up in the corpus as if it were writing (--format text forces it)."""
    try:
        if archive.is_container:
            return any(_is_text_name(name) for name in archive.names)
        name = archive.names[0]
        if _is_text_name(name):
            return True
        head = archive.head(name, HEAD_BYTES)
        return "." not in name and _looks_like_text(head, whole=len(head) < HEAD_BYTES)
    except CorpusFormatError:
        return False


def _split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Front matter's top-level fields, and the text after it (all of it when there is none)."""
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines():
        field = FRONT_MATTER_FIELD.match(line)
        if field:
            fields[field.group(1).lower()] = field.group(2)
        elif line.strip() and not line.startswith((" ", "\t", "-", "#")):
            return {}, text  # not YAML: a "---" separator followed by ordinary text
    return fields, text[match.end() :]


def _parse_date(value: str) -> datetime | None:
    value = value.strip("'\"")
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    value = re.sub(r" ([+-]\d\d:?\d\d)$", r"\1", value)  # Hugo writes "... 10:00:00 +0100"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _strip_markdown(text: str) -> str:
    """Markdown markup out, words kept: a link becomes "text address" so that the
    shared cleaning removes the address (or keeps it with --keep-links)."""
    text = MD_COMMENT.sub("", text)
    text = MD_IMAGE.sub("", text)
    text = MD_LINK.sub(r"\1 \2", text)
    text = MD_FENCE.sub("", text)
    text = MD_HEADING.sub("", text)
    return MD_EMPHASIS.sub(r"\2", text)


def _encoding(head: bytes, label: str) -> str:
    """The text's encoding from its first bytes: UTF-16 by its BOM, or without one by
    where its NULs fall (ASCII letters in UTF-16 have a NUL beside every byte); else
    UTF-8. Other NUL bytes mean it is not text."""
    if head.startswith(UTF16_BOMS):
        return "utf-16"
    if b"\x00" not in head:
        return "utf-8-sig"
    even, odd = head[0::2], head[1::2]
    if odd.count(0) >= len(odd) * 0.3 and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) >= len(even) * 0.3 and odd.count(0) == 0:
        return "utf-16-be"
    raise CorpusFormatError(label, None, "not text: it holds NUL bytes (a binary file?)")


def _is_boundary(line: str, split: str, previous_blank: bool) -> bool:
    """Whether `line` ends a piece as `split` says (see the module's docstring)."""
    stripped = line.strip()
    if split == "paragraphs":
        return not line.strip(" \t\n")
    if split == "separators":
        return stripped == "%" or (stripped == "---" and previous_blank)
    return False


def _stream_pieces(lines: Iterator[str], split: str, limit: int, label: str) -> Iterator[str]:
    """The pieces of a text read line by line, each at most `limit` characters: the
    text as `split` cuts it, empty pieces dropped, never more than a piece in memory."""
    piece: list[str] = []
    size, number, previous_blank = 0, 0, True
    for line in lines:
        if _is_boundary(line, split, previous_blank):
            text = "".join(piece).strip("\n")
            if text.strip():
                number += 1
                yield text
            piece, size = [], 0
        else:
            piece.append(line)
            size += len(line)
            if size > limit:
                where = f"piece {number + 1}" if split != "none" else None
                problem = too_big("the document", limit, RECORD_FLAG)
                raise CorpusFormatError(label, where, problem)
        previous_blank = not line.strip()
    text = "".join(piece).strip("\n")
    if text.strip():
        yield text


def _front_matter(lines: Iterator[str]) -> tuple[dict[str, str], Iterator[str]]:
    """Markdown front matter's fields from the first lines, and the lines after it (all
    of them when there is none). Front matter is short: at most 1000 lines are looked at."""
    head: list[str] = []
    for line in lines:
        head.append(line)
        closing = len(head) > 1 and line.strip() in ("---", "...")
        if not head[0].startswith("---") or closing or len(head) >= 1000:
            break
    joined = "".join(head)
    fields, rest = _split_front_matter(joined)
    return fields, itertools.chain(io.StringIO(rest) if rest != joined else head, lines)


def _read_file(archive: Archive, name: str, split: str) -> Records:
    label = archive.label(name)
    with archive.open(name) as handle:
        head = handle.peek(HEAD_BYTES)[:HEAD_BYTES]  # type: ignore[attr-defined]
        if not head:
            if not archive.is_container:
                raise CorpusFormatError(label, None, "empty file")
            yield Skipped("empty file", name)
            return
        lines = _text_lines(handle, _encoding(head, label), archive.max_record_bytes, label)
        fields: dict[str, str] = {}
        markdown = name.lower().endswith(MARKDOWN_SUFFIXES)
        if markdown:
            fields, lines = _front_matter(lines)
        if (
            fields.get("draft", "").lower() == "true"
            or fields.get("published", "").lower() == "false"
        ):
            yield Skipped("draft", name)
            return
        created_at = None
        if fields.get("date"):
            moment = _parse_date(fields["date"])
            if moment is None:
                raise CorpusFormatError(
                    label, None, f"invalid date in front matter: {fields['date']}"
                )
            created_at = utc_iso(moment)

        def document(piece: str, record_id: str) -> Document:
            return Document(
                text=_strip_markdown(piece) if markdown else piece,
                created_at=created_at,
                source=f"text:{name}",
                record_id=record_id,
            )

        # the first piece waits for the second: a file of one piece is named by the file
        pieces = _stream_pieces(lines, split, archive.max_record_bytes, label)
        first = next(pieces, None)
        if first is None:
            yield Skipped("no text", name)
            return
        second = next(pieces, None)
        if second is None:
            yield document(first, name)
            return
        yield document(first, f"{name}#1")
        yield document(second, f"{name}#2")
        for number, piece in enumerate(pieces, start=3):
            yield document(piece, f"{name}#{number}")


def _text_lines(handle: IO[bytes], encoding: str, limit: int, label: str) -> Iterator[str]:
    """The text's lines, "\n"-terminated whatever the file used (\r\n, \r), each at most
    `limit` long. UTF-8 is decoded line by line, so an error names its line."""
    if encoding.startswith("utf-16"):
        text = io.TextIOWrapper(handle, encoding=encoding, newline=None)
        try:
            yield from limited_lines(text, limit, label)
        except UnicodeDecodeError as error:
            raise CorpusFormatError(label, None, f"not UTF-16 text: {error}") from None
        return
    for number, raw in enumerate(limited_lines(handle, limit, label), start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            problem = f"not UTF-8 text (line {number}): {error}"
            raise CorpusFormatError(label, None, problem) from None
        if "\r" in line:
            yield from line.replace("\r\n", "\n").replace("\r", "\n").splitlines(keepends=True)
        else:
            yield line


def read(archive: Archive, options: ImportOptions) -> Records:
    for name in archive.names:
        if archive.is_container and not _is_text_name(name):
            yield Skipped("not text", name)
            continue
        yield from _read_file(archive, name, options.split)


IMPORTER = Importer(
    name="text",
    description="plain .txt or .md files, or a folder of them: a file is one document,"
    " or one per piece between % or --- lines (see --split below)",
    detect=detect,
    read=read,
    priority=0,
)
