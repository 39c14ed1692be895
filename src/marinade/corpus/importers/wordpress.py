"""WordPress WXR export: the RSS file from Tools -> Export (alone or inside a zip).

Each `channel/item` is a post, page, attachment or menu item; we keep published
posts only, and of those not the ones behind a password (`wp:post_password`):
like private posts, they are not public. The body (`content:encoded`) is HTML
that still carries the editor's own markup: Gutenberg block comments and
shortcodes such as [caption] and [gallery], which the shared cleaning does not
know, so they are removed here. Large sites give large files, so items are
read with lxml's iterparse and thrown away once yielded.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime

from lxml import etree

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.xmlstream import iter_xml_records
from marinade.timestamps import utc_iso

# wp: is http://wordpress.org/export/1.2/ (1.0 and 1.1 in older exports); match on the prefix.
WP_NAMESPACE = "http://wordpress.org/export/"
CONTENT_NAMESPACE = "http://purl.org/rss/1.0/modules/content/"
NO_DATE = "0000-00-00 00:00:00"

HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)  # Gutenberg blocks, <!--more-->
# Shortcodes that stand for media: dropped with whatever they enclose.
MEDIA_SHORTCODE = re.compile(
    r"\[(gallery|playlist|embed|audio|video|slideshow|youtube|vimeo|soundcloud)\b[^\]]*\]"
    r"(?:.*?\[/\1\])?",
    re.DOTALL | re.IGNORECASE,
)
# Shortcodes that wrap text ([caption], [code]): the tags go, the text stays.
TEXT_SHORTCODE = re.compile(
    r"\[/?(?:caption|wp_caption|code|sourcecode|quote|pullquote|footnote|spoiler)\b[^\]]*\]",
    re.IGNORECASE,
)
# Any other shortcode with attributes ([contact-form to="..."]) and any closing tag.
OTHER_SHORTCODE = re.compile(r"\[[a-z][\w-]*\s+[\w-]+=[^\]]*\]|\[/[a-z][\w-]*\]", re.IGNORECASE)


def _is_xml(head: bytes) -> bool:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def _wxr_members(archive: Archive) -> list[str]:
    """The members that are WXR files, judged by their first bytes."""
    if archive.is_container:
        candidates = archive.matching(lambda name: name.endswith(".xml"))
    else:
        candidates = archive.names
    found = []
    for name in candidates:
        try:
            head = archive.head(name, 8192)
        except CorpusFormatError:
            continue
        if _is_xml(head) and b"<rss" in head and WP_NAMESPACE.encode() in head:
            found.append(name)
    return found


def detect(archive: Archive) -> bool:
    return bool(_wxr_members(archive))


def strip_wordpress_markup(body: str) -> str:
    """The post body without block comments and shortcodes (the text inside [caption] stays)."""
    body = HTML_COMMENT.sub("", body)
    body = MEDIA_SHORTCODE.sub("", body)
    body = TEXT_SHORTCODE.sub("", body)
    return OTHER_SHORTCODE.sub("", body)


def _fields(item: etree._Element) -> dict[str, str]:
    """An item's direct children by a short name: title, content, and wp:* by local name."""
    fields: dict[str, str] = {}
    for child in item:
        tag = child.tag
        if not isinstance(tag, str):
            continue  # a comment or processing instruction
        namespace, _, local = tag[1:].rpartition("}") if tag[0] == "{" else ("", "", tag)
        if namespace.startswith(WP_NAMESPACE) and not namespace.endswith("/excerpt/"):
            key = "wp:" + local
        elif namespace == CONTENT_NAMESPACE:
            key = "content"
        elif not namespace:
            key = local
        else:
            continue
        fields.setdefault(key, child.text or "")
    return fields


def _created_at(fields: dict[str, str]) -> str | None:
    """wp:post_date_gmt, else the RSS pubDate; None where the export has no date."""
    gmt = fields.get("wp:post_date_gmt", "").strip()
    if gmt and gmt != NO_DATE:
        return utc_iso(datetime.fromisoformat(gmt))  # "2019-03-02 10:11:12", UTC
    published = fields.get("pubDate", "").strip()
    if published and "-0001" not in published:  # drafts say "Mon, 30 Nov -0001 00:00:00"
        return utc_iso(parsedate_to_datetime(published))
    return None


def _item(item: etree._Element, member: str, label: str) -> Document | Skipped:
    fields = _fields(item)
    post_id = fields.get("wp:post_id", "").strip() or None
    post_type = fields.get("wp:post_type", "post").strip()
    status = fields.get("wp:status", "publish").strip()
    if post_type != "post":
        return Skipped(f"wordpress {post_type} (only posts are imported)", post_id)
    if status != "publish":
        return Skipped(f"{status} post (not published)", post_id)
    if fields.get("wp:post_password", "").strip():
        return Skipped("password-protected post (not public)", post_id)
    title = fields.get("title", "").strip()
    body = strip_wordpress_markup(fields.get("content", "")).strip()
    if not title and not body:
        return Skipped("no text", post_id)
    try:
        created_at = _created_at(fields)
    except (ValueError, TypeError) as error:
        raise CorpusFormatError(label, post_id, f"invalid date: {error}") from None
    # WordPress stores titles already HTML-escaped ("Tea &amp; toast"), so no escaping here.
    text = (f"<p>{title}</p>\n" if title else "") + body
    return Document(
        text=text,
        created_at=created_at,
        source=f"wordpress:{member}",
        record_id=post_id,
        is_html=True,
    )


def read(archive: Archive, options: ImportOptions) -> Records:
    members = _wxr_members(archive)
    if not members:
        raise CorpusFormatError(str(archive.path), None, "no WordPress WXR file found")
    for member in members:
        yield from iter_xml_records(
            archive, member, "item", _item, element_noun="item", id_noun="post"
        )


IMPORTER = Importer(
    name="wordpress",
    description="WordPress WXR export (.xml, alone or in a zip): published posts",
    detect=detect,
    read=read,
    priority=60,
)
