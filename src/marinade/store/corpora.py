"""Corpora, their imports and documents, and full-text search over the documents.

An import is written in short transactions (corpus/importing.py): `start_import` records
it with its `worker` (host:pid), `add_documents` adds a chunk, `finish_import` clears the
worker, and `remove_import` takes a failed one out again. While an import has a worker its
documents are left out of every read here (`finished()`), so a half-done import is never
seen. Documents are de-duplicated by key per corpus (`insert or ignore`); an FTS5 index
kept by triggers serves search.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from marinade.errors import MarinadeError
from marinade.store.db import Database


def finished(documents: str = "documents") -> str:
    """SQL true for a document whose import is finished (an unfinished one has a worker)."""
    return (
        f"coalesce({documents}.import_id, 0) not in"
        " (select id from imports where worker is not null)"
    )


class CorpusStore(Database):
    """Corpora, imports and documents."""

    def start_import(
        self, corpus: str, path: str, format: str, options: str, now: str, worker: str | None = None
    ) -> int:
        """Record an import (inside a transaction); creates the corpus when it is new. With a
        `worker`, its documents stay hidden until `finish_import`."""
        self.db.conn.execute(
            "insert into corpora (name, created_at, updated_at) values (?, ?, ?) "
            "on conflict(name) do update set updated_at = excluded.updated_at",
            [corpus, now, now],
        )
        cursor = self.db.conn.execute(
            "insert into imports (corpus, path, format, options, imported_at, worker)"
            " values (?, ?, ?, ?, ?, ?)",
            [corpus, path, format, options, now, worker],
        )
        return int(cursor.lastrowid or 0)

    def unfinished_imports(self, corpus: str) -> list[dict[str, Any]]:
        """The corpus's imports still running, or left behind by a process that died."""
        return list(
            self.db.query(
                "select id, worker, path from imports where corpus = ? and worker is not null",
                [corpus],
            )
        )

    def remove_import(self, import_id: int) -> None:
        """Take an unfinished import out again: its documents, its record, and its corpus
        when nothing else is in it."""
        with self.transaction():
            row = self.db.conn.execute(
                "select corpus from imports where id = ? and worker is not null", [import_id]
            ).fetchone()
            if row is None:
                return
            self.db.conn.execute("delete from documents where import_id = ?", [import_id])
            self.db.conn.execute("delete from imports where id = ?", [import_id])
            self.db.conn.execute(
                "delete from corpora where name = ?"
                " and not exists (select 1 from imports where corpus = corpora.name)",
                [row[0]],
            )

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
            "update imports set kept = ?, duplicates = ?, skipped = ?, worker = null where id = ?",
            [kept, duplicates, skipped, import_id],
        )

    def corpora(self, name: str | None = None) -> list[dict[str, Any]]:
        """Each corpus (or just `name`) with its document count and date range."""
        return [
            dict(row)
            for row in self.db.query(
                "select c.name, c.created_at, c.updated_at, count(d.id) as documents,"
                " min(d.created_at) as first, max(d.created_at) as last"
                " from corpora c left join documents d on d.corpus = c.name and "
                + finished("d")
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
        return list(
            self.db.table("imports").rows_where(
                "corpus = ? and worker is null", [corpus], order_by="id"
            )
        )

    def documents(self, corpus: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """A corpus's documents, oldest first (undated ones last), in import order within a date."""
        yield from self.db.query(
            "select id, text, created_at, source, record_id, is_reply, is_repost, language"
            f" from documents where corpus = ? and {finished()}"
            " order by created_at is null, created_at, id" + (" limit ?" if limit else ""),
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
            f" and {finished('d')}"
            + (" and d.corpus = ?" if corpus else "")
            + " order by rank limit ?"
        )
        args: list[Any] = [query] + ([corpus] if corpus else []) + [limit]
        return [dict(row) for row in self.db.query(sql, args)]
