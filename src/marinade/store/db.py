"""The store's SQLite file: the connection, WAL, busy handling, migrations, transactions.

No domain queries live here (as in datasette's `database.py`): each area of the store is
one module beside this one (samples, corpora, runs, curation, writing, publishing,
review), a class built on `Database`, and `Store` in `__init__.py` is all of them.

- **WAL.** The file is in WAL mode, so readers (the review page, `queue list`) never
  block the one writer and are never blocked by it.
- **Busy handling.** A second writer waits up to `BUSY_TIMEOUT` seconds for the write
  lock (sqlite3's own default, written down here), then gets `sqlite3.OperationalError`
  ("database is locked"); the commands that run beside others (`post --due`, the
  scheduler) turn that into one line and try again later.
- **Migrations** (`migrations.py`) are applied on every open.
- **Writes** are `with self.db.conn:` (the statements inside commit together, or roll
  back on an exception) or `transaction()`, which also takes the write lock first
  (BEGIN IMMEDIATE): for a read-then-write, such as claiming a queue item, that no
  other process may interleave, and for imports that must be all or nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from marinade.errors import MarinadeError
from marinade.store.migrations import migrate

BUSY_TIMEOUT = 5.0  # seconds a writer waits for another's lock before an error


class Database:
    """One open store file. The store's areas add their queries to this class."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.db = sqlite_utils.Database(sqlite3.connect(str(path), timeout=BUSY_TIMEOUT))
            self.db.enable_wal()
            migrate(self.db)
        except sqlite3.Error as error:
            raise MarinadeError(f"cannot open the store {path}: {error}") from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside is stored together, or (on an exception) not at all."""
        with self.db.conn:
            self.db.conn.execute("begin immediate")
            yield
