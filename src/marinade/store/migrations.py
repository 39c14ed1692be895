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


@migration
def m002_corpora(db: sqlite_utils.Database) -> None:
    db.table("corpora").create(
        {"name": str, "created_at": str, "updated_at": str},
        pk="name",
    )
    db.table("imports").create(
        {
            "id": int,
            "corpus": str,
            "path": str,
            "format": str,
            "options": str,  # JSON of the ImportOptions used
            "imported_at": str,
            "kept": int,
            "duplicates": int,
            "skipped": str,  # JSON {reason: count}
        },
        pk="id",
        foreign_keys=[("corpus", "corpora", "name")],
    )
    db.table("documents").create(
        {
            "id": int,
            "corpus": str,
            "import_id": int,
            "text": str,
            "created_at": str,
            "source": str,
            "record_id": str,
            "is_reply": int,
            "is_repost": int,
            "language": str,
            "dedup_key": str,  # same for texts differing only in whitespace and case
        },
        pk="id",
        not_null={"corpus", "text", "source", "dedup_key"},
        foreign_keys=[("corpus", "corpora", "name"), ("import_id", "imports", "id")],
    )
    db.table("documents").create_index(["corpus", "dedup_key"], unique=True)
    # full-text search over documents, kept in step by triggers
    db.table("documents").enable_fts(["text"], create_triggers=True, tokenize="porter")


@migration
def m003_runs(db: sqlite_utils.Database) -> None:
    db.table("runs").create(
        {
            "name": str,
            "model": str,  # the base model (or RUN@PHASE it started from)
            "recipe": str,  # JSON of the resolved recipe
            "status": str,  # running, interrupted, failed, finished
            "steps_done": int,
            "total_steps": int,
            "corpus_versions": str,  # JSON {corpus: version}
            "message": str,  # why it failed or stopped
            "created_at": str,
            "updated_at": str,
        },
        pk="name",
    )
    db.table("evals").create(
        {"run": str, "step": int, "corpus": str, "loss": float, "phase": int},
        pk=("run", "step", "corpus"),
        foreign_keys=[("run", "runs", "name")],
    )
    db.table("checkpoints").create(
        {"run": str, "name": str, "step": int, "phase": int, "path": str, "saved_at": str},
        pk=("run", "name"),
        foreign_keys=[("run", "runs", "name")],
    )


@migration
def m004_curation(db: sqlite_utils.Database) -> None:
    db.table("samples").add_column("experiment", str)  # the experiment it was sampled for
    db.table("samples").add_column("recipe", str)  # the experiment's recipe (its cell's row)
    db.table("samples").create_index(["experiment"])
    db.table("experiments").create(
        {"name": str, "spec": str, "status": str, "created_at": str, "updated_at": str},
        pk="name",
    )
    db.table("ratings").create(
        {
            "sample_id": int,
            "rating": str,  # accept or reject
            "tags": str,  # JSON list the rater gave
            "note": str,
            "edited_text": str,  # the rater's edit, kept beside the original text
            "rated_at": str,
        },
        pk="sample_id",
        foreign_keys=[("sample_id", "samples", "id")],
    )
    db.table("sample_checks").create(
        {
            "sample_id": int,
            "copied_words": int,  # longest stretch copied word for word from training text
            "closest_document_id": int,
            "tags": str,  # JSON list of automatic pre-filter tags: copied, short, loop, ...
        },
        pk="sample_id",
        foreign_keys=[("sample_id", "samples", "id")],
    )
    db.table("ab_votes").create(
        {
            "id": int,
            "left_sample_id": int,
            "right_sample_id": int,
            "winner_sample_id": int,
            "voted_at": str,
        },
        pk="id",
    )


@migration
def m007_review(db: sqlite_utils.Database) -> None:
    # What the review page did, so `u` can undo it and skipped samples can come back later.
    db.table("review_actions").create(
        {
            "id": int,
            "session": str,  # one page load of the review page
            "sample_id": int,
            "action": str,  # accept, reject or skip
            "previous": str,  # JSON of the ratings row this action replaced, or null
            "acted_at": str,
        },
        pk="id",
        not_null={"session", "sample_id", "action", "acted_at"},
        foreign_keys=[("sample_id", "samples", "id")],
    )
    db.table("review_actions").create_index(["session"])
    db.table("review_actions").create_index(["sample_id"])
    # A/B pairs: samples with the same seed and temperature, found without a full self-join.
    db.table("samples").create_index(["seed", "temperature"])
    db.table("ab_votes").create_index(["left_sample_id", "right_sample_id"])
