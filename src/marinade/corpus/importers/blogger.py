"""Blogger exports: Google Takeout's `Blogger/Blogs/<name>/feed.atom`, or the older
dashboard export `blog-MM-DD-YYYY.xml`. Both are Atom feeds of entries.

Takeout (2018 schema) says what an entry is with `<blogger:type>` (POST, PAGE,
COMMENT) and `<blogger:status>` (LIVE, DRAFT, SCHEDULED, SOFT_TRASHED); the old
export says it with a kind category (`...kind#post`, `#comment`, `#template`,
`#settings`) and marks drafts with `<app:control><app:draft>yes`. We keep live
posts. The body is HTML; entries are streamed with lxml's iterparse.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

from lxml import etree

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.xmlstream import iter_xml_records
from marinade.timestamps import utc_iso

ATOM = "http://www.w3.org/2005/Atom"
BLOGGER = "http://schemas.google.com/blogger/2018"
KIND_SCHEME = "http://schemas.google.com/g/2005#kind"
# What marks a Blogger feed in its first bytes: the 2018 namespace, Blogger ids, the old kinds.
MARKERS = (b"schemas.google.com/blogger/2018", b"blogger.com,1999:blog-", b"/blogger/2008/kind#")
POST_ID = re.compile(r"\.post-(\d+)$")


def _is_xml(head: bytes) -> bool:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def _feed_members(archive: Archive) -> list[str]:
    """The members that are Blogger feeds (Takeout's comment feeds left out)."""
    if archive.is_container:
        candidates = archive.matching(
            lambda name: name.endswith((".atom", ".xml")) and "blogger/comments/" not in name
        )
    else:
        candidates = archive.names
    found = []
    for name in candidates:
        try:
            head = archive.head(name, 8192)
        except CorpusFormatError:
            continue
        if _is_xml(head) and b"<feed" in head and any(marker in head for marker in MARKERS):
            found.append(name)
    return found


def detect(archive: Archive) -> bool:
    return bool(_feed_members(archive))


def _parse_date(value: str) -> str:
    """Atom dates ("2020-01-02T03:04:05.000-08:00", "...Z") as ISO 8601 UTC."""
    value = value.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    return utc_iso(datetime.fromisoformat(value))


def _kind(entry: etree._Element) -> tuple[str, str]:
    """(type, status) of an entry, from the 2018 elements or the old kind category and app:draft."""
    kind = entry.findtext(f"{{{BLOGGER}}}type")  # a direct child: <author> has its own type
    status = entry.findtext(f"{{{BLOGGER}}}status")
    if kind is None:
        for category in entry.findall(f"{{{ATOM}}}category"):
            if category.get("scheme") == KIND_SCHEME:
                kind = category.get("term", "").rsplit("#", 1)[-1]
    if status is None:
        draft = [
            element.text
            for control in entry
            if isinstance(control.tag, str) and etree.QName(control).localname == "control"
            for element in control
            if isinstance(element.tag, str) and etree.QName(element).localname == "draft"
        ]
        status = "DRAFT" if any((text or "").strip() == "yes" for text in draft) else "LIVE"
    return (kind or "POST").strip().upper(), status.strip().upper()


def _content(entry: etree._Element) -> tuple[str, bool]:
    """The body and whether it is HTML (Blogger writes type="html"; text and xhtml also occur)."""
    content = entry.find(f"{{{ATOM}}}content")
    if content is None:
        return "", True
    kind = content.get("type", "text")
    if kind == "xhtml":
        inner = "".join(etree.tostring(child, encoding="unicode") for child in content)
        return (content.text or "") + inner, True
    return content.text or "", kind == "html"


def _entry(entry: etree._Element, member: str, label: str) -> Document | Skipped:
    raw_id = (entry.findtext(f"{{{ATOM}}}id") or "").strip()
    match = POST_ID.search(raw_id)
    record_id = match.group(1) if match else raw_id or None
    kind, status = _kind(entry)
    if kind != "POST":
        return Skipped(f"blogger {kind.lower()} (only posts are imported)", record_id)
    if status != "LIVE":
        return Skipped(f"{status.lower()} post (not published)", record_id)
    title = (entry.findtext(f"{{{ATOM}}}title") or "").strip()
    body, is_html = _content(entry)
    if not title and not body.strip():
        return Skipped("no text", record_id)
    published = entry.findtext(f"{{{ATOM}}}published")
    try:
        created_at = _parse_date(published) if published and published.strip() else None
    except ValueError as error:
        raise CorpusFormatError(label, record_id, f"invalid date {published!r}: {error}") from None
    if not is_html:
        body = html.escape(body).replace("\n", "<br>")
    text = (f"<p>{html.escape(title)}</p>\n" if title else "") + body
    return Document(
        text=text,
        created_at=created_at,
        source=f"blogger:{member}",
        record_id=record_id,
        is_html=True,
    )


def read(archive: Archive, options: ImportOptions) -> Records:
    members = _feed_members(archive)
    if not members:
        raise CorpusFormatError(str(archive.path), None, "no Blogger Atom feed found")
    for member in members:
        yield from iter_xml_records(
            archive, member, f"{{{ATOM}}}entry", _entry, element_noun="entry", id_noun="entry"
        )


IMPORTER = Importer(
    name="blogger",
    description="Blogger / Google Takeout Atom feed (feed.atom, blog-*.xml): published posts",
    detect=detect,
    read=read,
    priority=60,
)
