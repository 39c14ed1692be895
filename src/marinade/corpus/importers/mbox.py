"""mbox mailboxes: a single .mbox file, or .mbox files in a zip or folder (Google Takeout).

The mailbox is read as a stream of messages whose headers are scanned lazily
(corpus/mbox_stream.py), and only the owner's messages are parsed in full, for their
own words without quotes and signature (corpus/mail_text.py), which keeps
100,000-message mailboxes fast.

The owner: the addresses given with --me (comma-separated; a display name also
works), else the most frequent From address among the messages Gmail labels
"Sent" (Takeout's X-Gmail-Labels), else the most frequent From address overall.
Only the messages we import are checked for a valid Date: spam with a broken
Date header must not stop a whole mailbox.

Each of the owner's messages becomes one document. With --dialog, each thread the
owner wrote in (by References/In-Reply-To, else by subject) becomes one document.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

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
from marinade.corpus.mail_text import own_words
from marinade.corpus.mbox_stream import Headers, decoded_header, raw_messages, scan_headers
from marinade.timestamps import utc_iso

DETECT_HEADER = re.compile(
    rb"^(?:from|date|message-id|subject|to|received|return-path):", re.I | re.M
)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SUBJECT_PREFIX = re.compile(r"^(?:(?:re|fwd?|aw|sv|wg|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)


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
            body = _own_words(message.lines, label, headers.record)
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
        subject = SUBJECT_PREFIX.sub("", decoded_header(headers.get("subject"))).casefold()
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
            body = _own_words(message.lines, label, headers.record)
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


def _own_words(lines: list[bytes], label: str, record: str) -> tuple[str, bool] | None:
    """mail_text.own_words, with MIME parts nested past Python's recursion limit (the
    email package parses them recursively) as one line naming the message."""
    try:
        return own_words(lines)
    except RecursionError:
        raise CorpusFormatError(label, record, "MIME parts nested too deeply") from None


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
