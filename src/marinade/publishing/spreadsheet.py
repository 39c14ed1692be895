"""The queue as a CSV file for spreadsheet programs, and back.

Export writes UTF-8 with a byte-order mark (so Excel reads it as UTF-8), one row per
item, the columns marinade knows first and then every column a previous import
brought along (kept per item, so a round trip loses nothing). A cell starting with
`= + - @` (or a tab or carriage return) is prefixed with `'`, so a spreadsheet never
runs a posted text as a formula; import removes that prefix again. A text that itself
starts with `'` before one of those (`'=1`) gets one more `'`, so it reads back as it was.

Import updates the items whose `id` it finds (text, account, due time, while they are
still editable; the extra columns always) and queues rows without an id, unless an item
of the same account and text is there already (the same sheet imported twice queues
nothing twice). It runs in one transaction that holds the write lock from the start: a
wrong row, a busy store or a crash part-way changes nothing, and no poster can claim an
item between the check of its status and the update. `import_queue_rows` is that core,
rows in and counts out, for any source of rows (a CSV file here, an online sheet).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from marinade.errors import MarinadeError
from marinade.publishing.accounts import get_account, target_account
from marinade.publishing.queue import EDITABLE, Entry, add_to_queue, length_problem
from marinade.publishing.schedule import parse_time
from marinade.store import QueueStatus, Store
from marinade.store.db import busy_message, is_busy
from marinade.timestamps import utc_iso, utc_now

COLUMNS = ("id", "account", "status", "due_at", "text", "sample_id", "remote_id", "url", "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _needs_quote(value: str) -> bool:
    """A formula cell, or one that would read back as a quoted formula (`'=1` itself)."""
    return value.lstrip("'").startswith(FORMULA_STARTS)


def neutralise(value: str) -> str:
    return "'" + value if _needs_quote(value) else value


def restore(value: str) -> str:
    return value[1:] if value.startswith("'") and _needs_quote(value[1:]) else value


def export_queue(store: Store, path: Path) -> int:
    """Write every queue item to `path`; returns the number of rows."""
    items = store.queue_items()
    extras: dict[str, None] = {}
    for item in items:
        extras.update(dict.fromkeys(json.loads(item.extra or "{}")))
    header = list(COLUMNS) + [name for name in extras if name not in COLUMNS]
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for item in items:
            extra = json.loads(item.extra or "{}")
            row = [getattr(item, name) if name in COLUMNS else extra.get(name) for name in header]
            writer.writerow([neutralise("" if value is None else str(value)) for value in row])
    return len(items)


@dataclass
class SheetImport:
    """What a queue import did, item ids by outcome."""

    added: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: int = 0
    # rows without an id whose account and text an item already has (the same sheet
    # imported again): not added twice
    recognised: list[int] = field(default_factory=list)
    # posted, or claimed by a poster since the sheet was exported: text, account and due
    # time left as they are (their extra columns are still updated)
    not_editable: list[int] = field(default_factory=list)


def read_queue_sheet(path: Path) -> list[dict[str, str]]:
    """The rows of a queue CSV (UTF-8, a BOM allowed), each cell with the formula guard
    `export_queue` added taken off again."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            reader = csv.DictReader(file)
            if reader.fieldnames is None or "text" not in reader.fieldnames:
                raise MarinadeError(f"{path}: needs a header row with a 'text' column")
            rows = []
            for number, row in enumerate(reader, start=2):  # line 1 is the header
                if None in row:  # cells beyond the header: csv puts them under None
                    raise MarinadeError(
                        f"{path}, row {number}: {len(row[None])} more cells than the header "
                        "has columns (a comma in a text that is not in double quotes?); "
                        "nothing was imported"
                    )
                rows.append({key: restore(value or "") for key, value in row.items()})
    except FileNotFoundError:
        raise MarinadeError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MarinadeError(f"{path}: a folder, not a CSV file") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise MarinadeError(f"{path}: not a UTF-8 CSV file: {error}") from None
    return rows


def import_queue(store: Store, path: Path, now: datetime | None = None) -> SheetImport:
    """Import a queue CSV (see import_queue_rows)."""
    return import_queue_rows(store, read_queue_sheet(path), str(path), now)


def import_queue_rows(
    store: Store,
    rows: Sequence[Mapping[str, str]],
    source: str,
    now: datetime | None = None,
    first_row: int = 2,
) -> SheetImport:
    """Apply a sheet's rows to the queue, all or nothing, in one transaction.

    A row with an `id` updates that item (text, account, due time while it is editable;
    its extra columns always); a row without one is queued, unless an item of the same
    account and text is already there (any status: importing the same sheet twice, or
    after some of it was posted, queues nothing twice). Each row is a mapping of column
    name to cell, `text` required; `source` and `first_row` (the sheet's row number of
    rows[0]) name a bad row in the one-line error, and then nothing is imported. A store
    busy past the busy timeout is such an error too.
    """
    now = now or utc_now()
    try:
        with store.transaction():  # the write lock first: no poster claims meanwhile
            return _apply_rows(store, rows, source, now, first_row)
    except sqlite3.OperationalError as error:
        if not is_busy(error):
            raise
        raise MarinadeError(f"{source}: {busy_message(store.path)}; nothing was imported") from None


def _apply_rows(
    store: Store,
    rows: Sequence[Mapping[str, str]],
    source: str,
    now: datetime,
    first_row: int,
) -> SheetImport:
    report = SheetImport()
    updates: list[tuple[int, dict[str, Any], tuple[QueueStatus, ...]]] = []
    new_rows: list[tuple[dict[str, Any], str, datetime | None]] = []
    seen_ids: dict[int, int] = {}  # item id -> the row that named it
    for number, row in enumerate(rows, start=first_row):
        where = f"{source}, row {number}"
        try:
            if "text" not in row:
                raise MarinadeError("no 'text' column")
            extra = {key: value for key, value in row.items() if key not in COLUMNS}
            text = (row["text"] or "").strip()
            due_cell = (row.get("due_at") or "").strip()
            due = parse_time(due_cell, store) if due_cell else None
            if (row.get("id") or "").strip():
                item_id = _whole_number(row["id"], "id")
                if item_id in seen_ids:
                    raise MarinadeError(f"id {item_id} is also in row {seen_ids[item_id]}")
                seen_ids[item_id] = number
                item = store.queue_item(item_id)
                account = get_account(store, row.get("account") or item.account)
                fields: dict[str, Any] = {}
                if text != item.text:
                    fields["text"] = text
                if account.name != item.account:
                    fields["account"] = account.name
                if due is not None and utc_iso(due) != item.due_at:
                    fields.update(due_at=utc_iso(due), pinned=1)
                if extra != json.loads(item.extra or "{}"):
                    fields["extra"] = json.dumps(extra, ensure_ascii=False)
                if not fields:
                    report.unchanged += 1
                    continue
                if item.status not in EDITABLE:
                    # a posted item keeps its text, account and time; its own columns
                    # (notes, likes ...) are the user's and are kept
                    if set(fields) - {"extra"}:
                        report.not_editable.append(item_id)
                    if "extra" in fields:
                        updates.append((item_id, {"extra": fields["extra"]}, ()))
                    continue
                problem = length_problem(text, account, item.sample_id is not None)
                if problem:
                    raise MarinadeError(problem)
                updates.append((item_id, fields, EDITABLE))
            else:
                account = target_account(store, row.get("account") or None)
                problem = length_problem(text, account, False)
                if problem:
                    raise MarinadeError(problem)
                new_rows.append((extra | {"text": text}, account.name, due))
        except MarinadeError as error:
            raise MarinadeError(f"{where}: {error}; nothing was imported") from None

    for item_id, fields, only_status in updates:
        if store.update_queue_item(item_id, fields | {"updated_at": utc_iso(now)}, only_status):
            report.updated.append(item_id)
        else:  # cannot happen under the write lock; reported rather than called updated
            report.not_editable.append(item_id)
    already = _items_by_account_and_text(store, leave_out=set(seen_ids))
    for values, account_name, due in new_rows:
        text = values.pop("text")
        matches = already.get((account_name, text))
        if matches:
            report.recognised.append(matches.pop(0))
            continue
        [item_id] = add_to_queue(store, [Entry(text)], [account_name], due, now)
        store.update_queue_item(item_id, {"extra": json.dumps(values, ensure_ascii=False)})
        report.added.append(item_id)
    return report


def _items_by_account_and_text(
    store: Store, leave_out: set[int]
) -> dict[tuple[str, str], list[int]]:
    """Queue item ids by (account, text), oldest first: what a row without an id is
    recognised as. One item per row, so a text a sheet holds twice is queued twice; the
    items the sheet names by id (`leave_out`) are its other rows, not these."""
    items: dict[tuple[str, str], list[int]] = {}
    for item in sorted(store.queue_items(), key=lambda item: item.id):
        if item.id not in leave_out:
            items.setdefault((item.account, item.text), []).append(item.id)
    return items


def _whole_number(text: str, column: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise MarinadeError(f"{column} {text!r} is not a whole number") from None
