"""Co-writing and chat: stories as trees of nodes, conversations as lists of turns.

A story's text is the path of `chosen` nodes from its root to its cursor; the flags and
the cursor are rewritten together in one transaction (`set_story_path`).
"""

from __future__ import annotations

from typing import Any

from marinade.errors import MarinadeError
from marinade.store.db import Database


class WritingStore(Database):
    """Stories and their nodes; conversations and their turns."""

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
