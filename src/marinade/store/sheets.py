"""The Google Sheet sync's own rows, and the queue writes it makes inside its one
transaction.

`queue sync` applies a whole sheet in one `transaction()` and commits only once the sheet
has taken the write-back, so these statements are raw SQL that never commits on its own
(the queue's other writes are `with conn:` blocks, which would commit early).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marinade.store.db import Database
from marinade.store.publishing import QueueStatus


@dataclass(frozen=True)
class SheetLink:
    """A queue item's row in a sheet as the last sync left it."""

    item_id: int
    state: str  # linked, removed, dropped
    base: dict[str, Any] | None  # text, account, due_at, extra (linked only)


class SheetStore(Database):
    def sheet_links(self, sheet: str) -> dict[int, SheetLink]:
        rows = self.db.query("select * from sheet_links where sheet = ?", [sheet])
        return {
            row["item_id"]: SheetLink(
                row["item_id"], row["state"], json.loads(row["base"]) if row["base"] else None
            )
            for row in rows
        }

    def save_sheet_link(self, sheet: str, link: SheetLink) -> None:
        """Inside a transaction."""
        self.db.conn.execute(
            "insert into sheet_links (sheet, item_id, state, base) values (?, ?, ?, ?)"
            " on conflict(sheet, item_id) do update set state = excluded.state,"
            " base = excluded.base",
            [
                sheet,
                link.item_id,
                link.state,
                json.dumps(link.base, ensure_ascii=False) if link.base is not None else None,
            ],
        )

    def forget_sheet_link(self, sheet: str, item_id: int) -> None:
        """Inside a transaction."""
        self.db.conn.execute(
            "delete from sheet_links where sheet = ? and item_id = ?", [sheet, item_id]
        )

    def insert_queue_row(self, row: dict[str, Any]) -> int:
        """Inside a transaction: one new queue item; its id."""
        columns = list(row)
        cursor = self.db.conn.execute(
            f"insert into queue ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
            [row[column] for column in columns],
        )
        return int(cursor.lastrowid or 0)

    def set_queue_fields(
        self, item_id: int, fields: dict[str, Any], only_status: Sequence[QueueStatus]
    ) -> bool:
        """Inside a transaction: set fields of an item while its status is one of these."""
        assignments = ", ".join(f"{column} = ?" for column in fields)
        marks = ", ".join("?" * len(only_status))
        cursor = self.db.conn.execute(
            f"update queue set {assignments} where id = ? and status in ({marks})",
            [*fields.values(), item_id, *only_status],
        )
        return cursor.rowcount > 0

    def remove_queue_item(self, item_id: int, only_status: Sequence[QueueStatus]) -> bool:
        """Inside a transaction: delete an item while its status is one of these."""
        marks = ", ".join("?" * len(only_status))
        cursor = self.db.conn.execute(
            f"delete from queue where id = ? and status in ({marks})", [item_id, *only_status]
        )
        return cursor.rowcount > 0

    def max_queue_id(self) -> int:
        rows = list(self.db.query("select coalesce(max(id), 0) as top from queue"))
        return int(rows[0]["top"])

    def set_publishing_value_in_transaction(self, key: str, value: str | None) -> None:
        """Inside a transaction: as set_publishing_value, without committing."""
        if value is None:
            self.db.conn.execute("delete from publishing_state where key = ?", [key])
        else:
            self.db.conn.execute(
                "insert into publishing_state (key, value) values (?, ?)"
                " on conflict(key) do update set value = excluded.value",
                [key, value],
            )
