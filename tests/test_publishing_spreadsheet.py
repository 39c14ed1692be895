"""The queue as CSV: BOM, quoting of commas, quotes and newlines, formula cells, and
columns marinade does not know, all surviving a round trip through a file."""

from __future__ import annotations

import csv
from datetime import datetime, timezone

import pytest

from marinade.errors import MarinadeError
from marinade.publishing.accounts import add_account
from marinade.publishing.queue import Entry, add_to_queue
from marinade.publishing.spreadsheet import export_queue, import_queue

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
TRICKY = [
    "plain",
    "commas, and \"quotes\", and 'apostrophes'",
    'two\nlines, the second "quoted"',
    '=HYPERLINK("http://evil")',
    "+1 for tea",
    "-5 degrees tonight",
    "@someone hello",
    "'already quoted",
    "émoji 🍵 and ünïcode",
    "'=a text that starts with a quote and an equals sign",
]


@pytest.fixture
def account(store, tmp_path):
    return add_account(store, "box", "outbox", {"path": str(tmp_path / "out.jsonl")})


def read_rows(path):
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def test_export_is_utf8_with_bom_and_neutralises_formulas(store, account, tmp_path):
    add_to_queue(store, [Entry(text) for text in TRICKY], now=NOW)
    path = tmp_path / "queue.csv"
    assert export_queue(store, path) == len(TRICKY)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfid,account,status,due_at,text")
    texts = [row["text"] for row in read_rows(path)]
    assert texts[0] == "plain"
    assert texts[2] == 'two\nlines, the second "quoted"'
    assert texts[3:7] == ["'" + text for text in TRICKY[3:7]]
    assert texts[7] == "'already quoted"  # not a formula: left as it is
    assert texts[9] == "''=a text that starts with a quote and an equals sign"


def test_a_round_trip_changes_nothing_and_keeps_unknown_columns(store, account, tmp_path):
    ids = add_to_queue(store, [Entry(text) for text in TRICKY], now=NOW)
    path = tmp_path / "queue.csv"
    export_queue(store, path)
    # the spreadsheet user adds a column, edits a text, adds a row with a formula-like text
    rows = read_rows(path)
    for row in rows:
        row["notes"] = f"note, for {row['id']}\nsecond line"
    rows[0]["text"] = "plain, but edited"
    rows.append({**rows[0], "id": "", "text": "-new row from the sheet", "due_at": ""})
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = import_queue(store, path, now=NOW)
    assert len(report.added) == 1 and len(report.updated) == len(TRICKY)
    items = {item.id: item for item in store.queue_items()}
    assert items[ids[0]].text == "plain, but edited"
    assert [items[i].text for i in ids[1:]] == TRICKY[1:]
    assert items[report.added[0]].text == "-new row from the sheet"
    # export again: the same cells, the extra column included
    again = tmp_path / "again.csv"
    export_queue(store, again)
    second = read_rows(again)
    assert [row["notes"] for row in second[: len(TRICKY)]] == [row["notes"] for row in rows[:-1]]
    assert second[-1]["text"] == "'-new row from the sheet"
    assert import_queue(store, again, now=NOW).unchanged == len(TRICKY) + 1


def test_one_bad_row_imports_nothing(store, account, tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("text,due_at,account\nfine,,\nalso fine,not a time,\n", encoding="utf-8")
    with pytest.raises(MarinadeError, match=r"new.csv, row 3: bad time 'not a time'"):
        import_queue(store, path, now=NOW)
    assert store.queue_items() == []
    path.write_text("text,account\nfine,nobody\n", encoding="utf-8")
    with pytest.raises(MarinadeError, match="row 2: no account named nobody"):
        import_queue(store, path, now=NOW)
    path.write_text("words\nno text column\n", encoding="utf-8")
    with pytest.raises(MarinadeError, match="'text' column"):
        import_queue(store, path, now=NOW)
    add_to_queue(store, [Entry("already queued")], ["box"], None, NOW)
    path.write_text('text,account\n"fine, quoted",box\ncut, at the comma,box\n', encoding="utf-8")
    with pytest.raises(MarinadeError, match=r"new.csv, row 3: 1 more cells than the header"):
        import_queue(store, path, now=NOW)  # the text would have been cut at its comma
    assert [item.text for item in store.queue_items()] == ["already queued"]


def test_posted_items_are_left_alone_but_keep_their_notes(store, account, tmp_path):
    [item, other] = add_to_queue(store, [Entry("posted already"), Entry("also")], now=NOW)
    store.update_queue_item(item, {"status": "posted"})
    store.update_queue_item(other, {"status": "posted"})
    path = tmp_path / "q.csv"
    export_queue(store, path)
    rows = read_rows(path)
    rows[0]["text"] = "changed"
    for row in rows:
        row["likes"] = f"{row['id']}0 likes"
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = import_queue(store, path, now=NOW)
    assert report.not_editable == [item]
    assert store.queue_item(item).text == "posted already"
    export_queue(store, path)
    assert [row["likes"] for row in read_rows(path)] == [f"{item}0 likes", f"{other}0 likes"]
