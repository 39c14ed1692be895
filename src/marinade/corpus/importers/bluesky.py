"""Bluesky repository export: a CARv1 file of DAG-CBOR blocks (Settings -> Export my data).

The blocks are a signed commit, the nodes of a Merkle search tree (MST) and the
records. Records carry no key of their own, so we walk the MST from the commit
to learn each record's collection and rkey (and so its at:// URI). A CAR
without a commit at its root (a bare bundle of records) is read by `$type`
instead, with the block's CID as the record id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import libipld

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.timestamps import utc_iso

POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"
LINK_FEATURE = "app.bsky.richtext.facet#link"
SCHEME = re.compile(r"^(?:https?://)?(?:www\.)?", re.IGNORECASE)


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """An unsigned LEB128 integer at `offset`, and the offset after it."""
    value = shift = 0
    while offset < len(data) and shift < 64:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
    raise ValueError("truncated varint")


def _looks_like_car(head: bytes) -> bool:
    """A CARv1 header: a varint length, then a DAG-CBOR map {roots: [...], version: 1}."""
    try:
        length, start = _varint(head, 0)
        if not 0 < length <= len(head) - start:
            return False
        header = libipld.decode_dag_cbor(head[start : start + length])
    except (ValueError, RecursionError):
        return False
    return isinstance(header, dict) and header.get("version") == 1 and "roots" in header


def _car_members(archive: Archive) -> list[str]:
    if archive.is_container:
        candidates = archive.matching(lambda name: name.endswith(".car"))
    else:
        candidates = archive.names
    return archive.members_whose_head(candidates, _looks_like_car)


def detect(archive: Archive) -> bool:
    return bool(_car_members(archive))


def _damage(data: bytes) -> tuple[str | None, str]:
    """Where a CAR that failed to decode breaks: (record, problem) for the error line.

    libipld only says "invalid"; walking the length-prefixed frames ourselves
    names the first block that runs past the end or does not decode.
    """
    try:
        length, offset = _varint(data, 0)
    except ValueError:
        return None, "not a CAR file: no header"
    if offset + length > len(data):
        return None, "truncated CAR header"
    index = 0
    offset += length
    while offset < len(data):
        where = f"block {index} (byte {offset})"
        try:
            length, start = _varint(data, offset)
            end = start + length
            if end > len(data):
                return where, f"truncated: needs {end - len(data)} more bytes"
            # A CIDv1: version, codec, hash code, digest length, digest.
            _, position = _varint(data, start)
            _, position = _varint(data, position)
            _, position = _varint(data, position)
            digest, position = _varint(data, position)
            libipld.decode_dag_cbor(data[position + digest : end])
        except (ValueError, RecursionError) as error:
            return where, f"corrupt block: {error}"
        offset, index = end, index + 1
    return None, "corrupt CAR file"


def _created_at(value: Any, label: str, record: str) -> str | None:
    """createdAt as UTC ISO; a missing one is None, an unreadable one is fatal."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CorpusFormatError(label, record, f"invalid createdAt {value!r}")
    text = re.sub(r"[Zz]$", "+00:00", value.strip())
    # Python 3.10 wants exactly 6 fraction digits; Bluesky clients write 3 to 9.
    text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text)
    try:
        return utc_iso(datetime.fromisoformat(text))
    except ValueError:
        raise CorpusFormatError(label, record, f"invalid createdAt {value!r}") from None


def _is_shortened(shown: str, uri: str) -> bool:
    """The app shows links as "example.com/some/pa..."; true when `shown` abbreviates `uri`."""
    core = SCHEME.sub("", shown.strip()).removesuffix("...").removesuffix("…").lower()
    return bool(core) and SCHEME.sub("", uri).lower().startswith(core)


def _expand_links(text: str, facets: Any) -> str:
    """Put each link facet's full URI where the text shows its shortened form.

    Facets index UTF-8 bytes. Once the text holds real URLs, shared cleaning
    removes them, or keeps them with --keep-links, as for every other format.
    Facets over other words (a link on "this article") leave the words alone.
    """
    if not isinstance(facets, list):
        return text
    raw = text.encode("utf-8")

    def boundary(at: int) -> bool:
        return at == len(raw) or raw[at] & 0xC0 != 0x80

    spans = []
    for facet in facets:
        index = facet.get("index") if isinstance(facet, dict) else None
        features = facet.get("features") if isinstance(facet, dict) else None
        if not isinstance(index, dict) or not isinstance(features, list):
            continue
        start, end = index.get("byteStart"), index.get("byteEnd")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(raw)):
            continue
        if not (boundary(start) and boundary(end)):
            continue
        shown = raw[start:end].decode("utf-8")
        for feature in features:
            if not isinstance(feature, dict) or feature.get("$type") != LINK_FEATURE:
                continue
            uri = feature.get("uri")
            if isinstance(uri, str) and _is_shortened(shown, uri):
                spans.append((start, end, uri))
    last = len(raw) + 1
    for start, end, uri in sorted(spans, reverse=True):
        if end <= last:  # overlapping facets are malformed: keep the later one
            raw = raw[:start] + uri.encode("utf-8") + raw[end:]
            last = start
    return raw.decode("utf-8")


def _record(
    record: Any, collection: str, record_id: str, source: str, label: str
) -> Document | Skipped:
    if not isinstance(record, dict):
        return Skipped("not a record", record_id)
    kind = record.get("$type", collection)
    if kind == REPOST:
        return Skipped("repost", record_id)
    if kind != POST:
        return Skipped(f"not a post: {kind}", record_id)
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return Skipped("no text", record_id)
    langs = record.get("langs")
    language = langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None
    return Document(
        text=_expand_links(text, record.get("facets")),
        created_at=_created_at(record.get("createdAt"), label, record_id),
        source=source,
        record_id=record_id,
        is_reply=record.get("reply") is not None,
        language=language,
    )


def _walk_mst(blocks: dict[bytes, Any], root: bytes, label: str) -> Iterator[tuple[str, bytes]]:
    """(key, record CID) pairs in key order; a key is "collection/rkey".

    A node is {l: left subtree, e: [{p: prefix shared with the previous key,
    k: rest of the key, v: record, t: subtree after this key}]}.
    """
    stack: list[tuple[str, Any]] = [("node", root)]
    seen: set[bytes] = set()
    while stack:
        kind, item = stack.pop()
        if kind == "entry":
            yield item
            continue
        if not isinstance(item, bytes):
            raise CorpusFormatError(label, None, "corrupt repository tree link")
        if item in seen:
            raise CorpusFormatError(label, None, "the repository tree loops")
        seen.add(item)
        node = blocks.get(item)
        if not isinstance(node, dict) or not isinstance(node.get("e"), list):
            raise CorpusFormatError(
                label, _cid(item), "repository tree node missing or corrupt (truncated export?)"
            )
        pending: list[tuple[str, Any]] = []
        if node.get("l") is not None:
            pending.append(("node", node["l"]))
        key = b""
        for entry in node["e"]:
            try:
                key = key[: entry["p"]] + entry["k"]
                pending.append(("entry", (key.decode("utf-8"), entry["v"])))
            except (KeyError, TypeError, UnicodeDecodeError):
                raise CorpusFormatError(
                    label, _cid(item), "corrupt repository tree entry"
                ) from None
            if entry.get("t") is not None:
                pending.append(("node", entry["t"]))
        stack.extend(reversed(pending))


def _cid(raw: Any) -> str:
    try:
        return libipld.encode_cid(raw)
    except (ValueError, TypeError):
        return repr(raw)


def _read_car(archive: Archive, name: str) -> Records:
    label = archive.label(name)
    source = f"bluesky:{name}"
    data = archive.read_bytes(name)
    try:
        # atproto's CAR.from_bytes is this call plus CID wrappers; links inside
        # blocks decode as raw CID bytes, so raw bytes keys are what we need.
        header, blocks = libipld.decode_car(data)
    except (ValueError, RecursionError):
        where, problem = _damage(data)
        raise CorpusFormatError(label, where, problem) from None
    roots = header.get("roots")
    commit = blocks.get(roots[0]) if isinstance(roots, list) and roots else None
    if isinstance(commit, dict) and isinstance(commit.get("data"), bytes) and "did" in commit:
        for key, value in _walk_mst(blocks, commit["data"], label):
            uri = f"at://{commit['did']}/{key}"
            record = blocks.get(value) if isinstance(value, bytes) else None
            if record is None:
                raise CorpusFormatError(label, uri, "record block missing (truncated export?)")
            yield _record(record, key.split("/", 1)[0], uri, source, label)
    else:  # no commit: every block that names its own $type is a record
        for cid, block in blocks.items():
            if isinstance(block, dict) and "$type" in block:
                yield _record(block, block["$type"], _cid(cid), source, label)


def read(archive: Archive, options: ImportOptions) -> Records:
    # A single file forced with --format is read as a CAR, so damage gets named.
    members = _car_members(archive) if archive.is_container else archive.names
    if not members:
        raise CorpusFormatError(str(archive.path), None, "no Bluesky CAR repository export found")
    for name in members:
        yield from _read_car(archive, name)


IMPORTER = Importer(
    name="bluesky",
    description="Bluesky repository export (.car, Settings -> Export my data)",
    detect=detect,
    read=read,
    priority=60,
)
