"""Discord data packages: JSON and CSV layouts, any case of folder names, dialogs by day."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from marinade.corpus.archive import Archive
from marinade.corpus.cleaning import clean
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers.discord import IMPORTER

NEW_MESSAGES = [
    {
        "ID": "1203000000000000002",
        "Timestamp": "2024-03-14 21:15:00",
        "Contents": "<@123456789012345678> the build is green again <:blobwave:987654321098765432>",
        "Attachments": "",
    },
    {
        "ID": "1203000000000000001",
        "Timestamp": "2024-03-14 09:00:00",
        "Contents": "Morning all, coffee first.",
        "Attachments": "",
    },
    {
        "ID": "1203000000000000003",
        "Timestamp": "2024-03-15 08:00:00",
        "Contents": "",
        "Attachments": "https://cdn.discordapp.com/attachments/1/2/cat.png",
    },
    {"ID": "1203000000000000004", "Timestamp": "2024-03-15 08:01:00", "Contents": ""},
    {
        "ID": "1203000000000000005",
        "Timestamp": "2024-03-15 08:02:00",
        "Contents": "See <#555555555555555555> for the notes",
        "Attachments": "",
    },
]


def json_package(tmp_path: Path, messages: list[dict] | str = NEW_MESSAGES) -> Path:
    """A 2025-style package: capitalised folders, messages.json per channel."""
    path = tmp_path / "package.zip"
    body = messages if isinstance(messages, str) else json.dumps(messages, indent=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Account/user.json", json.dumps({"id": "42", "username": "alice"}))
        archive.writestr("Messages/index.json", json.dumps({"111": "general in Home Lab"}))
        archive.writestr(
            "Messages/c111/channel.json",
            json.dumps({"id": "111", "type": 0, "name": "general", "guild": {"id": "9"}}),
        )
        archive.writestr("Messages/c111/messages.json", body)
    return path


def csv_text(rows: list[list[str]], header: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header or ["ID", "Timestamp", "Contents", "Attachments"])
    writer.writerows(rows)
    return out.getvalue()


def csv_package(tmp_path: Path) -> Path:
    """An older package as a folder: lower-case messages/, plain and c-prefixed channel ids."""
    root = tmp_path / "package"
    for channel, rows in {
        "222": [
            [
                "700000000000000002",
                "2020-05-13 17:46:15.123000+00:00",
                "Two lines,\nwith a comma",
                "",
            ],
            ["700000000000000001", "2020-05-13 12:00:00+02:00", "Earlier, in summer time", ""],
        ],
        "c333": [["700000000000000003", "2020-06-01 10:00:00+00:00", "", "https://x/y.gif"]],
    }.items():
        folder = root / "messages" / channel
        folder.mkdir(parents=True)
        (folder / "channel.json").write_text(json.dumps({"id": channel.lstrip("c"), "type": 1}))
        (folder / "messages.csv").write_text(csv_text(rows), encoding="utf-8")
    return root


def import_all(path: Path, options: ImportOptions) -> tuple[list[Document], list[Skipped]]:
    records = list(IMPORTER.read(Archive(path), options))
    cleaned = [clean(r, options)[0] for r in records if isinstance(r, Document)]
    return [d for d in cleaned if d], [r for r in records if isinstance(r, Skipped)]


def test_json_package(tmp_path: Path) -> None:
    path = json_package(tmp_path)
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions())
    assert [d.text for d in documents] == [
        "the build is green again :blobwave:",
        "Morning all, coffee first.",
        "See for the notes",
    ]
    assert documents[0].created_at == "2024-03-14T21:15:00+00:00"
    assert documents[0].record_id == "1203000000000000002"
    assert documents[0].source == "discord:Messages/c111/messages.json"
    assert [(s.reason, s.record) for s in skipped] == [
        ("attachment only", "1203000000000000003"),
        ("no text", "1203000000000000004"),
    ]


def test_csv_package_in_a_folder(tmp_path: Path) -> None:
    path = csv_package(tmp_path)
    assert IMPORTER.detect(Archive(path))
    documents, skipped = import_all(path, ImportOptions())
    assert [(d.text, d.created_at) for d in documents] == [
        ("Two lines,\nwith a comma", "2020-05-13T17:46:15+00:00"),
        ("Earlier, in summer time", "2020-05-13T10:00:00+00:00"),
    ]
    assert [s.reason for s in skipped] == ["attachment only"]


def test_dialog_is_the_owners_lines_per_channel_and_day(tmp_path: Path) -> None:
    documents, _ = import_all(json_package(tmp_path), ImportOptions(dialog=True))
    assert [(d.text, d.created_at, d.record_id) for d in documents] == [
        (
            "- Morning all, coffee first.\n- the build is green again :blobwave:",
            "2024-03-14T09:00:00+00:00",
            "c111:2024-03-14",
        ),
        ("- See for the notes", "2024-03-15T08:02:00+00:00", "c111:2024-03-15"),
    ]


def test_truncated_json_names_the_file(tmp_path: Path) -> None:
    text = json.dumps(NEW_MESSAGES, indent=2)
    path = json_package(tmp_path, text[:200])
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(path), ImportOptions()))
    assert "package.zip:Messages/c111/messages.json" in str(error.value)
    assert "truncated" in str(error.value)


def test_invalid_timestamp_names_the_message(tmp_path: Path) -> None:
    broken = [dict(NEW_MESSAGES[1], Timestamp="14/03/2024 nine-ish")]
    with pytest.raises(CorpusFormatError) as error:
        list(IMPORTER.read(Archive(json_package(tmp_path, broken)), ImportOptions()))
    assert "messages.json, record 1203000000000000001" in str(error.value)
    assert "invalid date" in str(error.value)


def test_csv_without_contents_column(tmp_path: Path) -> None:
    folder = tmp_path / "pkg" / "messages" / "c1"
    folder.mkdir(parents=True)
    (folder / "messages.csv").write_text(csv_text([["1", "2020-01-01"]], ["ID", "Timestamp"]))
    with pytest.raises(CorpusFormatError, match="missing column Contents"):
        list(IMPORTER.read(Archive(tmp_path / "pkg"), ImportOptions()))


def test_detect_is_false_for_other_formats(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Just notes.\n")
    telegram = tmp_path / "result.json"
    telegram.write_text(json.dumps({"personal_information": {"user_id": 1}, "chats": {}}))
    twitter = tmp_path / "twitter.zip"
    with zipfile.ZipFile(twitter, "w") as archive:
        archive.writestr("data/tweets.js", "window.YTD.tweets.part0 = []")
        archive.writestr("data/manifest.js", "window.__THAR_CONFIG = {}")
    reddit = tmp_path / "reddit"
    reddit.mkdir()
    (reddit / "messages.csv").write_text("id,permalink,thread_id,date,from,to,subject,body\n")
    for path in (notes, telegram, twitter, reddit):
        assert not IMPORTER.detect(Archive(path)), path
