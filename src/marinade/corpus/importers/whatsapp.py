"""WhatsApp's "Export chat" text file (alone, in a zip, or in a folder).

Two line styles start a message; any other line continues the one before:
  Android: "12/31/23, 9:41 PM - Name: text"   (system lines have no "Name: ")
  iOS:     "[31/12/2023, 21:41:05] Name: text" (system and media lines start with U+200E)

Dates follow the phone's locale, so day/month order is ambiguous. We decide it
once per file: if any first field is above 12 the file is day-first; else if
any second field is above 12 it is month-first; else (all dates ambiguous) a
file with AM/PM times is month-first (the US locale) and any other day-first.
A four-digit first field means year-month-day. Times carry no zone: they are
the phone's local time, and we store them as if they were UTC.

The export does not say whose phone it came from, so the owner must be named
with --me (without it the import stops and lists the names in the chat).

Messages without words of their own are skipped and counted: system notices,
media placeholders and deleted messages, in the phone's language (see
corpus/whatsapp_placeholders.py); an edited message loses its "<This message
was edited>" mark, and a media message keeps its caption (the lines after the
placeholder) as its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from marinade.corpus import whatsapp_placeholders as placeholders
from marinade.corpus.archive import Archive
from marinade.corpus.chat import ChatMessage, conversations, dialog_document
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.limits import limited_lines
from marinade.timestamps import utc_iso

_DATE = r"(?P<date>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})"
_TIME = r"(?P<time>\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:[ \u202f\u00a0]?[AaPp]\.? ?[Mm]\.?)?)"
# Between date and time: ", " or " ", or " à " in older French Android exports.
_AT = r"(?:,? | à )"
ANDROID_LINE = re.compile(rf"^{_DATE}{_AT}{_TIME} [-\u2013] (?P<rest>.*)$")
IOS_LINE = re.compile(rf"^\[{_DATE}{_AT}{_TIME}\] (?P<rest>.*)$")
INVISIBLE = "\ufeff\u200e\u200f\u202a\u202c"
SYSTEM = re.compile(
    r"end-to-end encrypted|^missed (?:voice|video) call$|^waiting for this message",
    re.IGNORECASE,
)


@dataclass
class ChatLine:
    """A message as the file writes it, before dates are resolved."""

    line: int
    date: str
    time: str
    sender: str | None  # None for system lines
    text: str


def _header(line: str) -> re.Match[str] | None:
    line = line.lstrip(INVISIBLE)
    return ANDROID_LINE.match(line) or IOS_LINE.match(line)


def _is_chat_text(head: bytes) -> bool:
    text = head.decode("utf-8", errors="ignore")
    for line in text.splitlines():
        if line.strip(INVISIBLE + " \t"):
            return _header(line) is not None
    return False


def _is_chat_name(name: str) -> bool:
    """The export's own name: "_chat.txt" (iOS), "WhatsApp Chat with Bob.txt", and in the
    phone's language "Discussion WhatsApp avec Bob.txt", "Чат WhatsApp с Bob.txt" ..."""
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".txt") and ("chat" in base or "whatsapp" in base)


def _members(archive: Archive) -> list[str]:
    if archive.is_container:
        names = archive.matching(_is_chat_name)
    else:
        names = archive.names
    return archive.members_whose_head(names, _is_chat_text)


def detect(archive: Archive) -> bool:
    return bool(_members(archive))


def _lines(archive: Archive, name: str) -> Iterator[tuple[int, str]]:
    """Numbered lines of the file; bad UTF-8 names the line."""
    with archive.open(name) as handle:
        lines = limited_lines(handle, archive.max_record_bytes, archive.label(name))
        for number, raw in enumerate(lines, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise CorpusFormatError(
                    archive.label(name), f"line {number}", f"not UTF-8 text: {error}"
                ) from None


def _chat_lines(archive: Archive, name: str) -> Iterator[ChatLine]:
    """Messages with their continuation lines joined on."""
    current: ChatLine | None = None
    for number, line in _lines(archive, name):
        match = _header(line)
        if match is None:
            if current is None:
                if not line.strip(INVISIBLE + " \t"):
                    continue
                raise CorpusFormatError(
                    archive.label(name), f"line {number}", "not a WhatsApp chat line"
                )
            current.text += "\n" + line
            continue
        if current is not None:
            yield current
        rest = match["rest"]
        sender, separator, text = rest.partition(": ")
        if not separator or '"' in sender:  # Android system lines have no sender
            sender, text = "", rest
        current = ChatLine(number, match["date"], match["time"], sender or None, text)
    if current is not None:
        yield current


def _name_key(name: str) -> str:
    """Names compare without invisible marks, "~" (non-contacts) and case."""
    return " ".join(name.strip(INVISIBLE).lstrip("~").replace("\u202f", " ").split()).casefold()


@dataclass(frozen=True)
class _Survey:
    day_first: bool
    year_first: bool
    names: frozenset[str]


def _survey(archive: Archive, name: str) -> _Survey:
    """One pass over the file to settle the date order and collect the senders."""
    first_over_12 = second_over_12 = am_pm = year_first = False
    names = set()
    for chat_line in _chat_lines(archive, name):
        if chat_line.sender:
            names.add(chat_line.sender.strip(INVISIBLE))
        first, second, _ = re.split(r"[./-]", chat_line.date)
        if len(first) == 4:
            year_first = True
            continue
        first_over_12 = first_over_12 or int(first) > 12
        second_over_12 = second_over_12 or int(second) > 12
        am_pm = am_pm or bool(re.search(r"[AaPp]\.? ?[Mm]", chat_line.time))
    if first_over_12:
        day_first = True
    elif second_over_12:
        day_first = False
    else:
        day_first = not am_pm
    return _Survey(day_first, year_first, frozenset(names))


def _moment(chat_line: ChatLine, survey: _Survey, label: str) -> datetime:
    try:
        first, second, third = (int(part) for part in re.split(r"[./-]", chat_line.date))
        if survey.year_first:
            year, month, day = first, second, third
        elif survey.day_first:
            day, month, year = first, second, third
        else:
            month, day, year = first, second, third
        if year < 100:
            year += 2000
        clock = re.match(r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?\D*", chat_line.time)
        if clock is None:
            raise ValueError(f"bad time {chat_line.time!r}")
        hour, minute, second_ = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        suffix = chat_line.time.lower().replace(".", "")
        if suffix.endswith("pm") and hour < 12:
            hour += 12
        elif suffix.endswith("am") and hour == 12:
            hour = 0
        return datetime(year, month, day, hour, minute, second_, tzinfo=timezone.utc)
    except ValueError as error:
        raise CorpusFormatError(
            label,
            f"line {chat_line.line}",
            f"invalid date {chat_line.date} {chat_line.time}: {error}",
        ) from None


def _words(chat_line: ChatLine) -> tuple[str, str | None]:
    """The message's own words, or "" and why it has none: a system notice, media
    without a caption, a deleted message."""
    if chat_line.sender is None:
        return "", "system message"
    text = placeholders.without_edit_mark(chat_line.text).strip()
    first, _, caption = text.partition("\n")
    if placeholders.is_media(first):
        caption = caption.strip()
        return (caption, None) if caption else ("", "media omitted")
    if placeholders.is_deleted(text):
        return "", "deleted message"
    if text.startswith("\u200e") or SYSTEM.search(text):  # iOS marks its notices with U+200E
        return "", "system message"
    if not text:
        return "", "no text"
    return text, None


def _owner(options: ImportOptions, survey: _Survey, label: str) -> str:
    names = ", ".join(sorted(survey.names)) or "none"
    if not options.me:
        raise CorpusFormatError(
            label,
            None,
            f"a WhatsApp chat does not say which side is yours: pass --me NAME (names: {names})",
        )
    me = _name_key(options.me)
    if me not in {_name_key(n) for n in survey.names}:
        raise CorpusFormatError(
            label, None, f"--me {options.me!r} is not in this chat (names: {names})"
        )
    return me


def _read_member(archive: Archive, name: str, options: ImportOptions) -> Records:
    label = archive.label(name)
    source = f"whatsapp:{name}"
    survey = _survey(archive, name)
    me = _owner(options, survey, label)
    kept: list[ChatMessage] = []
    for chat_line in _chat_lines(archive, name):
        moment = _moment(chat_line, survey, label)
        record = f"line {chat_line.line}"
        text, reason = _words(chat_line)
        if reason:
            yield Skipped(reason, record)
            continue
        sender = _name_key(chat_line.sender or "")
        mine = sender == me
        if options.dialog:
            kept.append(ChatMessage(sender, mine, text, moment, None))
        elif mine:
            yield Document(text=text, created_at=utc_iso(moment), source=source)
        else:
            yield Skipped("someone else's message", record)
    for conversation in conversations(kept):
        yield dialog_document(conversation, source)


def read(archive: Archive, options: ImportOptions) -> Records:
    # A single file is read whatever its first line says (--format forces it).
    members = _members(archive) if archive.is_container else archive.names
    if not members:
        raise CorpusFormatError(str(archive.path), None, "no WhatsApp chat export found")
    for name in members:
        yield from _read_member(archive, name, options)


IMPORTER = Importer(
    name="whatsapp",
    description="WhatsApp 'Export chat' text file (Android or iOS; alone or in a zip); needs --me",
    detect=detect,
    read=read,
    priority=60,
)
