"""Training end to end on a tiny GPT-2: phases, held-out loss per corpus, exact resume."""

from __future__ import annotations

import json

import pytest

from marinade.corpus.document import ImportOptions
from marinade.corpus.importing import import_corpus
from marinade.errors import MarinadeError
from marinade.home import open_home
from marinade.models import load_model
from marinade.training.loop import train
from marinade.training.recipe import build_recipe

ADMIRED = [
    f"The lamplighter walked the quay at dusk, lamp number {i}, and the harbour was quiet."
    for i in range(30)
]
MINE = [f"I like tea and toast, and rain on the roof number {i}." for i in range(30)]


@pytest.fixture
def trained_home(tmp_path, store):
    home = open_home(tmp_path / "home")
    for name, texts in (("admired", ADMIRED), ("mine", MINE)):
        folder = tmp_path / name
        folder.mkdir()
        for i, text in enumerate(texts):
            (folder / f"{i}.txt").write_text(text)
        import_corpus(store, folder, name, options=ImportOptions())
    return home


def recipe(tiny_model, name="run", phases=("admired:6", "mine:4"), **flags):
    settings = {
        "batch_size": 2,
        "block_size": 32,
        "warmup": 2,
        "eval_every": 3,
        "save_every": 2,
        **flags,
    }
    return build_recipe(name, str(tiny_model), list(phases), None, None, settings)


def test_phases_train_and_each_corpus_is_evaluated(store, trained_home, tiny_model):
    record = train(store, trained_home, recipe(tiny_model))
    assert (record["status"], record["steps_done"], record["total_steps"]) == ("finished", 10, 10)
    evals = store.evals("run")
    steps = sorted({e["step"] for e in evals})
    assert steps == [0, 3, 6, 9, 10]  # base model at 0, every 3, and each phase's end
    assert {e["corpus"] for e in evals} == {"admired", "mine"}
    loss = {(e["step"], e["corpus"]): e["loss"] for e in evals}
    assert loss[(6, "admired")] < loss[(0, "admired")]  # marinated
    assert loss[(10, "mine")] < loss[(6, "mine")]  # seared
    names = {c["name"] for c in store.checkpoints("run")}
    assert names == {"last", "phase-1", "phase-2"}
    # a run is a model: its last checkpoint and a phase's end load by name
    assert load_model("run", trained_home).model is not None
    assert (
        load_model("run@1", trained_home).weights_hash
        != load_model("run", trained_home).weights_hash
    )
    with pytest.raises(MarinadeError, match="no checkpoint phase-3"):
        load_model("run@3", trained_home)


def test_interrupted_run_resumes_to_the_same_final_loss(store, trained_home, tiny_model):
    straight = train(store, trained_home, recipe(tiny_model, name="straight"))
    assert straight["status"] == "finished"

    def stop_at_five(report):
        if report.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            store,
            trained_home,
            recipe(tiny_model, name="stopped", save_every=0),
            on_step=stop_at_five,
        )
    assert store.run("stopped")["status"] == "interrupted"
    assert store.run("stopped")["steps_done"] == 5
    resumed = train(store, trained_home, recipe(tiny_model, name="stopped"), resume=True)
    assert resumed["status"] == "finished"
    final = {e["corpus"]: e["loss"] for e in store.evals("straight") if e["step"] == 10}
    again = {e["corpus"]: e["loss"] for e in store.evals("stopped") if e["step"] == 10}
    assert final == pytest.approx(again, abs=1e-6)
    with pytest.raises(MarinadeError, match="is finished"):
        train(store, trained_home, recipe(tiny_model, name="stopped"), resume=True)


def test_lora_run_and_mixture(store, trained_home, tiny_model):
    record = train(
        store,
        trained_home,
        recipe(
            tiny_model,
            name="lora",
            phases=("admired=0.5,mine=0.5:4",),
            method="lora",
            lora_targets=("c_attn",),
        ),
    )
    assert record["status"] == "finished"
    assert json.loads(record["recipe"])["settings"]["method"] == "lora"
    merged = load_model("lora", trained_home)
    assert merged.model.config.n_layer == 2


def test_bad_runs(store, trained_home, tiny_model):
    with pytest.raises(MarinadeError, match="no corpus named 'nope'"):
        train(store, trained_home, recipe(tiny_model, name="bad", phases=("nope:3",)))
    with pytest.raises(MarinadeError, match="context window"):
        train(store, trained_home, recipe(tiny_model, name="bad2", block_size=4096))
    train(store, trained_home, recipe(tiny_model, name="dup", phases=("mine:1",)))
    with pytest.raises(MarinadeError, match="exists"):
        train(store, trained_home, recipe(tiny_model, name="dup", phases=("mine:1",)))
