"""The store: the only place with SQL. One SQLite file in the home, in WAL mode."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
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
        """Seeds already sampled for one cell (and prompt) of an experiment."""
        rows = self.db.conn.execute(
            "select seed from samples where experiment = ? and recipe = ? and temperature = ?"
            " and top_p is ? and prompt is ?",
            [experiment, recipe, temperature, top_p, prompt],
        )
        return {seed for (seed,) in rows}

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

    # co-writing (stories as trees of nodes) and chat (conversations and turns)

    def create_story(self, row: dict[str, Any]) -> int:
        with self.db.conn:
            cursor = self.db.conn.execute(
                "insert into stories (title, model, settings, created_at, updated_at)"
                " values (:title, :model, :settings, :created_at, :created_at)",
                row,
            )
        return int(cursor.lastrowid or 0)

    def story(self, story_id: int) -> dict[str, Any]:
        rows = list(self.db.query("select * from stories where id = ?", [story_id]))
        if not rows:
            raise MarinadeError(f"no story with id {story_id}; see `marinade write list`")
        return dict(rows[0])

    def stories(self) -> list[dict[str, Any]]:
        """Every story, newest first, with its node count and how many are chosen."""
        return [
            dict(row)
            for row in self.db.query(
                "select s.*, count(n.id) as nodes, coalesce(sum(n.chosen), 0) as chosen"
                " from stories s left join story_nodes n on n.story_id = s.id"
                " group by s.id order by s.updated_at desc, s.id desc"
            )
        ]

    def update_story(self, story_id: int, settings: str, now: str) -> None:
        with self.db.conn:
            self.db.conn.execute(
                "update stories set settings = ?, updated_at = ? where id = ?",
                [settings, now, story_id],
            )

    def add_story_nodes(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert nodes in one transaction; return them as stored, with their ids."""
        columns = [
            "story_id", "parent_id", "text", "proposed_text", "author", "model", "model_hash",
            "seed", "temperature", "finish_reason", "chosen", "created_at",
        ]  # fmt: skip
        sql = (
            f"insert into story_nodes ({', '.join(columns)})"
            f" values ({', '.join(':' + column for column in columns)})"
        )
        stored = []
        with self.db.conn:
            for row in rows:
                values = {column: row.get(column) for column in columns}
                values["chosen"] = int(values["chosen"] or 0)
                cursor = self.db.conn.execute(sql, values)
                stored.append({"id": cursor.lastrowid, **values})
        return stored

    def story_nodes(self, story_id: int) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self.db.query(
                "select * from story_nodes where story_id = ? order by id", [story_id]
            )
        ]

    def edit_story_node(self, node_id: int, text: str) -> None:
        with self.db.conn:
            self.db.conn.execute("update story_nodes set text = ? where id = ?", [text, node_id])

    def set_story_path(self, story_id: int, path: list[int], now: str) -> None:
        """Mark exactly `path` (root to cursor) chosen and move the cursor to its end, together."""
        with self.db.conn:
            self.db.conn.execute("update story_nodes set chosen = 0 where story_id = ?", [story_id])
            self.db.conn.executemany(
                "update story_nodes set chosen = 1 where id = ? and story_id = ?",
                [(node_id, story_id) for node_id in path],
            )
            self.db.conn.execute(
                "update stories set current_node_id = ?, updated_at = ? where id = ?",
                [path[-1] if path else None, now, story_id],
            )

    def create_conversation(self, row: dict[str, Any]) -> int:
        with self.db.conn:
            cursor = self.db.conn.execute(
                "insert into conversations (model, me, settings, created_at, updated_at)"
                " values (:model, :me, :settings, :created_at, :created_at)",
                row,
            )
        return int(cursor.lastrowid or 0)

    def conversation(self, conversation_id: int) -> dict[str, Any]:
        rows = list(self.db.query("select * from conversations where id = ?", [conversation_id]))
        if not rows:
            raise MarinadeError(
                f"no conversation with id {conversation_id}; see `marinade chat list`"
            )
        return dict(rows[0])

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation, newest first, with its turn count and first user turn."""
        return [
            dict(row)
            for row in self.db.query(
                "select c.*, count(t.id) as turns,"
                " (select text from chat_turns where conversation_id = c.id and speaker = 'user'"
                "  order by id limit 1) as opening"
                " from conversations c left join chat_turns t on t.conversation_id = c.id"
                " group by c.id order by c.updated_at desc, c.id desc"
            )
        ]

    def add_chat_turn(self, row: dict[str, Any]) -> dict[str, Any]:
        columns = [
            "conversation_id", "speaker", "text", "model", "model_hash", "seed", "temperature",
            "finish_reason", "context_turns", "created_at",
        ]  # fmt: skip
        values = {column: row.get(column) for column in columns}
        with self.db.conn:
            cursor = self.db.conn.execute(
                f"insert into chat_turns ({', '.join(columns)})"
                f" values ({', '.join(':' + column for column in columns)})",
                values,
            )
            self.db.conn.execute(
                "update conversations set updated_at = ? where id = ?",
                [values["created_at"], values["conversation_id"]],
            )
        return {"id": cursor.lastrowid, **values}

    def chat_turns(self, conversation_id: int) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self.db.query(
                "select * from chat_turns where conversation_id = ? order by id",
                [conversation_id],
            )
        ]

    # publishing: accounts, the queue, posting state, fetch sources

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
        self, status: str | None = None, account: str | None = None
    ) -> list[dict[str, Any]]:
        """Queue items by due time (then id)."""
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if account:
            where.append("account = ?")
            args.append(account)
        sql = "select * from queue" + (" where " + " and ".join(where) if where else "")
        return [dict(row) for row in self.db.query(sql + " order by due_at, id", args)]

    def queue_item(self, item_id: int) -> dict[str, Any]:
        rows = list(self.db.query("select * from queue where id = ?", [item_id]))
        if not rows:
            raise MarinadeError(f"no queue item with id {item_id}; see `marinade queue list`")
        return dict(rows[0])

    def queued_sample_ids(self, account: str) -> set[int]:
        rows = self.db.query(
            "select sample_id from queue where account = ? and sample_id is not null", [account]
        )
        return {row["sample_id"] for row in rows}

    def update_queue_item(
        self, item_id: int, fields: dict[str, Any], only_status: tuple[str, ...] = ()
    ) -> bool:
        """Set fields of one item (only while its status is one of only_status, if given)."""
        assignments = ", ".join(f"{column} = ?" for column in fields)
        sql = f"update queue set {assignments} where id = ?"
        args = [*fields.values(), item_id]
        if only_status:
            sql += f" and status in ({', '.join('?' * len(only_status))})"
            args += list(only_status)
        with self.db.conn:
            return self.db.conn.execute(sql, args).rowcount > 0

    def delete_queue_item(self, item_id: int) -> None:
        with self.db.conn:
            self.db.conn.execute("delete from queue where id = ?", [item_id])

    def taken_due_times(self, account: str) -> set[str]:
        """Due times already held by the account's unposted items (one post per slot)."""
        rows = self.db.query(
            "select due_at from queue where account = ?"
            " and status in ('queued', 'posting', 'unknown')",
            [account],
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
    ) -> dict[str, Any] | None:
        """Claim the next due item for `worker` in one BEGIN IMMEDIATE transaction, or None.

        The item comes back as it is now (`posting`), with `claimed_from` and
        `sent_at_before`: its status and first send before this claim.

        A claimed item is `posting`: no other process can claim it. Items whose outcome is
        `unknown` are claimed too when their account's platform is in `redo_unknown` (the
        platform de-duplicates), their first send was after `redo_unknown_sent_after` and
        they were tried fewer than `redo_unknown_attempts` times. Items of
        `exclude_accounts` are left alone.
        """
        marks = ", ".join("?" * len(redo_unknown)) or "''"
        excluded = ", ".join("?" * len(exclude_accounts)) or "''"
        with self.transaction():
            rows = list(
                self.db.query(
                    "select q.* from queue q left join accounts a on a.name = q.account"
                    " where q.due_at <= ? and coalesce(q.retry_at, '') <= ? and ("
                    "  q.status = 'queued' or (q.status = 'unknown'"
                    f"  and a.platform in ({marks}) and q.sent_at > ? and q.attempts < ?))"
                    f" and q.account not in ({excluded})"
                    " order by q.due_at, q.id limit 1",
                    [
                        now,
                        now,
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
                "update queue set status = 'posting', claimed_by = ?, claimed_at = ?,"
                " attempts = attempts + 1, sent_at = coalesce(sent_at, ?), updated_at = ?"
                " where id = ? and status = ?",
                [worker, now, now, now, row["id"], row["status"]],
            ).rowcount
            if not claimed:  # cannot happen inside BEGIN IMMEDIATE; kept as the guard
                return None
        before = {"claimed_from": row["status"], "sent_at_before": row["sent_at"]}
        return {**self.queue_item(row["id"]), **before}

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
                    " and status in ('posting', 'unknown')"
                    " and claimed_by = ?",
                    [*fields.values(), item_id, worker],
                ).rowcount
                > 0
            )

    def posting_items(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("select * from queue where status = 'posting'")]

    def mark_unknown(self, item_id: int, claimed_by: str, reason: str, now: str) -> bool:
        """A `posting` item whose claimer is gone becomes `unknown` (never `queued` again)."""
        with self.db.conn:
            return (
                self.db.conn.execute(
                    "update queue set status = 'unknown', error = ?, updated_at = ?"
                    " where id = ? and status = 'posting' and claimed_by = ?",
                    [reason, now, item_id, claimed_by],
                ).rowcount
                > 0
            )

    def posted_items(self, since: str | None = None) -> list[dict[str, Any]]:
        """Posted items, oldest post first (only those posted at or after `since`)."""
        return [
            dict(row)
            for row in self.db.query(
                "select * from queue where status = 'posted' and posted_at >= ?"
                " order by posted_at, id",
                [since or ""],
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

    def experiment_sample_count(self, experiment: str) -> int:
        return int(
            self.db.conn.execute(
                "select count(*) from samples where experiment = ?", [experiment]
            ).fetchone()[0]
        )

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


EXPORT_COLUMNS = (
    *SAMPLE_COLUMNS,
    "rating",
    "edited_text",
    "rating_tags",
    "rating_note",
    "copied_words",  # the experiment's novelty check: the longest stretch copied word for word
    "checks",  # and its automatic pre-filter tags (copied, short, loop, ...)
)

# The blind order: a random cubic polynomial modulo the prime 2^31 - 1, evaluated in SQL so
# that ordering 10,000 samples needs no Python call per row (marinade.review.queue).
BLIND_PRIME = 2_147_483_647


def _unrated_where(experiment: str | None, skip_tags: Sequence[str]) -> tuple[str, list[Any]]:
    """The review queue's conditions on samples `s`: one experiment's, none tagged so."""
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
