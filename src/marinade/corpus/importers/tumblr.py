"""Tumblr: the official blog export (a zip of HTML posts) and tumblr-backup's JSON.

The official export (blog settings -> Export) is undocumented; what we assume:
one HTML file per post, `posts/html/<post id>.html`, maybe next to
`posts/posts_index.html`, and possibly packed in an inner `posts.zip`. The date
and the reblog mark are scraped from the markup where they can be found
(`<time datetime>`, an element with id or class "timestamp"/"date"; reblogged
text is attributed with `<a class="tumblr_blog">`).

tumblr-backup (bbolli/cebtenzzre tumblr-utils) writes `json/<post id>.json`, the
Tumblr API v2 post object: `type` decides where the text is (body, caption,
answer, dialogue, or NPF `content` blocks), `timestamp`/`date` give the date,
and `reblogged_from_*`, `parent_post_*` or a `trail` that starts elsewhere mark
a reblog. An old-style reblog may carry none of these: its only attribution is
the `<a class="tumblr_blog">name</a>:` link before the quoted post in its text,
which marks it too. Reblogs dominate many blogs, so they are flagged for
cleaning to drop.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from bs4 import BeautifulSoup, Tag

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.limits import RECORD_FLAG, too_big
from marinade.timestamps import utc_iso

JSON_POST = re.compile(r"(?:^|/)json/(\d+)\.json$")
HTML_POST = re.compile(r"(?:^|/)html/(\d+)\.html$")
TAGS = re.compile(r"<[^>]+>")
ORDINAL = re.compile(r"(\d)(?:st|nd|rd|th)\b")
# How a scraped, human-readable date may be written ("December 1st, 2019 3:05pm").
HUMAN_DATES = (
    "%B %d, %Y %I:%M%p",
    "%B %d, %Y %I:%M %p",
    "%b %d, %Y %I:%M%p",
    "%b %d, %Y %I:%M %p",
    "%B %d, %Y",
    "%b %d, %Y",
    "%Y-%m-%d %H:%M:%S GMT",
    "%Y-%m-%d %H:%M:%S",
)
# How a reblog of the old style attributes the post it quotes: <a class="tumblr_blog" ...>.
REBLOG_LINK = re.compile(r"<a\s[^>]*\bclass\s*=\s*[\"']?[^\"'>]*\btumblr_blog\b", re.IGNORECASE)
NPF_TAGS = {"heading1": "h2", "heading2": "h3", "quote": "blockquote", "indented": "blockquote"}


# -- finding the posts ------------------------------------------------------------


def _json_members(archive: Archive) -> list[str]:
    return archive.matching(lambda name: JSON_POST.search(name) is not None)


def _official_names(names: list[str]) -> list[str]:
    """`.../posts/html/<id>.html`, or `html/<id>.html` beside a posts_index.html."""
    index = "posts_index.html"
    index_folders = {n.lower()[: -len(index)] for n in names if n.lower().endswith(index)}
    found = []
    for name in names:
        match = HTML_POST.search(name.lower())
        if match is None:
            continue
        folder = name.lower()[: match.start() + 1] if match.start() else ""  # holds html/
        if folder.endswith("posts/") or folder in index_folders:
            found.append(name)
    return sorted(found)


def _inner_zips(archive: Archive) -> list[str]:
    """An official export may hold its posts in an inner `posts.zip`."""
    return archive.find("posts.zip") if archive.is_container else []


def _open_inner(archive: Archive, name: str) -> zipfile.ZipFile:
    """The inner zip, copied to a temporary file (it may be larger than memory should
    hold) through the archive's bounded stream."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    with archive.open(name) as handle:
        shutil.copyfileobj(handle, spool, 1 << 20)
    spool.seek(0)
    try:
        return zipfile.ZipFile(spool)
    except zipfile.BadZipFile as error:
        raise CorpusFormatError(archive.label(name), None, f"not a zip file: {error}") from None


def _read_inner(inner: zipfile.ZipFile, name: str, limit: int, label: str) -> bytes:
    """A post file of the inner zip, at most `limit` bytes whatever it claims."""
    with inner.open(name) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise CorpusFormatError(label, None, too_big("the post file", limit, RECORD_FLAG))
    return data


def detect(archive: Archive) -> bool:
    if not archive.is_container:
        return False
    try:
        members = _json_members(archive)
        if members:
            head = archive.head(members[0])
            return b'"post_url"' in head or b'"blog_name"' in head or b"tumblr" in head
        if _official_names(archive.names):
            return True
        for name in _inner_zips(archive):
            with _open_inner(archive, name) as inner:
                if _official_names(inner.namelist()):
                    return True
        return False
    except (CorpusFormatError, ValueError, OSError):
        return False


# -- dates -------------------------------------------------------------------------


def _iso_date(value: str) -> str:
    value = value.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return utc_iso(datetime.fromisoformat(value))


def _human_date(text: str) -> str | None:
    """A date as a page shows it, or None: a scraped date we cannot read is no error."""
    text = " ".join(ORDINAL.sub(r"\1", text).split())
    try:
        return _iso_date(text)
    except ValueError:
        pass
    for pattern in HUMAN_DATES:
        try:
            return utc_iso(datetime.strptime(text, pattern))
        except ValueError:
            continue
    return None


def _json_date(post: dict[str, Any]) -> str | None:
    """API posts carry `timestamp` (epoch seconds) and `date` ("2020-01-02 03:04:05 GMT")."""
    stamp, date = post.get("timestamp"), post.get("date")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        return utc_iso(datetime.fromtimestamp(stamp, tz=timezone.utc))
    if isinstance(date, str):
        return utc_iso(datetime.strptime(date.strip(), "%Y-%m-%d %H:%M:%S GMT"))
    if stamp is not None or date is not None:
        raise ValueError(f"timestamp {stamp!r}, date {date!r}")
    return None


# -- the official export's HTML posts ---------------------------------------------


def _html_files(archive: Archive) -> Iterator[tuple[str, str, bytes]]:
    """(member path, label for errors, bytes) of each post file, inner posts.zip included."""
    for name in _official_names(archive.names):
        yield name, archive.label(name), archive.read_bytes(name)
    for outer in _inner_zips(archive):
        with _open_inner(archive, outer) as inner:
            for name in _official_names(inner.namelist()):
                label = f"{archive.label(outer)}:{name}"
                try:
                    data = _read_inner(inner, name, archive.max_record_bytes, label)
                except (zipfile.BadZipFile, EOFError, OSError) as error:
                    raise CorpusFormatError(label, None, f"cannot read: {error}") from None
                yield f"{outer}/{name}", label, data


def _scraped_date(root: Tag, label: str, record_id: str) -> str | None:
    time = root.find("time", attrs={"datetime": True})
    if isinstance(time, Tag):
        value = str(time["datetime"])
        try:
            return _iso_date(value)
        except ValueError as error:
            raise CorpusFormatError(label, record_id, f"invalid date {value!r}: {error}") from None
    for selector in ("#timestamp", ".timestamp", ".date", "#date"):
        found = root.select_one(selector)
        if found is not None:
            return _human_date(found.get_text(" "))
    return None


def _html_post(data: bytes, member: str, label: str) -> Document | Skipped:
    record_id = HTML_POST.search(member.lower()).group(1)  # type: ignore[union-attr]
    soup = BeautifulSoup(data, "lxml")
    found = soup.find("article") or soup.body or soup
    root = found if isinstance(found, Tag) else soup
    created_at = _scraped_date(root, label, record_id)
    # The page's furniture, not the post: date, tags, header and footer.
    furniture = "header, footer, #footer, time, #timestamp, .timestamp, .date, .tags, .tag"
    for element in root.select(furniture + ", script, style"):
        element.decompose()
    if not root.get_text(strip=True):
        return Skipped("no text", record_id)
    return Document(
        text=root.decode_contents(),
        created_at=created_at,
        source=f"tumblr:{member}",
        record_id=record_id,
        is_html=True,
        is_repost=root.find("a", class_="tumblr_blog") is not None,
    )


# -- tumblr-backup's JSON posts ----------------------------------------------------


def _npf_html(blocks: Any) -> str:
    """NPF content blocks as HTML: the text blocks only (media have no words)."""
    parts = []
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and block.get("type") == "text":
            text = html.escape(str(block.get("text", "")))
            subtype = str(block.get("subtype", ""))
            tag = "li" if subtype.endswith("list-item") else NPF_TAGS.get(subtype, "p")
            parts.append(f"<{tag}>{text}</{tag}>")
    return "\n".join(parts)


def _is_reblog(post: dict[str, Any], record_id: str) -> bool:
    """After tumblr-backup's is_reblog.py, cheapest signs first."""
    if any(key in post for key in ("reblogged_from_id", "reblogged_from_name", "parent_post_url")):
        return True
    root = post.get("reblogged_root_id") or post.get("root_id")
    if root and str(root) != record_id:
        return True
    trail = post.get("trail")
    if isinstance(trail, list) and trail and isinstance(trail[0], dict):
        first = trail[0].get("post")
        if isinstance(first, dict) and str(first.get("id")) != record_id:
            return True
    tree = post.get("reblog")
    return isinstance(tree, dict) and bool(tree.get("tree_html"))


def _list(post: dict[str, Any], key: str) -> list[Any]:
    value = post.get(key)
    return value if isinstance(value, list) else []


def _json_text(post: dict[str, Any]) -> tuple[str, bool] | None:
    """(HTML text, is an answer to someone's question), or None for a type we don't know."""

    def field(key: str) -> str:
        value = post.get(key)
        return value if isinstance(value, str) else ""

    def title() -> str:
        return f"<h2>{field('title')}</h2>" if field("title").strip() else ""

    kind = post.get("type")
    if kind == "blocks" or isinstance(post.get("content"), list):
        items = [item.get("content") for item in _list(post, "trail") if isinstance(item, dict)]
        return "\n".join(_npf_html(blocks) for blocks in [*items, post.get("content")]), False
    if kind == "text":
        return title() + field("body"), False
    if kind == "photo":
        photos = [p for p in _list(post, "photos") if isinstance(p, dict) and p.get("caption")]
        captions = [f"<p>{photo['caption']}</p>" for photo in photos]
        return "\n".join([*captions, field("caption")]), False
    if kind == "link":
        return title() + field("description"), False
    if kind == "quote":
        return f"<blockquote>{field('text')}</blockquote>\n<p>{field('source')}</p>", False
    if kind in ("video", "audio"):
        return field("caption"), False
    if kind == "answer":
        return field("answer"), True
    if kind == "chat":
        dialogue = post.get("dialogue")
        if isinstance(dialogue, list):
            lines = [
                html.escape(f"{line.get('label', '')} {line.get('phrase', '')}".strip())
                for line in dialogue
                if isinstance(line, dict)
            ]
        else:
            lines = [html.escape(line) for line in field("body").splitlines()]
        return title() + "<p>" + "<br>".join(lines) + "</p>", False
    return None


def _json_post(data: bytes, member: str, label: str) -> Document | Skipped:
    stem = JSON_POST.search(member.lower()).group(1)  # type: ignore[union-attr]
    try:
        post = json.loads(data)
    except ValueError as error:
        raise CorpusFormatError(label, stem, f"not valid JSON: {error}") from None
    except RecursionError:
        raise CorpusFormatError(label, stem, "nested too deeply") from None
    if not isinstance(post, dict):
        raise CorpusFormatError(label, stem, "not a Tumblr post object")
    return post_document(post, f"tumblr:{member}", label, stem)


def post_document(
    post: dict[str, Any], source: str, label: str, fallback_id: str | None = None
) -> Document | Skipped:
    """One Tumblr API v2 post object (legacy or NPF, as tumblr-backup saves it and as
    `corpus fetch tumblr` reads it) as a document; `label` names it in errors."""
    record_id = str(post.get("id_string") or post.get("id") or fallback_id)
    if "liked_timestamp" in post:
        return Skipped("liked post (someone else's)", record_id)
    state = post.get("state", "published")
    if state not in ("published", "private"):
        return Skipped(f"{state} post (not published)", record_id)
    found = _json_text(post)
    if found is None:
        return Skipped(f"tumblr {post.get('type')} post (unknown type)", record_id)
    text, is_answer = found
    if not TAGS.sub("", text).strip():
        return Skipped("no text", record_id)
    try:
        created_at = _json_date(post)
    except (ValueError, OverflowError, OSError) as error:
        raise CorpusFormatError(label, record_id, f"invalid date: {error}") from None
    return Document(
        text=text,
        created_at=created_at,
        source=source,
        record_id=record_id,
        is_html=True,
        is_reply=is_answer,
        # A quote post holds someone else's words, like a reblog does.
        is_repost=_is_reblog(post, record_id)
        or post.get("type") == "quote"
        or REBLOG_LINK.search(text) is not None,
        visibility="private" if state == "private" else "public",
        language=None,
    )


def read(archive: Archive, options: ImportOptions) -> Records:
    members = _json_members(archive) if archive.is_container else []
    if members:  # tumblr-backup: the JSON says more than its own HTML pages
        for member in members:
            yield _json_post(archive.read_bytes(member), member, archive.label(member))
        return
    found = False
    for member, label, data in _html_files(archive):
        found = True
        yield _html_post(data, member, label)
    if not found:
        raise CorpusFormatError(str(archive.path), None, "no Tumblr posts found")


IMPORTER = Importer(
    name="tumblr",
    description="Tumblr blog export (zip of HTML posts) or tumblr-backup's json/ folder",
    detect=detect,
    read=read,
    priority=80,
)
