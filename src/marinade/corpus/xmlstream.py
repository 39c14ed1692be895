"""Stream the records of a large XML export (WordPress WXR, Blogger Atom) one at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

from lxml import etree

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, Skipped


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
    read ("after post 12")."""
    label = archive.label(member)
    with archive.open(member) as handle:
        yield from _records(
            handle, tag, label, lambda e: convert(e, member, label), element_noun, id_noun
        )


def _records(
    handle: IO[bytes],
    tag: str,
    label: str,
    convert: Callable[[etree._Element], Document | Skipped],
    element_noun: str,
    id_noun: str,
) -> Iterator[Document | Skipped]:
    count, last_id = 0, None
    elements = etree.iterparse(
        handle,
        events=("end",),
        tag=tag,
        resolve_entities=False,
        no_network=True,
        huge_tree=True,
    )
    try:
        for _, element in elements:
            count += 1
            record = convert(element)
            last_id = (
                record.record_id if isinstance(record, Document) else record.record
            ) or last_id
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
            yield record
    except etree.XMLSyntaxError as error:
        after = f" after {id_noun} {last_id}" if last_id else ""
        raise CorpusFormatError(
            label, f"{element_noun} {count + 1}", f"truncated or malformed XML{after}: {error}"
        ) from None
