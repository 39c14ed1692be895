"""Publishing: accounts, the posting queue, small settings (slots, marks), fetch sources.

marinade.publishing holds the rules (lengths, slots, retries); this is their SQL. Every
state change of a queue item is one statement; claiming one is a BEGIN IMMEDIATE
transaction (`claim_next_due`), so two processes never claim the same item.

Queue rows leave the store as `QueueItem`s, their status a `QueueStatus`; a claim comes
back as a `Claim`, the item with what it was before. The status values are the strings
SQLite and every JSON output hold, and a member compares equal to its string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from marinade.errors import MarinadeError
from marinade.store.db import Database


class QueueStatus(str, Enum):
    """Where a queue item is: `queued -> posting -> posted | failed | unknown`."""

    QUEUED = "queued"  # waiting for its due time (and its retry_at, after a refusal)
    POSTING = "posting"  # claimed by one process, which is sending it
    POSTED = "posted"
    FAILED = "failed"  # refused by the platform, or given up after MAX_ATTEMPTS
    UNKNOWN = "unknown"  # may have been posted: the answer never came

    def __str__(self) -> str:  # the value, as StrEnum (Python 3.11) does
        return self.value


UNPOSTED = (QueueStatus.QUEUED, QueueStatus.POSTING, QueueStatus.UNKNOWN)  # hold a slot


@dataclass(frozen=True)
class QueueItem:
    """One row of the queue table (migration m006_publishing says what each column is);
    a column added by a later migration needs its field here too."""

    id: int
    text: str
    sample_id: int | None  # None: written by a person
    account: str
    due_at: str  # UTC ISO 8601
    pinned: bool  # the user chose due_at; else a slot that `queue schedule` may move
    status: QueueStatus
    attempts: int
    retry_at: str | None
    claimed_by: str | None  # host:pid:thread
    claimed_at: str | None
    sent_at: str | None  # first send
    idempotency_key: str
    remote_id: str | None
    url: str | None
    error: str | None
    posted_text: str | None
    posted_at: str | None
    extra: str | None  # JSON: spreadsheet columns marinade does not know
    created_at: str
    updated_at: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> QueueItem:
        return cls(**{**row, "status": QueueStatus(row["status"]), "pinned": bool(row["pinned"])})


@dataclass(frozen=True)
class Claim:
    """An item this process claimed (now `posting`), and its status and first send before
    the claim: what a send that did not happen puts back."""

    item: QueueItem
    claimed_from: QueueStatus
    sent_at_before: str | None


def _marks(values: Sequence[Any]) -> str:
    """`?, ?, ?` for an `in (...)` list; `''` (matching nothing) for an empty one."""
    return ", ".join("?" * len(values)) or "''"


class PublishingStore(Database):
    """Accounts, queue items, publishing settings, fetch sources."""

    def save_account(self, row: dict[str, Any]) -> None:
        """Add or replace an account; with is_default set, it becomes the only default."""
        with self.db.conn:
            if row.get("is_default"):
                self.db.conn.execute("update accounts set is_default = 0")
            self.db.table("accounts").upsert(row, pk="name")

    def accounts(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.query("select * from accounts order by name")]

    def account(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from accounts where name = ?", [name]))
        return dict(rows[0]) if rows else None

    def delete_account(self, name: str) -> bool:
        with self.db.conn:
            return self.db.conn.execute("delete from accounts where name = ?", [name]).rowcount > 0

    def add_queue_items(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert queue items in one transaction; returns their ids."""
        ids = []
        with self.transaction():
            for row in rows:
                columns = list(row)
                cursor = self.db.conn.execute(
                    f"insert into queue ({', '.join(columns)})"
                    f" values ({', '.join('?' * len(columns))})",
                    [row[column] for column in columns],
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def queue_items(
        self, status: QueueStatus | None = None, account: str | None = None
    ) -> list[QueueItem]:
        """Queue items by due time (then id)."""
        where: list[str] = []
        args: list[Any] = []
        if status:
            where.append("status = ?")
            args.append(status)
        if account:
            where.append("account = ?")
            args.append(account)
        sql = "select * from queue" + (" where " + " and ".join(where) if where else "")
        return [
            QueueItem.from_row(row) for row in self.db.query(sql + " order by due_at, id", args)
        ]

    def queue_item(self, item_id: int) -> QueueItem:
        rows = list(self.db.query("select * from queue where id = ?", [item_id]))
        if not rows:
            raise MarinadeError(f"no queue item with id {item_id}; see `marinade queue list`")
        return QueueItem.from_row(rows[0])

    def queued_sample_ids(self, account: str) -> set[int]:
        rows = self.db.query(
            "select sample_id from queue where account = ? and sample_id is not null", [account]
        )
        return {row["sample_id"] for row in rows}

    def sample_queue_item(
        self, sample_id: int, account: str, statuses: Sequence[QueueStatus]
    ) -> QueueItem | None:
        """The account's first item (by due time) made from this sample with one of
        `statuses`, if any."""
        rows = list(
            self.db.query(
                "select * from queue where sample_id = ? and account = ?"
                f" and status in ({_marks(statuses)}) order by due_at, id limit 1",
                [sample_id, account, *statuses],
            )
        )
        return QueueItem.from_row(rows[0]) if rows else None

    def update_queue_item(
        self, item_id: int, fields: dict[str, Any], only_status: tuple[QueueStatus, ...] = ()
    ) -> bool:
        """Set fields of one item (only while its status is one of only_status, if given)."""
        assignments = ", ".join(f"{column} = ?" for column in fields)
        sql = f"update queue set {assignments} where id = ?"
        args = [*fields.values(), item_id]
        if only_status:
            sql += f" and status in ({_marks(only_status)})"
            args += list(only_status)
        with self.db.conn:
            return self.db.conn.execute(sql, args).rowcount > 0

    def delete_queue_item(self, item_id: int) -> None:
        with self.db.conn:
            self.db.conn.execute("delete from queue where id = ?", [item_id])

    def taken_due_times(self, account: str) -> set[str]:
        """Due times already held by the account's unposted items (one post per slot)."""
        rows = self.db.query(
            f"select due_at from queue where account = ? and status in ({_marks(UNPOSTED)})",
            [account, *UNPOSTED],
        )
        return {row["due_at"] for row in rows}

    def claim_next_due(
        self,
        now: str,
        worker: str,
        redo_unknown: tuple[str, ...] = (),
        redo_unknown_sent_after: str = "",
        redo_unknown_attempts: int = 0,
        exclude_accounts: tuple[str, ...] = (),
    ) -> Claim | None:
        """Claim the next due item for `worker` in one BEGIN IMMEDIATE transaction, or None.

        The claim holds the item as it is now (`posting`) and its status and first send
        before this claim.

        A claimed item is `posting`: no other process can claim it. Items whose outcome is
        `unknown` are claimed too when their account's platform is in `redo_unknown` (the
        platform de-duplicates), their first send was after `redo_unknown_sent_after` and
        they were tried fewer than `redo_unknown_attempts` times. Items of
        `exclude_accounts` are left alone.
        """
        with self.transaction():
            rows = list(
                self.db.query(
                    "select q.* from queue q left join accounts a on a.name = q.account"
                    " where q.due_at <= ? and coalesce(q.retry_at, '') <= ? and ("
                    "  q.status = ? or (q.status = ?"
                    f"  and a.platform in ({_marks(redo_unknown)}) and q.sent_at > ?"
                    "  and q.attempts < ?))"
                    f" and q.account not in ({_marks(exclude_accounts)})"
                    " order by q.due_at, q.id limit 1",
                    [
                        now,
                        now,
                        QueueStatus.QUEUED,
                        QueueStatus.UNKNOWN,
                        *redo_unknown,
                        redo_unknown_sent_after,
                        redo_unknown_attempts,
                        *exclude_accounts,
                    ],
                )
            )
            if not rows:
                return None
            row = dict(rows[0])
            claimed = self.db.conn.execute(
                "update queue set status = ?, claimed_by = ?, claimed_at = ?,"
                " attempts = attempts + 1, sent_at = coalesce(sent_at, ?), updated_at = ?"
                " where id = ? and status = ?",
                [QueueStatus.POSTING, worker, now, now, now, row["id"], row["status"]],
            ).rowcount
            if not claimed:  # cannot happen inside BEGIN IMMEDIATE; kept as the guard
                return None
        return Claim(self.queue_item(row["id"]), QueueStatus(row["status"]), row["sent_at"])

    def finish_claim(self, item_id: int, worker: str, fields: dict[str, Any]) -> bool:
        """Record what happened to a claimed item; False when `worker` no longer holds it.

        An item another process marked `unknown` meanwhile (its claimer looked dead) still
        takes the answer: a late answer is the truth.
        """
        assignments = ", ".join(f"{column} = ?" for column in fields)
        with self.db.conn:
            return (
                self.db.conn.execute(
                    f"update queue set {assignments} where id = ?"
                    " and status in (?, ?) and claimed_by = ?",
                    [
                        *fields.values(),
                        item_id,
                        QueueStatus.POSTING,
                        QueueStatus.UNKNOWN,
                        worker,
                    ],
                ).rowcount
                > 0
            )

    def posting_items(self) -> list[QueueItem]:
        rows = self.db.query("select * from queue where status = ?", [QueueStatus.POSTING])
        return [QueueItem.from_row(row) for row in rows]

    def mark_unknown(self, item_id: int, claimed_by: str | None, reason: str, now: str) -> bool:
        """A `posting` item whose claimer is gone becomes `unknown` (never `queued` again)."""
        with self.db.conn:
            return (
                self.db.conn.execute(
                    "update queue set status = ?, error = ?, updated_at = ?"
                    " where id = ? and status = ? and claimed_by = ?",
                    [QueueStatus.UNKNOWN, reason, now, item_id, QueueStatus.POSTING, claimed_by],
                ).rowcount
                > 0
            )

    def posted_items(self, since: str | None = None) -> list[QueueItem]:
        """Posted items, oldest post first (only those posted at or after `since`)."""
        return [
            QueueItem.from_row(row)
            for row in self.db.query(
                "select * from queue where status = ? and posted_at >= ? order by posted_at, id",
                [QueueStatus.POSTED, since or ""],
            )
        ]

    def publishing_value(self, key: str) -> str | None:
        rows = list(self.db.query("select value from publishing_state where key = ?", [key]))
        return rows[0]["value"] if rows else None

    def set_publishing_value(self, key: str, value: str | None) -> None:
        with self.db.conn:
            if value is None:
                self.db.conn.execute("delete from publishing_state where key = ?", [key])
            else:
                self.db.table("publishing_state").upsert({"key": key, "value": value}, pk="key")

    def fetch_sources(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.query("select * from fetch_sources order by corpus")]

    def fetch_source(self, platform: str, account: str, corpus: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query(
                "select * from fetch_sources where platform = ? and account = ? and corpus = ?",
                [platform, account, corpus],
            )
        )
        return dict(rows[0]) if rows else None

    def save_fetch_source(self, row: dict[str, Any]) -> None:
        """Inside a transaction (with the documents it fetched): raw SQL, which never commits."""
        columns = ("platform", "account", "corpus", "base_url", "cursor", "fetched_at")
        self.db.conn.execute(
            f"insert into fetch_sources ({', '.join(columns)}) values (?, ?, ?, ?, ?, ?)"
            " on conflict(platform, account, corpus) do update set base_url = excluded.base_url,"
            " cursor = excluded.cursor, fetched_at = excluded.fetched_at",
            [row.get(column) for column in columns],
        )
