"""The store's SQLite file: the connection, WAL, busy handling, migrations, transactions.

No domain queries live here (as in datasette's `database.py`): each area of the store is
one module beside this one (samples, corpora, runs, curation, writing, publishing,
review), a class built on `Database`, and `Store` in `__init__.py` is all of them.

- **WAL.** The file is in WAL mode, so readers (the review page, `queue list`) never
  block the one writer and are never blocked by it.
- **Busy handling.** A second writer waits up to `BUSY_TIMEOUT` seconds (or
  $MARINADE_BUSY_TIMEOUT) for the write lock, then gets `sqlite3.OperationalError`
  ("database is locked"). No writer holds the lock for long (a big import commits a
  batch at a time, see corpus/importing.py), so the wait is short; `busy_message` turns
  the error, where it still happens, into the one line every command prints
  (cli/__init__.py), and the review page answers 503 so that its script tries again.
- **Migrations** (`migrations.py`) are applied on every open.
- **Writes** are `with self.db.conn:` (the statements inside commit together, or roll
  back on an exception) or `transaction()`, which also takes the write lock first
  (BEGIN IMMEDIATE): for a read-then-write, such as claiming a queue item, that no
  other process may interleave, and for imports that must be all or nothing. Inside a
  `transaction()`, a `with self.db.conn:` block (or another `transaction()`) is part of
  it and commits nothing on its own, so store methods compose into one transaction.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal

import sqlite_utils

from marinade.errors import MarinadeError
from marinade.store.migrations import migrate

BUSY_TIMEOUT = 30.0  # seconds a writer waits for another's lock before an error


def busy_timeout() -> float:
    """BUSY_TIMEOUT, or the seconds in $MARINADE_BUSY_TIMEOUT (a cron job may wait longer)."""
    value = os.environ.get("MARINADE_BUSY_TIMEOUT", "").strip()
    if not value:
        return BUSY_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        raise MarinadeError(f"MARINADE_BUSY_TIMEOUT={value!r} is not a number of seconds") from None
    if not seconds >= 0:
        raise MarinadeError(f"MARINADE_BUSY_TIMEOUT={value!r} must be 0 or more seconds")
    return seconds


class _Connection(sqlite3.Connection):
    """A connection whose `with conn:` joins an open `transaction()` instead of committing.

    sqlite3's own `with conn:` commits at the end of the block, which inside a larger
    transaction would commit that one half-way: the queue import, for one, calls store
    methods that each write `with self.db.conn:`, and must stay all or nothing.
    """

    depth = 0  # open transaction() blocks

    def __enter__(self) -> _Connection:
        return self if self.depth else super().__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if self.depth:
            return False  # the outer transaction() commits or rolls back
        return super().__exit__(kind, value, traceback)


def is_busy(error: BaseException) -> bool:
    """True for SQLite's "database is locked" (another process holds the write lock)."""
    return isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)
    )


def busy_message(path: Path | str) -> str:
    """The one line for a write that waited `BUSY_TIMEOUT` seconds for another's lock."""
    return (
        f"the store {path} is busy: another process held its write lock for over "
        f"{busy_timeout():g} s (database is locked); what this command was writing then was"
        " not stored: run it again when the other one is done (MARINADE_BUSY_TIMEOUT=SECONDS"
        " waits longer)"
    )


class Database:
    """One open store file. The store's areas add their queries to this class."""

    def __init__(self, path: Path):
        self.path = path
        try:
            connection = sqlite3.connect(str(path), timeout=busy_timeout(), factory=_Connection)
            self.db = sqlite_utils.Database(connection)
            self.db.enable_wal()
            migrate(self.db)
        except sqlite3.Error as error:
            if is_busy(error):
                raise MarinadeError(busy_message(path)) from None
            raise MarinadeError(f"cannot open the store {path}: {error}") from None

    def close(self) -> None:
        self.db.close()

    @property
    def _conn(self) -> _Connection:
        connection = self.db.conn
        assert isinstance(connection, _Connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside is stored together, or (on an exception) not at all.

        The write lock is taken at the start (BEGIN IMMEDIATE, waiting up to BUSY_TIMEOUT),
        so what is read inside cannot be changed by another process before it is written.
        A transaction() inside another one is part of the outer one.
        """
        connection = self._conn
        if connection.depth:
            connection.depth += 1
            try:
                yield
            finally:
                connection.depth -= 1
            return
        if connection.in_transaction:  # a deferred one sqlite3 opened: ours must be first
            connection.commit()
        connection.execute("begin immediate")
        connection.depth = 1
        try:
            yield
        except BaseException:
            connection.depth = 0
            connection.rollback()
            raise
        connection.depth = 0
        connection.commit()
