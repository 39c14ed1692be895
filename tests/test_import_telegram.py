"""Telegram Desktop's result.json: the owner's messages, or whole conversations with --dialog."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.telegram import IMPORTER

OWNER = 1111
T0 = 1672653600  # 2023-01-02 10:00:00 UTC


def message(ident: int, sender: str, from_id: str, text: Any, at: int, **extra: Any) -> dict:
    return {
        "id": ident,
        "type": "message",
        "date": "2023-01-02T11:00:00",  # local time of the exporter; date_unixtime wins
        "date_unixtime": str(at),
        "from": sender,
        "from_id": from_id,
        "text": text,
        "text_entities": [],
        **extra,
    }


def chat_with_bob() -> dict:
    return {
        "name": "Bob",
        "type": "personal_chat",
        "id": 2222,
        "messages": [
            message(1, "Bob", "user2222", "Are you coming tonight?", T0),
            message(2, "Alice", f"user{OWNER}", "Yes, I'll bring the cake.", T0 + 60),
            message(
                3,
                "Alice",
                f"user{OWNER}",
                ["The recipe is ", {"type": "bold", "text": "lemon drizzle"}, "."],
                T0 + 90,
            ),
            {
                "id": 4,
                "type": "service",
                "date": "2023-01-02T11:02:00",
                "date_unixtime": str(T0 + 120),
                "actor": "Alice",
                "actor_id": f"user{OWNER}",
                "action": "phone_call",
            },
            message(5, "Alice", f"user{OWNER}", "", T0 + 150, photo="photos/photo_1.jpg"),
            message(6, "Bob", "user2222", "Great, see you!", T0 + 200),
            message(
                7, "Alice", f"user{OWNER}", "Replying to that", T0 + 230, reply_to_message_id=6
            ),
            message(8, "Alice", f"user{OWNER}", "Look at this", T0 + 240, forwarded_from="News"),
            # Two hours later: a new conversation, with nothing from the owner.
            message(9, "Bob", "user2222", "Thanks for the cake.", T0 + 7200 + 240),
            message(10, "Bob", "user2222", "It was lovely.", T0 + 7200 + 300),
        ],
    }


def full_export(chats: list[dict]) -> dict:
    return {
        "about": "Here is the data you requested. Remember: Telegram is ad free...",
        "personal_information": {
            "user_id": OWNER,
            "first_name": "Alice",
            "last_name": "",
            "username": "@alice",
            "bio": "",
        },
        "chats": {"about": "This page lists all chats from this export.", "list": chats},
    }


def write_zip(tmp_path: Path, export: dict) -> Path:
    path = tmp_path / "telegram.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DataExport_2023-01-03/result.json", json.dumps(export, indent=1))
        archive.writestr("DataExport_2023-01-03/chats/chat_001/photos/photo_1.jpg", b"\xff\xd8")
    return path


def write_json(tmp_path: Path, export: Any, name: str = "result.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(export, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def import_all(path: Path, options: ImportOptions) -> tuple[list[Document], list[Skipped]]:
    records = list(IMPORTER.read(Archive(path), options))
    cleaned = [clean(r, options)[0] for r in records if isinstance(r, Document)]
    return [d for d in cleaned if d], [r for r in records if isinstance(r, Skipped)]


def test_owner_messages_from_a_full_export_zip(tmp_path: Path) -> None:
    path = write_zip(tmp_path, full_export([chat_with_bob()]))
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions())
    # The forwarded message is a repost, dropped by the shared cleaning.
    assert [d.text for d in documents] == [
        "Yes, I'll bring the cake.",
        "The recipe is lemon drizzle.",
        "Replying to that",
    ]
    assert documents[0].created_at == "2023-01-02T10:01:00+00:00"  # from date_unixtime
    assert documents[0].record_id == "2222:2"
    assert documents[0].source == "telegram:DataExport_2023-01-03/result.json"
    assert documents[2].is_reply and not documents[0].is_reply
    assert Counter(s.reason for s in skipped) == {
        "someone else's message": 4,
        "telegram service record": 1,
        "no text (media only)": 1,
    }


def test_forwarded_message_is_a_repost(tmp_path: Path) -> None:
    path = write_json(tmp_path, full_export([chat_with_bob()]))
    records = list(IMPORTER.read(Archive(path), ImportOptions()))
    forwarded = [r for r in records if isinstance(r, Document) and r.is_repost]
    assert [d.text for d in forwarded] == ["Look at this"]


def test_dialog_gives_both_sides_split_at_silences(tmp_path: Path) -> None:
    path = write_json(tmp_path, full_export([chat_with_bob()]))
    documents, skipped = import_all(path, ImportOptions(dialog=True))
    assert [d.text for d in documents] == [
        "> Are you coming tonight?\n"
        "- Yes, I'll bring the cake. The recipe is lemon drizzle.\n"
        "> Great, see you!\n"
        "- Replying to that Look at this"
    ]
    assert documents[0].created_at == "2023-01-02T10:00:00+00:00"
    # The conversation two hours later has no word from the owner.
    assert "conversation without the owner's messages" in {s.reason for s in skipped}


def test_date_without_unixtime_is_taken_as_utc(tmp_path: Path) -> None:
    chat = chat_with_bob()
    del chat["messages"][1]["date_unixtime"]
    path = write_json(tmp_path, full_export([chat]))
    documents, _ = import_all(path, ImportOptions())
    assert documents[0].created_at == "2023-01-02T11:00:00+00:00"


def test_one_chat_export_needs_me(tmp_path: Path) -> None:
    path = write_json(tmp_path, chat_with_bob())
    assert IMPORTER.detect(Archive(path))
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    assert "--me" in str(error.value) and "Alice, Bob" in str(error.value)
    documents, _ = import_all(path, ImportOptions(me="alice"))
    assert [d.text for d in documents][:2] == [
        "Yes, I'll bring the cake.",
        "The recipe is lemon drizzle.",
    ]
    with pytest.raises(CorpusFormatError, match="'Carol' wrote none"):
        list(IMPORTER.read(Archive(path), ImportOptions(me="Carol")))


def test_truncated_json_names_the_file(tmp_path: Path) -> None:
    text = json.dumps(full_export([chat_with_bob()]), indent=1)
    path = tmp_path / "result.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    assert str(path) in str(error.value) and "truncated" in str(error.value)


def test_invalid_date_names_the_record(tmp_path: Path) -> None:
    chat = chat_with_bob()
    chat["messages"][1]["date_unixtime"] = "yesterday"
    path = write_json(tmp_path, full_export([chat]))
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    assert str(path) in str(error.value)
    assert "chat 2222 message 2" in str(error.value) and "invalid date" in str(error.value)


def test_detect_is_false_for_other_formats(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Just some notes about my day.\n", encoding="utf-8")
    outbox = write_json(
        tmp_path,
        {"@context": "https://www.w3.org/ns/activitystreams", "type": "OrderedCollection"},
        "outbox.json",
    )
    discord = tmp_path / "package.zip"
    with zipfile.ZipFile(discord, "w") as archive:
        archive.writestr("messages/c123/messages.json", "[]")
        archive.writestr("messages/c123/channel.json", '{"id": "123", "type": 1}')
    tweets = tmp_path / "tweets.js"
    tweets.write_text('window.YTD.tweets.part0 = [{"tweet": {"full_text": "hi"}}]')
    for path in (notes, outbox, discord, tweets):
        assert not IMPORTER.detect(Archive(path)), path
