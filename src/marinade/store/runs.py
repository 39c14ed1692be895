"""Training runs, their held-out losses per step and corpus, and their checkpoints.

Rows travel as dicts here: the training loop that reads and writes them is its own part.
"""

from __future__ import annotations

from typing import Any

from marinade.store.db import Database


class RunStore(Database):
    """Training runs, evals and checkpoint records (rows as dicts)."""

    def run(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db.query("select * from runs where name = ?", [name]))
        return dict(rows[0]) if rows else None

    def save_run(self, row: dict[str, Any]) -> None:
        with self.db.conn:
            self.db.table("runs").upsert(row, pk="name")

    def runs(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.db.query("select * from runs order by created_at")]

    def add_evals(self, run: str, step: int, phase: int, losses: dict[str, float]) -> None:
        with self.db.conn:
            self.db.table("evals").upsert_all(
                [
                    {"run": run, "step": step, "corpus": corpus, "loss": loss, "phase": phase}
                    for corpus, loss in losses.items()
                ],
                pk=("run", "step", "corpus"),
            )

    def evals(self, run: str) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self.db.query(
                "select step, corpus, loss, phase from evals where run = ? order by step, corpus",
                [run],
            )
        ]

    def save_checkpoint_record(self, row: dict[str, Any]) -> None:
        with self.db.conn:
            self.db.table("checkpoints").upsert(row, pk=("run", "name"))

    def checkpoints(self, run: str) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self.db.query(
                "select * from checkpoints where run = ? order by step, name", [run]
            )
        ]

    def delete_run(self, name: str) -> None:
        with self.db.conn:
            for table in ("evals", "checkpoints"):
                self.db.conn.execute(f"delete from {table} where run = ?", [name])
            self.db.conn.execute("delete from runs where name = ?", [name])
