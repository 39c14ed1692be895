"""Stream the items of a large JSON array (tweets.js, outbox.json, your_posts.json)
one at a time, so a 100,000-record export never sits in memory whole."""

from __future__ import annotations

import io
import json
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any

from marinade.corpus.document import CorpusFormatError, ImportOptions
from marinade.corpus.limits import RECORD_FLAG, too_big

CHUNK_CHARS = 1 << 20
MAX_RECORD_CHARS = ImportOptions().max_record_bytes  # --max-record-size


def iter_json_array(
    handle: IO[bytes],
    label: str,
    opening: re.Pattern[str],
    max_record: int = MAX_RECORD_CHARS,
) -> Iterator[Any]:
    """The items of the JSON array that `opening` finds (it must end at the "["),
    decoded one at a time so that a huge file never sits in memory whole.

    `opening` is searched for in the first megabyte of the file. A truncated or
    corrupt file is a CorpusFormatError naming the record ("#3") where it broke; so is
    a record longer than `max_record` characters, and one nested too deeply for the
    parser (JSON's own recursion).
    """
    reader = io.TextIOWrapper(handle, encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    buffer = _read_chunk(reader, label, None)
    match = opening.search(buffer)
    if match is None:
        raise CorpusFormatError(label, None, "cannot find the list of records")
    pos, count, want_item = match.end(), 0, True
    while True:
        while pos < len(buffer) and buffer[pos].isspace():
            pos += 1
        if pos == len(buffer):
            chunk = _read_chunk(reader, label, f"#{count + 1}")
            if not chunk:
                raise CorpusFormatError(label, f"#{count + 1}", "the file ends inside the list")
            buffer, pos = chunk, 0
            continue
        if not want_item or (count == 0 and buffer[pos] == "]"):
            if buffer[pos] == "]":
                return
            if buffer[pos] != ",":
                problem = f"expected ',' or ']' but found {buffer[pos]!r}"
                raise CorpusFormatError(label, f"#{count + 1}", problem)
            pos, want_item = pos + 1, True
            continue
        try:
            item, end = decoder.raw_decode(buffer, pos)
        except RecursionError:
            raise CorpusFormatError(label, f"#{count + 1}", "nested too deeply") from None
        except json.JSONDecodeError as error:
            # Usually the record goes on in the next chunk; at the end of the file it is
            # broken, and past the record limit it is too big (or broken: no matter).
            if len(buffer) - pos > max_record:
                problem = too_big("the record", max_record, RECORD_FLAG)
                raise CorpusFormatError(label, f"#{count + 1}", problem) from None
            chunk = _read_chunk(reader, label, f"#{count + 1}")
            if not chunk:
                raise CorpusFormatError(
                    label, f"#{count + 1}", f"not valid JSON (truncated?): {error.msg}"
                ) from None
            buffer, pos = buffer[pos:] + chunk, 0
            continue
        if end - pos > max_record:
            problem = too_big("the record", max_record, RECORD_FLAG)
            raise CorpusFormatError(label, f"#{count + 1}", problem)
        yield item
        pos, count, want_item = end, count + 1, False


def _read_chunk(reader: io.TextIOWrapper, label: str, record: str | None) -> str:
    try:
        return reader.read(CHUNK_CHARS)
    except UnicodeDecodeError as error:
        raise CorpusFormatError(label, record, f"not UTF-8 text: {error}") from None
    except (zlib.error, zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        raise CorpusFormatError(label, record, f"cannot read (corrupt archive?): {error}") from None
