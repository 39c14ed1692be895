"""Bluesky importer: real CARv1 repository exports, written block by block with libipld."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import libipld
import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.bluesky import IMPORTER

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
ARTICLE = "https://example.com/articles/a-rather-long-article-name-that-gets-shortened"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class Repo:
    """Blocks of a repository, and a CARv1 writer for them."""

    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}

    def put(self, value: Any) -> bytes:
        data = libipld.encode_dag_cbor(value)
        cid = bytes([0x01, 0x71, 0x12, 0x20]) + hashlib.sha256(data).digest()
        self.blocks[cid] = data
        return cid

    def node(self, entries: list[tuple[str, bytes, bytes | None]], left: bytes | None) -> bytes:
        """An MST node: keys prefix-compressed against the previous key in the node."""
        encoded, previous = [], b""
        for key, value, subtree in entries:
            raw = key.encode()
            shared = 0
            while shared < min(len(raw), len(previous)) and raw[shared] == previous[shared]:
                shared += 1
            encoded.append({"p": shared, "k": raw[shared:], "v": value, "t": subtree})
            previous = raw
        return self.put({"l": left, "e": encoded})

    def car(self, root: bytes, leave_out: bytes | None = None) -> bytes:
        header = libipld.encode_dag_cbor({"roots": [root], "version": 1})
        out = varint(len(header)) + header
        for cid, data in self.blocks.items():
            if cid != leave_out:
                out += varint(len(cid) + len(data)) + cid + data
        return out


def post(text: str, created: str = "2024-03-01T10:00:00.000Z", **extra: Any) -> dict[str, Any]:
    return {"$type": "app.bsky.feed.post", "text": text, "createdAt": created, **extra}


def link_facet(text: str, shown: str, uri: str) -> dict[str, Any]:
    start = text.encode().index(shown.encode())
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": start, "byteEnd": start + len(shown.encode())},
        "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
    }


LINKED = "Café notes ☕ read example.com/articles/a-rather-lo... today"
WORDS = "I wrote about this article last week"
REPLY = "@alice.bsky.social totally agree, the tide is late"
STRONG_REF = {"uri": f"at://{DID}/app.bsky.feed.post/3kaaaaaaaaa22", "cid": "bafyreia"}

RECORDS: dict[str, dict[str, Any]] = {
    "app.bsky.actor.profile/self": {"$type": "app.bsky.actor.profile", "displayName": "Me"},
    "app.bsky.feed.like/3kbbbbbbbbb22": {
        "$type": "app.bsky.feed.like",
        "subject": STRONG_REF,
        "createdAt": "2024-03-01T09:00:00Z",
    },
    "app.bsky.feed.post/3kcccccccccc2": post(
        LINKED,
        langs=["fr", "en"],
        facets=[link_facet(LINKED, "example.com/articles/a-rather-lo...", ARTICLE)],
    ),
    "app.bsky.feed.post/3kdddddddddd2": post(
        REPLY,
        "2024-03-02T08:30:00.123456789+02:00",
        reply={"root": STRONG_REF, "parent": STRONG_REF},
        facets=[
            {
                "index": {"byteStart": 0, "byteEnd": 18},
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:alice"}],
            }
        ],
    ),
    "app.bsky.feed.post/3keeeeeeeeee2": post(
        "", embed={"$type": "app.bsky.embed.images", "images": []}
    ),
    "app.bsky.feed.post/3kffffffffff2": post(
        WORDS, "2024-03-03T12:00:00Z", facets=[link_facet(WORDS, "this article", ARTICLE)]
    ),
    "app.bsky.feed.repost/3kgggggggggg2": {
        "$type": "app.bsky.feed.repost",
        "subject": STRONG_REF,
        "createdAt": "2024-03-04T00:00:00Z",
    },
}


def write_repo(
    path: Path, records: dict[str, dict[str, Any]] = RECORDS, drop_record: str | None = None
) -> Path:
    """A signed-commit repository: commit -> MST root (with a left subtree and a
    right subtree, so the walk follows both kinds of link) -> records."""
    repo = Repo()
    keys = sorted(records)
    cids = {key: repo.put(records[key]) for key in keys}
    left = repo.node([(k, cids[k], None) for k in keys[:2]], None)
    right = repo.node([(k, cids[k], None) for k in keys[4:]], None)
    root = repo.node([(keys[2], cids[keys[2]], None), (keys[3], cids[keys[3]], right)], left)
    commit = repo.put(
        {
            "did": DID,
            "version": 3,
            "data": root,
            "rev": "3kzzzzzzzzz22",
            "prev": None,
            "sig": b"s" * 64,
        }
    )
    path.write_bytes(repo.car(commit, leave_out=cids[drop_record] if drop_record else None))
    return path


def read_all(path: Path) -> list[Document | Skipped]:
    archive = Archive(path)
    assert IMPORTER.detect(archive)
    return list(IMPORTER.read(archive, ImportOptions()))


def cleaned(records: list[Document | Skipped], options: ImportOptions) -> list[Document]:
    out = []
    for record in records:
        if isinstance(record, Document):
            document, _ = clean(record, options)
            if document is not None:
                out.append(document)
    return out


def test_posts_come_out_with_at_uris_dates_languages_and_reply_flags(tmp_path: Path) -> None:
    records = read_all(write_repo(tmp_path / "repo.car"))
    documents = [r for r in records if isinstance(r, Document)]
    assert [d.record_id for d in documents] == [
        f"at://{DID}/app.bsky.feed.post/3kcccccccccc2",
        f"at://{DID}/app.bsky.feed.post/3kdddddddddd2",
        f"at://{DID}/app.bsky.feed.post/3kffffffffff2",
    ]
    first, reply, words = documents
    assert first.created_at == "2024-03-01T10:00:00+00:00"
    assert first.language == "fr"
    assert not first.is_reply and not first.is_repost
    assert first.source == "bluesky:repo.car"
    assert reply.is_reply
    assert reply.created_at == "2024-03-02T06:30:00+00:00"  # +02:00 and nanoseconds
    assert reply.language is None
    assert words.text == WORDS  # a link over ordinary words leaves the words alone


def test_reposts_likes_profiles_and_image_only_posts_are_skipped(tmp_path: Path) -> None:
    skipped = [r for r in read_all(write_repo(tmp_path / "repo.car")) if isinstance(r, Skipped)]
    assert sorted((s.reason, s.record) for s in skipped) == [
        ("no text", f"at://{DID}/app.bsky.feed.post/3keeeeeeeeee2"),
        ("not a post: app.bsky.actor.profile", f"at://{DID}/app.bsky.actor.profile/self"),
        ("not a post: app.bsky.feed.like", f"at://{DID}/app.bsky.feed.like/3kbbbbbbbbb22"),
        ("repost", f"at://{DID}/app.bsky.feed.repost/3kgggggggggg2"),
    ]


def test_shortened_link_facets_become_full_links_that_cleaning_removes_or_keeps(
    tmp_path: Path,
) -> None:
    records = read_all(write_repo(tmp_path / "repo.car"))
    assert isinstance(records[2], Document)
    assert records[2].text == f"Café notes ☕ read {ARTICLE} today"

    default = cleaned(records, ImportOptions())
    assert [d.text for d in default] == [
        "Café notes ☕ read today",
        "totally agree, the tide is late",  # leading @mention of a reply removed
        WORDS,
    ]
    kept = cleaned(records, ImportOptions(keep_links=True, drop_replies=True))
    assert [d.text for d in kept] == [f"Café notes ☕ read {ARTICLE} today", WORDS]


def test_truncated_car_names_the_file_and_the_block(tmp_path: Path) -> None:
    path = write_repo(tmp_path / "repo.car")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CorpusFormatError) as caught:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    message = str(caught.value)
    assert str(path) in message
    assert "record block 10 (byte" in message  # 7 records + 3 tree nodes before the commit
    assert "truncated" in message


def test_truncated_header_is_named_when_the_format_is_forced(tmp_path: Path) -> None:
    path = write_repo(tmp_path / "repo.car")
    path.write_bytes(path.read_bytes()[:20])
    assert not IMPORTER.detect(Archive(path))
    with pytest.raises(CorpusFormatError, match="repo.car: truncated CAR header"):
        list(IMPORTER.read(Archive(path), ImportOptions()))


def test_missing_record_block_names_the_record(tmp_path: Path) -> None:
    path = write_repo(tmp_path / "repo.car", drop_record="app.bsky.feed.post/3kdddddddddd2")
    with pytest.raises(
        CorpusFormatError, match=r"record at://.*/3kdddddddddd2: record block missing"
    ):
        read_all(path)


def test_invalid_created_at_names_the_record(tmp_path: Path) -> None:
    records = dict(RECORDS)
    records["app.bsky.feed.post/3kffffffffff2"] = post("hello", "last tuesday")
    path = write_repo(tmp_path / "repo.car", records)
    with pytest.raises(CorpusFormatError) as caught:
        read_all(path)
    assert caught.value.record == f"at://{DID}/app.bsky.feed.post/3kffffffffff2"
    assert "repo.car" in str(caught.value) and "last tuesday" in str(caught.value)


def test_car_without_a_commit_is_read_by_record_type(tmp_path: Path) -> None:
    repo = Repo()
    first = repo.put(post("just the records", "2024-05-05T05:05:05Z"))
    repo.put(
        {
            "$type": "app.bsky.feed.repost",
            "subject": STRONG_REF,
            "createdAt": "2024-05-05T05:05:05Z",
        }
    )
    path = tmp_path / "bundle.car"
    path.write_bytes(repo.car(first))
    records = read_all(path)
    assert isinstance(records[0], Document)
    assert records[0].text == "just the records"
    assert records[0].record_id == libipld.encode_cid(first)
    assert records[1] == Skipped("repost", records[1].record)


def test_detects_car_by_content_alone_and_inside_a_zip(tmp_path: Path) -> None:
    car = write_repo(tmp_path / "export.bin")  # no .car extension: the header decides
    assert IMPORTER.detect(Archive(car))
    bundle = tmp_path / "bluesky.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.write(car, "backup/repo.car")
        zf.writestr("backup/readme.txt", "my bluesky backup")
    documents = [r for r in read_all(bundle) if isinstance(r, Document)]
    assert len(documents) == 3
    assert documents[0].source == "bluesky:backup/repo.car"


def test_does_not_claim_other_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("Just some notes I wrote.\n")
    empty = tmp_path / "empty.car"
    empty.write_bytes(b"")
    outbox = tmp_path / "outbox.json"
    outbox.write_text('{"type": "OrderedCollection", "orderedItems": []}')
    twitter = tmp_path / "twitter.zip"
    with zipfile.ZipFile(twitter, "w") as zf:
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = []")
    for path in (text, empty, outbox, twitter):
        assert not IMPORTER.detect(Archive(path)), path
