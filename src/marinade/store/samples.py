"""Samples: every text a model wrote, with what made it (prompt, seed, settings, model hash).

A call's samples are inserted in one transaction after sampling succeeded, so a failed
call stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlite_utils

from marinade.errors import MarinadeError
from marinade.store.db import Database

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
    "dtype",
    "sentence_cut",
    "batch_dropped",
    "experiment",
    "recipe",
)


class SampleStore(Database):
    """Samples: add, get, list, count."""

    def add_samples(self, samples: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert samples in one transaction; return them with their new ids."""
        columns = [column for column in SAMPLE_COLUMNS if column != "id"]
        sql = f"insert into samples ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"
        stored = []
        with self.db.conn:
            for sample in samples:
                row = {column: sample.get(column) for column in columns}
                cursor = self.db.conn.execute(sql, [row[column] for column in columns])
                stored.append({"id": cursor.lastrowid, **row})
        return stored

    def get_sample(self, sample_id: int) -> dict[str, Any]:
        try:
            return dict(self.db.table("samples").get(sample_id))
        except sqlite_utils.db.NotFoundError:
            raise MarinadeError(
                f"no sample with id {sample_id} in {self.path}; see `marinade samples list`"
            ) from None

    def batch_samples(self, batch_id: str, model: str) -> list[dict[str, Any]]:
        """The samples one call made from `model` under `batch_id`, in the order it made them."""
        return list(
            self.db.table("samples").rows_where(
                "batch_id = ? and model = ?", [batch_id, model], order_by="id"
            )
        )

    def samples(
        self, model: str | None = None, limit: int | None = None, newest_first: bool = True
    ) -> Iterator[dict[str, Any]]:
        where, args = ("model = ?", [model]) if model else (None, [])
        order = "id desc" if newest_first else "id"
        yield from self.db.table("samples").rows_where(where, args, order_by=order, limit=limit)

    def training_samples(self, run: str, limit: int = 50) -> list[dict[str, Any]]:
        """The samples run `run` logged while it trained (--sample-every), newest first."""
        prefix = f"{run}@step"  # the model name _log_samples gives: RUN@stepN
        rows = self.db.query(
            "select * from samples where origin = 'training' and substr(model, 1, ?) = ?"
            " order by id desc limit ?",
            [len(prefix), prefix, limit],
        )
        return list(rows)

    def count_samples(self) -> int:
        return self.db.table("samples").count
