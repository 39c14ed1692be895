"""WhatsApp "Export chat" text files: Android and iOS line styles, dates, owner, dialogs."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.whatsapp import IMPORTER

# Android, US locale: month first, 12-hour clock (newer exports put U+202F before PM).
ANDROID = (
    "12/31/23, 11:41\u202fPM - Messages and calls are end-to-end encrypted. No one outside of "
    "this chat, not even WhatsApp, can read or listen to them. Tap to learn more.\n"
    "12/31/23, 11:41\u202fPM - Bob: Happy new year soon!\n"
    "12/31/23, 11:42\u202fPM - Alice: Thanks! Here's my plan:\n"
    "first, sleep\n"
    "then, pancakes\n"
    "12/31/23, 11:43\u202fPM - Alice: <Media omitted>\n"
    "12/31/23, 11:44\u202fPM - Bob: This message was deleted\n"
    "1/1/24, 12:05\u202fAM - Alice: It's midnight <This message was edited>\n"
    "1/1/24, 12:06\u202fAM - Bob: Happy new year!\n"
    "1/1/24, 9:30\u202fAM - Bob: Still asleep?\n"
    "1/1/24, 9:31\u202fAM - Bob: Pancakes are ready\n"
)

# iOS, day first, 24-hour clock; system and media lines carry U+200E.
IOS = (
    "[31/12/2023, 21:41:05] Bob: \u200eMessages and calls are end-to-end encrypted. No one "
    "outside of this chat, not even WhatsApp, can read or listen to them.\n"
    "[31/12/2023, 21:41:05] Bob: Happy new year soon!\n"
    "[31/12/2023, 21:42:10] Alice: Thanks!\n"
    "\u200e[31/12/2023, 21:43:00] Alice: \u200eimage omitted\n"
    "[01/01/2024, 00:05:00] Alice: Midnight!\n"
)


def write_zip(tmp_path: Path, member: str, text: str) -> Path:
    path = tmp_path / "WhatsApp Chat - Bob.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, text.encode("utf-8"))
        archive.writestr("00000012-PHOTO-2023-12-31-21-43-00.jpg", b"\xff\xd8")
    return path


def write_text(tmp_path: Path, text: str | bytes, name: str = "WhatsApp Chat with Bob.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def import_all(path: Path, options: ImportOptions) -> tuple[list[Document], list[Skipped]]:
    records = list(IMPORTER.read(Archive(path), options))
    cleaned = [clean(r, options)[0] for r in records if isinstance(r, Document)]
    return [d for d in cleaned if d], [r for r in records if isinstance(r, Skipped)]


def test_android_chat_owner_messages(tmp_path: Path) -> None:
    path = write_zip(tmp_path, "WhatsApp Chat with Bob.txt", ANDROID)
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions(me="Alice"))
    assert [d.text for d in documents] == [
        "Thanks! Here's my plan:\nfirst, sleep\nthen, pancakes",
        "It's midnight",
    ]
    # Month first (31 is a day), PM/AM resolved, the local time stored as UTC.
    assert documents[0].created_at == "2023-12-31T23:42:00+00:00"
    assert documents[1].created_at == "2024-01-01T00:05:00+00:00"
    assert documents[0].source == "whatsapp:WhatsApp Chat with Bob.txt"
    assert Counter(s.reason for s in skipped) == {
        "system message": 1,
        "media omitted": 1,
        "deleted message": 1,
        "someone else's message": 4,
    }


def test_ios_chat_in_a_zip(tmp_path: Path) -> None:
    path = write_zip(tmp_path, "_chat.txt", IOS)
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions(me="alice"))
    assert [(d.text, d.created_at) for d in documents] == [
        ("Thanks!", "2023-12-31T21:42:10+00:00"),
        ("Midnight!", "2024-01-01T00:05:00+00:00"),
    ]
    assert {"system message", "media omitted"} <= {s.reason for s in skipped}


def test_dialog_keeps_both_sides_and_splits_at_silences(tmp_path: Path) -> None:
    path = write_text(tmp_path, ANDROID)
    documents, _ = import_all(path, ImportOptions(me="Alice", dialog=True))
    assert [d.text for d in documents] == [
        "> Happy new year soon!\n"
        # Consecutive messages of one sender make one turn (Bob's deleted one is skipped).
        "- Thanks! Here's my plan: first, sleep then, pancakes It's midnight\n"
        "> Happy new year!",
    ]
    # The morning messages (more than an hour later) are Bob's alone: no document.
    assert documents[0].created_at == "2023-12-31T23:41:00+00:00"


def test_ambiguous_dates_follow_the_clock_style(tmp_path: Path) -> None:
    day_first = write_text(tmp_path, "[05/01/2024, 10:00:00] Alice: hello\n", "a_chat.txt")
    month_first = write_text(tmp_path, "05/01/24, 10:00 AM - Alice: hello\n", "b_chat.txt")
    (first,), _ = import_all(day_first, ImportOptions(me="Alice"))
    (second,), _ = import_all(month_first, ImportOptions(me="Alice"))
    assert first.created_at == "2024-01-05T10:00:00+00:00"
    assert second.created_at == "2024-05-01T10:00:00+00:00"


def test_a_day_above_12_anywhere_decides_day_first(tmp_path: Path) -> None:
    text = "02/01/2024, 10:00 - Alice: early\n25/01/2024, 10:00 - Alice: late\n"
    documents, _ = import_all(write_text(tmp_path, text), ImportOptions(me="Alice"))
    assert [d.created_at for d in documents] == [
        "2024-01-02T10:00:00+00:00",
        "2024-01-25T10:00:00+00:00",
    ]


def test_owner_must_be_named(tmp_path: Path) -> None:
    path = write_text(tmp_path, ANDROID)
    for options in (ImportOptions(), ImportOptions(dialog=True)):
        with pytest.raises(CorpusFormatError) as error:
            list(IMPORTER.read(Archive(path), options))
        assert "--me NAME" in str(error.value) and "Alice, Bob" in str(error.value)
    with pytest.raises(CorpusFormatError, match="'Carol' is not in this chat"):
        list(IMPORTER.read(Archive(path), ImportOptions(me="Carol")))


def test_invalid_date_names_the_line(tmp_path: Path) -> None:
    text = "[31/12/2023, 21:41:05] Bob: hi\n[13/13/2024, 10:00:00] Alice: when?\n"
    path = write_text(tmp_path, text)
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions(me="Alice")))
    assert str(path) in str(error.value) and "line 2" in str(error.value)
    assert "invalid date" in str(error.value)


def test_corrupt_bytes_name_the_line(tmp_path: Path) -> None:
    data = IOS.encode("utf-8") + b"[01/01/2024, 00:06:00] Alice: \xff\xfe broken\n"
    path = write_text(tmp_path, data)
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions(me="Alice")))
    assert str(path) in str(error.value) and "line 6" in str(error.value)


def test_a_file_that_is_not_a_chat_fails_on_its_first_line(tmp_path: Path) -> None:
    path = write_text(tmp_path, "Dear diary,\n12/31/23, 9:41 PM - Alice: hi\n", "notes.txt")
    assert not IMPORTER.detect(Archive(path))
    with pytest.raises(CorpusFormatError, match="line 1: not a WhatsApp chat line"):
        list(IMPORTER.read(Archive(path), ImportOptions(me="Alice")))


def test_detect_is_false_for_other_formats(tmp_path: Path) -> None:
    notes = write_text(tmp_path, "Some notes.\nMore notes.\n", "chat notes.txt")
    telegram = write_text(tmp_path, '{"personal_information": {"user_id": 1}}', "result.json")
    mbox = write_text(
        tmp_path, "From a@b Mon Jan  2 10:00:00 2023\nFrom: a@b\n\nhello\n", "mail.mbox"
    )
    discord = tmp_path / "package.zip"
    with zipfile.ZipFile(discord, "w") as archive:
        archive.writestr("messages/c123/messages.csv", "ID,Timestamp,Contents,Attachments\n")
    for path in (notes, telegram, mbox, discord):
        assert not IMPORTER.detect(Archive(path)), path
