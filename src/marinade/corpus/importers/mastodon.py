"""Mastodon account archive (tar.gz, zip or folder): `outbox.json`.

The outbox is one ActivityStreams OrderedCollection whose `orderedItems` are
`Create` activities (the object is a Note with HTML `content`) and `Announce`
activities (boosts; the object is only a URI). The whole history is one JSON
file, so its items are decoded one at a time.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bs4 import BeautifulSoup

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.jsonstream import iter_json_array
from marinade.timestamps import utc_iso

ORDERED_ITEMS = re.compile(r'"orderedItems"\s*:\s*\[')
PUBLIC = {"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"}
# Object types that carry the user's text (Question is a poll; its text is the question).
TEXT_OBJECTS = {"Note", "Question", "Article", "Page"}


def detect(archive: Archive) -> bool:
    """An outbox.json whose first bytes say it is an OrderedCollection (likes.json and
    bookmarks.json are OrderedCollections too, so a lone file must also say "outbox")."""
    try:
        if archive.is_container:
            names = archive.find("outbox.json")
            return bool(names) and b'"OrderedCollection"' in archive.head(names[0], 16384)
        head = archive.head(archive.names[0], 16384)
        return b'"OrderedCollection"' in head and b"outbox" in head
    except CorpusFormatError:
        return False


def read(archive: Archive, options: ImportOptions) -> Records:
    names = archive.find("outbox.json") if archive.is_container else archive.names
    for name in names:
        label = archive.label(name)
        with archive.open(name) as handle:
            for index, item in enumerate(
                iter_json_array(handle, label, ORDERED_ITEMS, archive.max_record_bytes), 1
            ):
                yield _activity(item, f"mastodon:{name}", label, index)


def _activity(item: Any, source: str, label: str, index: int) -> Document | Skipped:
    if not isinstance(item, dict):
        return Skipped("not an activity", f"#{index}")
    kind = item.get("type")
    if kind == "Announce":  # a boost: the object is someone else's post, by URI only
        record = _string(item.get("id")) or f"#{index}"
        return Document(
            text="",
            created_at=_date(item.get("published"), label, record),
            source=source,
            record_id=_string(item.get("id")),
            is_repost=True,
            visibility=_visibility(item),
        )
    note = item.get("object")
    if kind != "Create":
        return Skipped(f"{kind} activity", _string(item.get("id")) or f"#{index}")
    if not isinstance(note, dict):
        return Skipped("Create activity without a post", _string(item.get("id")) or f"#{index}")
    record_id = _string(note.get("id")) or _string(item.get("id"))
    record = record_id or f"#{index}"
    if note.get("type") not in TEXT_OBJECTS:
        return Skipped(f"{note.get('type')} object", record)
    content_map = note.get("contentMap")
    if not isinstance(content_map, dict):
        content_map = {}
    content = note.get("content") or next(iter(content_map.values()), None)
    if not isinstance(content, str) or not content.strip():
        return Skipped("no text (media only)", record)
    return Document(
        text=_without_quote_fallback(content),
        created_at=_date(note.get("published") or item.get("published"), label, record),
        source=source,
        record_id=record_id,
        is_reply=bool(note.get("inReplyTo")),
        language=next(iter(content_map), None),
        visibility=_visibility(note if "to" in note or "cc" in note else item),
        is_html=True,
    )


def _visibility(addressed: dict[str, Any]) -> str:
    """Mastodon's four levels, read back from the addressing: public posts name
    as:Public in `to`, unlisted ones in `cc`; followers-only ones the followers collection."""
    to, cc = _addresses(addressed.get("to")), _addresses(addressed.get("cc"))
    if PUBLIC & set(to):
        return "public"
    if PUBLIC & set(cc):
        return "unlisted"
    if any(address.endswith("/followers") for address in to + cc):
        return "private"
    return "direct"


def _addresses(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _without_quote_fallback(content: str) -> str:
    """Mastodon appends `RE: <link>` in a `quote-inline` element to quote posts for
    servers that cannot show quotes; it is not the user's text."""
    if "quote-inline" not in content:
        return content
    soup = BeautifulSoup(content, "html.parser")
    for tag in soup.select(".quote-inline"):
        tag.decompose()
    return str(soup)


def _date(value: object, label: str, record: str) -> str | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        # Python 3.10's fromisoformat does not take the "Z" suffix.
        return utc_iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise CorpusFormatError(label, record, f"invalid date {value!r}") from None


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


IMPORTER = Importer(
    name="mastodon",
    description="Mastodon account archive (tar.gz, zip or folder with outbox.json)",
    detect=detect,
    read=read,
    priority=80,
)
