"""How much an import reads: a limit per record and per file, and streams that keep them.

An archive is input from anywhere: a 1 MB zip can hold 1 GiB of text, a file can be one
200 MB line, `/dev/zero` never ends. So every byte an importer reads goes through a
`BoundedStream` that stops with a one-line error past `max_file_bytes` (default 4 GiB,
`--max-file-size`), and readers of lines, JSON records, mail messages and XML elements
stop past `max_record_bytes` (default 16 MiB, `--max-record-size`). A file that a format
must parse whole (a Telegram result.json, a Bluesky repository) counts as one record.
With records bounded and everything streamed, an import's memory stays bounded too:
measured under 500 MB for a compressed bomb (tests/test_hostile_files.py).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO, AnyStr

from marinade.corpus.document import CorpusFormatError
from marinade.errors import MarinadeError

RECORD_FLAG = "--max-record-size"
FILE_FLAG = "--max-file-size"
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str, flag: str) -> int:
    """`16M`, `1.5GiB`, `500k`, `1000000` as bytes (K, M, G and T are powers of 1024)."""
    match = SIZE.match(text)
    if match is None or float(match[1]) <= 0:
        raise MarinadeError(f"{flag} takes a size like 64M, 2G or 500k, not {text!r}")
    return int(float(match[1]) * UNITS[match[2].lower()])


def describe_size(size: int) -> str:
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= unit:
            return f"{size / unit:.3g} {name}"
    return f"{size} bytes"


def too_big(what: str, limit: int, flag: str) -> str:
    """The problem part of a limit's error: what is too big, the limit, the flag."""
    return f"{what} is larger than {describe_size(limit)}; pass {flag} to raise the limit"


class BoundedStream(io.RawIOBase):
    """A binary stream that raises CorpusFormatError once more than `limit` bytes were read
    (a member of a compressed archive can claim any size, or none)."""

    def __init__(self, raw: IO[bytes], limit: int, label: str):
        self.raw, self.limit, self.label, self.position = raw, limit, label, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        want = min(len(buffer), self.limit + 1 - self.position)
        data = self.raw.read(max(want, 1))
        if self.position + len(data) > self.limit:
            raise CorpusFormatError(self.label, None, too_big("the file", self.limit, FILE_FLAG))
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def bounded(raw: IO[bytes], limit: int, label: str) -> io.BufferedReader:
    """`raw` read through a BoundedStream, buffered (readline, peek and iteration work)."""
    return io.BufferedReader(BoundedStream(raw, limit, label), buffer_size=1 << 16)


def limited_lines(handle: IO[AnyStr], limit: int, label: str) -> Iterator[AnyStr]:
    """The lines of a binary or text stream, each at most `limit` long: a longer one is a
    CorpusFormatError naming its line number rather than a line held whole in memory."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit:
            problem = too_big("the line", limit, RECORD_FLAG)
            raise CorpusFormatError(label, f"line {number}", problem)
        yield line
