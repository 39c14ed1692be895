"""mbox mailboxes: a single .mbox file, or .mbox files in a zip or folder (Google Takeout).

We split the file ourselves on "From " postmark lines (a line starting "From ",
after a blank line or at the start, with a time in it), so a mailbox of any size
streams from a zip member without a temporary copy; ">From " lines are
unescaped (mboxrd). Message headers are read with a small scanner and only
the owner's messages are parsed in full, which keeps 100,000-message mailboxes
fast.

The owner: the addresses given with --me (comma-separated; a display name also
works), else the most frequent From address among the messages Gmail labels
"Sent" (Takeout's X-Gmail-Labels), else the most frequent From address overall.
Only the messages we import are checked for a valid Date: spam with a broken
Date header must not stop a whole mailbox.

Per message: text/plain preferred, else the HTML part; quoted replies ("> "
lines, "On ... wrote:" attributions, Outlook "-----Original Message-----" and
"From:/Sent:" blocks, Gmail/Thunderbird/Outlook quote elements in HTML) and
signatures (after "-- ") are removed. With --dialog, each thread the owner
wrote in (by References/In-Reply-To, else by subject) becomes one document.
"""

from __future__ import annotations

import email
import email.message
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime
from functools import cached_property

from bs4 import BeautifulSoup

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import html_to_text
from marinade.corpus.document import (
    CorpusFormatError,
    Document,
    ImportOptions,
    Skipped,
    format_dialog,
)
from marinade.corpus.importers import Importer, Records
from marinade.timestamps import utc_iso

POSTMARK = re.compile(rb"From \S*\s.*\d{1,2}:\d{2}")
ESCAPED_FROM = re.compile(rb">+From ")
DETECT_HEADER = re.compile(
    rb"^(?:from|date|message-id|subject|to|received|return-path):", re.I | re.M
)

ATTRIBUTION = re.compile(
    r"^(?:On\b.*\bwrote|Am\b.*\bschrieb.*|Le\b.*\ba écrit)\s*:\s*$", re.IGNORECASE | re.DOTALL
)
ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Forwarded message|Ursprüngliche Nachricht"
    r"|Message d'origine)\s*-{2,}\s*$|^Begin forwarded message:\s*$",
    re.IGNORECASE,
)
ORIGINAL_MESSAGE_IN_HTML = re.compile(
    r"-{2,}\s*(?:Original Message|Forwarded message|Ursprüngliche Nachricht"
    r"|Message d'origine)\s*-{2,}",
    re.IGNORECASE,
)
RULE = re.compile(r"^\s*_{10,}\s*$")
MOBILE_SIGNATURE = re.compile(r"^\s*Sent from my \w[\w ]*\s*$", re.IGNORECASE)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SUBJECT_PREFIX = re.compile(r"^(?:(?:re|fwd?|aw|sv|wg|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
HTML_QUOTE_CLASSES = ["gmail_quote", "gmail_signature", "moz-cite-prefix", "moz-signature"]


def _is_mbox(head: bytes) -> bool:
    return head.startswith(b"From ") and DETECT_HEADER.search(head) is not None


def _members(archive: Archive) -> list[str]:
    if archive.is_container:  # Takeout's .mbox, or Thunderbird's extensionless "Inbox"
        names = archive.matching(
            lambda n: n.endswith((".mbox", ".mbx")) or "." not in n.rsplit("/", 1)[-1]
        )
    else:
        names = archive.names
    return archive.members_whose_head(names, _is_mbox)


def detect(archive: Archive) -> bool:
    return bool(_members(archive))


@dataclass
class RawMessage:
    """A message's lines (without its postmark) and where its headers end."""

    index: int  # 1-based position in its mailbox
    lines: list[bytes]
    header_end: int | None  # index of the blank line after the headers; None: never ends


def raw_messages(archive: Archive, name: str) -> Iterator[RawMessage]:
    """The mailbox's messages, read as a stream."""
    lines: list[bytes] = []
    header_end: int | None = None
    index = 0
    previous_blank = True
    with archive.open(name) as handle:
        for line in handle:
            if previous_blank and line.startswith(b"From ") and POSTMARK.match(line):
                if index:
                    yield RawMessage(index, lines, header_end)
                lines, header_end, previous_blank = [], None, False
                index += 1
                continue
            if not index:
                if not line.isspace():
                    raise CorpusFormatError(
                        archive.label(name), None, "not an mbox: no 'From ' line before the mail"
                    )
                continue
            if line[:1] == b">" and ESCAPED_FROM.match(line):
                line = line[1:]
            previous_blank = line.isspace()
            if previous_blank and header_end is None:
                header_end = len(lines)
            lines.append(line)
    if index:
        yield RawMessage(index, lines, header_end)


HEADER_BLOCK = re.compile(rb"(?:[^\s:]+[ \t]*:.*\n|[ \t].*\n)*")


class Headers:
    """A message's header block, read lazily: a big mailbox is scanned twice, and
    most of its messages only ever need their From line."""

    def __init__(self, index: int, block: bytes):
        self.index = index
        self._block = b"\n" + block  # every header line now starts after a newline
        self._lowered = self._block.lower()
        self._fields: dict[str, str] = {}

    def get(self, name: str) -> str:
        """The first `name:` header, unfolded ("" if absent)."""
        if name not in self._fields:
            key = b"\n" + name.encode() + b":"
            at = self._lowered.find(key)
            value = ""
            if at >= 0:
                start = at + len(key)
                end = self._block.find(b"\n", start)
                while end + 1 < len(self._block) and self._block[end + 1] in b" \t":
                    end = self._block.find(b"\n", end + 1)
                value = " ".join(_header_text(self._block[start:end]).split())
            self._fields[name] = value
        return self._fields[name]

    @property
    def message_id(self) -> str | None:
        ids = re.findall(r"<([^>]+)>", self.get("message-id"))
        return ids[0] if ids else (self.get("message-id").strip() or None)

    @property
    def record(self) -> str:
        ident = self.message_id
        return f"#{self.index}" + (f" <{ident}>" if ident else "")

    @property
    def labels(self) -> set[str]:
        return {label.strip().lower() for label in self.get("x-gmail-labels").split(",")}

    @cached_property
    def sender(self) -> tuple[str, str]:
        """(display name, address) of From, case-folded."""
        return sender(self.get("from"))


def scan_headers(message: RawMessage, label: str) -> Headers:
    """The message's headers; a block that is not headers means a corrupt mailbox."""
    if message.header_end is None:
        raise CorpusFormatError(label, f"#{message.index}", "truncated: the headers never end")
    block = b"".join(message.lines[: message.header_end])
    if HEADER_BLOCK.fullmatch(block) is None:
        raise CorpusFormatError(
            label, f"#{message.index}", "not a mail header line (corrupt mbox?)"
        )
    return Headers(message.index, block)


def _header_text(line: bytes) -> str:
    """A header line as text (raw 8-bit headers are usually UTF-8)."""
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


ANGLE_ADDRESS = re.compile(r"<([^<>]*)>")
BARE_ADDRESS = re.compile(r"[^\s<>\"(),;:]+@[^\s<>\"(),;:]+")


def sender(value: str) -> tuple[str, str]:
    """(display name, address) of a From header, case-folded; much faster than parseaddr,
    which matters when every message of a big mailbox is looked at twice."""
    angle = ANGLE_ADDRESS.findall(value)
    if angle:
        address = angle[-1].strip()
        name = value[: value.rfind("<")]
    else:
        found = BARE_ADDRESS.search(value)
        address = found.group() if found else ""
        name = value.replace(address, "").strip().strip("()")
    name = name.strip().strip('"').strip()
    if "=?" in name:
        name = _decoded(name)
    return name.casefold(), address.casefold()


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


@dataclass(frozen=True)
class Owner:
    """The owner's From addresses and display names, case-folded."""

    addresses: frozenset[str]
    names: frozenset[str] = frozenset()

    @classmethod
    def named(cls, me: str) -> Owner:
        wanted = frozenset(part.strip().casefold() for part in me.split(",") if part.strip())
        return cls(wanted, wanted)

    def wrote(self, headers: Headers) -> bool:
        name, address = headers.sender
        return address in self.addresses or name in self.names


def _most_frequent_sender(archive: Archive, names: list[str]) -> Owner:
    """The most frequent From address, among Gmail's "Sent" messages where labelled."""
    everyone: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    for name in names:
        label = archive.label(name)
        for message in raw_messages(archive, name):
            headers = scan_headers(message, label)
            address = headers.sender[1]
            if address:
                everyone[address] += 1
                if "sent" in headers.labels:
                    sent[address] += 1
    counts = sent or everyone
    if not counts:
        raise CorpusFormatError(
            str(archive.path), None, "no message has a From address; pass --me ADDRESS"
        )
    return Owner(frozenset({counts.most_common(1)[0][0]}))


def _check_owner_found(archive: Archive, me: str, found: bool, senders: Counter[str]) -> None:
    """--me that matches no message is a typo, not an empty mailbox."""
    if not found:
        common = ", ".join(address for address, _ in senders.most_common(5)) or "none"
        raise CorpusFormatError(
            str(archive.path), None, f"--me {me!r} sent none of these messages (frequent: {common})"
        )


def _text_part(message: email.message.Message) -> tuple[str, bool] | None:
    """The text/plain part, else the text/html one, decoded; attachments are not text."""
    plain = html = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        if part.get_content_type() == "text/plain" and plain is None:
            plain = part
        elif part.get_content_type() == "text/html" and html is None:
            html = part
    chosen = plain or html
    if chosen is None:
        return None
    payload = chosen.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = chosen.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n")
    if chosen is plain and str(chosen.get_param("format", "")).lower() == "flowed":
        text = unflow(text, str(chosen.get_param("delsp", "")).lower() == "yes")
    return text, chosen is html


def unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next."""
    lines: list[str] = []
    pending = ""
    for line in text.split("\n"):
        if line.startswith(" "):  # space-stuffed
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
        else:
            lines.append(pending + line)
            pending = ""
    if pending:
        lines.append(pending)
    return "\n".join(lines)


def _attribution_length(lines: list[str], start: int) -> int:
    """How many lines an "On ... wrote:" attribution at `start` spans (0: none)."""
    if not re.match(r"\s*(?:On|Am|Le)\b", lines[start]):
        return 0
    for length in (1, 2, 3):
        joined = " ".join(line.strip() for line in lines[start : start + length])
        if ATTRIBUTION.match(joined):
            rest = [line for line in lines[start + length :] if line.strip()]
            return length if not rest or rest[0].lstrip().startswith(">") else 0
    return 0


def _ends_own_words(lines: list[str], number: int) -> bool:
    """A signature separator, or the start of a forwarded/quoted original."""
    line = lines[number]
    if line.rstrip() == "--" or ORIGINAL_MESSAGE.match(line):
        return True
    if RULE.match(line) or line.startswith("From: "):  # Outlook's quoted header block
        following = next((later for later in lines[number + 1 :] if later.strip()), "")
        if RULE.match(line):
            return following.startswith("From:")
        return re.match(r"(?:Sent|Date): ", following) is not None
    return False


def strip_replies(text: str) -> str:
    """A plain-text mail body without quoted text, attributions and signature."""
    lines = text.split("\n")
    for number in range(len(lines)):
        if _ends_own_words(lines, number):
            lines = lines[:number]
            break
    kept: list[str] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        length = _attribution_length(lines, number)
        if length:
            number += length
            continue
        if not line.lstrip().startswith(">") and not MOBILE_SIGNATURE.match(line):
            kept.append(line)
        number += 1
    return "\n".join(kept).strip()


def strip_html_replies(markup: str) -> str:
    """An HTML mail body without the quote and signature elements mail clients mark."""
    match = ORIGINAL_MESSAGE_IN_HTML.search(markup)
    if match:
        markup = markup[: match.start()]
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup.find_all("blockquote") + soup.find_all(class_=HTML_QUOTE_CLASSES):
        tag.decompose()
    for marker_id in ("appendonsend", "divRplyFwdMsg"):
        marker = soup.find(id=marker_id)
        if marker is not None:
            for later in marker.find_all_next():
                later.decompose()
            marker.decompose()
    return str(soup)


def _utc(moment: datetime) -> datetime:
    """parsedate_to_datetime gives a naive datetime for "-0000": that is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _moment(headers: Headers, label: str) -> datetime | None:
    value = headers.get("date")
    if not value:
        return None
    try:
        return _utc(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        raise CorpusFormatError(label, headers.record, f"invalid Date header {value!r}") from None


def _lenient_moment(headers: Headers) -> datetime | None:
    """Someone else's Date only orders a thread: a broken one is no reason to stop."""
    try:
        return _utc(parsedate_to_datetime(headers.get("date")))
    except (TypeError, ValueError, IndexError):
        return None


def _body(lines: list[bytes]) -> tuple[str, bool] | None:
    """The message's own words (quotes and signature removed, "" if nothing is left)
    and whether they are HTML; None for a message without a text part."""
    found = _text_part(email.message_from_bytes(b"".join(lines)))
    if found is None:
        return None
    text, is_html = found
    text = strip_html_replies(text) if is_html else strip_replies(text)
    visible = html_to_text(text) if is_html else text
    return (text if visible.strip() else ""), is_html


def _is_draft(headers: Headers) -> bool:
    return bool(headers.labels & {"draft", "drafts"})


def _read_messages(archive: Archive, names: list[str], owner: Owner, me: str | None) -> Records:
    found = False
    senders: Counter[str] = Counter()
    for name in names:
        label = archive.label(name)
        for message in raw_messages(archive, name):
            headers = scan_headers(message, label)
            if not owner.wrote(headers):
                senders[headers.sender[1]] += 1
                yield Skipped("someone else's message", headers.record)
                continue
            found = True
            if _is_draft(headers):
                yield Skipped("draft", headers.record)
                continue
            moment = _moment(headers, label)
            body = _body(message.lines)
            if body is None or not body[0]:
                reason = "no text part" if body is None else "only quoted text"
                yield Skipped(reason, headers.record)
                continue
            yield Document(
                text=body[0],
                created_at=utc_iso(moment) if moment else None,
                source=f"mbox:{name}",
                record_id=headers.message_id,
                is_reply=bool(headers.get("in-reply-to")),
                is_html=body[1],
            )
    if me:
        _check_owner_found(archive, me, found, senders)


class _Threads:
    """Union-find over Message-IDs (and subjects, for messages that cite none)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        root = key
        while self.parent.setdefault(root, root) != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, first: str, second: str) -> None:
        self.parent[self.find(second)] = self.find(first)


def _thread_keys(headers: Headers, name: str) -> list[str]:
    """The message's own key first, then the messages it cites (or its subject)."""
    ident = headers.message_id
    own = f"id:{ident}" if ident else f"#{name}:{headers.index}"
    cited = re.findall(r"<([^>]+)>", f"{headers.get('references')} {headers.get('in-reply-to')}")
    keys = [own] + [f"id:{cited_id}" for cited_id in cited]
    if not cited:
        subject = SUBJECT_PREFIX.sub("", _decoded(headers.get("subject"))).casefold()
        if subject.strip():
            keys.append("subject:" + " ".join(subject.split()))
    return keys


@dataclass
class _Turn:
    moment: datetime | None
    mine: bool
    text: str
    record_id: str | None
    source: str


def _read_dialogs(archive: Archive, names: list[str], owner: Owner, me: str | None) -> Records:
    """Threads the owner wrote in, one document each, turns in date order.

    Two passes: headers first to build the threads, then bodies only for the
    threads with an owner's message, so other people's mail is never held.
    """
    threads = _Threads()
    owner_keys = []
    senders: Counter[str] = Counter()
    for name in names:
        label = archive.label(name)
        for message in raw_messages(archive, name):
            headers = scan_headers(message, label)
            keys = _thread_keys(headers, name)
            for key in keys[1:]:
                threads.union(keys[0], key)
            if owner.wrote(headers) and not _is_draft(headers):
                owner_keys.append(keys[0])
            else:
                senders[headers.sender[1]] += 1
    if me:
        _check_owner_found(archive, me, bool(owner_keys), senders)
    owned = {threads.find(key) for key in owner_keys}
    turns: dict[str, list[_Turn]] = {}
    for name in names:
        label = archive.label(name)
        for message in raw_messages(archive, name):
            headers = scan_headers(message, label)
            thread = threads.find(_thread_keys(headers, name)[0])
            if _is_draft(headers):
                yield Skipped("draft", headers.record)
                continue
            if thread not in owned:
                yield Skipped("thread without the owner's messages", headers.record)
                continue
            mine = owner.wrote(headers)
            moment = _moment(headers, label) if mine else _lenient_moment(headers)
            body = _body(message.lines)
            if body is None or not body[0]:
                reason = "no text part" if body is None else "only quoted text"
                yield Skipped(reason, headers.record)
                continue
            text = html_to_text(body[0]) if body[1] else body[0]
            turns.setdefault(thread, []).append(
                _Turn(moment, mine, text, headers.message_id, f"mbox:{name}")
            )
    for thread_turns in turns.values():
        thread_turns.sort(key=lambda t: (t.moment is None, t.moment or EPOCH))
        first = thread_turns[0]
        if not any(turn.mine for turn in thread_turns):  # the owner's only message was quotes
            yield Skipped("thread without the owner's messages", first.record_id)
            continue
        yield Document(
            text=format_dialog([(turn.mine, turn.text) for turn in thread_turns]),
            created_at=utc_iso(first.moment) if first.moment else None,
            source=first.source,
            record_id=first.record_id,
        )


def read(archive: Archive, options: ImportOptions) -> Records:
    # A single file is read whatever its first bytes say (--format forces it).
    names = _members(archive) if archive.is_container else archive.names
    if not names:
        raise CorpusFormatError(str(archive.path), None, "no mbox mailbox found")
    if options.me:
        owner = Owner.named(options.me)
    else:
        owner = _most_frequent_sender(archive, names)
    reader = _read_dialogs if options.dialog else _read_messages
    yield from reader(archive, names, owner, options.me)


IMPORTER = Importer(
    name="mbox",
    description="mbox mailbox (a .mbox file, or in a zip such as Google Takeout); your own mail",
    detect=detect,
    read=read,
    priority=60,
)
