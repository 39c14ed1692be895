"""Training runs, their held-out losses per step and corpus, and their checkpoints.

Rows leave the store as `Run`, `Eval` and `CheckpointRecord`s (each with a
`from_row`, as llm's `Response.from_row`), a run's status a `RunStatus`: a
member compares equal to its string, which SQLite and every JSON output hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from marinade.store.db import Database


class RunStatus(str, Enum):
    """Where a run is: `running -> finished | interrupted | failed` (interrupted resumes)."""

    RUNNING = "running"
    INTERRUPTED = "interrupted"  # Ctrl-C, a signal or --max-minutes: `last` resumes it
    FAILED = "failed"
    FINISHED = "finished"

    def __str__(self) -> str:  # the value, as StrEnum (Python 3.11) does
        return self.value


@dataclass(frozen=True)
class Run:
    """One row of the runs table (m003_runs, m008): a column added later needs a field."""

    name: str
    model: str  # the base model, or RUN@PHASE it started from
    recipe: str  # JSON of the resolved recipe
    status: RunStatus
    steps_done: int
    total_steps: int
    corpus_versions: str | None  # JSON {corpus: version}
    message: str | None  # why it failed or stopped
    created_at: str
    updated_at: str | None
    corpus_split: str | None = None  # JSON {corpus: what it trained on and held out}
    deterministic: bool | None = None  # the same seed gives the same run here (None: unknown)
    dtype: str | None = None  # m016: what it trained in (None: from before, float32)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Run:
        deterministic = row.get("deterministic")
        return cls(
            **{
                **row,
                "status": RunStatus(row["status"]),
                "deterministic": None if deterministic is None else bool(deterministic),
            }
        )

    def recipe_dict(self) -> dict[str, Any]:
        return dict(json.loads(self.recipe))

    def to_row(self) -> dict[str, Any]:
        return {**asdict(self), "status": str(self.status)}


@dataclass(frozen=True)
class Eval:
    """The held-out loss of one corpus at one step."""

    step: int
    corpus: str
    loss: float
    phase: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Eval:
        return cls(**row)


@dataclass(frozen=True)
class CheckpointRecord:
    """Where checkpoint `name` (`last`, `phase-N`) of a run is and which step it holds."""

    run: str
    name: str
    step: int
    phase: int
    path: str
    saved_at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CheckpointRecord:
        return cls(**row)


@dataclass(frozen=True)
class RatingEval:
    """A ratings phase measured on its held-out ratings at one step."""

    step: int
    phase: int
    source: str
    accuracy: float | None
    kl: float
    pairs: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RatingEval:
        return cls(**row)


class RunStore(Database):
    """Training runs, evals and checkpoint records."""

    def run(self, name: str) -> Run | None:
        rows = list(self.db.query("select * from runs where name = ?", [name]))
        return Run.from_row(rows[0]) if rows else None

    def save_run(self, run: Run) -> None:
        with self.db.conn:
            self.db.table("runs").upsert(run.to_row(), pk="name")

    def runs(self) -> list[Run]:
        rows = self.db.query("select * from runs order by created_at")
        return [Run.from_row(row) for row in rows]

    def add_evals(self, run: str, step: int, phase: int, losses: dict[str, float]) -> None:
        with self.db.conn:
            self.db.table("evals").upsert_all(
                [
                    {"run": run, "step": step, "corpus": corpus, "loss": loss, "phase": phase}
                    for corpus, loss in losses.items()
                ],
                pk=("run", "step", "corpus"),
            )

    def evals(self, run: str) -> list[Eval]:
        return [
            Eval.from_row(row)
            for row in self.db.query(
                "select step, corpus, loss, phase from evals where run = ? order by step, corpus",
                [run],
            )
        ]

    def add_rating_eval(self, run: str, measured: RatingEval) -> None:
        with self.db.conn:
            self.db.table("rating_evals").upsert(
                {"run": run, **asdict(measured)}, pk=("run", "step", "phase")
            )

    def rating_evals(self, run: str) -> list[RatingEval]:
        return [
            RatingEval.from_row(row)
            for row in self.db.query(
                "select step, phase, source, accuracy, kl, pairs from rating_evals"
                " where run = ? order by step, phase",
                [run],
            )
        ]

    def save_checkpoint_record(self, row: dict[str, Any]) -> None:
        with self.db.conn:
            self.db.table("checkpoints").upsert(row, pk=("run", "name"))

    def checkpoints(self, run: str) -> list[CheckpointRecord]:
        return [
            CheckpointRecord.from_row(row)
            for row in self.db.query(
                "select * from checkpoints where run = ? order by step, name", [run]
            )
        ]

    def delete_run(self, name: str) -> None:
        with self.db.conn:
            for table in ("evals", "rating_evals", "checkpoints"):
                self.db.conn.execute(f"delete from {table} where run = ?", [name])
            self.db.conn.execute("delete from runs where name = ?", [name])
