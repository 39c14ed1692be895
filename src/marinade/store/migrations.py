"""Schema changes, applied in order on every open (as simonw/llm does).

Each migration is a function named mNNN_what; the `_migrations` table records
which have run. Append new ones at the end; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from marinade.timestamps import now_iso

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
                    "applied_at": now_iso(),
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
def m005_writing(db: sqlite_utils.Database) -> None:
    # co-writing: a story is a tree of nodes; the chosen ones, root to the cursor, are the text
    db.table("stories").create(
        {
            "id": int,
            "title": str,
            "model": str,  # the model it was started with
            "settings": str,  # JSON of the WriteSettings last used
            "current_node_id": int,  # the cursor: the end of the story's text
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"model", "settings", "created_at"},
    )
    db.table("story_nodes").create(
        {
            "id": int,
            "story_id": int,
            "parent_id": int,  # null for the root (the opening text)
            "text": str,  # as used in the story (after the user's edit, if any)
            "proposed_text": str,  # the model's proposal as sampled; null for the user's text
            "author": str,  # "model" or "user"
            "model": str,
            "model_hash": str,
            "seed": int,
            "temperature": float,
            "finish_reason": str,  # "sentence", "end_of_text" or "length"
            "chosen": int,  # 1 when on the path from the root to the cursor
            "created_at": str,
        },
        pk="id",
        not_null={"story_id", "text", "author", "chosen", "created_at"},
        foreign_keys=[("story_id", "stories", "id"), ("parent_id", "story_nodes", "id")],
    )
    db.table("story_nodes").create_index(["story_id", "parent_id"])
    # chat: a conversation and its turns, in the dialog convention of `corpus import --dialog`
    db.table("conversations").create(
        {
            "id": int,
            "model": str,
            "me": str,  # the user's prefix: ">" (the other side, the default) or "-"
            "settings": str,  # JSON of the ChatSettings
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"model", "me", "settings", "created_at"},
    )
    db.table("chat_turns").create(
        {
            "id": int,
            "conversation_id": int,
            "speaker": str,  # "user" or "model"
            "text": str,
            "model": str,
            "model_hash": str,
            "seed": int,
            "temperature": float,
            "finish_reason": str,
            "context_turns": int,  # how many earlier turns fitted the model's context window
            "created_at": str,
        },
        pk="id",
        not_null={"conversation_id", "speaker", "text", "created_at"},
        foreign_keys=[("conversation_id", "conversations", "id")],
    )
    db.table("chat_turns").create_index(["conversation_id"])


@migration
def m006_publishing(db: sqlite_utils.Database) -> None:
    # Where to post. Secrets are never stored: only where to read them (token_env, token_file).
    db.table("accounts").create(
        {
            "name": str,
            "platform": str,  # mastodon, bluesky, x, webhook, outbox
            "settings": str,  # JSON: instance/url/handle, token_env/token_file, hashtag, ...
            "is_default": int,
            "created_at": str,
        },
        pk="name",
    )
    db.table("queue").create(
        {
            "id": int,
            "text": str,  # editable; the account's hashtag is appended when posting
            "sample_id": int,  # the sample it came from (None: written by a person)
            "account": str,
            "due_at": str,  # UTC ISO 8601
            "pinned": int,  # 1: the user chose due_at; 0: a slot (re-slotted by `queue schedule`)
            "status": str,  # queued, posting, posted, failed, unknown
            "attempts": int,  # sends tried (rate limits and 5xx retry with backoff)
            "retry_at": str,  # not before this (backoff)
            "claimed_by": str,  # host:pid of the process posting it
            "claimed_at": str,
            "sent_at": str,  # first send: bounds the idempotency key's lifetime
            "idempotency_key": str,  # the same on every retry of this item
            "remote_id": str,
            "url": str,
            "error": str,  # why it failed (or why its outcome is unknown)
            "posted_text": str,  # exactly what was sent
            "posted_at": str,
            "extra": str,  # JSON: spreadsheet columns marinade does not know, kept for export
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"text", "account", "due_at", "status", "idempotency_key", "created_at"},
    )
    db.table("queue").create_index(["status", "due_at"])
    db.table("queue").create_index(["account"])
    db.table("queue").create_index(["sample_id"])
    # Small settings and marks: posting slots and timezone, the last retrain's time per run.
    db.table("publishing_state").create({"key": str, "value": str}, pk="key")
    # Accounts whose public posts `corpus fetch` pulls into a corpus, with where it stopped.
    db.table("fetch_sources").create(
        {
            "platform": str,
            "account": str,  # @user@instance or a Bluesky handle
            "corpus": str,
            "base_url": str,
            "cursor": str,  # Mastodon: newest status id seen; Bluesky: newest post's indexedAt
            "fetched_at": str,
        },
        pk=("platform", "account", "corpus"),
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


@migration
def m008_run_corpus_split(db: sqlite_utils.Database) -> None:
    # JSON {corpus: {split, documents, segments and tokens trained on and held out}};
    # null for runs trained before it was recorded.
    db.table("runs").add_column("corpus_split", str)


@migration
def m009_sample_sentence_cut(db: sqlite_utils.Database) -> None:
    # how whole sentences ended the sample: "whole" (at a sentence end as sampled),
    # "extended" (sampled past max_new_tokens to reach one), "trimmed" (cut back to its
    # last one); null when whole sentences were off, and for samples from before.
    db.table("samples").add_column("sentence_cut", str)


@migration
def m010_run_deterministic(db: sqlite_utils.Database) -> None:
    # 1 where the same seed and settings are known to give the same run (a CPU: measured),
    # 0 where that has not been shown (a GPU); null for runs from before.
    db.table("runs").add_column("deterministic", int)


@migration
def m011_cell_drops(db: sqlite_utils.Database) -> None:
    # seeds of an experiment cell whose sample whole sentences dropped (no sentence end):
    # a resumed or repeated `experiment run` does not draw them again
    db.execute(
        "create table cell_drops (experiment text not null, recipe text not null,"
        " temperature real not null, top_p real, prompt text, seed integer not null)"
    )
    db.execute("create index cell_drops_cell on cell_drops (experiment, recipe, temperature)")


@migration
def m012_import_worker(db: sqlite_utils.Database) -> None:
    # host:pid of the process still importing (a big import commits in chunks); null once
    # the import is finished, and for every import from before. Documents of an import
    # with a worker are not shown, and a worker that is gone had its import removed.
    db.table("imports").add_column("worker", str)


@migration
def m013_sheet_links(db: sqlite_utils.Database) -> None:
    # `queue sync`: each queue item's row in a Google Sheet ("SPREADSHEET#gid") as the
    # last sync left both sides: state "linked" (base: its text, account, due_at, extra
    # as the sheet then held them), "removed" (its row was deleted; the item is kept and
    # not written again) or "dropped" (the item was dropped here; its row says so)
    db.execute(
        "create table sheet_links (sheet text not null, item_id integer not null,"
        " state text not null, base text, primary key (sheet, item_id))"
    )


@migration
def m015_rating_evals(db: sqlite_utils.Database) -> None:
    # a ratings phase (training/ratings.py) measured on its held-out ratings at each
    # evaluation: how often the model prefers an accepted sample over a rejected one
    # (by log-prob ratio to the reference) and the KL from the reference
    db.table("rating_evals").create(
        {
            "run": str,
            "step": int,
            "phase": int,  # the ratings phase measured (1-based)
            "source": str,  # ratings or ratings@EXPERIMENT
            "accuracy": float,  # null: the held-out part lacks accepted or rejected samples
            "kl": float,
            "pairs": int,  # accepted x rejected held-out pairs the accuracy counts
        },
        pk=("run", "step", "phase"),
        foreign_keys=[("run", "runs", "name")],
    )


@migration
def m016_dtype(db: sqlite_utils.Database) -> None:
    # what a sample was computed in (float32 or bfloat16; marinade.precision), beside its
    # batch size: both change a sample's text for the same seed. A run's training dtype
    # (bf16 autocast keeps float32 master weights), kept by resume. Null: from before, float32.
    db.table("samples").add_column("dtype", str)
    db.table("runs").add_column("dtype", str)


@migration
def m017_batch_dropped(db: sqlite_utils.Database) -> None:
    # the rows of a sample's batch that whole sentences dropped (not stored), as JSON
    # [[position, seed, temperature], ...]: `samples reproduce` puts them back, since a
    # row's text depends on its companions. Null: none dropped, or from before.
    db.table("samples").add_column("batch_dropped", str)
