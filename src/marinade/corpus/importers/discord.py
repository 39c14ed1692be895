"""Discord's data package (zip or folder): one folder per channel under messages/.

Each channel folder (`c<id>/`, plain `<id>/` in old packages) holds
`channel.json` and the owner's messages, as `messages.csv` (header
`ID,Timestamp,Contents,Attachments`, older packages) or `messages.json` (a list
of objects with the same keys). Folder names change case between versions
(`Messages/`, `messages/`) and are sometimes localised, so we find channels by
the file names inside them. Only the owner's messages are in a package, so a
`--dialog` document is the owner's lines of one channel on one UTC day, all
"- ": there is no other side to show.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from marinade.corpus.archive import Archive
from marinade.corpus.document import (
    CorpusFormatError,
    Document,
    ImportOptions,
    Skipped,
    format_dialog,
)
from marinade.corpus.importers import Importer, Records
from marinade.corpus.jsonstream import iter_json_array
from marinade.timestamps import utc_iso

MESSAGES_FILE = re.compile(r"(?:^|/)c?\d+/messages\.(?:csv|json)$")
COLUMNS = ("ID", "Timestamp", "Contents")
JSON_LIST = re.compile(r"\A\s*\[")
# Discord's own markup: user/role/channel mentions and timestamps go, custom emoji keep their name.
MENTION = re.compile(r"<(?:@[!&]?|#)\d+>|<t:-?\d+(?::[a-zA-Z])?>")
CUSTOM_EMOJI = re.compile(r"<a?(:\w+:)\d+>")


def _members(archive: Archive) -> list[str]:
    """One messages file per channel folder; JSON where a folder has both."""
    if not archive.is_container:
        return []
    chosen: dict[str, str] = {}
    for name in archive.matching(lambda n: MESSAGES_FILE.search(n) is not None):
        folder = name.rsplit("/", 1)[0]
        if folder not in chosen or name.lower().endswith(".json"):
            chosen[folder] = name
    return sorted(chosen.values())


def detect(archive: Archive) -> bool:
    return bool(_members(archive))


def discord_text(contents: str) -> str:
    """Message text without Discord's mention and timestamp codes."""
    return CUSTOM_EMOJI.sub(r"\1", MENTION.sub("", contents))


def _field(row: dict[str, Any], key: str) -> Any:
    """A key in any case: packages have written both "Contents" and "contents"."""
    if key in row:
        return row[key]
    lowered = key.lower()
    for name, value in row.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def _csv_rows(archive: Archive, name: str) -> Iterator[dict[str, Any]]:
    label = archive.label(name)
    with archive.open(name) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        reader = csv.DictReader(text)
        try:
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS if c.lower() not in {h.lower() for h in header}]
            if missing:
                raise CorpusFormatError(label, None, f"missing column {', '.join(missing)}")
            yield from reader
        except (csv.Error, UnicodeDecodeError) as error:
            raise CorpusFormatError(label, f"row {reader.line_num}", f"bad CSV: {error}") from None


def _json_rows(archive: Archive, name: str) -> Iterator[dict[str, Any]]:
    """The messages of a messages.json, streamed one at a time (corpus/jsonstream.py)."""
    label = archive.label(name)
    with archive.open(name) as handle:
        rows = iter_json_array(handle, label, JSON_LIST, archive.max_record_bytes)
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise CorpusFormatError(label, f"#{index}", "a message is not a JSON object")
            yield row


def _moment(row: dict[str, Any], label: str, record: str) -> datetime:
    value = _field(row, "Timestamp")
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise CorpusFormatError(label, record, f"invalid date {value!r}") from None
    if moment.tzinfo is None:  # newer packages write UTC without a zone
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _read_channel(archive: Archive, name: str, options: ImportOptions) -> Records:
    label = archive.label(name)
    source = f"discord:{name}"
    channel = name.rsplit("/", 2)[-2]
    rows = _json_rows(archive, name) if name.lower().endswith(".json") else _csv_rows(archive, name)
    days: dict[str, list[tuple[datetime, str]]] = {}
    for index, row in enumerate(rows):
        record = str(_field(row, "ID") or f"#{index}")
        moment = _moment(row, label, record)
        text = discord_text(str(_field(row, "Contents") or ""))
        if not text.strip():
            attachments = str(_field(row, "Attachments") or "").strip()
            yield Skipped("attachment only" if attachments else "no text", record)
        elif options.dialog:
            days.setdefault(moment.date().isoformat(), []).append((moment, text))
        else:
            yield Document(text=text, created_at=utc_iso(moment), source=source, record_id=record)
    for day, messages in sorted(days.items()):
        messages.sort(key=lambda item: item[0])
        yield Document(
            text=format_dialog([(True, text) for _, text in messages]),
            created_at=utc_iso(messages[0][0]),
            source=source,
            record_id=f"{channel}:{day}",
        )


def read(archive: Archive, options: ImportOptions) -> Records:
    members = _members(archive)
    if not members:
        raise CorpusFormatError(str(archive.path), None, "no Discord messages folder found")
    for name in members:
        yield from _read_channel(archive, name, options)


IMPORTER = Importer(
    name="discord",
    description="Discord data package (zip or folder; messages.csv or messages.json per channel)",
    detect=detect,
    read=read,
    priority=80,
)
