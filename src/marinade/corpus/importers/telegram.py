"""Telegram Desktop's JSON export: `result.json`, for the whole account or one chat.

The full export starts with `personal_information` (the owner's `user_id`) and
lists chats under `chats.list` (and `left_chats.list`); a one-chat export is
the chat object itself (`name`, `type`, `id`, `messages`). Messages of type
"message" have `from`/`from_id` ("user<id>"), `date` (the exporter's local
time) and, in newer exports, `date_unixtime` (UTC), which we prefer; `text` is a
string or a list of strings and entity objects ({"type", "text"}).

The owner is the user named by `--me` (display name or "user<id>"), else
`personal_information.user_id`. The stdlib JSON parser reads the whole file
into memory, so the file counts as one record (`--max-record-size`, 16 MiB by
default); records are still yielded one at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from marinade.corpus.archive import Archive
from marinade.corpus.chat import ChatMessage, conversations, dialog_document
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.timestamps import utc_iso


def _is_telegram_json(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start.startswith(b"{"):
        return False
    if b'"personal_information"' in head:
        return True
    return b'"messages"' in head and (b'"date_unixtime"' in head or b'"from_id"' in head)


def _members(archive: Archive) -> list[str]:
    names = archive.find("result.json") if archive.is_container else archive.names
    return archive.members_whose_head(names, _is_telegram_json)


def detect(archive: Archive) -> bool:
    return bool(_members(archive))


def message_text(text: Any) -> str:
    """The plain text of a message: a string, or a list of strings and entity objects."""
    if isinstance(text, str):
        return text
    if isinstance(text, list):
        parts = []
        for part in text:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _moment(message: dict[str, Any], label: str, record: str) -> datetime:
    """`date_unixtime` (UTC) where the export has it, else `date` taken as UTC."""
    try:
        if message.get("date_unixtime") is not None:
            return datetime.fromtimestamp(int(message["date_unixtime"]), tz=timezone.utc)
        moment = datetime.fromisoformat(str(message["date"]))
    except (KeyError, ValueError, OverflowError, OSError) as error:
        raise CorpusFormatError(label, record, f"invalid date: {error}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _chats(export: dict[str, Any], label: str) -> list[dict[str, Any]]:
    if isinstance(export.get("messages"), list):  # a one-chat export
        return [export]
    chats: list[dict[str, Any]] = []
    for section in ("chats", "left_chats"):
        listing = export.get(section, {})
        items = listing.get("list", []) if isinstance(listing, dict) else []
        if not isinstance(items, list):
            raise CorpusFormatError(label, None, f"{section}.list is not a list")
        chats.extend(chat for chat in items if isinstance(chat, dict))
    return chats


@dataclass(frozen=True)
class Owner:
    """Who the owner is: `from_id` values and display names, lower case."""

    ids: frozenset[str]
    names: frozenset[str] = frozenset()

    def wrote(self, message: dict[str, Any]) -> bool:
        return (
            str(message.get("from_id", "")).lower() in self.ids
            or str(message.get("from") or "").lower() in self.names
        )


def _owner(
    export: dict[str, Any], chats: list[dict[str, Any]], me: str | None, label: str
) -> Owner:
    """`--me` (a display name or "user<id>"), else the export's own user id."""
    messages = [m for chat in chats for m in chat.get("messages", []) if isinstance(m, dict)]
    names = {str(m["from"]) for m in messages if m.get("from")}
    if me:
        owner = Owner(frozenset({me.strip().lower()}), frozenset({me.strip().lower()}))
        if not any(owner.wrote(m) for m in messages):
            raise CorpusFormatError(
                label,
                None,
                f"--me {me!r} wrote none of the messages; names found: {_listing(names)}",
            )
        return owner
    info = export.get("personal_information")
    if isinstance(info, dict) and info.get("user_id") is not None:
        return Owner(frozenset({f"user{info['user_id']}", str(info["user_id"])}))
    raise CorpusFormatError(
        label,
        None,
        f"this export does not say who you are; pass --me NAME (names found: {_listing(names)})",
    )


def _listing(names: set[str]) -> str:
    shown = sorted(names)[:20]
    more = f" and {len(names) - 20} more" if len(names) > 20 else ""
    return ", ".join(shown) + more if shown else "none"


def _load(archive: Archive, name: str) -> dict[str, Any]:
    label = archive.label(name)
    try:
        export = json.loads(archive.read_text(name))
    except json.JSONDecodeError as error:
        raise CorpusFormatError(
            label, None, f"invalid JSON (truncated?) at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise CorpusFormatError(label, None, "JSON nested too deeply") from None
    if not isinstance(export, dict):
        raise CorpusFormatError(label, None, "not a Telegram export (expected a JSON object)")
    return export


def _read_member(archive: Archive, name: str, options: ImportOptions) -> Records:
    label = archive.label(name)
    source = f"telegram:{name}"
    export = _load(archive, name)
    chats = _chats(export, label)
    owner = _owner(export, chats, options.me, label)
    for chat_index, chat in enumerate(chats):
        chat_id = str(chat.get("id", chat_index))
        messages = chat.get("messages", [])
        if not isinstance(messages, list):
            raise CorpusFormatError(label, f"chat {chat_id}", "messages is not a list")
        kept: list[ChatMessage] = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise CorpusFormatError(label, f"chat {chat_id} #{index}", "not a JSON object")
            record = f"{chat_id}:{message.get('id', index)}"
            if message.get("type") != "message":
                yield Skipped(f"telegram {message.get('type', 'unknown')} record", record)
                continue
            moment = _moment(message, label, f"chat {chat_id} message {message.get('id', index)}")
            text = message_text(message.get("text"))
            if not text.strip():
                yield Skipped("no text (media only)", record)
                continue
            mine = owner.wrote(message)
            if options.dialog:
                sender = str(message.get("from_id") or message.get("from") or "")
                kept.append(ChatMessage(sender, mine, text, moment, record))
            elif not mine:
                yield Skipped("someone else's message", record)
            else:
                yield Document(
                    text=text,
                    created_at=utc_iso(moment),
                    source=source,
                    record_id=record,
                    is_reply="reply_to_message_id" in message,
                    is_repost=bool(message.get("forwarded_from")),
                )
        for conversation in conversations(kept):
            yield dialog_document(conversation, source)


def read(archive: Archive, options: ImportOptions) -> Records:
    # A single file is read whatever its first bytes say (--format forces it).
    members = _members(archive) if archive.is_container else archive.names
    if not members:
        raise CorpusFormatError(str(archive.path), None, "no Telegram result.json found")
    for name in members:
        yield from _read_member(archive, name, options)


IMPORTER = Importer(
    name="telegram",
    description="Telegram Desktop JSON export (result.json, alone or in a folder or zip)",
    detect=detect,
    read=read,
    priority=60,
)
