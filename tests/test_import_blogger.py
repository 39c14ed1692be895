"""Blogger import: a Takeout zip (2018 Atom schema) and the old dashboard export."""

from __future__ import annotations

import zipfile
from html import escape
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.blogger import IMPORTER

BLOG = "tag:blogger.com,1999:blog-4242"


def takeout_entry(
    post_id: str,
    title: str,
    html: str,
    *,
    kind: str = "POST",
    status: str = "LIVE",
    published: str = "2021-04-05T06:07:08.123Z",
    parent: str | None = None,
) -> str:
    parent_line = f"<blogger:parent>{BLOG}.post-{parent}</blogger:parent>" if parent else ""
    return f"""<entry>
<id>{BLOG}.post-{post_id}</id>
{parent_line}
<blogger:type>{kind}</blogger:type>
<blogger:status>{status}</blogger:status>
<author><name>Lamp Lighter</name><uri>https://www.blogger.com/profile/1</uri>
<blogger:type>BLOGGER</blogger:type></author>
<title>{escape(title)}</title>
<content type='html'>{escape(html)}</content>
<blogger:created>2021-04-05T06:00:00.000Z</blogger:created>
<published>{published}</published>
<updated>2021-04-06T00:00:00.000Z</updated>
<blogger:location><blogger:name>Quay</blogger:name></blogger:location>
<category scheme='{BLOG}' term='lamps'/>
<blogger:filename>/2021/04/post-{post_id}.html</blogger:filename>
<link rel='alternate' type='text/html' href='https://quay.blogspot.com/2021/04/{post_id}.html'/>
</entry>
"""


def takeout_feed(entries: list[str]) -> str:
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        "<feed xmlns='http://www.w3.org/2005/Atom' "
        "xmlns:blogger='http://schemas.google.com/blogger/2018'>\n"
        f"<id>{BLOG}</id>\n<title>Notes from the quay</title>\n" + "".join(entries) + "</feed>\n"
    )


KIND = "http://schemas.google.com/g/2005#kind"


def old_entry(post_id: str, kind: str, title: str, html: str, published: str, draft=False) -> str:
    control = (
        "<app:control xmlns:app='http://purl.org/atom/app#'><app:draft>yes</app:draft>"
        "</app:control>"
        if draft
        else ""
    )
    return (
        f"<entry><id>{BLOG}.{'post' if kind != 'settings' else 'settings'}-{post_id}</id>"
        f"<published>{published}</published><updated>{published}</updated>"
        f"<category scheme='{KIND}' term='http://schemas.google.com/blogger/2008/kind#{kind}'/>"
        "<category scheme='http://www.blogger.com/atom/ns#' term='tea'/>"
        f"<title type='text'>{escape(title)}</title>"
        f"<content type='html'>{escape(html)}</content>"
        "<link rel='alternate' type='text/html' href='https://quay.blogspot.com/x.html'/>"
        f"<author><name>Lamp</name></author>{control}</entry>"
    )


def old_export(entries: list[str]) -> str:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<?xml-stylesheet href="http://www.blogger.com/styles/atom.css" type="text/css"?>'
        "<feed xmlns='http://www.w3.org/2005/Atom' "
        "xmlns:openSearch='http://a9.com/-/spec/opensearchrss/1.0/' "
        "xmlns:gd='http://schemas.google.com/g/2005' "
        "xmlns:thr='http://purl.org/syndication/thread/1.0'>"
        f"<id>{BLOG}.archive</id><updated>2010-06-01T00:00:00.000-07:00</updated>"
        "<title type='text'>Notes</title>" + "".join(entries) + "</feed>"
    )


def import_all(path: Path) -> tuple[list[Document], list[Skipped]]:
    records = list(IMPORTER.read(Archive(path), ImportOptions()))
    cleaned = [clean(r, ImportOptions())[0] for r in records if isinstance(r, Document)]
    return [d for d in cleaned if d is not None], [r for r in records if isinstance(r, Skipped)]


def write_takeout(tmp_path: Path, entries: list[str]) -> Path:
    path = tmp_path / "takeout-20250101T000000Z-001.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Takeout/archive_browser.html", "<html>Takeout</html>")
        archive.writestr("Takeout/Blogger/Blogs/Ma vie à Paris/feed.atom", takeout_feed(entries))
        archive.writestr("Takeout/Blogger/Blogs/Ma vie à Paris/settings.csv", "name,value\n")
        comments = takeout_feed(
            [takeout_entry("9", "", "<p>Great post!</p>", kind="COMMENT", parent="1")]
        )
        archive.writestr("Takeout/Blogger/Comments/Ma vie à Paris/feed.atom", comments)
    return path


def test_takeout_keeps_live_posts_only(tmp_path: Path) -> None:
    path = write_takeout(
        tmp_path,
        [
            takeout_entry(
                "1",
                "Rain & tin roofs",
                "<p>I like the sound of rain.</p><div><br></div><p>Tea too.</p>",
            ),
            takeout_entry("2", "Unfinished", "<p>half a thought</p>", status="DRAFT"),
            takeout_entry("3", "About", "<p>I write here.</p>", kind="PAGE"),
            takeout_entry("4", "Gone", "<p>deleted</p>", status="SOFT_TRASHED"),
            takeout_entry(
                "5", "", "<p>No title, just words.</p>", published="2021-05-01T12:00:00-07:00"
            ),
            takeout_entry("6", "", "<img src='https://x.example/a.png'>"),
        ],
    )
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path)
    assert [(d.record_id, d.text, d.created_at) for d in documents] == [
        (
            "1",
            "Rain & tin roofs\n\nI like the sound of rain.\n\nTea too.",
            "2021-04-05T06:07:08+00:00",
        ),
        ("5", "No title, just words.", "2021-05-01T19:00:00+00:00"),
    ]
    assert documents[0].source == "blogger:Takeout/Blogger/Blogs/Ma vie à Paris/feed.atom"
    # The comment feed is not read at all; the odd entries are counted.
    assert [(s.record, s.reason) for s in skipped] == [
        ("2", "draft post (not published)"),
        ("3", "blogger page (only posts are imported)"),
        ("4", "soft_trashed post (not published)"),
    ]


def test_image_only_post_is_dropped_as_empty_by_cleaning(tmp_path: Path) -> None:
    path = write_takeout(tmp_path, [takeout_entry("6", "", "<img src='https://x.example/a.png'>")])
    (record,) = list(IMPORTER.read(Archive(path), ImportOptions()))
    assert isinstance(record, Document)
    assert clean(record, ImportOptions()) == (None, "empty")


def test_old_dashboard_export_uses_kind_categories_and_app_draft(tmp_path: Path) -> None:
    path = tmp_path / "blog-06-01-2010.xml"
    path.write_text(
        old_export(
            [
                old_entry("100", "settings", "", "", "2010-01-01T00:00:00.000-08:00"),
                old_entry(
                    "101", "template", "Template", "<html/>", "2010-01-01T00:00:00.000-08:00"
                ),
                old_entry(
                    "102", "post", "First", "Hello,<br />world.", "2010-05-01T10:00:00.000-07:00"
                ),
                old_entry("103", "post", "Draft", "not yet", "2010-05-02T10:00:00.000-07:00", True),
                old_entry("104", "comment", "", "Nice!", "2010-05-03T10:00:00.000-07:00"),
            ]
        ),
        encoding="utf-8",
    )
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path)
    assert [(d.record_id, d.text, d.created_at) for d in documents] == [
        ("102", "First\n\nHello,\nworld.", "2010-05-01T17:00:00+00:00")
    ]
    assert documents[0].source == "blogger:blog-06-01-2010.xml"
    assert [(s.record, s.reason) for s in skipped] == [
        (f"{BLOG}.settings-100", "blogger settings (only posts are imported)"),
        ("101", "blogger template (only posts are imported)"),
        ("103", "draft post (not published)"),
        ("104", "blogger comment (only posts are imported)"),
    ]


def test_truncated_feed_names_file_and_entry(tmp_path: Path) -> None:
    text = takeout_feed([takeout_entry("1", "One", "<p>one</p>"), takeout_entry("2", "Two", "x")])
    path = tmp_path / "feed.atom"
    path.write_text(text[: len(text) - 150], encoding="utf-8")
    records = IMPORTER.read(Archive(path), ImportOptions())
    first = next(records)
    assert isinstance(first, Document) and first.record_id == "1"
    with pytest.raises(CorpusFormatError) as caught:
        list(records)
    assert str(path) in str(caught.value)
    assert "entry 2" in str(caught.value) and "after entry 1" in str(caught.value)


def test_invalid_date_names_the_post(tmp_path: Path) -> None:
    path = write_takeout(tmp_path, [takeout_entry("77", "T", "<p>x</p>", published="2021-02-30")])
    with pytest.raises(CorpusFormatError) as caught:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    message = str(caught.value)
    assert "feed.atom" in message and "record 77" in message and "invalid date" in message


def test_detect_rejects_other_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("I moved my blog off blogger.com,1999:blog- last year. <feed>\n")
    generic_atom = tmp_path / "feed.atom"
    generic_atom.write_text(
        "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>News</title>"
        "<entry><id>urn:1</id><title>Hi</title></entry></feed>"
    )
    wxr = tmp_path / "site.xml"
    wxr.write_text(
        '<?xml version="1.0"?><rss version="2.0" xmlns:wp="http://wordpress.org/export/1.2/">'
        "<channel></channel></rss>"
    )
    other_takeout = tmp_path / "takeout.zip"
    with zipfile.ZipFile(other_takeout, "w") as archive:
        archive.writestr("Takeout/Mail/All mail Including Spam and Trash.mbox", "From x\n")
        archive.writestr("Takeout/Blogger/Comments/Blog/feed.atom", takeout_feed([]))
    for path in (text, generic_atom, wxr, other_takeout):
        assert not IMPORTER.detect(Archive(path)), path
