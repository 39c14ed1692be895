"""Reddit importer: real GDPR-export CSVs, written by csv.writer into zips and folders."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.reddit import IMPORTER

POST_COLUMNS = ["id", "permalink", "date", "ip", "subreddit", "gildings", "title", "url", "body"]
# Some exports add columns; the importer goes by name, not position.
COMMENT_COLUMNS = [
    "id",
    "permalink",
    "date",
    "ip",
    "subreddit",
    "gildings",
    "gildings_silver",
    "link",
    "parent",
    "body",
    "media",
]
THREAD = "https://www.reddit.com/r/Python/comments/10abcd/my_first_package/"

POSTS = [
    [
        "10abcd",
        THREAD,
        "2023-01-02 03:04:05 UTC",
        "203.0.113.7",
        "Python",
        "0",
        "My first package",
        THREAD,
        "I finally published it.\n\nIt parses &amp; cleans "
        "[export archives](https://github.com/me/marinade)\n\n&#x200B;",
    ],
    [
        "10efgh",
        "https://www.reddit.com/r/pics/comments/10efgh/sunset/",
        "2023-02-03 18:30:00 UTC",
        "",
        "pics",
        "1",
        "Sunset over the harbour",
        "https://i.redd.it/abc123.jpg",
        "",
    ],
    [
        "10ijkl",
        "https://www.reddit.com/r/AskReddit/comments/10ijkl/q/",
        "2023-03-04 05:06:07 UTC",
        "",
        "AskReddit",
        "0",
        "A question I regret",
        "https://www.reddit.com/r/AskReddit/comments/10ijkl/q/",
        "[removed]",
    ],
]
COMMENTS = [
    [
        "j1abc",
        THREAD + "j1abc/",
        "2023-01-02 04:00:00 UTC",
        "",
        "Python",
        "0",
        "0",
        THREAD,
        "t1_j0zzz",
        "> You should add tests\n> and docs\n\nI did, thanks u/helper! Mail me: me@example.org",
        "",
    ],
    ["j2def", THREAD + "j2def/", "2023-01-03 00:00:00 UTC", "", "Python", "0", "0"]
    + [THREAD, "t3_10abcd", "[deleted]", ""],
    ["j3ghi", THREAD + "j3ghi/", "2023-01-04 00:00:00 UTC", "", "Python", "0", "0"]
    + [THREAD, "t3_10abcd", "", "https://i.redd.it/gif.gif"],
    ["j4jkl", THREAD + "j4jkl/", "2023-01-05 00:00:00 UTC", "", "Python", "0", "0"]
    + [THREAD, "t1_j1abc", "&gt; only quoting you back", ""],
]


def to_csv(columns: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def write_zip(path: Path, posts: str | None = None, comments: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("posts.csv", posts if posts is not None else to_csv(POST_COLUMNS, POSTS))
        zf.writestr(
            "comments.csv",
            comments if comments is not None else to_csv(COMMENT_COLUMNS, COMMENTS),
        )
        zf.writestr("messages.csv", "id,permalink,thread_id,date,ip,from,to,subject,body\n")
        zf.writestr("post_votes.csv", "id,permalink,direction\n10zzzz,https://x,up\n")
    return path


def read_all(path: Path) -> list[Document | Skipped]:
    archive = Archive(path)
    assert IMPORTER.detect(archive)
    return list(IMPORTER.read(archive, ImportOptions()))


def test_posts_and_comments_come_out_with_ids_dates_and_reply_flags(tmp_path: Path) -> None:
    documents = [r for r in read_all(write_zip(tmp_path / "export.zip")) if isinstance(r, Document)]
    assert [(d.record_id, d.created_at, d.is_reply) for d in documents] == [
        ("t3_10abcd", "2023-01-02T03:04:05+00:00", False),
        ("t3_10efgh", "2023-02-03T18:30:00+00:00", False),
        ("t1_j1abc", "2023-01-02T04:00:00+00:00", True),
    ]
    post, link_post, comment = documents
    assert post.source == "reddit:posts.csv" and comment.source == "reddit:comments.csv"
    assert post.text == (
        "My first package\n\nI finally published it.\n\n"
        "It parses &amp; cleans export archives https://github.com/me/marinade"
    )
    assert link_post.text == "Sunset over the harbour"  # a link post is its title
    # The quoted parent is someone else's writing.
    assert comment.text == "I did, thanks u/helper! Mail me: me@example.org"


def test_deleted_removed_and_empty_bodies_are_skipped(tmp_path: Path) -> None:
    skipped = [r for r in read_all(write_zip(tmp_path / "export.zip")) if isinstance(r, Skipped)]
    assert skipped == [
        Skipped("deleted", "10ijkl (line 8)"),
        Skipped("deleted", "j2def (line 6)"),  # comment j1abc spans lines 2-5
        Skipped("no text", "j3ghi (line 7)"),
        Skipped("no text", "j4jkl (line 8)"),
    ]


def test_cleaning_unescapes_and_removes_links_and_addresses(tmp_path: Path) -> None:
    records = read_all(write_zip(tmp_path / "export.zip"))
    texts = []
    for record in records:
        if isinstance(record, Document):
            document, _ = clean(record, ImportOptions())
            assert document is not None
            texts.append(document.text)
    assert texts == [
        "My first package\n\nI finally published it.\n\nIt parses & cleans export archives",
        "Sunset over the harbour",
        "I did, thanks u/helper! Mail me: <email>",
    ]
    assert isinstance(records[0], Document)
    kept, _ = clean(records[0], ImportOptions(keep_links=True))
    assert kept is not None and kept.text.endswith("export archives https://github.com/me/marinade")


def test_a_folder_with_other_capitals_and_only_comments(tmp_path: Path) -> None:
    folder = tmp_path / "reddit_export"
    folder.mkdir()
    (folder / "Comments.CSV").write_text(
        to_csv(COMMENT_COLUMNS, COMMENTS[:1]), encoding="utf-8-sig"
    )
    documents = [r for r in read_all(folder) if isinstance(r, Document)]
    assert [d.record_id for d in documents] == ["t1_j1abc"]
    assert documents[0].source == "reddit:Comments.CSV"


def test_truncated_quoted_body_names_the_file_and_the_record(tmp_path: Path) -> None:
    comments = to_csv(COMMENT_COLUMNS, COMMENTS)
    cut = comments[: comments.index("and docs")]  # stops inside a quoted multi-line body
    path = write_zip(tmp_path / "export.zip", comments=cut)
    with pytest.raises(CorpusFormatError) as caught:
        read_all(path)
    assert str(caught.value) == (
        "export.zip:comments.csv, record line 2: cannot read: unexpected end of data"
    )


def test_truncated_row_names_the_record(tmp_path: Path) -> None:
    comments = to_csv(COMMENT_COLUMNS, COMMENTS)
    cut = comments[: comments.index("2023-01-05") + 7]  # the last row stops inside its date
    path = write_zip(tmp_path / "export.zip", comments=cut)
    records = IMPORTER.read(Archive(path), ImportOptions())
    with pytest.raises(CorpusFormatError, match=r"comments.csv, record j4jkl \(line 8\): wrong"):
        list(records)


def test_csv_without_the_body_column_is_refused_when_forced(tmp_path: Path) -> None:
    columns = [c for c in POST_COLUMNS if c != "body"]
    path = write_zip(tmp_path / "export.zip", posts=to_csv(columns, [r[:-1] for r in POSTS]))
    with pytest.raises(
        CorpusFormatError, match="export.zip:posts.csv: not a Reddit export CSV: no body"
    ):
        list(IMPORTER.read(Archive(path), ImportOptions()))


def test_invalid_date_names_the_record(tmp_path: Path) -> None:
    rows = [list(POSTS[0]), list(POSTS[1])]
    rows[1][2] = "03/02/2023"
    path = write_zip(tmp_path / "export.zip", posts=to_csv(POST_COLUMNS, rows))
    with pytest.raises(CorpusFormatError) as caught:
        read_all(path)
    assert caught.value.record == "10efgh (line 7)"  # post 10abcd spans lines 2-6
    assert "posts.csv" in str(caught.value) and "03/02/2023" in str(caught.value)


def test_does_not_claim_other_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("Just some notes I wrote.\n")
    queue = tmp_path / "posts.csv"  # a spreadsheet of queued posts, not a Reddit export
    queue.write_text("id,platform,text,status,scheduled_at\n1,mastodon,hello,queued,\n")
    twitter = tmp_path / "twitter.zip"
    with zipfile.ZipFile(twitter, "w") as zf:
        zf.writestr("data/tweets.js", "window.YTD.tweets.part0 = []")
    discord = tmp_path / "discord.zip"
    with zipfile.ZipFile(discord, "w") as zf:
        zf.writestr("messages/c123/messages.csv", "ID,Timestamp,Contents,Attachments\n")
    for path in (text, queue, twitter, discord):
        assert not IMPORTER.detect(Archive(path)), path
