"""The Mastodon archive importer, on real tar.gz, zip and folder archives written here."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.mastodon import IMPORTER

ME = "https://mastodon.example/users/alice"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
FOLLOWERS = f"{ME}/followers"
CONTEXT = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    {
        "ostatus": "http://ostatus.org#",
        "atomUri": "ostatus:atomUri",
        "inReplyToAtomUri": "ostatus:inReplyToAtomUri",
        "conversation": "ostatus:conversation",
        "sensitive": "as:sensitive",
        "toot": "http://joinmastodon.org/ns#",
        "votersCount": "toot:votersCount",
        "blurhash": "toot:blurhash",
        "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
        "Hashtag": "as:Hashtag",
    },
]


def create(
    number: int,
    content: str,
    to: list[str] | None = None,
    cc: list[str] | None = None,
    published: str = "2024-03-01T09:30:00Z",
    in_reply_to: str | None = None,
    language: str = "en",
    kind: str = "Note",
) -> dict[str, Any]:
    """A Create activity as Mastodon's BackupService writes it (@context removed)."""
    status = f"{ME}/statuses/{number}"
    to = [PUBLIC] if to is None else to
    cc = [FOLLOWERS] if cc is None else cc
    return {
        "id": f"{status}/activity",
        "type": "Create",
        "actor": ME,
        "published": published,
        "to": to,
        "cc": cc,
        "object": {
            "id": status,
            "type": kind,
            "summary": None,
            "inReplyTo": in_reply_to,
            "published": published,
            "url": f"https://mastodon.example/@alice/{number}",
            "attributedTo": ME,
            "to": to,
            "cc": cc,
            "sensitive": False,
            "atomUri": status,
            "inReplyToAtomUri": in_reply_to,
            "conversation": "tag:mastodon.example,2024-03-01:objectId=1:objectType=Conversation",
            "content": content,
            "contentMap": {language: content},
            "attachment": [],
            "tag": [],
            "replies": {"id": f"{status}/replies", "type": "Collection"},
        },
    }


def announce(number: int, boosted: str) -> dict[str, Any]:
    return {
        "id": f"{ME}/statuses/{number}/activity",
        "type": "Announce",
        "actor": ME,
        "published": "2024-03-02T10:00:00Z",
        "to": [PUBLIC],
        "cc": ["https://other.example/users/bob", FOLLOWERS],
        "object": boosted,
    }


LINK = (
    '<a href="https://example.com/posts/long-path" target="_blank" rel="nofollow noopener">'
    '<span class="invisible">https://</span><span class="ellipsis">example.com/posts/</span>'
    '<span class="invisible">long-path</span></a>'
)
HASHTAG = (
    '<a href="https://mastodon.example/tags/tea" class="mention hashtag" rel="tag">'
    "#<span>tea</span></a>"
)
MENTION = (
    '<span class="h-card" translate="no"><a href="https://other.example/@bob" '
    'class="u-url mention">@<span>bob</span></a></span>'
)
QUOTE = (
    '<p class="quote-inline">RE: <a href="https://other.example/@bob/9">'
    '<span class="invisible">https://</span>other.example/@bob/9</a></p>'
)

ITEMS = [
    create(1, f"<p>First paragraph about {HASHTAG} &amp; toast.</p><p>Second one: {LINK}</p>"),
    create(2, "<p>Quiet, unlisted thought.</p>", to=[FOLLOWERS], cc=[PUBLIC]),
    create(3, "<p>For my followers only.</p>", to=[FOLLOWERS], cc=[]),
    create(4, f"<p>{MENTION} a direct message</p>", to=["https://other.example/users/bob"], cc=[]),
    create(
        5,
        f"<p>{MENTION} yes, exactly<br>and more</p>",
        in_reply_to="https://other.example/users/bob/statuses/8",
        published="2024-03-01T11:30:00.000+02:00",
        language="de",
    ),
    announce(6, "https://other.example/users/bob/statuses/7"),
    create(7, f"<p>My take on this.</p>{QUOTE}"),
    create(8, ""),  # media only: the text is empty, the photo is an attachment
    create(9, "<p>Which tea is best?</p>", kind="Question"),
    {"id": f"{ME}#likes/1", "type": "Like", "actor": ME, "object": "https://o.example/1"},
]


def outbox(items: list[Any]) -> str:
    collection = {
        "@context": CONTEXT,
        "id": "outbox.json",
        "type": "OrderedCollection",
        "totalItems": len(items),
        "orderedItems": items,
    }
    return json.dumps(collection)


def member_files(items: list[Any]) -> dict[str, bytes]:
    likes = {
        "@context": CONTEXT,
        "id": "likes.json",
        "type": "OrderedCollection",
        "totalItems": 1,
        "orderedItems": ["https://other.example/users/bob/statuses/7"],
    }
    actor = {"@context": CONTEXT, "id": ME, "type": "Person", "outbox": "outbox.json"}
    return {
        "media_attachments/files/110/000/001/original/photo.jpg": b"\xff\xd8\xff\xe0 jpeg",
        "outbox.json": outbox(items).encode(),
        "likes.json": json.dumps(likes).encode(),
        "bookmarks.json": json.dumps({**likes, "id": "bookmarks.json"}).encode(),
        "actor.json": json.dumps(actor).encode(),
        "avatar.png": b"\x89PNG avatar",
    }


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def read_all(path: Path) -> list[Document | Skipped]:
    return list(IMPORTER.read(Archive(path), ImportOptions()))


def cleaned(records: list[Document | Skipped], options: ImportOptions | None = None) -> list[str]:
    texts = []
    for record in records:
        if isinstance(record, Document):
            result, _ = clean(record, options or ImportOptions())
            if result is not None:
                texts.append(result.text)
    return texts


def test_reads_a_tar_gz_archive(tmp_path: Path) -> None:
    path = write_tar(tmp_path / "archive-20240301093000-0123abcd.tar.gz", member_files(ITEMS))
    assert IMPORTER.detect(Archive(path))
    records = read_all(path)
    docs = {d.record_id: d for d in records if isinstance(d, Document)}
    status = f"{ME}/statuses/"
    assert {k: (d.visibility, d.is_reply, d.is_repost) for k, d in docs.items()} == {
        status + "1": ("public", False, False),
        status + "2": ("unlisted", False, False),
        status + "3": ("private", False, False),
        status + "4": ("direct", False, False),
        status + "5": ("public", True, False),
        status + "6/activity": ("public", False, True),
        status + "7": ("public", False, False),
        status + "9": ("public", False, False),
    }
    first = docs[status + "1"]
    assert first.is_html and first.source == "mastodon:outbox.json"
    assert first.created_at == "2024-03-01T09:30:00+00:00" and first.language == "en"
    reply = docs[status + "5"]
    assert reply.created_at == "2024-03-01T09:30:00+00:00" and reply.language == "de"
    assert "quote-inline" not in docs[status + "7"].text and "RE:" not in docs[status + "7"].text

    skipped = {r.record: r.reason for r in records if isinstance(r, Skipped)}
    assert skipped == {status + "8": "no text (media only)", f"{ME}#likes/1": "Like activity"}

    # Defaults: boost and non-public posts dropped, links removed, paragraphs kept,
    # the reply's leading mention removed.
    assert cleaned(records) == [
        "First paragraph about #tea & toast.\n\nSecond one:",
        "Quiet, unlisted thought.",
        "yes, exactly\nand more",
        "My take on this.",
        "Which tea is best?",
    ]
    with_links = cleaned(records, ImportOptions(keep_links=True))
    assert with_links[0].endswith("Second one: https://example.com/posts/long-path")


def test_zip_and_folder_archives_read_the_same(tmp_path: Path) -> None:
    files = member_files(ITEMS[:2])
    zipped = tmp_path / "mastodon.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"archive-20240301/{name}", data)
    folder = tmp_path / "extracted"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    for path in (zipped, folder, folder / "outbox.json"):
        assert IMPORTER.detect(Archive(path)), path
        assert cleaned(read_all(path)) == [
            "First paragraph about #tea & toast.\n\nSecond one:",
            "Quiet, unlisted thought.",
        ]
    assert read_all(zipped)[0].source == "mastodon:archive-20240301/outbox.json"  # type: ignore[union-attr]


def test_truncated_outbox_names_the_file_and_record(tmp_path: Path) -> None:
    text = outbox(ITEMS[:3])
    cut = text[: text.index("For my followers")]
    path = write_tar(tmp_path / "archive.tar.gz", {"outbox.json": cut.encode()})
    assert IMPORTER.detect(Archive(path))
    with pytest.raises(CorpusFormatError) as error:
        read_all(path)
    assert str(error.value).startswith("archive.tar.gz:outbox.json, record #3: not valid JSON")


def test_truncated_tar_gz_is_a_format_error(tmp_path: Path) -> None:
    many = [create(n, f"<p>post number {n} with some words</p>" * 5) for n in range(2000)]
    whole = write_tar(tmp_path / "whole.tar.gz", {"outbox.json": outbox(many).encode()})
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(whole.read_bytes()[:-2000])
    with pytest.raises(CorpusFormatError, match="cut.tar.gz"):
        read_all(path)


def test_an_invalid_date_names_the_post(tmp_path: Path) -> None:
    items = [create(1, "<p>fine</p>"), create(2, "<p>bad</p>", published="2024-13-45T99:00:00Z")]
    path = write_tar(tmp_path / "archive.tar.gz", {"outbox.json": outbox(items).encode()})
    with pytest.raises(CorpusFormatError) as error:
        read_all(path)
    message = str(error.value)
    assert message.startswith(f"archive.tar.gz:outbox.json, record {ME}/statuses/2: invalid date")


def test_detect_rejects_other_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("OrderedCollection outbox, but just words.\n", "utf-8")
    likes = tmp_path / "likes.json"
    likes.write_bytes(member_files([])["likes.json"])
    twitter = tmp_path / "twitter.zip"
    with zipfile.ZipFile(twitter, "w") as archive:
        archive.writestr("data/tweets.js", 'window.YTD.tweets.part0 = [{"tweet": {}}]')
    other_json = tmp_path / "result.json"
    other_json.write_text(json.dumps({"name": "Telegram chat", "messages": []}), "utf-8")
    # A folder with an outbox.json that is not an ActivityStreams collection.
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "outbox.json").write_text('{"messages": []}', "utf-8")
    for path in (text, likes, twitter, other_json, folder):
        assert not IMPORTER.detect(Archive(path)), path
