"""The store: the only place with SQL. One SQLite file in the home, in WAL mode."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from marinade.errors import MarinadeError
from marinade.store.migrations import migrate

SAMPLE_COLUMNS = (
    "id",
    "created_at",
    "origin",
    "batch_id",
    "model",
    "model_hash",
    "device",
    "quantize",
    "prompt",
    "text",
    "seed",
    "temperature",
    "top_k",
    "top_p",
    "max_new_tokens",
    "stop",
    "new_tokens",
    "finish_reason",
    "batch_size",
)


class Store:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.db = sqlite_utils.Database(path)
            self.db.enable_wal()
            migrate(self.db)
        except sqlite3.Error as error:
            raise MarinadeError(f"cannot open the store {path}: {error}") from None

    def close(self) -> None:
        self.db.close()

    def add_samples(self, samples: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert samples in one transaction; return them with their new ids."""
        stored = []
        with self.db.conn:
            table = self.db.table("samples")
            for sample in samples:
                row = {column: sample.get(column) for column in SAMPLE_COLUMNS if column != "id"}
                row_id = table.insert(row).last_pk
                stored.append({"id": row_id, **row})
        return stored

    def get_sample(self, sample_id: int) -> dict[str, Any]:
        try:
            return dict(self.db.table("samples").get(sample_id))
        except sqlite_utils.db.NotFoundError:
            raise MarinadeError(
                f"no sample with id {sample_id} in {self.path}; see `marinade samples list`"
            ) from None

    def samples(
        self, model: str | None = None, limit: int | None = None, newest_first: bool = True
    ) -> Iterator[dict[str, Any]]:
        where, args = ("model = ?", [model]) if model else (None, [])
        order = "id desc" if newest_first else "id"
        yield from self.db.table("samples").rows_where(where, args, order_by=order, limit=limit)

    def count_samples(self) -> int:
        return self.db.table("samples").count
