"""Stream the records of a large XML export (WordPress WXR, Blogger Atom) one at a time."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from typing import IO

from lxml import etree

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, Skipped
from marinade.corpus.limits import RECORD_FLAG, too_big

CHUNK = 1 << 16


def iter_xml_records(
    archive: Archive,
    member: str,
    tag: str,
    convert: Callable[[etree._Element, str, str], Document | Skipped],
    element_noun: str,
    id_noun: str,
) -> Iterator[Document | Skipped]:
    """Each `tag` element of the archive's `member`, converted to a record by
    `convert(element, member, label)` (the member for the record's source, its label for
    errors), then freed with the siblings before it, so memory stays flat. Broken XML is
    a CorpusFormatError naming the element where it broke ("item 3") and the last record
    read ("after post 12"); so is an element that goes on past the record limit (the
    parser is fed in chunks and would otherwise hold it whole)."""
    label = archive.label(member)
    with archive.open(member) as handle:
        yield from _records(
            handle,
            tag,
            label,
            lambda e: convert(e, member, label),
            element_noun,
            id_noun,
            archive.max_record_bytes,
        )


def _records(
    handle: IO[bytes],
    tag: str,
    label: str,
    convert: Callable[[etree._Element], Document | Skipped],
    element_noun: str,
    id_noun: str,
    max_record: int,
) -> Iterator[Document | Skipped]:
    count, last_id = 0, None
    parser = etree.XMLPullParser(
        events=("end",), tag=tag, resolve_entities=False, no_network=True, huge_tree=True
    )
    since_record = 0  # bytes fed since the last record ended: what the parser may be holding
    try:
        while True:
            chunk = handle.read(CHUNK)
            if chunk:
                parser.feed(chunk)
                since_record += len(chunk)
            else:
                parser.close()
            for _, element in parser.read_events():
                count += 1
                since_record = 0
                _entities_as_text(element)
                record = convert(element)
                last_id = (
                    record.record_id if isinstance(record, Document) else record.record
                ) or last_id
                element.clear()
                while element.getprevious() is not None:
                    del element.getparent()[0]
                yield record
            if not chunk:
                return
            if since_record > max_record:
                problem = too_big(f"{element_noun} {count + 1}", max_record, RECORD_FLAG)
                raise CorpusFormatError(label, f"{element_noun} {count + 1}", problem)
    except etree.XMLSyntaxError as error:
        after = f" after {id_noun} {last_id}" if last_id else ""
        raise CorpusFormatError(
            label, f"{element_noun} {count + 1}", f"truncated or malformed XML{after}: {error}"
        ) from None


def _entities_as_text(element: etree._Element) -> None:
    """Entity references the parser left unresolved (resolve_entities=False: an external
    entity is never fetched) become text: an HTML name as its character (&eacute; -> é),
    any other as it was written (&ext;), and the text after it is kept."""
    for entity in list(element.iter(etree.Entity)):
        parent = entity.getparent()
        if parent is None:
            continue
        text = html.unescape(str(entity.text)) + (entity.tail or "")
        previous = entity.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + text
        else:
            parent.text = (parent.text or "") + text
        parent.remove(entity)
