"""Curation: ratings of samples, experiments (grids of recipe x temperature), the automatic
checks of each sample, and the export of samples with all of that.

A rating is one row per sample (the latest wins); the rater's edit is kept beside the
sample's text, never over it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from marinade.errors import MarinadeError
from marinade.store.samples import SAMPLE_COLUMNS, SampleStore

EXPORT_COLUMNS = (
    *SAMPLE_COLUMNS,
    "rating",
    "edited_text",
    "rating_tags",
    "rating_note",
    "copied_words",  # the experiment's novelty check: the longest stretch copied word for word
    "checks",  # and its automatic pre-filter tags (copied, short, loop, ...)
)


class CurationStore(SampleStore):
    """Ratings, experiments, automatic checks, the samples export."""

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

    def rated_samples(
        self,
        experiment: str | None = None,
        models: list[str] | None = None,
        rated_after: str | None = None,
    ) -> list[dict[str, Any]]:
        """Rated samples (accepted or rejected), oldest first: one experiment's, or those
        of the models named (a run's name also matches its checkpoints, RUN@PHASE), or
        every one; with `rated_after`, only ratings given later than that time."""
        where, args = ["1"], []
        if experiment is not None:
            where.append("s.experiment = ?")
            args.append(experiment)
        if models is not None:
            where.append(
                "(" + " or ".join(["s.model = ? or s.model like ? escape '\\'"] * len(models)) + ")"
                if models
                else "0"
            )
            for model in models:
                args += [model, model.replace("_", "\\_").replace("%", "\\%") + "@%"]
        if rated_after is not None:
            where.append("r.rated_at > ?")
            args.append(rated_after)
        return [
            dict(row)
            for row in self.db.query(
                "select s.id, s.prompt, s.text, s.model, s.experiment, r.rating,"
                " r.edited_text, r.rated_at from samples s join ratings r on r.sample_id = s.id"
                f" where r.rating in ('accept', 'reject') and {' and '.join(where)}"
                " order by s.id",
                args,
            )
        ]

    # experiments (grids of recipe x temperature, N samples per cell)

    def save_experiment(self, row: dict[str, Any]) -> None:
        with self.db.conn:
            self.db.table("experiments").upsert(row, pk="name")

    def experiment(self, name: str) -> dict[str, Any]:
        rows = list(self.db.table("experiments").rows_where("name = ?", [name]))
        if not rows:
            raise MarinadeError(f"no experiment named {name!r}; see `marinade experiment list`")
        return rows[0]

    def experiments(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "select e.*, (select count(*) from samples s where s.experiment = e.name)"
                " as samples, (select count(*) from samples s join ratings r"
                " on r.sample_id = s.id where s.experiment = e.name) as rated"
                " from experiments e order by e.created_at"
            )
        )

    def delete_experiment(self, name: str) -> int:
        """Remove an experiment with its samples, their ratings and checks (queued posts
        keep their text); returns how many samples went. Runs it trained are kept."""
        self.experiment(name)
        ids = "select id from samples where experiment = ?"
        with self.transaction():
            for table in ("ratings", "sample_checks", "review_actions"):
                self.db.conn.execute(f"delete from {table} where sample_id in ({ids})", [name])
            self.db.conn.execute(
                f"delete from ab_votes where left_sample_id in ({ids})"
                f" or right_sample_id in ({ids})",
                [name, name],
            )
            self.db.conn.execute(
                f"update queue set sample_id = null where sample_id in ({ids})", [name]
            )
            count = self.db.conn.execute(
                "delete from samples where experiment = ?", [name]
            ).rowcount
            self.db.conn.execute("delete from cell_drops where experiment = ?", [name])
            self.db.conn.execute("delete from experiments where name = ?", [name])
        return count

    def cell_seeds(
        self,
        experiment: str,
        recipe: str,
        temperature: float,
        top_p: float | None,
        prompt: str | None,
    ) -> set[int]:
        """Seeds already sampled for one cell (and prompt) of an experiment: stored, or
        dropped by whole sentences (add_cell_drops)."""
        rows = self.db.conn.execute(
            "select seed from samples where experiment = ? and recipe = ? and temperature = ?"
            " and top_p is ? and prompt is ?"
            " union select seed from cell_drops where experiment = ? and recipe = ?"
            " and temperature = ? and top_p is ? and prompt is ?",
            [experiment, recipe, temperature, top_p, prompt] * 2,
        )
        return {seed for (seed,) in rows}

    def add_cell_drops(
        self,
        experiment: str,
        recipe: str,
        temperature: float,
        top_p: float | None,
        prompt: str | None,
        seeds: list[int],
    ) -> None:
        """Record seeds of a cell whose samples were dropped, so they are not drawn again."""
        with self.transaction():
            self.db.conn.executemany(
                "insert into cell_drops values (?, ?, ?, ?, ?, ?)",
                [(experiment, recipe, temperature, top_p, prompt, seed) for seed in seeds],
            )

    def cell_drop_count(self, experiment: str) -> dict[tuple[str, float, float | None], int]:
        """Dropped samples per (recipe, temperature, top_p) of an experiment."""
        rows = self.db.conn.execute(
            "select recipe, temperature, top_p, count(*) from cell_drops where experiment = ?"
            " group by recipe, temperature, top_p",
            [experiment],
        )
        return {(recipe, t, p): n for recipe, t, p, n in rows}

    def experiment_samples(self, experiment: str) -> list[dict[str, Any]]:
        """An experiment's samples with their rating and automatic checks, oldest first."""
        return [
            dict(row)
            for row in self.db.query(
                "select s.*, r.rating, r.edited_text, c.copied_words, c.closest_document_id,"
                " c.tags from samples s left join ratings r on r.sample_id = s.id"
                " left join sample_checks c on c.sample_id = s.id"
                " where s.experiment = ? order by s.id",
                [experiment],
            )
        ]

    def save_sample_checks(self, rows: list[dict[str, Any]]) -> None:
        with self.db.conn:
            self.db.conn.executemany(
                "insert or replace into sample_checks"
                " (sample_id, copied_words, closest_document_id, tags) values (?, ?, ?, ?)",
                [
                    (r["sample_id"], r["copied_words"], r["closest_document_id"], r["tags"])
                    for r in rows
                ],
            )

    def closest_document(self, corpora: list[str], words: list[str]) -> int | None:
        """The document of these corpora that full-text search ranks first for these words."""
        terms = list(dict.fromkeys(word for word in words if word.isalnum()))[:32]
        if not terms or not corpora:
            return None
        query = " OR ".join(f'"{term}"' for term in terms)
        marks = ", ".join("?" * len(corpora))
        row = self.db.conn.execute(
            "select d.id from documents_fts join documents d on d.id = documents_fts.rowid"
            f" where documents_fts match ? and d.corpus in ({marks}) order by rank limit 1",
            [query, *corpora],
        ).fetchone()
        return row[0] if row else None

    def experiment_sample_count(self, experiment: str) -> int:
        return int(
            self.db.conn.execute(
                "select count(*) from samples where experiment = ?", [experiment]
            ).fetchone()[0]
        )

    def temperature_ratings(self, model: str) -> list[dict[str, Any]]:
        """Per temperature, how many of `model`'s experiment samples were rated and how
        many accepted: what the person liked best, for a model exported elsewhere."""
        return list(
            self.db.query(
                "select s.temperature, count(*) as rated,"
                " sum(r.rating = 'accept') as accepted from samples s"
                " join ratings r on r.sample_id = s.id"
                " where s.model = ? and s.experiment is not null"
                " and r.rating in ('accept', 'reject')"
                " group by s.temperature order by s.temperature",
                [model],
            )
        )

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
            " r.edited_text, r.tags as rating_tags, r.note as rating_note,"
            " c.copied_words, c.tags as checks"
            " from samples s left join ratings r on r.sample_id = s.id"
            " left join sample_checks c on c.sample_id = s.id"
            + (f" where {where}" if where else "")
            + " order by s.id",
            [value for _, value in conditions],
        )
        for values in cursor:
            row = dict(zip(EXPORT_COLUMNS, values, strict=True))
            row["rating_tags"] = json.loads(row["rating_tags"]) if row["rating_tags"] else []
            row["checks"] = json.loads(row["checks"]) if row["checks"] else []
            yield row
