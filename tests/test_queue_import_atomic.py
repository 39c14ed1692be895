"""`queue import` is all or nothing, waits for or names a busy store in one line, and is
idempotent: the same sheet imported twice queues nothing twice."""

from __future__ import annotations

import csv
import sqlite3
from datetime import datetime, timezone

import pytest

from conftest import json_lines
from lock_holder import write_lock_held
from marinade.errors import MarinadeError
from marinade.publishing.accounts import add_account
from marinade.publishing.queue import Entry, add_to_queue
from marinade.publishing.spreadsheet import export_queue, import_queue, import_queue_rows
from marinade.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def account(store, tmp_path):
    return add_account(store, "box", "outbox", {"path": str(tmp_path / "out.jsonl")})


def write_sheet(path, rows, header=None):
    header = header or list(rows[0])
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def queue_state(store):
    return [(i.id, i.text, i.status.value, i.due_at, i.extra) for i in store.queue_items()]


def test_a_store_busy_past_the_timeout_is_one_line_and_imports_nothing(
    cli, store, account, tmp_path, monkeypatch
):
    [kept] = add_to_queue(store, [Entry("already there")], now=NOW)
    rows = [{"id": str(kept), "text": "edited"}, {"id": "", "text": "new one"}]
    sheet = write_sheet(tmp_path / "q.csv", rows)
    before = queue_state(store)
    monkeypatch.setenv("MARINADE_BUSY_TIMEOUT", "0.5")
    with write_lock_held(store.path):
        result = cli("queue", "import", str(sheet))
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "is busy" in line and "database is locked" in line and "nothing was imported" in line
    assert queue_state(store) == before
    result = cli("queue", "import", str(sheet))  # the lock gone, it goes through
    assert result.exit_code == 0 and "1 added, 1 updated" in result.stdout


def test_a_failure_part_way_leaves_no_partial_import(store, account, tmp_path, monkeypatch):
    ids = add_to_queue(store, [Entry(f"item {n}") for n in range(4)], now=NOW)
    rows = [{"id": str(i), "text": f"edited {i}"} for i in ids]
    rows += [{"id": "", "text": f"new {n}"} for n in range(3)]
    sheet = write_sheet(tmp_path / "q.csv", rows)
    before = queue_state(store)
    real_update = Store.update_queue_item
    calls = []

    def update_then_lose_the_lock(self, *args, **kwargs):  # the fault: a lock lost half-way
        calls.append(args)
        if len(calls) == 3:
            raise sqlite3.OperationalError("database is locked")
        return real_update(self, *args, **kwargs)

    monkeypatch.setattr(Store, "update_queue_item", update_then_lose_the_lock)
    with pytest.raises(MarinadeError, match="is busy.*nothing was imported"):
        import_queue(store, sheet, now=NOW)
    assert len(calls) == 3  # two updates were written before the fault ...
    monkeypatch.undo()
    assert queue_state(store) == before  # ... and rolled back with it
    # and a fault while adding (after every update) rolls the updates back too
    monkeypatch.setattr(
        "marinade.publishing.spreadsheet.add_to_queue",
        lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("crash while adding")),
    )
    with pytest.raises(RuntimeError):
        import_queue(store, sheet, now=NOW)
    assert queue_state(store) == before


def test_the_same_sheet_imported_twice_queues_nothing_twice(cli, store, account, tmp_path):
    rows = [{"text": "good morning"}, {"text": "good morning"}, {"text": "a third post"}]
    sheet = write_sheet(tmp_path / "plan.csv", rows)
    first = cli("queue", "import", str(sheet))
    assert first.exit_code == 0 and "3 added" in first.stdout
    second = cli("queue", "import", str(sheet))
    assert second.exit_code == 0 and "0 added" in second.stdout
    assert "3 rows without an id were already queued (items 1, 2, 3)" in second.stdout
    assert len(store.queue_items()) == 3
    # a sheet with one more copy of a repeated text adds only that one
    rows.append({"text": "good morning"})
    third = import_queue(store, write_sheet(tmp_path / "plan.csv", rows), now=NOW)
    assert len(third.added) == 1 and len(third.recognised) == 3
    # an item posted since is recognised as well: never queued (and posted) twice
    store.update_queue_item(3, {"status": "posted"})
    assert import_queue(store, sheet, now=NOW).added == []
    # and the rows-in core, for other sources of rows, does the same
    report = import_queue_rows(store, [{"text": "a third post"}], "a sheet online", now=NOW)
    assert report.added == [] and report.recognised == [3]
    assert [item["text"] for item in json_lines(cli("queue", "list", "--json").stdout)].count(
        "good morning"
    ) == 3


def test_an_item_claimed_by_a_poster_since_the_export_is_reported(cli, store, account, tmp_path):
    ids = add_to_queue(store, [Entry("first"), Entry("second")], now=NOW)
    sheet = tmp_path / "q.csv"
    export_queue(store, sheet)
    with sheet.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        row["text"] = row["text"] + ", edited"
    write_sheet(sheet, rows)
    claim = store.claim_next_due("2099-01-01T00:00:00+00:00", "host:1:1")  # a poster
    assert claim is not None and claim.item.id == ids[0]
    result = cli("queue", "import", str(sheet))
    assert result.exit_code == 0
    assert "1 updated" in result.stdout
    assert f"1 items are posted or being posted (items {ids[0]})" in result.stdout
    assert store.queue_item(ids[0]).text == "first"  # not silently "updated"
    assert store.queue_item(ids[1]).text == "second, edited"


def test_a_bad_row_names_the_source_and_row(store, account):
    rows = [{"id": "", "text": "fine"}, {"id": "7", "text": "x"}, {"id": "7", "text": "y"}]
    with pytest.raises(MarinadeError, match=r"^my sheet, row 3: no queue item with id 7"):
        import_queue_rows(store, rows, "my sheet", now=NOW)
    [item] = add_to_queue(store, [Entry("there")], now=NOW)
    rows = [{"id": str(item), "text": "a"}, {"id": str(item), "text": "b"}]
    with pytest.raises(MarinadeError, match=rf"row 3: id {item} is also in row 2"):
        import_queue_rows(store, rows, "my sheet", now=NOW)
    assert store.queue_item(item).text == "there" and len(store.queue_items()) == 1
