"""Tumblr import: the official zip of HTML posts and tumblr-backup's json/ folder.

The official export's markup is an assumption (it is undocumented): one
`posts/html/<id>.html` per post with the date in a footer timestamp.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.tumblr import IMPORTER
from marinade.corpus.importing import import_corpus


def page(body: str, stamp: str | None = "December 1st, 2019 3:05pm") -> str:
    footer = f'<span id="timestamp"> {stamp} </span>' if stamp else ""
    return (
        '<!DOCTYPE HTML><html><head><meta http-equiv="Content-Type" '
        'content="text/html; charset=utf-8"></head><body>'
        f'{body}<div id="footer">{footer}'
        '<span class="tag">writing</span><span class="tag">small models</span></div>'
        "</body></html>"
    )


OWN = page("<h2>Small models</h2><p>Small models write strange things.</p><p>Some are funny.</p>")
REBLOG = page(
    '<p><a class="tumblr_blog" href="https://otherblog.tumblr.com/post/555">otherblog</a>:</p>'
    "<blockquote><p>Their words about tea.</p></blockquote><p>so true</p>"
)
PHOTO_ONLY = page('<img src="../../media/125.jpg"/>')
WITH_TIME = page('<p>Rain on a tin roof.</p><time datetime="2020-02-03T04:05:06Z">Feb 3</time>')
NO_DATE = page("<p>Undated thought.</p>", stamp=None)


def official_zip(path: Path, posts: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("posts/posts_index.html", "<html><body>index</body></html>")
        for post_id, markup in posts.items():
            archive.writestr(f"posts/html/{post_id}.html", markup)
        archive.writestr("media/125.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    return path


def import_all(path: Path, options: ImportOptions | None = None) -> tuple[list[Document], list]:
    options = options or ImportOptions()
    records = list(IMPORTER.read(Archive(path), options))
    cleaned = [clean(r, options)[0] for r in records if isinstance(r, Document)]
    return [d for d in cleaned if d is not None], [r for r in records if isinstance(r, Skipped)]


def test_official_export_reads_each_html_post(tmp_path: Path) -> None:
    path = official_zip(
        tmp_path / "lamplight.zip",
        {"123": OWN, "124": REBLOG, "125": PHOTO_ONLY, "126": WITH_TIME, "127": NO_DATE},
    )
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path)
    assert [(d.record_id, d.text, d.created_at) for d in documents] == [
        (
            "123",
            "Small models\n\nSmall models write strange things.\n\nSome are funny.",
            "2019-12-01T15:05:00+00:00",
        ),
        ("126", "Rain on a tin roof.", "2020-02-03T04:05:06+00:00"),
        ("127", "Undated thought.", None),
    ]
    assert documents[0].source == "tumblr:posts/html/123.html"
    assert [(s.record, s.reason) for s in skipped] == [("125", "no text")]
    # The reblog is flagged: dropped by default, kept with --keep-reposts.
    kept, _ = import_all(path, ImportOptions(keep_reposts=True))
    reblog = next(d for d in kept if d.record_id == "124")
    assert reblog.is_repost
    assert reblog.text == "otherblog:\n\nTheir words about tea.\n\nso true"


def test_official_export_with_an_inner_posts_zip(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as posts:
        posts.writestr("posts_index.html", "<html></html>")
        posts.writestr("html/200.html", OWN)
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("posts.zip", inner.getvalue())
        archive.writestr("media/200.jpg", b"\xff\xd8")
    assert IMPORTER.detect(Archive(path))
    (document,), _ = import_all(path)
    assert document.record_id == "200"
    assert document.source == "tumblr:posts.zip/html/200.html"
    assert document.text.startswith("Small models\n\n")


def test_corrupt_post_in_the_zip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lamplight.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("posts/html/123.html", OWN)
    data = bytearray(path.read_bytes())
    at = data.index(b"Small models write")
    data[at] ^= 0xFF  # the CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(CorpusFormatError) as caught:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    assert "lamplight.zip:posts/html/123.html" in str(caught.value)


def test_invalid_time_attribute_names_the_post(tmp_path: Path) -> None:
    bad = page('<p>x</p><time datetime="2020-02-30T04:05:06Z">Feb 30</time>')
    path = official_zip(tmp_path / "lamplight.zip", {"128": bad})
    with pytest.raises(CorpusFormatError) as caught:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    assert "posts/html/128.html, record 128" in str(caught.value)
    assert "invalid date" in str(caught.value)


# -- tumblr-backup ------------------------------------------------------------------


def stamp(moment: str) -> int:
    return int(datetime.fromisoformat(moment).replace(tzinfo=timezone.utc).timestamp())


def api_post(post_id: int, kind: str, **fields: Any) -> dict[str, Any]:
    """A Tumblr API v2 post object as tumblr-backup saves it."""
    post: dict[str, Any] = {
        "blog_name": "lamplight",
        "id": post_id,
        "id_string": str(post_id),
        "post_url": f"https://lamplight.tumblr.com/post/{post_id}/slug",
        "slug": "slug",
        "type": kind,
        "date": "2020-01-02 03:04:05 GMT",
        "timestamp": stamp("2020-01-02 03:04:05"),
        "state": "published",
        "format": "html",
        "reblog_key": "k3y",
        "tags": ["writing"],
        "short_url": "https://tmblr.co/Zabc",
        "note_count": 2,
        "trail": [
            {
                "blog": {"name": "lamplight", "active": True},
                "post": {"id": str(post_id)},
                "content_raw": "",
                "is_current_item": True,
                "is_root_item": True,
            }
        ],
    }
    post.update(fields)
    return post


def backup_folder(
    root: Path, posts: list[dict[str, Any]], raw: dict[str, str] | None = None
) -> Path:
    (root / "json").mkdir(parents=True)
    (root / "posts").mkdir()
    (root / "index.html").write_text("<html>lamplight</html>")
    (root / "backup.css").write_text("body {}")
    for post in posts:
        (root / "json" / f"{post['id']}.json").write_text(json.dumps(post, indent=2))
        (root / "posts" / f"{post['id']}.html").write_text("<article>rendered</article>")
    for name, text in (raw or {}).items():
        (root / "json" / name).write_text(text)
    return root


BACKUP = [
    api_post(
        1001,
        "text",
        title="Small models",
        body="<p>Small models write strange things.</p>\n<p>Some are <b>funny</b>.</p>",
    ),
    api_post(
        1002,
        "text",
        body='<p><a class="tumblr_blog" href="https://otherblog.tumblr.com/post/555">otherblog'
        "</a>:</p><blockquote><p>Their words.</p></blockquote><p>so true</p>",
        reblogged_from_id="555",
        reblogged_from_name="otherblog",
        trail=[{"blog": {"name": "otherblog"}, "post": {"id": "555"}, "is_root_item": True}],
    ),
    api_post(
        1003,
        "photo",
        photos=[{"caption": "", "original_size": {"url": "https://64.media.tumblr.com/a.jpg"}}],
        caption="<p>My cat at the window.</p>",
        timestamp=None,
        date="2020-03-04 05:06:07 GMT",
    ),
    api_post(1004, "photo", photos=[{"caption": ""}], caption=""),
    api_post(
        1005,
        "answer",
        asking_name="anonymous",
        question="What's your favourite sound?",
        answer="<p>Rain on a tin roof.</p>",
    ),
    api_post(1006, "quote", text="To be or not to be.", source="Hamlet"),
    api_post(
        1007,
        "chat",
        title="Overheard",
        body="Me: tea?\nThem: always.",
        dialogue=[
            {"label": "Me:", "name": "Me", "phrase": "tea?"},
            {"label": "Them:", "name": "Them", "phrase": "always."},
        ],
    ),
    api_post(
        1008,
        "blocks",
        content=[
            {"type": "text", "text": "Lamps", "subtype": "heading1"},
            {"type": "text", "text": "An NPF post <with> brackets."},
            {"type": "image", "media": [{"url": "https://64.media.tumblr.com/b.jpg"}]},
        ],
        trail=[],
    ),
    api_post(
        1009,
        "blocks",
        parent_post_url="https://other.tumblr.com/post/777",
        content=[{"type": "text", "text": "my addition"}],
        trail=[
            {
                "blog": {"name": "other"},
                "post": {"id": "777"},
                "content": [{"type": "text", "text": "their words"}],
            }
        ],
    ),
    api_post(1010, "text", body="<p>only for me</p>", state="private"),
    api_post(1011, "text", body="<p>someone else's</p>", liked_timestamp=1600000000),
    api_post(1012, "poll", body="?"),
    api_post(1013, "text", body="<p>later</p>", state="queued"),
    # An older reblog that says so only through its trail, and one only through reblog.tree_html.
    api_post(1014, "text", body="<p>theirs</p>", trail=[{"post": {"id": "888"}}]),
    api_post(1015, "text", body="<p>x</p>", trail=[], reblog={"tree_html": "<p>a:</p>"}),
]


def test_tumblr_backup_json_posts(tmp_path: Path) -> None:
    folder = backup_folder(tmp_path / "lamplight", BACKUP)
    assert IMPORTER.detect(Archive(folder))
    documents, skipped = import_all(folder)
    assert [(d.record_id, d.text) for d in documents] == [
        ("1001", "Small models\n\nSmall models write strange things.\n\nSome are funny."),
        ("1003", "My cat at the window."),
        ("1005", "Rain on a tin roof."),
        ("1007", "Overheard\n\nMe: tea?\nThem: always."),
        ("1008", "Lamps\n\nAn NPF post <with> brackets."),
    ]
    by_id = {d.record_id: d for d in documents}
    assert by_id["1001"].created_at == "2020-01-02T03:04:05+00:00"
    assert by_id["1003"].created_at == "2020-03-04T05:06:07+00:00"
    assert by_id["1005"].is_reply and not by_id["1001"].is_reply
    assert by_id["1001"].source == "tumblr:json/1001.json"
    assert [(s.record, s.reason) for s in skipped] == [
        ("1004", "no text"),
        ("1011", "liked post (someone else's)"),
        ("1012", "tumblr poll post (unknown type)"),
        ("1013", "queued post (not published)"),
    ]


def test_tumblr_backup_reblogs_quotes_and_private_posts_are_flagged(tmp_path: Path) -> None:
    folder = backup_folder(tmp_path / "lamplight", BACKUP)
    records = {
        r.record_id: r
        for r in IMPORTER.read(Archive(folder), ImportOptions())
        if isinstance(r, Document)
    }
    reposts = {"1002", "1006", "1009", "1014", "1015"}
    assert {r for r, d in records.items() if d.is_repost} == reposts
    assert records["1010"].visibility == "private"
    assert clean(records["1010"], ImportOptions()) == (None, "not public")
    kept, _ = clean(records["1009"], ImportOptions(keep_reposts=True))
    assert kept is not None and kept.text == "their words\n\nmy addition"


# Reblogs of the old style, as the API returns them for posts of about 2010-2014: nothing
# but the tumblr_blog link in the text says whose words they quote.
OLD_REBLOGS = [
    api_post(
        3001,
        "text",
        body='<p><a class="tumblr_blog" href="https://otherblog.tumblr.com/post/555">otherblog'
        "</a>:</p>\n<blockquote><p>Their words about tea.</p></blockquote>\n<p>so true</p>",
    ),
    api_post(
        3002,
        "photo",
        photos=[{"caption": "", "original_size": {"url": "https://64.media.tumblr.com/c.jpg"}}],
        caption='<p><a href="https://cats.tumblr.com/post/9" class="tumblr_blog"'
        ' target="_blank">cats</a>:</p><blockquote><p>A cat at a window.</p></blockquote>',
    ),
    api_post(3003, "text", body='<p>My own, with a <a href="https://x.tumblr.com">link</a>.</p>'),
]


def test_old_style_reblogs_with_only_a_tumblr_blog_link_are_reposts(tmp_path: Path, store) -> None:
    folder = backup_folder(tmp_path / "lamplight", OLD_REBLOGS)
    records = list(IMPORTER.read(Archive(folder), ImportOptions()))
    assert {r.record_id: r.is_repost for r in records if isinstance(r, Document)} == {
        "3001": True,
        "3002": True,
        "3003": False,
    }
    report = import_corpus(store, folder, "lamplight")
    assert (report.kept, dict(report.skipped)) == (1, {"repost": 2})
    kept = import_corpus(store, folder, "all", options=ImportOptions(keep_reposts=True))
    assert kept.kept == 3


def test_truncated_json_names_file_and_post(tmp_path: Path) -> None:
    cut = json.dumps(api_post(2001, "text", body="<p>a long post</p>"))[:90]
    folder = backup_folder(tmp_path / "lamplight", BACKUP[:1], raw={"2001.json": cut})
    with pytest.raises(CorpusFormatError) as caught:
        list(IMPORTER.read(Archive(folder), ImportOptions()))
    message = str(caught.value)
    assert str(folder / "json" / "2001.json") in message or "json/2001.json" in message
    assert "record 2001" in message and "not valid JSON" in message


def test_invalid_date_names_the_post(tmp_path: Path) -> None:
    bad = api_post(2002, "text", body="<p>x</p>", timestamp=None, date="2020-02-30 03:04:05 GMT")
    path = tmp_path / "backup.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("lamplight/json/2002.json", json.dumps(bad))
    with pytest.raises(CorpusFormatError) as caught:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    assert "backup.zip:lamplight/json/2002.json, record 2002" in str(caught.value)
    assert "invalid date" in str(caught.value)


def test_detect_rejects_other_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("posts/html/123.html is where tumblr puts posts\n")
    wxr = tmp_path / "site.xml"
    wxr.write_text('<?xml version="1.0"?><rss xmlns:wp="http://wordpress.org/export/1.2/"/>')
    static_site = tmp_path / "site.zip"
    with zipfile.ZipFile(static_site, "w") as archive:
        archive.writestr("docs/html/404.html", "<html>Not found</html>")
        archive.writestr("docs/html/index.html", "<html>Home</html>")
    other_json = tmp_path / "data"
    (other_json / "json").mkdir(parents=True)
    (other_json / "json" / "1.json").write_text('{"temperature": 21}')
    tweets = tmp_path / "twitter.zip"
    with zipfile.ZipFile(tweets, "w") as archive:
        archive.writestr("data/tweets.js", "window.YTD.tweets.part0 = []")
    truncated = tmp_path / "cut.zip"
    official_zip(truncated, {"123": OWN})
    truncated.write_bytes(truncated.read_bytes()[:-40])
    for path in (text, wxr, static_site, other_json, tweets):
        assert not IMPORTER.detect(Archive(path)), path
    # a zip cut short is refused as soon as it is opened, before any importer sees it
    with pytest.raises(CorpusFormatError, match="truncated or corrupt") as caught:
        Archive(truncated)
    assert str(truncated) in str(caught.value)
