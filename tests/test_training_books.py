"""A book trains as it is: held out by span, said and recorded per corpus; runs trained
with whole documents held out resume as they were; a pipe gets progress lines."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import json_lines
from marinade.home import open_home
from marinade.training.loop import train
from marinade.training.recipe import build_recipe

SENTENCES = [
    "The lamplighter walked the quay at dusk and the harbour was quiet.",
    "Rain fell on the tin roofs of the fish market, and the gulls went home.",
    "I like tea and toast, and the sound of rain on the roof.",
    "Small boats knocked together in the dark like wooden bells.",
]


def book_text(paragraphs: int = 60) -> str:
    chapters = []
    for p in range(paragraphs):
        if p % 15 == 0:
            chapters.append(f"CHAPTER {p // 15 + 1}")
        chapters.append(" ".join(SENTENCES[(p + i) % 4] for i in range(3)))
    return "\n\n".join(chapters) + "\n"


def add_texts(store, corpus: str, texts: list[str]) -> None:
    """Documents as an import stores them (the plain-text importer is tested elsewhere)."""
    import hashlib

    with store.transaction():
        import_id = store.start_import(corpus, "test", "plain", "{}", "2026-01-01T00:00:00Z")
        store.add_documents(
            [
                {
                    "corpus": corpus,
                    "import_id": import_id,
                    "text": text,
                    "created_at": None,
                    "source": "test",
                    "record_id": str(i),
                    "is_reply": 0,
                    "is_repost": 0,
                    "language": None,
                    "dedup_key": hashlib.sha256(text.encode()).hexdigest(),
                }
                for i, text in enumerate(texts)
            ]
        )


@pytest.fixture
def book_home(tmp_path, store):
    add_texts(store, "book", [book_text()])
    add_texts(store, "posts", [f"{s} Number {i}." for i, s in enumerate(SENTENCES * 5)])
    return open_home(tmp_path / "home")


FLAGS = ["--batch-size", "2", "--block-size", "32", "--warmup", "1", "--eval-every", "2"]


def test_a_single_book_trains_and_the_run_says_what_it_held_out(cli, book_home, tiny_model):
    result = cli("train", "bookrun", "--model", str(tiny_model), "--phase", "book:4", *FLAGS)
    assert result.exit_code == 0, result.stderr
    assert "run bookrun: finished at step 4/4" in result.stdout
    assert "book: 1 documents in" in result.stderr and "held out (" in result.stderr
    shown = json.loads(cli("runs", "show", "bookrun", "--json").stdout)
    book = shown["corpora"]["book"]
    assert book["split"] == "spans" and book["documents"] == 1
    assert book["held_out_tokens"] >= 32  # at least one evaluation block
    assert book["train_tokens"] > 5 * book["held_out_tokens"]
    assert shown["settings"]["held_out_split"] == "spans"
    assert shown["deterministic"] is True  # trained on a CPU
    assert "book: 1 documents in" in cli("runs", "show", "bookrun").stdout


def test_a_corpus_too_small_names_its_tokens_and_changes_nothing(cli, store, tiny_model):
    add_texts(store, "short", ["Tea."])
    result = cli("train", "tiny", "--model", str(tiny_model), "--phase", "short:2", *FLAGS)
    assert result.exit_code == 1
    assert "corpus short has" in result.stderr and "tokens; training needs at least 64" in (
        result.stderr
    )
    assert store.run("tiny") is None
    assert [c["name"] for c in store.corpora()] == ["short"]


def recipe(tiny_model, name: str, **settings):
    values = {"batch_size": 2, "block_size": 32, "warmup": 2, "eval_every": 3, **settings}
    return build_recipe(name, str(tiny_model), ["posts:6"], None, None, values)


def forget_split(store, name: str) -> None:
    """Make a run look as runs trained before spans were: no held_out_split, no record."""
    row = store.run(name)
    stored = json.loads(row.recipe)
    del stored["settings"]["held_out_split"]
    store.save_run(replace(row, recipe=json.dumps(stored), corpus_split=None))


def test_a_run_from_before_spans_resumes_and_evaluates_as_it_did(store, book_home, tiny_model):
    straight = train(store, book_home, recipe(tiny_model, "straight", held_out_split="documents"))
    assert straight.status == "finished"

    def stop_at_four(report):
        if report.step == 4:
            raise KeyboardInterrupt

    old = recipe(tiny_model, "old", held_out_split="documents")
    with pytest.raises(KeyboardInterrupt):
        train(store, book_home, old, on_step=stop_at_four)
    forget_split(store, "old")
    resumed = train(store, book_home, recipe(tiny_model, "old"), resume=True)
    assert resumed.status == "finished"
    assert json.loads(resumed.corpus_split)["posts"]["split"] == "documents"
    losses = {(e.step, e.corpus): e.loss for e in store.evals("straight")}
    again = {(e.step, e.corpus): e.loss for e in store.evals("old")}
    assert again == pytest.approx(losses, abs=1e-6)
    # and a new run of the same recipe holds out by span: another held-out part
    new = train(store, book_home, recipe(tiny_model, "new"))
    assert json.loads(new.corpus_split)["posts"]["split"] == "spans"
    assert {e.loss for e in store.evals("new") if e.step == 0} != {
        e.loss for e in store.evals("straight") if e.step == 0
    }


def test_train_in_a_pipe_prints_progress_lines(cli, book_home, tiny_model, monkeypatch):
    monkeypatch.setenv("MARINADE_PROGRESS_SECONDS", "0")
    result = cli("train", "piped", "--model", str(tiny_model), "--phase", "posts:3", *FLAGS)
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("piped phase 1/1")]
    assert [line.split("  ")[1] for line in lines][:3] == ["1/3 (33%)", "2/3 (67%)", "3/3 (100%)"]
    assert all("loss " in line and "tok/s" in line for line in lines)
    assert json_lines(cli("runs", "list", "--json").stdout)[0]["status"] == "finished"


def test_resume_takes_watching_flags_and_refuses_ones_that_change_training(
    cli, store, book_home, tiny_model
):
    args = ["--model", str(tiny_model), "--phase", "posts:6", *FLAGS, "--save-every", "1"]
    assert cli("train", "straight", *args).exit_code == 0
    stopped = cli("train", "stopped", *args, "--max-minutes", "0.00001")  # stops at step 1
    assert stopped.exit_code == 0, stopped.stderr
    assert store.run("stopped").status == "interrupted"
    assert store.run("stopped").steps_done == 1
    # a flag that changes training: one line naming it, nothing changed
    refused = cli("train", "stopped", "--resume", "--lr", "1e-3")
    assert refused.exit_code == 1
    assert "--lr would change how run stopped trains (it trains with 5e-05)" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert store.run("stopped").steps_done == 1
    # repeating what it trains with is fine; --max-minutes applies to the resumed part
    again = cli("train", "stopped", "--resume", "--block-size", "32", "--max-minutes", "0.00001")
    assert again.exit_code == 0, again.stderr
    assert store.run("stopped").steps_done == 2
    # a time limit is the process's own: without one, the rest trains
    done = cli("train", "stopped", "--resume", "--eval-every", "3")
    assert done.exit_code == 0, done.stderr
    assert store.run("stopped").status == "finished"
    losses = {e.corpus: e.loss for e in store.evals("straight") if e.step == 6}
    again_losses = {e.corpus: e.loss for e in store.evals("stopped") if e.step == 6}
    assert again_losses == pytest.approx(losses, abs=1e-6)
    stored = json.loads(store.run("stopped").recipe)["settings"]
    assert stored["max_minutes"] == 0.00001 and stored["eval_every"] == 2  # the run's own


def test_training_prints_marinades_lines_only(book_home, home_dir, tiny_model):
    """No tqdm bar of transformers ("Writing model shards"), no FutureWarning, no
    peft note: a real process's stderr, where warnings go."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "train", "quiet"]
    command += ["--model", str(tiny_model), "--phase", "posts:2", "--method", "lora", *FLAGS]
    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    for noise in ("Writing model shards", "Warning", "warnings.warn", "it/s]"):
        assert noise not in finished.stderr, finished.stderr
    assert "run quiet: finished at step 2/2" in finished.stdout
