"""`retrain`: posted model-written items and accepted samples become a corpus marked as
model-written, and the recipe runs again as a new run next to the old one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conftest import json_lines
from marinade.errors import MarinadeError
from marinade.loop_back.retrain import import_model_written, next_run_name
from marinade.publishing.accounts import add_account
from marinade.publishing.posting import post_due
from marinade.publishing.queue import Entry, add_to_queue

TEXTS = [f"The lamplighter lit lamp number {i} and the harbour was quiet." for i in range(12)]


def samples(store, texts):
    rows = store.add_samples(
        [
            {
                "created_at": "2026-11-01T00:00:00+00:00",
                "origin": "generate",
                "model": "tiny",
                "model_hash": "abc",
                "text": text,
                "seed": i,
                "temperature": 0.8,
            }
            for i, text in enumerate(texts)
        ]
    )
    return [row["id"] for row in rows]


@pytest.fixture
def posted(store, tmp_path):
    add_account(store, "box", "outbox", {"path": str(tmp_path / "out.jsonl"), "hashtag": "#bot"})
    ids = samples(store, TEXTS)
    for sample_id in ids[:8]:
        store.rate_sample(sample_id, "accept", now="2026-11-02T00:00:00+00:00")
    add_to_queue(store, [Entry(TEXTS[i], ids[i]) for i in range(4)])
    add_to_queue(store, [Entry("written by a person")])
    post_due(store)
    return ids


def test_model_written_text_is_imported_once_and_marked(store, posted):
    report, posted_count, accepted, own = import_model_written(store, "tweetbot")
    assert own is None
    assert (posted_count, accepted, report.kept) == (4, 8, 8)  # posted ones are accepted too
    sources = {d["source"] for d in store.documents("accepted")}
    assert sources == {"marinade:posted", "marinade:accepted"}
    texts = [d["text"] for d in store.documents("accepted")]
    assert "written by a person" not in texts and not any("#bot" in t for t in texts)
    again, posted_count, _, _ = import_model_written(store, "tweetbot")
    assert (posted_count, again.kept) == (0, 0)  # nothing posted since; accepted de-duplicated


def test_your_own_posted_texts_go_to_the_corpus_you_name(store, posted):
    import_model_written(store, "tweetbot")  # without it first: they are not lost
    _, _, _, own = import_model_written(store, "tweetbot", own_corpus="mine")
    assert own.kept == 1
    [document] = store.documents("mine")
    assert (document["text"], document["source"]) == ("written by a person", "marinade:own-post")
    assert "written by a person" not in [d["text"] for d in store.documents("accepted")]
    add_to_queue(store, [Entry("written later")])
    post_due(store)
    _, _, _, own = import_model_written(store, "tweetbot", own_corpus="mine")
    assert own.kept == 1 and own.read == 1  # only the new one
    with pytest.raises(MarinadeError, match="name another"):
        import_model_written(store, "tweetbot", own_corpus="accepted")


def test_run_names_count_up():
    class Runs:
        def __init__(self, names):
            self.names = names

        def runs(self):
            return [SimpleNamespace(name=n) for n in self.names]  # as Run records

    assert next_run_name(Runs([]), "bot") == "bot"
    assert next_run_name(Runs(["bot"]), "bot") == "bot-2"
    assert next_run_name(Runs(["bot", "bot-2", "bot-7", "bottle"]), "bot") == "bot-8"


def test_retrain_runs_the_recipe_as_a_new_run_keeping_the_old(
    cli, store, posted, tiny_model, tmp_path
):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f'model = "{tiny_model}"\nphases = ["accepted:3"]\n'
        "[training]\nbatch_size = 2\nblock_size = 16\nwarmup = 1\neval_every = 3\nsave_every = 3\n"
    )
    first = cli("retrain", "tweetbot", "--recipe", str(recipe), "--json")
    assert first.exit_code == 0, first.output
    [report] = json_lines(first.stdout)
    assert (report["run"], report["status"], report["steps_done"]) == ("tweetbot", "finished", 3)
    assert report["kept"] == 8
    second = json_lines(cli("retrain", "tweetbot", "--recipe", str(recipe), "--json").stdout)
    assert second[0]["run"] == "tweetbot-2" and second[0]["kept"] == 0
    assert {run.name for run in store.runs()} == {"tweetbot", "tweetbot-2"}


def test_a_bad_recipe_changes_nothing(cli, store, posted, tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('phases = ["accepted:0"]\n')
    result = cli("retrain", "tweetbot", "--recipe", str(recipe))
    assert result.exit_code == 1 and "bad phase 'accepted:0'" in result.stderr
    with pytest.raises(MarinadeError):
        store.corpus("accepted")


def test_the_scheduler_retrains_on_its_period(store, posted, tiny_model, tmp_path):
    from datetime import datetime, timedelta, timezone

    from marinade.home import open_home
    from marinade.publishing.scheduler import Plan, scheduler_pass

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f'model = "{tiny_model}"\nphases = ["accepted:2"]\n'
        "[training]\nbatch_size = 2\nblock_size = 16\nwarmup = 1\neval_every = 2\nsave_every = 2\n"
    )
    plan = Plan(
        retrain_name="bot",
        retrain_recipe=recipe,
        retrain_every=timedelta(days=7),
        retrain_own_corpus="mine",
    )
    home = open_home(store.path.parent)
    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    first = scheduler_pass(store, home, plan, now=lambda: start)
    assert first.errors == [] and first.retrained.run == "bot"
    assert first.retrained.own_report.kept == 1  # "written by a person"
    next_day = start + timedelta(days=1)
    assert scheduler_pass(store, home, plan, now=lambda: next_day).retrained is None
    next_week = start + timedelta(days=7)
    assert scheduler_pass(store, home, plan, now=lambda: next_week).retrained.run == "bot-2"
    assert {run.name for run in store.runs()} == {"bot", "bot-2"}
