"""Project Gutenberg plain-text books (pg61.txt, 61-0.txt), one document per chapter.

A book is not the user's own writing, but it is useful prose for pre-training.
Everything up to the "*** START OF ..." line (header, old "small print"
licences) and everything from the "*** END OF ..." line on (licence, footer)
is dropped. The body is split into blocks at blank lines and rebuilt:

- A block of hard-wrapped prose (flush left, long lines) is joined into one
  line. A block is kept line by line instead when it looks like verse, a list
  or a table: every line indented, a line starting with a bullet, or all lines
  but the last shorter than SHORT_LINE characters (a wrapped paragraph fills
  its lines to about 70).
- "[Illustration...]" blocks and "Produced by ..." credits are dropped, and
  _underscore_ italics lose their underscores. Only markup is taken off: an
  underscore inside or against a word (`assignment_stmt`, `__debug__`) is part
  of it, so italics open and close against something that is not a word
  character.
- A document ends at a chapter heading (a short block starting "CHAPTER IV",
  "Chapter 4", "BOOK ONE", "PART II", "STAVE I", "Letter 2", or a Roman
  numeral), or at the first paragraph boundary after MAX_CHARS characters, so
  that a book without headings comes out in chunks of about that size. A
  heading followed by fewer than MIN_BODY_WORDS words (a contents entry) makes
  no document; the front matter before the first heading is kept only if it
  holds real prose (a preface), not just a title page and contents (then it
  is Skipped).

A book without the END line is read to its last line, with a warning (a
Notice): the e-texts of the 1990s often end without one, and a newer book that
lacks it may have been cut short, which only the user can tell.

The book is read line by line. Documents are numbered in order from 0
(record_id "pg61#0", "pg61#1", ...); Gutenberg gives no dates, so created_at
is None. The "Language:" header line sets the language when it is a common one.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator

from marinade.corpus.archive import Archive
from marinade.corpus.document import (
    CorpusFormatError,
    Document,
    ImportOptions,
    Notice,
    Skipped,
)
from marinade.corpus.importers import Importer, Records
from marinade.corpus.limits import limited_lines

HEAD_BYTES = 32 * 1024  # the header and old "small print" licences fit in this
MAX_CHARS = 16_000  # a longer chapter, or a book without headings, is cut about here
SHORT_LINE = 50  # wrapped prose fills its lines to ~70; verse lines are shorter
FRONT_MATTER_PROSE_WORDS = 40  # a paragraph this long makes front matter worth keeping
MIN_BODY_WORDS = 10  # fewer words after a heading: a contents entry, not a chapter

START = re.compile(
    r"^\s*(?:\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG|\*END\*?\s*THE SMALL PRINT)",
    re.IGNORECASE,
)
# The end of the book; e-texts of the 1990s say "End of this Etext of ...", when they
# say anything. (Their title line, which some repeat at the end, is not taken: others
# repeat it right after the small print, before the book.)
END = re.compile(
    r"^\s*(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|End of (?:the |this )?Project Gutenberg"
    r"|End of (?:the |this )?E-?text of)",
    re.IGNORECASE,
)
ENCODING = re.compile(rb"^Character set encoding:\s*([\w-]+)", re.IGNORECASE | re.MULTILINE)
LANGUAGE = re.compile(r"^Language:\s*(\w+)", re.IGNORECASE)
NUMBER_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen"
    r"|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty"
    r"|(?:the )?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last))"
    r"(?:-\w+)?"
)
HEADING = re.compile(
    r"^(?:(?:CHAPTER|Chapter|BOOK|Book|PART|Part|STAVE|Stave|VOLUME|Volume|LETTER|Letter)\s+"
    rf"(?:[IVXLCDM]+\b|\d+\b|(?i:{NUMBER_WORD})\b)"
    r"|[IVXLC]+\.?$|[IVXLC]+\.\s+[A-Z][A-Z\s,;'’-]+$)"
)
BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")
# Credits right after the START line, and the title line old e-texts repeat there.
CREDITS = re.compile(
    r"^(?:Produced by|E-?text prepared by|This e(?:text|book) was (?:prepared|produced) by"
    r"|Transcribed from|\**\s*The Project Gutenberg E-?text of)",
    re.IGNORECASE,
)
# _italics_: opened after and closed before a non-word character; an underscore inside
# only between two letters or digits (_assignment_stmt_).
ITALICS = re.compile(r"(?<!\w)_([^\s_](?:(?:[^_]|(?<=[^\W_])_(?=[^\W_]))*?[^\s_])?)_(?!\w)")
LANGUAGES = {
    "english": "en",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "finnish": "fi",
    "swedish": "sv",
    "danish": "da",
    "norwegian": "no",
    "latin": "la",
    "greek": "el",
    "russian": "ru",
    "chinese": "zh",
    "esperanto": "eo",
    "polish": "pl",
    "hungarian": "hu",
}


def _has_start(head: bytes) -> bool:
    text = head.decode("utf-8", errors="replace")
    return any(START.match(line) for line in text.splitlines())


def _books(archive: Archive) -> list[str]:
    if not archive.is_container:
        return list(archive.names)
    return archive.matching(lambda name: name.endswith(".txt"))


def detect(archive: Archive) -> bool:
    """A file (or a folder/zip of .txt files) whose header has the START marker."""
    try:
        books = _books(archive)[:20]
        return bool(books) and all(_has_start(archive.head(b, HEAD_BYTES)) for b in books)
    except CorpusFormatError:
        return False


def _encoding(head: bytes) -> str:
    """Old books declare ISO-8859-1 in the header; newer ones are UTF-8, often with a BOM."""
    declared = ENCODING.search(head.replace(b"\r\n", b"\n"))
    if declared:
        name = declared.group(1).decode("ascii", errors="replace").lower()
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            codec = ""
        if codec in ("iso8859-1", "cp1252", "iso8859-15"):
            return codec
    return "utf-8-sig"


def _is_prose(lines: list[str]) -> bool:
    if len(lines) == 1:
        return True
    if any(BULLET.match(line) for line in lines):
        return False
    if all(line[:1].isspace() for line in lines):
        return False  # indented: verse or a quoted letter laid out by the author
    return max(len(line) for line in lines[:-1]) >= SHORT_LINE


def _join(lines: list[str]) -> str:
    """A wrapped paragraph as one line; a line ending in a dash joins without a space."""
    text = ""
    for line in (line.strip() for line in lines):
        if text and not text.endswith(("-", "—")):
            text += " "
        text += line
    return text


def _paragraph(lines: list[str]) -> str:
    text = _join(lines) if _is_prose(lines) else "\n".join(line.strip() for line in lines)
    return ITALICS.sub(r"\1", text)


def _is_heading(lines: list[str]) -> bool:
    """A short block led by a heading line (a block of several is a table of contents)."""
    first, *rest = (line.strip() for line in lines)
    return (
        len(lines) <= 3
        and len(first) <= 70
        and bool(HEADING.match(first))
        and not any(HEADING.match(line) for line in rest)
    )


def _blocks(lines: Iterator[str]) -> Iterator[list[str]]:
    block: list[str] = []
    for line in lines:
        if line.strip():
            block.append(line.rstrip())
        elif block:
            yield block
            block = []
    if block:
        yield block


class _Book:
    """One book's lines: the header read for its language, then the body, noting
    whether the END line came (old e-texts have none; a newer book without one is cut)."""

    def __init__(self, label: str, handle: io.TextIOWrapper, max_line: int):
        self.label, self.handle, self.max_line = label, handle, max_line
        self.language: str | None = None
        self.line_number = 0
        self.ended = False

    def _lines(self) -> Iterator[str]:
        try:
            for line in limited_lines(self.handle, self.max_line, self.label):
                self.line_number += 1
                yield line
        except UnicodeDecodeError as error:
            raise CorpusFormatError(
                self.label, None, f"not UTF-8 text after line {self.line_number}: {error}"
            ) from None

    def body(self) -> Iterator[str]:
        lines = self._lines()
        for line in lines:
            language = LANGUAGE.match(line)
            if language:
                self.language = LANGUAGES.get(language.group(1).lower())
            if START.match(line):
                break
        else:
            raise CorpusFormatError(
                self.label,
                None,
                "no '*** START OF THE PROJECT GUTENBERG EBOOK' line: not a Gutenberg text",
            )
        for line in lines:
            if END.match(line):
                self.ended = True
                return
            yield line


def _sections(blocks: Iterator[list[str]]) -> Iterator[tuple[bool, list[str]]]:
    """(is front matter, paragraphs) for each document-sized piece of the body."""
    section: list[str] = []  # paragraphs of the piece being built, heading first
    body_words = 0  # words after the heading: a contents entry has almost none
    seen_heading = False
    preamble = True  # still in the credits right after the START line
    for block in blocks:
        first = block[0].strip()
        if preamble and CREDITS.match(first):
            continue
        preamble = False
        if first.startswith("[Illustration") and block[-1].endswith("]"):
            continue
        if _is_heading(block):
            if body_words >= MIN_BODY_WORDS:
                yield not seen_heading, section
            seen_heading = True
            section, body_words = [_join(block)], 0
            continue
        section.append(_paragraph(block))
        body_words += len(section[-1].split())
        if sum(len(p) for p in section) >= MAX_CHARS:
            yield False, section
            section, body_words = [], 0
    if body_words >= MIN_BODY_WORDS:
        yield False, section


def _has_prose(paragraphs: list[str]) -> bool:
    return any("\n" not in p and len(p.split()) >= FRONT_MATTER_PROSE_WORDS for p in paragraphs)


def _read_book(archive: Archive, name: str) -> Records:
    label = archive.label(name)
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    encoding = _encoding(archive.head(name, HEAD_BYTES))
    with archive.open(name) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline=None)
        book = _Book(label, text, archive.max_record_bytes)
        for number, (front_matter, paragraphs) in enumerate(_sections(_blocks(book.body()))):
            record_id = f"{stem}#{number}"
            if front_matter and not _has_prose(paragraphs):
                yield Skipped("front matter without prose (title page, contents)", record_id)
                continue
            yield Document(
                text="\n\n".join(paragraphs),
                created_at=None,
                source=f"gutenberg:{name}",
                record_id=record_id,
                language=book.language,
            )
        if not book.ended:
            yield Notice(
                label,
                f"no '*** END OF THE PROJECT GUTENBERG EBOOK' line: imported to its last line "
                f"({book.line_number}); usual for an old e-text, but a newer book may be cut short",
            )


def read(archive: Archive, options: ImportOptions) -> Records:
    books = _books(archive)
    if not books:
        raise CorpusFormatError(str(archive.path), None, "no .txt book in the archive")
    for name in books:
        if archive.is_container and not _has_start(archive.head(name, HEAD_BYTES)):
            yield Skipped("not a Project Gutenberg text", name)
            continue
        yield from _read_book(archive, name)


IMPORTER = Importer(
    name="gutenberg",
    description="Project Gutenberg plain-text book (header, licence and footer removed)",
    detect=detect,
    read=read,
    priority=60,
)
