"""The store: the only place with SQL. One SQLite file in the home, in WAL mode."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
    "experiment",
    "recipe",
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

    def samples(
        self, model: str | None = None, limit: int | None = None, newest_first: bool = True
    ) -> Iterator[dict[str, Any]]:
        where, args = ("model = ?", [model]) if model else (None, [])
        order = "id desc" if newest_first else "id"
        yield from self.db.table("samples").rows_where(where, args, order_by=order, limit=limit)

    def count_samples(self) -> int:
        return self.db.table("samples").count

    # corpora and their documents

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside is stored together, or (on an exception) not at all."""
        with self.db.conn:
            self.db.conn.execute("begin immediate")
            yield

    def start_import(self, corpus: str, path: str, format: str, options: str, now: str) -> int:
        """Record an import (inside a transaction); creates the corpus when it is new."""
        self.db.conn.execute(
            "insert into corpora (name, created_at, updated_at) values (?, ?, ?) "
            "on conflict(name) do update set updated_at = excluded.updated_at",
            [corpus, now, now],
        )
        cursor = self.db.conn.execute(
            "insert into imports (corpus, path, format, options, imported_at)"
            " values (?, ?, ?, ?, ?)",
            [corpus, path, format, options, now],
        )
        return int(cursor.lastrowid or 0)

    def add_documents(self, rows: list[dict[str, Any]]) -> int:
        """Insert documents, skipping exact duplicates in their corpus; returns the new count."""
        cursor = self.db.conn.executemany(
            "insert or ignore into documents (corpus, import_id, text, created_at, source,"
            " record_id, is_reply, is_repost, language, dedup_key)"
            " values (:corpus, :import_id, :text, :created_at, :source,"
            " :record_id, :is_reply, :is_repost, :language, :dedup_key)",
            rows,
        )
        return cursor.rowcount  # summed over the rows; the FTS triggers' writes are not counted

    def finish_import(self, import_id: int, kept: int, duplicates: int, skipped: str) -> None:
        self.db.conn.execute(
            "update imports set kept = ?, duplicates = ?, skipped = ? where id = ?",
            [kept, duplicates, skipped, import_id],
        )

    def corpora(self, name: str | None = None) -> list[dict[str, Any]]:
        """Each corpus (or just `name`) with its document count and date range."""
        return [
            dict(row)
            for row in self.db.query(
                "select c.name, c.created_at, c.updated_at, count(d.id) as documents,"
                " min(d.created_at) as first, max(d.created_at) as last"
                " from corpora c left join documents d on d.corpus = c.name"
                + (" where c.name = ?" if name is not None else "")
                + " group by c.name order by c.name",
                [name] if name is not None else [],
            )
        ]

    def corpus(self, name: str) -> dict[str, Any]:
        rows = self.corpora(name)
        if not rows:
            raise MarinadeError(f"no corpus named {name!r}; see `marinade corpus list`")
        return rows[0]

    def imports(self, corpus: str) -> list[dict[str, Any]]:
        return list(self.db.table("imports").rows_where("corpus = ?", [corpus], order_by="id"))

    def documents(self, corpus: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """A corpus's documents, oldest first (undated ones last), in import order within a date."""
        yield from self.db.query(
            "select id, text, created_at, source, record_id, is_reply, is_repost, language"
            " from documents where corpus = ? order by created_at is null, created_at, id"
            + (" limit ?" if limit else ""),
            [corpus, limit] if limit else [corpus],
        )

    def delete_corpus(self, name: str) -> int:
        """Remove a corpus, its imports and documents; returns how many documents went."""
        self.corpus(name)
        with self.db.conn:
            count = self.db.conn.execute("delete from documents where corpus = ?", [name]).rowcount
            self.db.conn.execute("delete from imports where corpus = ?", [name])
            self.db.conn.execute("delete from corpora where name = ?", [name])
        return count

    def search_documents(
        self, query: str, corpus: str | None = None, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Documents matching an FTS5 query, best first."""
        sql = (
            "select d.id, d.corpus, d.text, d.created_at, d.source from documents_fts"
            " join documents d on d.id = documents_fts.rowid where documents_fts match ?"
            + (" and d.corpus = ?" if corpus else "")
            + " order by rank limit ?"
        )
        args: list[Any] = [query] + ([corpus] if corpus else []) + [limit]
        return [dict(row) for row in self.db.query(sql, args)]

    # training runs

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

    # ratings of samples (the curation workflow)

    def rate_sample(
        self,
        sample_id: int,
        rating: str | None,
        *,
        tags: list[str] | None = None,
        note: str | None = None,
        edited_text: str | None = None,
        now: str,
    ) -> None:
        """Record (or with rating None, remove) a sample's rating; the latest one wins."""
        if rating not in (None, "accept", "reject"):
            raise MarinadeError(f"a rating is accept or reject, not {rating!r}")
        self.get_sample(sample_id)
        with self.db.conn:
            if rating is None:
                self.db.conn.execute("delete from ratings where sample_id = ?", [sample_id])
                return
            self.db.conn.execute(
                "insert or replace into ratings"
                " (sample_id, rating, tags, note, edited_text, rated_at) values (?, ?, ?, ?, ?, ?)",
                [sample_id, rating, json.dumps(tags or []), note, edited_text, now],
            )

    def rating(self, sample_id: int) -> dict[str, Any] | None:
        rows = list(self.db.table("ratings").rows_where("sample_id = ?", [sample_id]))
        if not rows:
            return None
        return {**rows[0], "tags": json.loads(rows[0]["tags"] or "[]")}

    def accepted_samples(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """Accepted samples, oldest first, with `text` being the rater's edit where there is one."""
        where, args = ("and s.experiment = ?", [experiment]) if experiment else ("", [])
        cursor = self.db.conn.execute(
            "select s.*, s.text as original_text, coalesce(r.edited_text, s.text) as final_text,"
            " r.tags as rating_tags, r.note as rating_note, r.rated_at"
            " from samples s join ratings r on r.sample_id = s.id"
            f" where r.rating = 'accept' {where} order by s.id",
            args,
        )
        names = [column[0] for column in cursor.description]
        rows = []
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            row["text"] = row.pop("final_text")
            rows.append(row)
        return rows

    # review page

    def review_sample(self, sample_id: int) -> dict[str, Any]:
        """What the review page may show of a sample: never its model, recipe or settings."""
        rows = list(
            self.db.query(
                "select s.id, s.experiment, s.prompt, s.text, c.tags as check_tags,"
                " c.copied_words, d.text as closest_text, d.corpus as closest_corpus"
                " from samples s left join sample_checks c on c.sample_id = s.id"
                " left join documents d on d.id = c.closest_document_id where s.id = ?",
                [sample_id],
            )
        )
        if not rows:
            self.get_sample(sample_id)  # raises the usual error
        row = dict(rows[0])
        row["check_tags"] = json.loads(row["check_tags"] or "[]")
        return row

    def next_unrated_sample_id(
        self, experiment: str | None, order: tuple[int, int, int, int]
    ) -> int | None:
        """The first unrated sample in the blind order; samples skipped on the review page
        come after every never-skipped one, the longest-skipped first."""
        where, args = ("and s.experiment = ?", [experiment]) if experiment is not None else ("", [])
        rows = list(
            self.db.conn.execute(
                "select s.id from samples s left join ratings r on r.sample_id = s.id"
                " left join (select sample_id, max(id) as last_skip from review_actions"
                "  where action = 'skip' group by sample_id) k on k.sample_id = s.id"
                f" where r.sample_id is null {where}"
                f" order by k.last_skip, {_blind_rank_sql('s.id')}, s.id limit 1",
                [*args, *order],
            )
        )
        return int(rows[0][0]) if rows else None

    def record_review(
        self,
        session: str,
        sample_id: int,
        action: str,
        *,
        edited_text: str | None = None,
        now: str,
    ) -> None:
        """Rate (accept, reject) or skip a sample from the review page, remembering what the
        rating replaced so that `undo_review` can put it back."""
        if action not in ("accept", "reject", "skip"):
            raise MarinadeError(f"a review action is accept, reject or skip, not {action!r}")
        self.get_sample(sample_id)
        with self.db.conn:
            previous = None
            if action != "skip":
                rows = list(self.db.query("select * from ratings where sample_id = ?", [sample_id]))
                previous = json.dumps(dict(rows[0])) if rows else None
                self.db.conn.execute(
                    "insert or replace into ratings"
                    " (sample_id, rating, tags, note, edited_text, rated_at)"
                    " values (?, ?, '[]', null, ?, ?)",
                    [sample_id, action, edited_text, now],
                )
            self.db.conn.execute(
                "insert into review_actions (session, sample_id, action, previous, acted_at)"
                " values (?, ?, ?, ?, ?)",
                [session, sample_id, action, previous, now],
            )

    def undo_review(self, session: str) -> int | None:
        """Take back the session's latest action (a rating goes back to what it replaced);
        returns its sample's id, or None when the session has nothing left to undo."""
        with self.db.conn:
            rows = list(
                self.db.conn.execute(
                    "select id, sample_id, action, previous from review_actions"
                    " where session = ? order by id desc limit 1",
                    [session],
                )
            )
            if not rows:
                return None
            action_id, sample_id, action, previous = rows[0]
            if action != "skip":
                self.db.conn.execute("delete from ratings where sample_id = ?", [sample_id])
                if previous:
                    row = json.loads(previous)
                    self.db.conn.execute(
                        f"insert into ratings ({', '.join(row)}) values"
                        f" ({', '.join('?' * len(row))})",
                        list(row.values()),
                    )
            self.db.conn.execute("delete from review_actions where id = ?", [action_id])
        return int(sample_id)

    def review_progress(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """Per experiment (None: samples made outside one): samples, rated and accepted."""
        where, args = (
            ("where s.experiment = ?", [experiment]) if experiment is not None else ("", [])
        )
        return [
            dict(row)
            for row in self.db.query(
                "select s.experiment, count(*) as total, count(r.sample_id) as rated,"
                " coalesce(sum(r.rating = 'accept'), 0) as accepted"
                f" from samples s left join ratings r on r.sample_id = s.id {where}"
                " group by s.experiment order by s.experiment is not null, s.experiment",
                args,
            )
        ]

    def rating_counts(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """Samples, rated and accepted per experiment, recipe and temperature."""
        where, args = (
            ("where s.experiment = ?", [experiment]) if experiment is not None else ("", [])
        )
        return [
            dict(row)
            for row in self.db.query(
                "select s.experiment, s.recipe, s.temperature, count(*) as total,"
                " count(r.sample_id) as rated, coalesce(sum(r.rating = 'accept'), 0) as accepted"
                f" from samples s left join ratings r on r.sample_id = s.id {where}"
                " group by s.experiment, s.recipe, s.temperature"
                " order by s.experiment, s.recipe, s.temperature",
                args,
            )
        ]

    def experiment_sample_count(self, experiment: str) -> int:
        return int(
            self.db.conn.execute(
                "select count(*) from samples where experiment = ?", [experiment]
            ).fetchone()[0]
        )

    def next_ab_pair(
        self, experiment: str | None, order: tuple[int, int, int, int]
    ) -> tuple[int, int] | None:
        """Two samples of one prompt, seed and temperature from two different models that
        have no vote yet, in the blind order; None when every such pair has one."""
        where, args = (
            ("and a.experiment = ? and b.experiment = ?", [experiment, experiment])
            if experiment is not None
            else ("", [])
        )
        rows = list(
            self.db.conn.execute(
                "select a.id, b.id from samples a join samples b on b.seed = a.seed"
                " and b.temperature = a.temperature and b.prompt is a.prompt and b.model > a.model"
                f" where 1 {where}"
                " and not exists (select 1 from ab_votes v"
                "  where v.left_sample_id = a.id and v.right_sample_id = b.id)"
                " and not exists (select 1 from ab_votes v"
                "  where v.left_sample_id = b.id and v.right_sample_id = a.id)"
                f" order by {_blind_rank_sql('a.id')}, {_blind_rank_sql('b.id')}, a.id, b.id"
                " limit 1",
                [*args, *order, *order],
            )
        )
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def add_ab_vote(self, left_id: int, right_id: int, winner_id: int, now: str) -> None:
        if winner_id not in (left_id, right_id):
            raise MarinadeError(f"the winner of an A/B vote is {left_id} or {right_id}")
        self.get_sample(left_id)
        self.get_sample(right_id)
        with self.db.conn:
            self.db.conn.execute(
                "insert into ab_votes (left_sample_id, right_sample_id, winner_sample_id,"
                " voted_at) values (?, ?, ?, ?)",
                [left_id, right_id, winner_id, now],
            )

    def ab_results(self, experiment: str | None = None) -> list[dict[str, Any]]:
        """Votes and wins per pair of models (model_a sorts before model_b)."""
        where, args = (
            ("where l.experiment = ?", [experiment]) if experiment is not None else ("", [])
        )
        return [
            dict(row)
            for row in self.db.query(
                "select min(l.model, r.model) as model_a, max(l.model, r.model) as model_b,"
                " count(*) as votes, sum(w.model = min(l.model, r.model)) as wins_a,"
                " sum(w.model = max(l.model, r.model)) as wins_b from ab_votes v"
                " join samples l on l.id = v.left_sample_id"
                " join samples r on r.id = v.right_sample_id"
                f" join samples w on w.id = v.winner_sample_id {where}"
                " group by model_a, model_b order by model_a, model_b",
                args,
            )
        ]

    def export_samples(
        self, experiment: str | None = None, model: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Samples oldest first with their rating (accept, reject or None), the rater's edit
        (`text` stays what the model wrote), tags and note: the EXPORT_COLUMNS."""
        conditions = [
            (condition, value)
            for condition, value in (("s.experiment = ?", experiment), ("s.model = ?", model))
            if value is not None
        ]
        where = " and ".join(condition for condition, _ in conditions)
        cursor = self.db.conn.execute(
            f"select {', '.join('s.' + column for column in SAMPLE_COLUMNS)}, r.rating,"
            " r.edited_text, r.tags as rating_tags, r.note as rating_note"
            " from samples s left join ratings r on r.sample_id = s.id"
            + (f" where {where}" if where else "")
            + " order by s.id",
            [value for _, value in conditions],
        )
        for values in cursor:
            row = dict(zip(EXPORT_COLUMNS, values, strict=True))
            row["rating_tags"] = json.loads(row["rating_tags"]) if row["rating_tags"] else []
            yield row


EXPORT_COLUMNS = (*SAMPLE_COLUMNS, "rating", "edited_text", "rating_tags", "rating_note")

# The blind order: a random cubic polynomial modulo the prime 2^31 - 1, evaluated in SQL so
# that ordering 10,000 samples needs no Python call per row (marinade.review.queue).
BLIND_PRIME = 2_147_483_647


def _blind_rank_sql(column: str) -> str:
    """SQL for (c0*x^3 + c1*x^2 + c2*x + c3) mod p by Horner's rule, the four coefficients as
    parameters; every product stays below 2^62, inside SQLite's 64-bit integers."""
    p = BLIND_PRIME
    return f"(((((? * {column} + ?) % {p}) * {column} + ?) % {p}) * {column} + ?) % {p}"
