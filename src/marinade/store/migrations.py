"""Schema changes, applied in order on every open (as simonw/llm does).

Each migration is a function named mNNN_what; the `_migrations` table records
which have run. Append new ones at the end; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[Migration] = []


def migration(function: Migration) -> Migration:
    MIGRATIONS.append(function)
    return function


def migrate(db: sqlite_utils.Database) -> None:
    """Apply every migration not yet recorded, each in its own transaction."""
    if "_migrations" not in db.table_names():
        db.table("_migrations").create({"name": str, "applied_at": str}, pk="name")
    applied = {row["name"] for row in db.table("_migrations").rows}
    for function in MIGRATIONS:
        if function.__name__ in applied:
            continue
        with db.conn:
            function(db)
            db.table("_migrations").insert(
                {
                    "name": function.__name__,
                    "applied_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                }
            )


@migration
def m001_samples(db: sqlite_utils.Database) -> None:
    db.table("samples").create(
        {
            "id": int,
            "created_at": str,
            "origin": str,  # "generate", "compare", later "training", "experiment"
            "batch_id": str,  # samples made by one call share it
            "model": str,  # the name the user gave
            "model_hash": str,  # sha256 of the weight files, so a name can't hide a change
            "device": str,
            "quantize": str,
            "prompt": str,
            "text": str,
            "seed": int,
            "temperature": float,
            "top_k": int,
            "top_p": float,
            "max_new_tokens": int,
            "stop": str,
            "new_tokens": int,
            "finish_reason": str,
            "batch_size": int,
        },
        pk="id",
        not_null={"created_at", "origin", "model", "model_hash", "text", "seed", "temperature"},
    )
    db.table("samples").create_index(["model"])
    db.table("samples").create_index(["batch_id"])
