"""Training end to end on a tiny GPT-2: phases, held-out loss per corpus, exact resume."""

from __future__ import annotations

import json

import pytest

from conftest import json_lines, train_in_two_processes
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
    assert (record.status, record.steps_done, record.total_steps) == ("finished", 10, 10)
    evals = store.evals("run")
    steps = sorted({e.step for e in evals})
    assert steps == [0, 3, 6, 9, 10]  # base model at 0, every 3, and each phase's end
    assert {e.corpus for e in evals} == {"admired", "mine"}
    loss = {(e.step, e.corpus): e.loss for e in evals}
    assert loss[(6, "admired")] < loss[(0, "admired")]  # marinated
    assert loss[(10, "mine")] < loss[(6, "mine")]  # seared
    names = {c.name for c in store.checkpoints("run")}
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
    assert straight.status == "finished"

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
    assert store.run("stopped").status == "interrupted"
    assert store.run("stopped").steps_done == 5
    resumed = train(store, trained_home, recipe(tiny_model, name="stopped"), resume=True)
    assert resumed.status == "finished"
    final = {e.corpus: e.loss for e in store.evals("straight") if e.step == 10}
    again = {e.corpus: e.loss for e in store.evals("stopped") if e.step == 10}
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
    assert record.status == "finished"
    assert json.loads(record.recipe)["settings"]["method"] == "lora"
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


def test_train_and_runs_from_the_cli(cli, trained_home, tiny_model, tmp_path):
    base = ["--batch-size", "2", "--block-size", "32", "--warmup", "1", "--eval-every", "2"]
    result = cli(
        "train",
        "clirun",
        "--model",
        str(tiny_model),
        "--phase",
        "admired:3",
        "--phase",
        "mine:2:1e-4",
        *base,
    )
    assert result.exit_code == 0, result.stderr
    assert "run clirun: finished at step 5/5" in result.stdout
    runs = json_lines(cli("runs", "list", "--json").stdout)
    assert [(r["name"], r["status"]) for r in runs] == [("clirun", "finished")]
    shown = json.loads(cli("runs", "show", "clirun", "--json").stdout)
    assert [(p["corpus"], p["steps"], p["steps_done"]) for p in shown["phases"]] == [
        ("admired", 3, 3),
        ("mine", 2, 2),
    ]
    assert {(e["step"], e["corpus"]) for e in shown["evals"]} >= {(0, "admired"), (5, "mine")}
    assert "held-out loss" in cli("runs", "show", "clirun").stdout
    png = tmp_path / "loss.png"
    assert cli("runs", "plot", "clirun", "-o", str(png)).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exported = tmp_path / "exported"
    assert cli("runs", "export", "clirun@1", str(exported)).exit_code == 0
    assert (exported / "config.json").exists()
    generated = json_lines(
        cli(
            "generate",
            "The lamp",
            "--model",
            "clirun",
            "--seed",
            "1",
            "--max-new-tokens",
            "5",
            "--json",
        ).stdout
    )
    assert generated[0]["model"] == "clirun"
    compared = cli(
        "compare",
        "The",
        "--model",
        str(tiny_model),
        "--model",
        "clirun",
        "--json",
        "--max-new-tokens",
        "4",
        "--seed",
        "3",
    )
    assert compared.exit_code == 0, compared.stderr
    # a second run starting from phase 1 of the first
    result = cli("train", "fromrun", "--from", "clirun@1", "--phase", "mine:1", *base)
    assert result.exit_code == 0, result.stderr
    assert cli("runs", "rm", "fromrun", "--yes").exit_code == 0
    assert [r["name"] for r in json_lines(cli("runs", "list", "--json").stdout)] == ["clirun"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--phase", "nope:3"), "no corpus named 'nope'"),
        (("--phase", "mine:0"), "mine:0"),
        (("--phase", "admired=0.5,mine=0.4:3"), "add up"),
        (("--phase", "mine:2", "--from", "clirun@7"), "clirun"),
        (("--phase", "mine:2", "--block-size", "100000"), "context window"),
    ],
)
def test_bad_training_requests(cli, trained_home, tiny_model, store, args, message):
    result = cli("train", "badrun", "--model", str(tiny_model), "--block-size", "32", *args)
    assert result.exit_code == 1, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert store.run("badrun") is None


def test_resume_a_finished_run_is_refused(cli, trained_home, tiny_model):
    args = (
        "--model",
        str(tiny_model),
        "--phase",
        "mine:1",
        "--batch-size",
        "2",
        "--block-size",
        "16",
    )
    assert cli("train", "done", *args).exit_code == 0
    result = cli("train", "done", "--resume")
    assert result.exit_code == 1 and "is finished" in result.stderr


def test_samples_taken_during_training_are_logged(store, trained_home, tiny_model):
    train(
        store,
        trained_home,
        recipe(
            tiny_model,
            name="sampled",
            phases=("mine:4",),
            sample_every=2,
            sample_prompts=("I like",),
        ),
    )
    rows = [row for row in store.samples() if row["origin"] == "training"]
    assert sorted(row["model"] for row in rows) == ["sampled@step2", "sampled@step4"]
    assert {row["prompt"] for row in rows} == {"I like"}


def test_a_full_disk_while_saving_leaves_no_broken_checkpoint(
    store, trained_home, tiny_model, monkeypatch
):
    import errno

    import marinade.training.loop as loop

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    train(store, trained_home, recipe(tiny_model, name="warm", phases=("mine:1",)))  # caches tokens
    monkeypatch.setattr(loop.torch, "save", no_space)
    with pytest.raises(MarinadeError, match="cannot save checkpoint .*No space left"):
        train(store, trained_home, recipe(tiny_model, name="full", phases=("mine:2",)))
    checkpoints = trained_home.runs / "full" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == []  # the partial folder is gone
    assert store.run("full").status == "failed"
    assert store.checkpoints("full") == []


def test_two_processes_train_like_one_with_twice_the_accumulation(
    cli, store, trained_home, tiny_model, home_dir
):
    """`accelerate launch` starts processes the way torchrun does; two of them, each with
    its own micro-batches and gradients averaged, must equal one process accumulating
    the same two micro-batches, and only one of them may write the store."""
    flags = ["--model", str(tiny_model), "--phase", "admired:4", "--phase", "mine:2"]
    flags += ["--batch-size", "2", "--block-size", "32", "--warmup", "2", "--eval-every", "3"]
    finished = train_in_two_processes(home_dir, "together", flags)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("run together: finished") == 1
    result = cli("train", "alone", *flags, "--grad-accum", "2")
    assert result.exit_code == 0, result.stderr

    together = store.run("together")
    assert (together.status, together.steps_done) == ("finished", 6)
    assert store.run("alone").status == "finished"
    final = {e.corpus: e.loss for e in store.evals("alone") if e.step == 6}
    again = {e.corpus: e.loss for e in store.evals("together") if e.step == 6}
    # the same up to float32 summation order (one thread each against two): 1.2e-4 apart
    # once the held-out part was measured on up to 32 blocks instead of 16
    assert again == pytest.approx(final, abs=3e-4)
    assert {c.name for c in store.checkpoints("together")} == {"last", "phase-1", "phase-2"}
    assert json.loads(together.recipe)["settings"]["batch_size"] == 2


def test_ctrl_c_in_a_real_process_saves_a_checkpoint(store, trained_home, tiny_model, home_dir):
    """SIGINT (what Ctrl-C sends) to a running `marinade train`: it saves `last` at the
    step it reached, records the run as interrupted and exits 130 with a one-line hint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "train", "stopped"]
    command += ["--model", str(tiny_model), "--phase", "admired:100000", "--batch-size", "2"]
    command += ["--block-size", "32", "--eval-every", "0", "--save-every", "0"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(  # SIGINT as a terminal has it, even under a background `make`
        command,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while (run.steps_done if (run := store.run("stopped")) else 0) < 3:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-2000:]
    said = " ".join(stderr.split())  # rich folds the line at 80 columns
    assert "checkpoint saved" in said and "marinade train stopped --resume" in said
    run = store.run("stopped")
    assert run.status == "interrupted" and 3 <= run.steps_done < 100000
    [last] = [c for c in store.checkpoints("stopped") if c.name == "last"]
    assert last.step == run.steps_done


def test_a_first_run_picks_its_steps_and_resumes_with_them(cli, trained_home, tiny_model, store):
    """`--phase mine` alone: the steps come from the corpus's size, printed and stored;
    an interrupted automatic run resumes with the steps it picked."""
    from marinade.training.recipe import automatic_steps

    args = ["--model", str(tiny_model), "--phase", "mine", "--batch-size", "2"]
    result = cli("train", "first", *args, "--block-size", "32", "--eval-every", "0")
    assert result.exit_code == 0, result.stderr
    tokens = json.loads(store.run("first").corpus_split)["mine"]["train_tokens"]
    steps = automatic_steps(tokens, store_settings(store, "first"))
    assert steps >= 30  # a small corpus: the floor
    assert f"phase 1 (mine:auto): {steps} steps, about" in result.stderr
    assert f"run first: finished at step {steps}/{steps}" in result.stdout
    shown = json.loads(cli("runs", "show", "first", "--json").stdout)
    assert shown["phases"][0]["steps"] == steps
    assert shown["phases"][0]["auto"] is True
    settings = shown["settings"]
    assert (settings["method"], settings["lr"], settings["warmup"]) == ("full", 5e-5, None)
    assert "(picked from the corpus's size)" in cli("runs", "show", "first").stdout

    def stop_at_five(report):
        if report.step == 5:
            raise KeyboardInterrupt

    auto = recipe(tiny_model, name="again", phases=("mine",), eval_every=0, save_every=0)
    with pytest.raises(KeyboardInterrupt):
        train(store, trained_home, auto, on_step=stop_at_five)
    resumed = train(store, trained_home, auto, resume=True)
    assert (resumed.status, resumed.steps_done, resumed.total_steps) == ("finished", 30, 30)


def store_settings(store, name):
    from marinade.training.recipe import Recipe

    return Recipe.from_dict(json.loads(store.run(name).recipe)).settings
