"""The X/Twitter archive importer, on real zips and folders written here."""

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
from marinade.corpus.importers.twitter import IMPORTER


def tweet(
    tweet_id: str,
    text: str,
    created_at: str = "Sat Feb 18 12:33:11 +0000 2023",
    lang: str = "en",
    urls: list[dict[str, Any]] | None = None,
    reply_to: str | None = None,
    media_url: str | None = None,
) -> dict[str, Any]:
    """A tweets.js record shaped like a 2023 archive's (counts are strings there)."""
    body: dict[str, Any] = {
        "edit_info": {"initial": {"editTweetIds": [tweet_id], "isEditEligible": False}},
        "retweeted": False,
        "source": '<a href="https://mobile.twitter.com" rel="nofollow">Twitter Web App</a>',
        "entities": {"hashtags": [], "symbols": [], "user_mentions": [], "urls": urls or []},
        "display_text_range": ["0", str(len(text))],
        "favorite_count": "1",
        "id_str": tweet_id,
        "truncated": False,
        "retweet_count": "0",
        "id": tweet_id,
        "created_at": created_at,
        "favorited": False,
        "full_text": text,
        "lang": lang,
    }
    if reply_to:
        body["in_reply_to_status_id_str"] = reply_to
        body["in_reply_to_status_id"] = reply_to
        body["in_reply_to_user_id_str"] = "732980797985148928"
        body["in_reply_to_screen_name"] = "empathy2000"
    if media_url:
        media = {"url": media_url, "expanded_url": "https://x.com/me/status/1/photo/1"}
        body["entities"]["media"] = [media]
        body["extended_entities"] = {"media": [media]}
    return {"tweet": body}


def ytd(variable: str, items: list[Any]) -> str:
    return f"window.YTD.{variable} = " + json.dumps(items, indent=2, ensure_ascii=False)


def write_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def write_folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def read_all(path: Path, options: ImportOptions | None = None) -> list[Document | Skipped]:
    return list(IMPORTER.read(Archive(path), options or ImportOptions()))


def documents(records: list[Document | Skipped]) -> list[Document]:
    return [r for r in records if isinstance(r, Document)]


def cleaned(records: list[Document | Skipped], options: ImportOptions | None = None) -> list[str]:
    options = options or ImportOptions()
    texts = []
    for document in documents(records):
        result, _ = clean(document, options)
        if result is not None:
            texts.append(result.text)
    return texts


TWEETS = [
    tweet(
        "1626900000000000001",
        "Tea &amp; toast at dawn, read this https://t.co/AbCdEf123",
        urls=[
            {
                "url": "https://t.co/AbCdEf123",
                "expanded_url": "https://example.com/essays/tea",
                "display_url": "example.com/essays/tea",
                "indices": ["35", "58"],
            }
        ],
    ),
    tweet(
        "1626922779105759235",
        "@empathy2000 did NOT know but now I'm listening to her solo act bc of u",
        created_at="Sat Feb 18 14:03:11 +0130 2023",
        reply_to="1626916612560281601",
    ),
    tweet("1626900000000000003", "RT @someone: a post by someone else", lang="en"),
    tweet(
        "1626900000000000004",
        "https://t.co/PhOtO00001",
        lang="zxx",
        media_url="https://t.co/PhOtO00001",
    ),
    tweet(
        "1626900000000000005",
        "Look at this sky https://t.co/PhOtO00002",
        lang="und",
        media_url="https://t.co/PhOtO00002",
    ),
]


def test_reads_a_zip_archive_with_flags_dates_and_links(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "twitter-2023-02-20-abc.zip",
        {
            "Your archive.html": "<html></html>",
            "data/manifest.js": 'window.__THAR_CONFIG = {"userInfo": {}}',
            "data/account.js": ytd("account.part0", [{"account": {"accountId": "322603863"}}]),
            "data/tweets.js": ytd("tweets.part0", TWEETS),
            "data/like.js": ytd("like.part0", [{"like": {"tweetId": "1", "fullText": "liked"}}]),
        },
    )
    assert IMPORTER.detect(Archive(path))
    records = read_all(path)
    docs = {d.record_id: d for d in documents(records)}
    assert sorted(docs) == [
        "1626900000000000001",
        "1626900000000000003",
        "1626900000000000005",
        "1626922779105759235",
    ]
    assert [s.record for s in records if isinstance(s, Skipped)] == ["1626900000000000004"]

    first = docs["1626900000000000001"]
    assert first.source == "twitter:data/tweets.js"
    assert first.created_at == "2023-02-18T12:33:11+00:00"
    assert first.language == "en"
    assert first.link_targets == {"https://t.co/AbCdEf123": "https://example.com/essays/tea"}
    assert not first.is_reply and not first.is_repost and first.visibility == "public"

    reply = docs["1626922779105759235"]
    assert reply.is_reply and reply.created_at == "2023-02-18T12:33:11+00:00"
    assert docs["1626900000000000003"].is_repost
    sky = docs["1626900000000000005"]
    assert sky.language is None and "t.co" not in sky.text  # the photo link is an attachment

    # Defaults: retweet dropped, links removed, the reply's leading @mention removed.
    assert cleaned(records) == [
        "Tea & toast at dawn, read this",
        "did NOT know but now I'm listening to her solo act bc of u",
        "Look at this sky",
    ]
    with_links = cleaned(records, ImportOptions(keep_links=True))
    assert with_links[0] == "Tea & toast at dawn, read this https://example.com/essays/tea"


def test_split_parts_are_all_read_in_part_order(tmp_path: Path) -> None:
    files = {
        "data/tweets.js": ytd("tweets.part0", [tweet("1", "part zero")]),
        "data/tweets-part2.js": ytd("tweets.part2", [tweet("3", "part two")]),
        "data/tweets-part1.js": ytd("tweets.part1", [tweet("2", "part one")]),
        "data/tweets-part10.js": ytd("tweets.part10", [tweet("4", "part ten")]),
    }
    path = write_folder(tmp_path / "extracted", files)
    assert IMPORTER.detect(Archive(path))
    assert cleaned(read_all(path)) == ["part zero", "part one", "part two", "part ten"]


def test_old_tweet_js_without_the_tweet_wrapper(tmp_path: Path) -> None:
    # 2019 archives: data/tweet.js, `window.YTD.tweet.part0`, bare tweet objects.
    old = [tweet("11", "an old one")["tweet"], tweet("12", "and another")["tweet"]]
    path = write_zip(tmp_path / "old.zip", {"data/tweet.js": ytd("tweet.part0", old)})
    assert IMPORTER.detect(Archive(path))
    assert cleaned(read_all(path)) == ["an old one", "and another"]


def test_a_lone_tweets_js_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "tweets.js"
    path.write_text("\ufeff" + ytd("tweets.part0", [tweet("7", "just the file")]), "utf-8")
    assert IMPORTER.detect(Archive(path))
    assert cleaned(read_all(path)) == ["just the file"]


LONG_TEXT = (
    "This is a long post that goes well past the old limit, " * 8
    + "and it ends with a link https://t.co/LoNg00001 and a last word."
)


def test_long_posts_replace_their_truncated_copy(tmp_path: Path) -> None:
    truncated = LONG_TEXT[:270] + "… https://t.co/MoRe00001"
    notes = [
        {  # the shape real archives have: no tweet id, matched by time and text
            "noteTweet": {
                "noteTweetId": "1700000000000000900",
                "updatedAt": "2023-09-08T10:00:00.000Z",
                "lifecycle": {"value": "1", "name": "Active"},
                "createdAt": "2023-09-08T10:00:00.000Z",
                "core": {
                    "styletags": [],
                    "urls": [
                        {
                            "shortUrl": "https://t.co/LoNg00001",
                            "expandedUrl": "https://example.org/x",
                        }
                    ],
                    "text": LONG_TEXT,
                    "mentions": [],
                    "cashtags": [],
                    "hashtags": [],
                },
            }
        },
        {  # the documented shape with a tweet id
            "noteTweet": {
                "noteTweetId": "1700000000000000901",
                "noteTweetResults": {"text": "Second long post, in full. " * 15},
                "tweetId": "1700000000000000002",
            }
        },
        {  # a long post whose tweet was deleted
            "noteTweet": {
                "noteTweetId": "1700000000000000902",
                "createdAt": "2023-01-01T00:00:00.000Z",
                "core": {"text": "orphan", "urls": []},
            }
        },
    ]
    when = "Fri Sep 08 10:00:00 +0000 2023"
    tweets = [
        tweet("1700000000000000001", truncated, created_at=when),
        # A thread's next post, sent in the same second, keeps its own text.
        tweet("1700000000000000003", "and a short follow-up", created_at=when, reply_to="1"),
        tweet("1700000000000000002", "Second long post, in full. Second long…", created_at=when),
    ]
    path = write_zip(
        tmp_path / "long.zip",
        {
            "data/tweets.js": ytd("tweets.part0", tweets),
            "data/note-tweet.js": ytd("note_tweet.part0", notes),
        },
    )
    records = read_all(path)
    docs = {d.record_id: d for d in documents(records)}
    assert docs["1700000000000000001"].text == LONG_TEXT
    assert docs["1700000000000000001"].link_targets == {
        "https://t.co/LoNg00001": "https://example.org/x"
    }
    assert docs["1700000000000000003"].text == "and a short follow-up"
    assert docs["1700000000000000002"].text == "Second long post, in full. " * 15
    skipped = [r for r in records if isinstance(r, Skipped)]
    assert [s.record for s in skipped] == ["1700000000000000902"]
    text = cleaned(records, ImportOptions(keep_links=True))[0]
    assert text.endswith("a link https://example.org/x and a last word.")


def test_circle_posts_are_private_and_community_posts_are_read_once(tmp_path: Path) -> None:
    circle = tweet("21", "only for my circle")
    community = tweet("22", "hello community")
    path = write_zip(
        tmp_path / "circles.zip",
        {
            "data/tweets.js": ytd("tweets.part0", [circle, tweet("23", "for everyone"), community]),
            "data/twitter-circle-tweet.js": ytd("twitter_circle_tweet.part0", [circle]),
            "data/community-tweet.js": ytd("community_tweet.part0", [community]),
        },
    )
    records = read_all(path)
    assert [(d.record_id, d.visibility) for d in documents(records)] == [
        ("22", "public"),
        ("21", "private"),
        ("23", "public"),
    ]
    assert documents(records)[0].source == "twitter:data/community-tweet.js"
    assert cleaned(records) == ["hello community", "for everyone"]


def test_odd_records_are_skipped_not_fatal(tmp_path: Path) -> None:
    items = [tweet("31", "fine"), "not a record", {"tweet": {"id_str": "33", "full_text": ""}}]
    path = write_zip(tmp_path / "odd.zip", {"data/tweets.js": ytd("tweets.part0", items)})
    records = read_all(path)
    assert [d.record_id for d in documents(records)] == ["31"]
    skipped = [r for r in records if isinstance(r, Skipped)]
    assert [s.record for s in skipped] == ["odd.zip:data/tweets.js #2", "33"]


def test_truncated_tweets_js_names_the_file_and_record(tmp_path: Path) -> None:
    text = ytd("tweets.part0", [tweet("41", "one"), tweet("42", "two"), tweet("43", "three")])
    cut = text[: text.index('"three"')]
    path = write_zip(tmp_path / "cut.zip", {"data/tweets.js": cut})
    assert IMPORTER.detect(Archive(path))
    reader = IMPORTER.read(Archive(path), ImportOptions())
    assert [d.record_id for d in (next(reader), next(reader))] == ["41", "42"]  # streams
    with pytest.raises(CorpusFormatError) as error:
        next(reader)
    assert "cut.zip:data/tweets.js" in str(error.value)
    assert "record #3" in str(error.value)


def test_a_file_cut_between_records_is_an_error_too(tmp_path: Path) -> None:
    text = ytd("tweets.part0", [tweet("41", "one"), tweet("42", "two")])
    path = write_zip(tmp_path / "cut.zip", {"data/tweets.js": text[: text.rindex("]")]})
    with pytest.raises(CorpusFormatError, match=r"cut.zip:data/tweets.js, record #3"):
        read_all(path)


def test_corrupt_zip_data_is_a_format_error(tmp_path: Path) -> None:
    items = [tweet(str(n), f"tweet number {n} " * 20) for n in range(300)]
    path = write_zip(tmp_path / "bad.zip", {"data/tweets.js": ytd("tweets.part0", items)})
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zeroes in the middle of the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(CorpusFormatError, match=r"bad.zip:data/tweets.js"):
        read_all(path)


def test_an_invalid_date_names_the_tweet(tmp_path: Path) -> None:
    items = [tweet("51", "fine"), tweet("52", "bad date", created_at="Feb 30 2023")]
    path = write_zip(tmp_path / "dates.zip", {"data/tweets.js": ytd("tweets.part0", items)})
    with pytest.raises(CorpusFormatError) as error:
        read_all(path)
    assert str(error.value).startswith("dates.zip:data/tweets.js, record 52: invalid date")


def test_an_impossible_day_is_an_invalid_date(tmp_path: Path) -> None:
    items = [tweet("53", "bad day", created_at="Thu Feb 30 10:00:00 +0000 2023")]
    path = write_zip(tmp_path / "dates.zip", {"data/tweets.js": ytd("tweets.part0", items)})
    with pytest.raises(CorpusFormatError, match="record 53: invalid date"):
        read_all(path)


def test_detect_rejects_other_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("Just some plain text.\nwindow.YTD.tweets.part0 = []\n", "utf-8")

    mastodon = tmp_path / "archive-20240101000000-abc.tar.gz"
    outbox = json.dumps({"type": "OrderedCollection", "id": "outbox.json", "orderedItems": []})
    with tarfile.open(mastodon, "w:gz") as tar:
        info = tarfile.TarInfo("outbox.json")
        info.size = len(outbox.encode())
        tar.addfile(info, io.BytesIO(outbox.encode()))

    facebook = write_zip(
        tmp_path / "facebook.zip",
        {"your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json": "[]"},
    )
    likes_only = write_zip(
        tmp_path / "likes.zip", {"data/like.js": ytd("like.part0", [{"like": {"tweetId": "1"}}])}
    )
    # A web project's own tweets.js is JavaScript, not an archive file.
    project = write_folder(tmp_path / "site", {"js/tweets.js": "export function tweets() {}"})
    wxr = tmp_path / "blog.wordpress.xml"
    wxr.write_text('<?xml version="1.0"?><rss xmlns:wp="http://wordpress.org/export/1.2/"/>')

    for path in (text, mastodon, facebook, likes_only, project, wxr):
        assert not IMPORTER.detect(Archive(path)), path


def test_a_100000_tweet_archive_streams(tmp_path: Path) -> None:
    count = 100_000
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("data/tweets.js", "w") as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8")
            out.write("window.YTD.tweets.part0 = [\n")
            # One record's JSON with placeholders, filled in per tweet: json.dumps of
            # 100,000 records would take longer than reading them back.
            text = "Tweet number N — with “quotes” and 🍵"  # multi-byte UTF-8 across chunks
            template = json.dumps(tweet("ID", text), ensure_ascii=False)
            for n in range(count):
                record = template.replace('"ID"', f'"{10**18 + n}"').replace(" N ", f" {n} ")
                out.write(("," if n else "") + record + "\n")
            out.write("]")
            out.flush()
            out.detach()
    records = IMPORTER.read(Archive(path), ImportOptions())
    seen, last = 0, None
    for record in records:
        assert isinstance(record, Document)
        seen, last = seen + 1, record
    assert seen == count
    assert last is not None and last.record_id == str(10**18 + count - 1)
    assert last.text == f"Tweet number {count - 1} — with “quotes” and 🍵"
