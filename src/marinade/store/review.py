"""The review page's queries: what a sample may show, the next unrated one in the blind
order, skip and undo, progress, and A/B pairs and votes.

The blind order (marinade.review.rating_order) ranks sample ids by a cubic polynomial
modulo BLIND_PRIME, evaluated here in SQL so that ordering 10,000 samples needs no
Python call per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from marinade.errors import MarinadeError
from marinade.store.samples import SampleStore

BLIND_PRIME = 2_147_483_647  # 2^31 - 1


class ReviewStore(SampleStore):
    """What the review page reads and writes."""

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
        self,
        experiment: str | None,
        order: tuple[int, int, int, int],
        skip_tags: Sequence[str] = (),
    ) -> int | None:
        """The first unrated sample in the blind order; samples skipped on the review page
        come after every never-skipped one, the longest-skipped first. Samples whose
        automatic checks gave one of `skip_tags` are left out."""
        where, args = _unrated_where(experiment, skip_tags)
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

    def count_unrated_with_tags(self, experiment: str | None, tags: Sequence[str]) -> int:
        """Unrated samples whose automatic checks gave one of `tags` (what skip_tags leaves out)."""
        if not tags:
            return 0
        where, args = _unrated_where(experiment, ())
        marks = ", ".join("?" * len(tags))
        return int(
            self.db.conn.execute(
                "select count(*) from samples s left join ratings r on r.sample_id = s.id"
                f" where r.sample_id is null {where} and exists (select 1 from sample_checks c,"
                f" json_each(c.tags) t where c.sample_id = s.id and t.value in ({marks}))",
                [*args, *tags],
            ).fetchone()[0]
        )

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

    def next_ab_pair(
        self, experiment: str | None, order: tuple[int, int, int, int]
    ) -> tuple[int, int] | None:
        """Two samples of one prompt, seed, temperature and top-p from two different models
        that have no vote yet, in the blind order; None when every such pair has one."""
        where, args = (
            ("and a.experiment = ? and b.experiment = ?", [experiment, experiment])
            if experiment is not None
            else ("", [])
        )
        rows = list(
            self.db.conn.execute(
                "select a.id, b.id from samples a join samples b on b.seed = a.seed"
                " and b.temperature = a.temperature and b.top_p is a.top_p"
                " and b.prompt is a.prompt and b.model > a.model"
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


def _unrated_where(experiment: str | None, skip_tags: Sequence[str]) -> tuple[str, list[Any]]:
    """The rating queue's conditions on samples `s`: one experiment's, none tagged so."""
    where, args = ("and s.experiment = ?", [experiment]) if experiment is not None else ("", [])
    if skip_tags:
        where += (
            " and not exists (select 1 from sample_checks c, json_each(c.tags) t"
            f" where c.sample_id = s.id and t.value in ({', '.join('?' * len(skip_tags))}))"
        )
    return where, [*args, *skip_tags]


def _blind_rank_sql(column: str) -> str:
    """SQL for (c0*x^3 + c1*x^2 + c2*x + c3) mod p by Horner's rule, the four coefficients as
    parameters; every product stays below 2^62, inside SQLite's 64-bit integers."""
    p = BLIND_PRIME
    return f"(((((? * {column} + ?) % {p}) * {column} + ?) % {p}) * {column} + ?) % {p}"
