"""Facebook importer: real "Download your information" JSON exports, mojibake and all."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.facebook import IMPORTER, fix_mojibake

NEW_PATH = "your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_{}.json"


def facebook_json(value: Any) -> str:
    """JSON the way Facebook writes it: each UTF-8 byte of a string as its own \\u00XX escape."""

    def mangle(item: Any) -> Any:
        if isinstance(item, str):
            return item.encode("utf-8").decode("latin-1")
        if isinstance(item, list):
            return [mangle(i) for i in item]
        if isinstance(item, dict):
            return {k: mangle(v) for k, v in item.items()}
        return item

    return json.dumps(mangle(value), indent=2)


PART_1 = [
    {
        "timestamp": 1700000000,
        "attachments": [{"data": [{"external_context": {"url": "https://example.com/tide"}}]}],
        "data": [
            {"post": "Radosław says: café time ☕ https://example.com/tide"},
            {"update_timestamp": 1700000100},
        ],
        "title": "Radosław Kowalski updated his status.",
    },
    {
        "timestamp": 1690000000,
        "attachments": [{"data": [{"external_context": {"url": "https://example.com/x"}}]}],
        "title": "Radosław Kowalski shared a link.",
    },
    {
        "timestamp": 1680000000,
        "data": [{"post": "Write to me at me@example.org\nor don't."}],
        "tags": [{"name": "Zoë"}],
    },
]
PART_2 = [
    {
        "timestamp": 1600000000,
        "attachments": [
            {"data": [{"media": {"uri": "your_facebook_activity/posts/media/1.jpg", "title": ""}}]}
        ],
        "data": [{"post": "Zażółć gęślą jaźń"}],
        "title": "Radosław Kowalski added a new photo.",
    },
    {"timestamp": 1590000000, "data": [{"update_timestamp": 1590000001}]},
]


def write_zip(path: Path, parts: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for number, text in enumerate(parts, start=1):
            zf.writestr(NEW_PATH.format(number), text)
        zf.writestr("your_facebook_activity/posts/album/0.json", facebook_json({"name": "x"}))
        zf.writestr("personal_information/profile_information/profile_information.json", "{}")
    return path


def read_all(path: Path) -> list[Document | Skipped]:
    archive = Archive(path)
    assert IMPORTER.detect(archive)
    return list(IMPORTER.read(archive, ImportOptions()))


def test_posts_are_read_in_part_order_with_dates_and_fixed_encoding(tmp_path: Path) -> None:
    # Ten parts: _10 must come after _2, not before it.
    parts = [facebook_json(PART_1), facebook_json(PART_2)] + ["[]"] * 7
    parts.append(facebook_json([{"timestamp": 1500000000, "data": [{"post": "part ten"}]}]))
    records = read_all(write_zip(tmp_path / "facebook-me.zip", parts))
    documents = [r for r in records if isinstance(r, Document)]
    assert [d.text for d in documents] == [
        "Radosław says: café time ☕ https://example.com/tide",
        "Write to me at me@example.org\nor don't.",
        "Zażółć gęślą jaźń",
        "part ten",
    ]
    assert [d.created_at for d in documents] == [
        "2023-11-14T22:13:20+00:00",
        "2023-03-28T10:40:00+00:00",
        "2020-09-13T12:26:40+00:00",
        "2017-07-14T02:40:00+00:00",
    ]
    assert documents[0].source == "facebook:" + NEW_PATH.format(1)
    assert documents[3].source == "facebook:" + NEW_PATH.format(10)


def test_shares_and_photos_without_words_are_skipped(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "facebook.zip", [facebook_json(PART_1), facebook_json(PART_2)])
    skipped = [r for r in read_all(path) if isinstance(r, Skipped)]
    assert skipped == [Skipped("no text", "#2"), Skipped("no text", "#2")]


def test_cleaning_removes_links_and_scrubs_addresses(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "facebook.zip", [facebook_json(PART_1)])
    texts = []
    for record in read_all(path):
        if isinstance(record, Document):
            document, _ = clean(record, ImportOptions())
            assert document is not None
            texts.append(document.text)
    assert texts == ["Radosław says: café time ☕", "Write to me at <email>\nor don't."]


def test_older_layout_in_a_folder_with_other_capitals(tmp_path: Path) -> None:
    folder = tmp_path / "facebook-me"
    (folder / "Posts").mkdir(parents=True)
    (folder / "Posts" / "Your_Posts_1.json").write_text(facebook_json(PART_2))
    documents = [r for r in read_all(folder) if isinstance(r, Document)]
    assert [d.text for d in documents] == ["Zażółć gęślą jaźń"]
    assert documents[0].source == "facebook:Posts/Your_Posts_1.json"


def test_a_single_posts_file_is_detected_by_its_name_and_content(tmp_path: Path) -> None:
    path = tmp_path / "your_posts_1.json"
    path.write_text(facebook_json(PART_2))
    assert [r.text for r in read_all(path) if isinstance(r, Document)] == ["Zażółć gęślą jaźń"]


def test_older_wrapped_array_is_read(tmp_path: Path) -> None:
    path = tmp_path / "your_posts.json"
    path.write_text(facebook_json({"status_updates": PART_2}))
    assert [r.text for r in read_all(path) if isinstance(r, Document)] == ["Zażółć gęślą jaźń"]


def test_mojibake_fix_leaves_correct_strings_alone() -> None:
    assert fix_mojibake("Rados\u00c5\u0082aw") == "Radosław"
    assert fix_mojibake("naïve ☕") == "naïve ☕"  # already decoded: has a character above U+00FF
    assert fix_mojibake("Ã la carte") == "Ã la carte"  # latin-1 bytes that are not UTF-8


def test_truncated_file_names_the_file_and_the_record(tmp_path: Path) -> None:
    text = facebook_json(PART_1)
    cut = text[: text.index("me@example.org")]
    path = write_zip(tmp_path / "facebook.zip", [cut])
    records = IMPORTER.read(Archive(path), ImportOptions())
    assert isinstance(next(records), Document)  # records before the damage still stream out
    with pytest.raises(CorpusFormatError) as caught:
        list(records)
    assert str(caught.value).startswith(
        f"facebook.zip:{NEW_PATH.format(1)}, record #3: not valid JSON"
    )


def test_invalid_timestamp_names_the_record(tmp_path: Path) -> None:
    broken = [dict(PART_1[0]), {"timestamp": "last week", "data": [{"post": "hello"}]}]
    path = write_zip(tmp_path / "facebook.zip", [facebook_json(broken)])
    with pytest.raises(CorpusFormatError) as caught:
        read_all(path)
    assert caught.value.record == "#2"
    assert "facebook.zip" in str(caught.value) and "last week" in str(caught.value)


def test_does_not_claim_other_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("Just some notes I wrote.\n")
    messages = tmp_path / "facebook-messages.zip"
    with zipfile.ZipFile(messages, "w") as zf:
        zf.writestr("your_activity_across_facebook/messages/inbox/bob_1/message_1.json", "{}")
    twitter = tmp_path / "twitter.zip"
    with zipfile.ZipFile(twitter, "w") as zf:
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = []")
    outbox = tmp_path / "outbox.json"
    outbox.write_text('[{"timestamp": 1}]')  # right shape, wrong name
    wrong_content = tmp_path / "your_posts_1.json"
    wrong_content.write_text("id,text\n1,hello\n")
    for path in (text, messages, twitter, outbox, wrong_content):
        assert not IMPORTER.detect(Archive(path)), path
