"""`queue sync`: the posting queue and a Google Sheet, both ways, in one step.

The sheet has the columns `queue export` writes (id, account, status, due_at, text,
sample_id, remote_id, url, error) and posted_at; any other column is the user's, kept
with its item (`extra`, as `queue import` keeps it) and never written. Rows without an id
become queue items (their id is written back); rows with one update their item (text,
account, due time while it is editable; the extra columns always). Then the queue's
state is written back: status, remote id, URL, error, posted time, and what changed in
marinade; items not in the sheet yet become rows at its end.

Each sync remembers, per item, what its row held (`sheet_links`: the base). A field that
differs from the base changed on that side since the last sync: changed in the sheet
only, it is applied to the queue; in marinade only, it is written to the sheet; on both
sides to different values, the row is a conflict, reported and left as it is on both
sides until they agree (or `--prefer sheet|queue` says which wins). A row deleted from
the sheet drops its item when the item is still queued or failed (a posted or unknown
one is kept, and not written again); an item dropped in marinade gets `dropped` in its
row's status cell. A row whose item has no base yet (a sheet made from `queue export`)
is taken as `queue import` takes a CSV row: the sheet wins.

All or nothing: every row is checked first (a bad one is one error naming the sheet and
the row, and nothing changes anywhere); the queue's changes are made in one transaction
that commits only after the sheet accepted the one write of all its cells. Formula
cells in the columns marinade reads are refused (marinade posts what you typed, never
what a formula makes); everything is written as RAW values, so a text starting with `=`
stays a text. A process killed after the sheet took the write but before the commit
leaves ids in the sheet that the queue does not have: a mark (the highest id before
the sync) lets the next sync take such rows as new rows again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marinade.errors import MarinadeError
from marinade.publishing.accounts import get_account, target_account
from marinade.publishing.queue import EDITABLE, Entry, length_problem, new_item_rows
from marinade.publishing.schedule import parse_time
from marinade.publishing.sheets import SheetClient, SheetSource, Worksheet
from marinade.publishing.spreadsheet import COLUMNS, restore
from marinade.store import QueueItem, QueueStatus, SheetLink, Store
from marinade.timestamps import utc_iso, utc_now

SHEET_COLUMNS = (*COLUMNS, "posted_at")
READ_COLUMNS = ("id", "account", "due_at", "text")  # marinade reads these (and the extras)
FIELDS = ("text", "account", "due_at", "extra")  # compared with the base
DROPPABLE = (QueueStatus.QUEUED, QueueStatus.FAILED)  # a deleted row drops these
DROPPED = "dropped"  # the status cell of a row whose item was dropped in marinade
PREFER = ("sheet", "queue")
SERIAL_EPOCH = datetime(1899, 12, 30)  # Sheets' day 0 for date cells


@dataclass
class SyncReport:
    worksheet: str
    added: list[int] = field(default_factory=list)  # items made from new rows
    updated: list[int] = field(default_factory=list)  # items changed from their rows
    dropped: list[int] = field(default_factory=list)  # items whose row was deleted
    appended: list[int] = field(default_factory=list)  # items written as new rows
    rows_written: int = 0  # existing rows that got new cells
    cells_written: int = 0
    not_editable: list[int] = field(default_factory=list)  # posted: the sheet put back
    kept: list[int] = field(default_factory=list)  # row deleted, item posted or unknown
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Row:
    """One sheet row as marinade reads it."""

    number: int  # the sheet's row number, from 1 (the header)
    item_id: int | None
    text: str
    account: str | None  # None: blank
    due_at: str | None  # UTC ISO; None: blank
    extra: dict[str, str]

    def values(self, item: QueueItem | None = None) -> dict[str, Any]:
        """The fields to compare; a blank account or due time is the item's own."""
        return {
            "text": self.text,
            "account": self.account or (item.account if item else None),
            "due_at": self.due_at or (item.due_at if item else None),
            "extra": filled(self.extra),
        }


def filled(extra: dict[str, Any]) -> dict[str, Any]:
    """Extra columns with a value: a blank cell and a missing column are the same."""
    return {name: value for name, value in extra.items() if value not in ("", None)}


def item_values(item: QueueItem) -> dict[str, Any]:
    return {
        "text": item.text,
        "account": item.account,
        "due_at": item.due_at,
        "extra": filled(json.loads(item.extra or "{}")),
    }


def cell_text(value: Any) -> str:
    """A cell's value as text: numbers without a spurious `.0`, booleans as Sheets shows."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class Layout:
    """Where each column is (from 0), and the header cells to add."""

    known: dict[str, int]
    extras: dict[int, str]
    added: dict[int, str]  # column -> header of a marinade column the sheet lacked
    width: int


def layout(sheet: Worksheet, where: str) -> Layout:
    header = [cell_text(cell).strip() for cell in (sheet.rows[0] if sheet.rows else [])]
    known: dict[str, int] = {}
    extras: dict[int, str] = {}
    for column, name in enumerate(header):
        if name.lower() in SHEET_COLUMNS and name.lower() not in known:
            known[name.lower()] = column
        elif name:
            extras[column] = name
    has_content = any(cell_text(cell).strip() for row in sheet.rows for cell in row)
    if has_content and "text" not in known:
        raise MarinadeError(
            f"{where}, row 1: needs a header row with a 'text' column (and id, account, "
            "due_at ... as `queue export` writes them); nothing was synced"
        )
    width = max((column + 1 for column, name in enumerate(header) if name), default=0)
    added: dict[int, str] = {}
    for name in SHEET_COLUMNS:
        if name not in known:
            known[name] = width
            added[width] = name
            width += 1
    return Layout(known, extras, added, width)


def _due(raw: Any, sheet: Worksheet, store: Store) -> str | None:
    """A due-time cell: a date the sheet holds as a serial number (days since 1899-12-30
    in the spreadsheet's timezone), or ISO 8601 text; None when blank."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        try:
            zone = ZoneInfo(sheet.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        local = SERIAL_EPOCH + timedelta(seconds=round(float(raw) * 86400))
        return utc_iso(local.replace(tzinfo=zone))
    text = restore(cell_text(raw)).strip()
    return utc_iso(parse_time(text, store)) if text else None


def read_rows(sheet: Worksheet, columns: Layout, store: Store, where: str) -> list[Row]:
    rows: list[Row] = []
    seen: dict[int, int] = {}
    for index, raw_row in enumerate(sheet.rows[1:], start=1):
        number = index + 1
        if not any(cell_text(cell).strip() for cell in raw_row):
            continue
        here = f"{where}, row {number}"

        def cell(name: str, row: list[Any] = raw_row) -> Any:
            column = columns.known[name]
            return row[column] if column < len(row) else ""

        for name in READ_COLUMNS:
            if columns.known[name] < len(raw_row) and sheet.is_formula(index, columns.known[name]):
                raise MarinadeError(
                    f"{here}: the {name} cell is a formula ({cell(name)}); marinade takes what "
                    "you type, not what a formula makes: type the value (start it with ' to "
                    "keep a leading =); nothing was synced"
                )
        try:
            id_text = cell_text(cell("id")).strip()
            item_id = int(id_text) if id_text else None
        except ValueError:
            raise MarinadeError(
                f"{here}: id {id_text!r} is not a whole number; nothing was synced"
            ) from None
        if item_id is not None:
            if item_id in seen:
                raise MarinadeError(
                    f"{here}: id {item_id} is also in row {seen[item_id]}; clear the id of a "
                    "copied row to queue it as a new item; nothing was synced"
                )
            seen[item_id] = number
        try:
            due = _due(cell("due_at"), sheet, store)
        except MarinadeError as error:
            raise MarinadeError(f"{here}: {error}; nothing was synced") from None
        extra = {
            name: restore(cell_text(raw_row[column] if column < len(raw_row) else ""))
            for column, name in columns.extras.items()
        }
        account = cell_text(cell("account")).strip() or None
        text = restore(cell_text(cell("text"))).strip()
        rows.append(Row(number, item_id, text, account, due, extra))
    return rows


@dataclass
class Plan:
    """What one sync changes: in the queue, in `sheet_links`, and in the sheet."""

    updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    drops: list[int] = field(default_factory=list)
    new_rows: list[Row] = field(default_factory=list)  # become items; ids written back
    links: dict[int, SheetLink] = field(default_factory=dict)
    forget: list[int] = field(default_factory=list)
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)  # (row, col) from 1
    appended: list[QueueItem] = field(default_factory=list)


def _sheet_value(name: str, item: QueueItem) -> Any:
    value = getattr(item, name)
    if name in ("id", "sample_id"):
        return value if value is not None else ""
    return "" if value is None else str(value)


class Planner:
    """Decides, row by row, what a sync does; raises (changing nothing) on a bad row."""

    def __init__(
        self,
        store: Store,
        sheet: Worksheet,
        columns: Layout,
        where: str,
        prefer: str | None,
        inflight: int | None,
    ):
        self.store, self.sheet, self.columns, self.where = store, sheet, columns, where
        self.prefer, self.inflight = prefer, inflight
        self.items = {item.id: item for item in store.queue_items()}
        self.plan = Plan()
        self.report = SyncReport(sheet.title)

    def cell(self, row: int, name: str, value: Any) -> None:
        """Write `value` to the row's `name` cell unless it holds that already."""
        column = self.columns.known[name]
        raw = self.sheet.rows[row - 1] if row - 1 < len(self.sheet.rows) else []
        current = raw[column] if column < len(raw) else ""
        if name in ("text", "account"):
            same = restore(cell_text(current)).strip() == str(value)
        elif name == "due_at" and value:
            try:
                same = _due(current, self.sheet, self.store) == value
            except MarinadeError:
                same = False
        else:
            same = cell_text(current) == cell_text(value)
        if not same:
            self.plan.cells[(row, column + 1)] = value

    def write_item(self, row: int, item: QueueItem, fields: tuple[str, ...]) -> None:
        for name in fields:
            self.cell(row, name, _sheet_value(name, item))

    def state_cells(self, row: int, item: QueueItem) -> None:
        self.write_item(row, item, ("id", "status", "sample_id", "remote_id", "url", "error"))
        self.cell(row, "posted_at", item.posted_at or "")

    def check(self, row: Row, values: dict[str, Any], item: QueueItem | None) -> None:
        here = f"{self.where}, row {row.number}"
        try:
            account = get_account(self.store, values["account"])
            problem = length_problem(values["text"], account, bool(item and item.sample_id))
        except MarinadeError as error:
            raise MarinadeError(f"{here}: {error}; nothing was synced") from None
        if problem:
            raise MarinadeError(f"{here}: {problem}; nothing was synced")

    def new_row(self, row: Row) -> None:
        if not row.text:
            self.report.notes.append(f"row {row.number}: no text yet; left for later")
            return
        here = f"{self.where}, row {row.number}"
        try:
            account = target_account(self.store, row.account)
        except MarinadeError as error:
            raise MarinadeError(f"{here}: {error}; nothing was synced") from None
        row.account = account.name
        self.check(row, row.values(), None)
        self.plan.new_rows.append(row)

    def linked_row(self, row: Row, item: QueueItem, base: dict[str, Any] | None) -> None:
        sheet, local = row.values(item), item_values(item)
        to_queue: dict[str, Any] = {}
        to_sheet: list[str] = []
        clashes: list[str] = []
        for name in FIELDS:
            if sheet[name] == local[name]:
                continue
            if base is not None and sheet[name] == base[name]:
                to_sheet.append(name)  # changed in marinade only
            elif base is None or local[name] == base[name]:
                to_queue[name] = sheet[name]  # changed in the sheet only (or no base yet)
            elif self.prefer == "sheet":
                to_queue[name] = sheet[name]
            elif self.prefer == "queue":
                to_sheet.append(name)
            else:
                clashes.append(name)
        if clashes:
            names = ", ".join("extra columns" if n == "extra" else n for n in clashes)
            self.report.conflicts.append(
                f"row {row.number} (item {item.id}): {names} changed in the sheet and in "
                "marinade since the last sync; left as it is on both sides (make them agree, "
                "or sync with --prefer sheet or --prefer queue)"
            )
            return
        if item.status not in EDITABLE and set(to_queue) - {"extra"}:
            # a posted item keeps its text, account and time: the sheet shows them again
            self.report.not_editable.append(item.id)
            to_sheet += [name for name in to_queue if name != "extra"]
            to_queue = {name: v for name, v in to_queue.items() if name == "extra"}
        if set(to_queue) & {"text", "account"}:
            self.check(row, local | to_queue, item)
        fields: dict[str, Any] = {}
        for name, value in to_queue.items():
            if name == "extra":
                fields["extra"] = json.dumps(value, ensure_ascii=False)  # already filled()
            elif name == "due_at":
                fields.update(due_at=value, pinned=1)
            else:
                fields[name] = value
        if fields:
            self.plan.updates.append((item.id, fields))
            self.report.updated.append(item.id)
        after = local | to_queue
        self.write_item(row.number, item, tuple(n for n in to_sheet if n != "extra"))
        self.state_cells(row.number, item)
        self.plan.links[item.id] = SheetLink(item.id, "linked", after)

    def row_with_id(self, row: Row, link: SheetLink | None) -> None:
        assert row.item_id is not None
        item = self.items.get(row.item_id)
        if link is not None and link.state == DROPPED:
            return  # the row of an item dropped in marinade: clear its id to queue it again
        if link is not None and link.state == "linked":
            if item is not None:
                return self.linked_row(row, item, link.base)
            base, sheet = link.base or {}, row.values()
            changed = any(sheet[n] is not None and sheet[n] != base.get(n) for n in FIELDS)
            if changed and self.prefer != "queue":
                if self.prefer == "sheet":
                    self.plan.forget.append(row.item_id)
                    return self.new_row(row)
                self.report.conflicts.append(
                    f"row {row.number} (item {row.item_id}): dropped in marinade, and the row "
                    "changed in the sheet since the last sync; left as it is (--prefer sheet "
                    "queues it again, --prefer queue marks it dropped)"
                )
                return
            self.cell(row.number, "status", DROPPED)
            self.plan.links[row.item_id] = SheetLink(row.item_id, DROPPED, link.base)
            return
        # no base: a sheet made from `queue export`, a row put back, or a crashed sync
        stale = self.inflight is not None and row.item_id > self.inflight
        if item is not None and (
            not stale or (item.text == row.text and (row.account or item.account) == item.account)
        ):
            return self.linked_row(row, item, None)
        if stale:
            self.report.notes.append(
                f"row {row.number}: id {row.item_id} is from a sync that did not finish; "
                "queued as a new item"
            )
            return self.new_row(row)
        raise MarinadeError(
            f"{self.where}, row {row.number}: no queue item with id {row.item_id} (clear the "
            "id to queue the row as a new item); nothing was synced"
        )

    def deleted_row(self, item_id: int, link: SheetLink) -> None:
        item = self.items.get(item_id)
        if item is None:
            self.plan.forget.append(item_id)
            return
        changed = link.base is not None and item_values(item) != link.base
        if changed and self.prefer is None:
            self.report.conflicts.append(
                f"item {item_id}: its row was deleted from the sheet, and it changed in "
                "marinade since the last sync; kept, not written back (--prefer sheet drops "
                "it, --prefer queue writes it again)"
            )
            return
        if changed and self.prefer == "queue":
            self.plan.appended.append(item)
        elif item.status in DROPPABLE:
            self.plan.drops.append(item_id)
            self.plan.forget.append(item_id)
        else:
            self.report.kept.append(item_id)
            self.plan.links[item_id] = SheetLink(item_id, "removed", None)

    def run(self, rows: list[Row], links: dict[int, SheetLink]) -> Plan:
        in_sheet = {row.item_id for row in rows if row.item_id is not None}
        for row in rows:
            if row.item_id is None:
                self.new_row(row)
            else:
                self.row_with_id(row, links.get(row.item_id))
        for item_id, link in links.items():
            if link.state == "linked" and item_id not in in_sheet:
                self.deleted_row(item_id, link)
        for item in self.items.values():
            if item.id not in links and item.id not in in_sheet:
                self.plan.appended.append(item)
        for column, name in self.columns.added.items():
            self.plan.cells[(1, column + 1)] = name
        return self.plan


def _inflight_key(spreadsheet_id: str) -> str:
    return f"sheet-sync:{spreadsheet_id}:inflight"


def remember_source(store: Store, source: SheetSource) -> None:
    store.set_publishing_value(
        f"sheet:{source.spreadsheet_id}", json.dumps(source.public(), ensure_ascii=False)
    )


def remembered_source(store: Store, spreadsheet_id: str) -> SheetSource:
    """The sheet as the last `queue sync` of it named it (the scheduler's syncs)."""
    saved = json.loads(store.publishing_value(f"sheet:{spreadsheet_id}") or "{}")
    return SheetSource(spreadsheet_id, **saved)


def sync_sheet(
    store: Store,
    source: SheetSource,
    prefer: str | None = None,
    now: Callable[[], datetime] = utc_now,
    client: SheetClient | None = None,
) -> SyncReport:
    """Apply the sheet's rows to the queue and write the queue's state back, all or nothing."""
    if prefer is not None and prefer not in PREFER:
        raise MarinadeError(f"--prefer takes sheet or queue, not {prefer!r}")
    client = client or SheetClient(source)
    # the highest id before a sync that may not finish; a mark left by one that did not
    # finish stays (its ids may be in the sheet) until a sync commits
    mark = _inflight_key(source.spreadsheet_id)
    inflight_text = store.publishing_value(mark)
    if inflight_text is None:
        store.set_publishing_value(mark, str(store.max_queue_id()))
    inflight = int(inflight_text) if inflight_text else None
    with store.transaction():  # read and planned under the write lock: a racing sync waits
        sheet = client.worksheet()
        where = f"Google Sheet {source.spreadsheet_id} ({sheet.title})"
        columns = layout(sheet, where)
        rows = read_rows(sheet, columns, store, where)
        sheet_key = f"{source.spreadsheet_id}#{sheet.sheet_id}"
        planner = Planner(store, sheet, columns, where, prefer, inflight)
        plan = planner.run(rows, store.sheet_links(sheet_key))
        report = _apply(store, planner, plan, mark, sheet_key, now())
        height = max([len(sheet.rows), *(row for row, _ in plan.cells)])  # the last one written
        client.grow(sheet, height, columns.width)
        client.write(sheet, plan.cells)  # raises: the transaction rolls back
    report.cells_written = len(plan.cells)
    return report


def _apply(
    store: Store, planner: Planner, plan: Plan, mark: str, sheet_key: str, moment: datetime
) -> SyncReport:
    """The plan's queue changes, inside the sync's transaction; fills in the new rows'
    cells (their ids are known only now) and the appended rows."""
    report = planner.report
    stamp = utc_iso(moment)
    for item_id, fields in plan.updates:
        only = EDITABLE if set(fields) - {"extra"} else tuple(QueueStatus)
        store.set_queue_fields(item_id, fields | {"updated_at": stamp}, only)
    for item_id in plan.drops:
        if store.remove_queue_item(item_id, DROPPABLE):
            report.dropped.append(item_id)
    for item_id in plan.forget:
        store.forget_sheet_link(sheet_key, item_id)
    for row in plan.new_rows:
        account = get_account(store, row.account or "")
        due = datetime.fromisoformat(row.due_at) if row.due_at else None
        [values] = new_item_rows(store, [Entry(row.text)], [account], due, moment)
        values["extra"] = json.dumps(filled(row.extra), ensure_ascii=False)
        item = store.queue_item(store.insert_queue_row(values))
        report.added.append(item.id)
        planner.write_item(row.number, item, ("account", "due_at"))
        planner.state_cells(row.number, item)
        plan.links[item.id] = SheetLink(item.id, "linked", item_values(item))
    next_row = max(len(planner.sheet.rows), 1) + 1
    for item in sorted(plan.appended, key=lambda i: (i.due_at, i.id)):
        extra = json.loads(item.extra or "{}")
        for name, column in planner.columns.known.items():
            value = item.posted_at or "" if name == "posted_at" else _sheet_value(name, item)
            if value != "":
                plan.cells[(next_row, column + 1)] = value
        for column, name in planner.columns.extras.items():
            if extra.get(name, "") != "":
                plan.cells[(next_row, column + 1)] = extra[name]
        plan.links[item.id] = SheetLink(item.id, "linked", item_values(item))
        report.appended.append(item.id)
        next_row += 1
    for link in plan.links.values():
        store.save_sheet_link(sheet_key, link)
    store.set_publishing_value_in_transaction(mark, None)
    report.rows_written = len({row for row, _ in plan.cells if 1 < row <= len(planner.sheet.rows)})
    return report
