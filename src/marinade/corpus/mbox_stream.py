"""An mbox file as a stream of messages, and each message's headers read lazily.

We split the file ourselves on "From " postmark lines (a line starting "From ",
after a blank line or at the start, with a time in it), so a mailbox of any size
streams from a zip member without a temporary copy; ">From " lines are unescaped
(mboxrd). Headers are read with a small scanner rather than the email package, and
a From header by two patterns rather than parseaddr: a big mailbox is scanned twice
and most of its messages only ever need their From line, which keeps 100,000-message
mailboxes fast. The mbox importer (corpus/importers/mbox.py) uses this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from functools import cached_property
from typing import IO

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError

POSTMARK = re.compile(rb"From \S*\s.*\d{1,2}:\d{2}")
ESCAPED_FROM = re.compile(rb">+From ")


@dataclass
class RawMessage:
    """A message's lines (without its postmark) and where its headers end."""

    index: int  # 1-based position in its mailbox
    lines: list[bytes]
    header_end: int | None  # index of the blank line after the headers; None: never ends


def raw_messages(archive: Archive, name: str) -> Iterator[RawMessage]:
    """The mailbox's messages, read as a stream. A message is kept up to the record limit
    (`--max-record-size`) and the rest of it is passed over: what lies beyond is an
    attachment, not words (the text part comes first), and memory stays bounded."""
    lines: list[bytes] = []
    header_end: int | None = None
    index = size = 0
    previous_blank = True
    limit = archive.max_record_bytes
    with archive.open(name) as handle:
        for line in _lines(handle, limit):
            if previous_blank and line.startswith(b"From ") and POSTMARK.match(line):
                if index:
                    yield RawMessage(index, lines, header_end)
                lines, header_end, previous_blank, size = [], None, False, 0
                index += 1
                continue
            if not index:
                if not line.isspace():
                    raise CorpusFormatError(
                        archive.label(name), None, "not an mbox: no 'From ' line before the mail"
                    )
                continue
            if line[:1] == b">" and ESCAPED_FROM.match(line):
                line = line[1:]
            previous_blank = line.isspace()
            if previous_blank and header_end is None:
                header_end = len(lines)
            size += len(line)
            if size <= limit:
                lines.append(line)
    if index:
        yield RawMessage(index, lines, header_end)


def _lines(handle: IO[bytes], limit: int) -> Iterator[bytes]:
    """The stream's lines; a line longer than `limit` is cut there (the rest is read and
    dropped), so one endless line never sits in memory."""
    while line := handle.readline(limit):
        if len(line) == limit and not line.endswith(b"\n"):
            while (rest := handle.readline(limit)) and not rest.endswith(b"\n"):
                pass
            line += b"\n"
        yield line


HEADER_BLOCK = re.compile(rb"(?:[^\s:]+[ \t]*:.*\n|[ \t].*\n)*")


class Headers:
    """A message's header block, read lazily: a big mailbox is scanned twice, and
    most of its messages only ever need their From line."""

    def __init__(self, index: int, block: bytes):
        self.index = index
        self._block = b"\n" + block  # every header line now starts after a newline
        self._lowered = self._block.lower()
        self._fields: dict[str, str] = {}

    def get(self, name: str) -> str:
        """The first `name:` header, unfolded ("" if absent)."""
        if name not in self._fields:
            key = b"\n" + name.encode() + b":"
            at = self._lowered.find(key)
            value = ""
            if at >= 0:
                start = at + len(key)
                end = self._block.find(b"\n", start)
                while end + 1 < len(self._block) and self._block[end + 1] in b" \t":
                    end = self._block.find(b"\n", end + 1)
                value = " ".join(_header_text(self._block[start:end]).split())
            self._fields[name] = value
        return self._fields[name]

    @property
    def message_id(self) -> str | None:
        ids = re.findall(r"<([^>]+)>", self.get("message-id"))
        return ids[0] if ids else (self.get("message-id").strip() or None)

    @property
    def record(self) -> str:
        ident = self.message_id
        return f"#{self.index}" + (f" <{ident}>" if ident else "")

    @property
    def labels(self) -> set[str]:
        return {label.strip().lower() for label in self.get("x-gmail-labels").split(",")}

    @cached_property
    def sender(self) -> tuple[str, str]:
        """(display name, address) of From, case-folded."""
        return sender(self.get("from"))


def scan_headers(message: RawMessage, label: str) -> Headers:
    """The message's headers; a block that is not headers means a corrupt mailbox."""
    if message.header_end is None:
        raise CorpusFormatError(label, f"#{message.index}", "truncated: the headers never end")
    block = b"".join(message.lines[: message.header_end])
    if HEADER_BLOCK.fullmatch(block) is None:
        raise CorpusFormatError(
            label, f"#{message.index}", "not a mail header line (corrupt mbox?)"
        )
    return Headers(message.index, block)


def _header_text(line: bytes) -> str:
    """A header line as text (raw 8-bit headers are usually UTF-8)."""
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


ANGLE_ADDRESS = re.compile(r"<([^<>]*)>")
BARE_ADDRESS = re.compile(r"[^\s<>\"(),;:]+@[^\s<>\"(),;:]+")


def sender(value: str) -> tuple[str, str]:
    """(display name, address) of a From header, case-folded; much faster than parseaddr,
    which matters when every message of a big mailbox is looked at twice."""
    angle = ANGLE_ADDRESS.findall(value)
    if angle:
        address = angle[-1].strip()
        name = value[: value.rfind("<")]
    else:
        found = BARE_ADDRESS.search(value)
        address = found.group() if found else ""
        name = value.replace(address, "").strip().strip("()")
    name = name.strip().strip('"').strip()
    if "=?" in name:
        name = decoded_header(name)
    return name.casefold(), address.casefold()


def decoded_header(value: str) -> str:
    """A header with RFC 2047 encoded words (=?utf-8?...?=) as text; as it is if broken."""
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value
