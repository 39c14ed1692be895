"""Chat conversations as training text, shared by the chat importers (Telegram, WhatsApp)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from marinade.corpus.document import Document, Skipped, format_dialog
from marinade.timestamps import utc_iso

# A chat is cut into separate conversations where nobody wrote for this long.
CONVERSATION_GAP = timedelta(hours=1)


@dataclass
class ChatMessage:
    """One chat message, as the dialog builder needs it."""

    sender: str
    mine: bool
    text: str
    moment: datetime  # aware, UTC
    record_id: str | None


def conversations(
    messages: Iterable[ChatMessage], gap: timedelta = CONVERSATION_GAP
) -> Iterator[list[ChatMessage]]:
    """Messages in time order, cut into conversations at silences longer than `gap`."""
    current: list[ChatMessage] = []
    for message in messages:
        if current and message.moment - current[-1].moment > gap:
            yield current
            current = []
        current.append(message)
    if current:
        yield current


def dialog_document(conversation: list[ChatMessage], source: str) -> Document | Skipped:
    """A conversation as one document of "- " (owner) and "> " (others) turns.

    Consecutive messages from the same sender make one turn, because chat
    users split one thought over several messages. A conversation where the
    owner said nothing teaches nothing about the owner's voice: skipped.
    """
    first = conversation[0]
    if not any(message.mine for message in conversation):
        return Skipped("conversation without the owner's messages", first.record_id)
    turns: list[tuple[bool, str]] = []
    senders: list[str] = []
    for message in conversation:
        if senders and senders[-1] == message.sender:
            turns[-1] = (message.mine, f"{turns[-1][1]}\n{message.text}")
        else:
            turns.append((message.mine, message.text))
            senders.append(message.sender)
    return Document(
        text=format_dialog(turns),
        created_at=utc_iso(first.moment),
        source=source,
        record_id=first.record_id,
    )
