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
"""

from __future__ import annotations

import codecs
import re
from datetime import datetime

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
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
    """UTF-8 (or BOM-marked UTF-16) without NULs; a character cut by `head` is fine."""
    if head.startswith(UTF16_BOMS):
        return True
    if b"\x00" in head:
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


def _pieces(text: str, split: str) -> list[str]:
    """The text cut as `split` says (see the module's docstring); empty pieces dropped."""
    if split == "none":
        pieces = [text]
    elif split == "paragraphs":
        pieces = re.split(r"\n[ \t]*\n", text)
    else:
        pieces = _separated(text)
    return [p.strip("\n") for p in pieces if p.strip()]


def _separated(text: str) -> list[str]:
    """The text cut at "%" lines and at "---" lines that follow a blank line."""
    pieces: list[str] = []
    piece: list[str] = []
    previous_blank = True
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "%" or (stripped == "---" and previous_blank):
            pieces.append("\n".join(piece))
            piece = []
        else:
            piece.append(line)
        previous_blank = not stripped
    pieces.append("\n".join(piece))
    return pieces


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-16" if data.startswith(UTF16_BOMS) else "utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CorpusFormatError(label, None, f"not UTF-8 text (line {line}): {error}") from None


def _read_file(archive: Archive, name: str, split: str) -> Records:
    label = archive.label(name)
    data = archive.read_bytes(name)
    if not data:
        if not archive.is_container:
            raise CorpusFormatError(label, None, "empty file")
        yield Skipped("empty file", name)
        return
    text = _decode(data, label).replace("\r\n", "\n").replace("\r", "\n")
    fields: dict[str, str] = {}
    markdown = name.lower().endswith(MARKDOWN_SUFFIXES)
    if markdown:
        fields, text = _split_front_matter(text)
    if fields.get("draft", "").lower() == "true" or fields.get("published", "").lower() == "false":
        yield Skipped("draft", name)
        return
    created_at = None
    if fields.get("date"):
        moment = _parse_date(fields["date"])
        if moment is None:
            raise CorpusFormatError(label, None, f"invalid date in front matter: {fields['date']}")
        created_at = utc_iso(moment)
    pieces = _pieces(text, split)
    if not pieces:
        yield Skipped("no text", name)
    for number, piece in enumerate(pieces, start=1):
        yield Document(
            text=_strip_markdown(piece) if markdown else piece,
            created_at=created_at,
            source=f"text:{name}",
            record_id=name if len(pieces) == 1 else f"{name}#{number}",
        )


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
