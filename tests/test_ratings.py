"""A ratings phase (training/ratings.py): KTO on accept/reject ratings, on a tiny GPT-2."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import json_lines, train_in_two_processes
from marinade.corpus.document import ImportOptions
from marinade.corpus.importing import import_corpus
from marinade.errors import MarinadeError
from marinade.generation import generate_samples
from marinade.home import open_home
from marinade.loop_back.retrain import retrain
from marinade.models import load_model
from marinade.sample_settings import SampleSettings
from marinade.training.loop import train
from marinade.training.ratings import (
    RatedExample,
    RatingsFilter,
    compute_reference,
    load_data,
    measure,
    ratings_loss,
    select_examples,
    tokenize_examples,
)
from marinade.training.recipe import build_recipe, parse_phase

ADMIRED = [f"The lamplighter walked the quay at dusk, lamp number {i}." for i in range(30)]
MINE = [f"I like tea and toast, and rain on the roof number {i}." for i in range(30)]
SETTINGS = {"batch_size": 4, "block_size": 32, "warmup": 2, "eval_every": 10, "lr": 3e-3}


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - spread, centre + spread


def rule(text: str) -> bool:
    """The scripted rater: it accepts a sample with at most one character that is not
    printable ASCII (a tiny model's samples are mostly stray bytes: about 15% pass)."""
    strays = sum(not (c.isascii() and c.isprintable()) for c in text)
    return bool(text.strip()) and strays <= 1


@pytest.fixture
def home(tmp_path, store):
    home = open_home(tmp_path / "home")
    for name, texts in (("admired", ADMIRED), ("mine", MINE)):
        folder = tmp_path / name
        folder.mkdir()
        for i, text in enumerate(texts):
            (folder / f"{i}.txt").write_text(text)
        import_corpus(store, folder, name, options=ImportOptions())
    return home


def sample_and_rate(store, home, model, seeds, experiment=None, now="2026-12-01T00:00:00+00:00"):
    loaded = load_model(model, home, device="cpu")
    rows = generate_samples(
        store,
        loaded,
        None,
        seeds,
        [1.0],
        SampleSettings(max_new_tokens=12),
        labels={"experiment": experiment} if experiment else None,
    )
    accepted = 0
    for row in rows:
        good = rule(row["text"])
        accepted += good
        store.rate_sample(
            row["id"], "accept" if good else "reject", now="2026-12-01T00:00:00+00:00"
        )
    return accepted, len(rows)


def test_scripted_rater_accepts_more_after_a_ratings_phase(store, home, tiny_model):
    base = build_recipe("bot", str(tiny_model), ["admired+mine:30"], None, None, SETTINGS)
    train(store, home, base)
    before, total = sample_and_rate(store, home, "bot", range(100))
    tuned = build_recipe(
        "bot-2", str(tiny_model), ["ratings:60"], "bot", None, {**SETTINGS, "batch_size": 8}
    )
    record = train(store, home, tuned)
    assert record.status == "finished"
    after, total_after = sample_and_rate(store, home, "bot-2", range(1000, 1100))
    assert wilson(after, total_after)[0] > before / total
    # measured on its held-out ratings: from a tie at the start to a clear preference
    measured = store.rating_evals("bot-2")
    assert measured[0].accuracy == 0.5 and measured[0].kl == 0.0
    assert measured[-1].accuracy > 0.7 and measured[-1].kl > 0


# --- the phase and its examples ------------------------------------------------------


@pytest.mark.parametrize(
    "text, source, steps, lr, weights",
    [
        ("ratings", "ratings", None, None, {"ratings": 1.0}),
        ("ratings@tweets:100", "ratings@tweets", 100, None, {"ratings@tweets": 1.0}),
        ("ratings@tweets:60:1e-05", "ratings@tweets", 60, 1e-5, {"ratings@tweets": 1.0}),
        ("mine=0.3,ratings=0.7:50", "ratings", 50, None, {"mine": 0.3, "ratings": 0.7}),
    ],
)
def test_ratings_phases_parse_like_other_phases(text, source, steps, lr, weights):
    phase = parse_phase(text)
    assert (phase.ratings_source(), phase.steps, phase.lr, dict(phase.corpora)) == (
        source, steps, lr, weights,
    )  # fmt: skip
    assert parse_phase(phase.label()) == phase
    recipe = build_recipe("r", "m", [text, "admired:5"], None, None, {})
    assert recipe.corpora() == [*(["mine"] if "mine" in text else []), "admired"]
    assert recipe.ratings_phases() == [1]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("ratings+mine:10", "cannot be merged"),
        ("ratings@:10", "experiment's name"),
        ("ratings=0.5,ratings@x=0.5:10", "one ratings source"),
    ],
)
def test_bad_ratings_phases_are_one_line(text, problem):
    with pytest.raises(MarinadeError, match=problem):
        parse_phase(text)


def rated_texts(store, texts_and_ratings, experiment=None, model="bot", at="2026-12-01T00:00:00"):
    rows = store.add_samples(
        [
            {
                "created_at": at,
                "origin": "generate",
                "model": model,
                "model_hash": "h",
                "text": text,
                "seed": i,
                "temperature": 1.0,
                "experiment": experiment,
            }
            for i, (text, _) in enumerate(texts_and_ratings)
        ]
    )
    for row, (_, rating) in zip(rows, texts_and_ratings, strict=True):
        store.rate_sample(row["id"], rating, now=at)
    return [row["id"] for row in rows]


def test_examples_take_edits_and_hold_out_a_share_of_each_kind(store):
    ids = rated_texts(store, [("good one", "accept")] * 10 + [("bad one", "reject")] * 10)
    store.rate_sample(ids[0], "accept", edited_text="better one", now="2026-12-01T00:00:01")
    examples = select_examples(store, "ratings", ["bot"], RatingsFilter())
    kinds = [(e.kind, e.text) for e in examples if e.sample_id == ids[0]]
    assert kinds == [("edited", "better one"), ("edited-original", "good one")]
    held = [e for e in examples if e.held_out]
    assert sum(e.desirable for e in held) == 2 and sum(not e.desirable for e in held) == 2
    again = select_examples(store, "ratings", ["bot"], RatingsFilter())
    assert [e.held_out for e in again] == [e.held_out for e in examples]  # by hash, stable
    assert select_examples(store, "ratings", ["other"], RatingsFilter()) == []
    later = RatingsFilter(rated_after="2026-12-01T00:00:00")
    assert {e.sample_id for e in select_examples(store, "ratings", ["bot"], later)} == {ids[0]}


# --- the loss and the measurements against values worked out by hand -------------------


def hand_logprob(model, context, completion):
    """log p(completion | context), one token at a time from the full logits."""
    ids = torch.tensor([context + completion])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return sum(float(log_probs[len(context) - 1 + k, token]) for k, token in enumerate(completion))


def tiny_data(tokenizer, examples, block_size=32):
    return tokenize_examples("ratings", examples, tokenizer, "marker", block_size, RatingsFilter())


def test_kto_loss_matches_a_hand_computed_value(home, tiny_model, other_tiny_model):
    reference = load_model(str(tiny_model), home, device="cpu")
    policy = load_model(str(other_tiny_model), home, device="cpu").model.eval()
    examples = [
        RatedExample(1, "", "I like tea.", True, "accepted"),
        RatedExample(2, "", "the the the", False, "rejected"),
        RatedExample(3, "How", " does one become free?", True, "accepted"),
    ]
    data = tiny_data(reference.tokenizer, examples)
    compute_reference(reference.model, data, "cpu")
    picks = [0, 1, 2]
    with torch.no_grad():
        loss = float(ratings_loss(policy, data, picks, "cpu", beta=0.1))

    def logps(model, i, j):
        return hand_logprob(model, data.contexts[i], data.completions[j])

    nxt = {0: 1, 1: 2, 2: 0}  # each example's KL pair: the next one's completion
    kl = sum(logps(policy, i, nxt[i]) - logps(reference.model, i, nxt[i]) for i in picks) / 3
    kl = max(0.0, kl)
    weights = {True: 3 / (2 * 2), False: 3 / (2 * 1)}  # accepted and rejected weigh half each
    total = 0.0
    for i in picks:
        ratio = logps(policy, i, i) - logps(reference.model, i, i)
        good = examples[i].desirable
        z = 0.1 * (ratio - kl) if good else 0.1 * (kl - ratio)
        total += weights[good] * (1 - 1 / (1 + math.exp(-z)))
    assert loss == pytest.approx(total / 3, rel=1e-4)


def test_held_out_accuracy_counts_pairs_and_ties(home, tiny_model):
    loaded = load_model(str(tiny_model), home, device="cpu")
    examples = [
        RatedExample(i, "", f"text {i}", good, "accepted" if good else "rejected", held_out=True)
        for i, good in enumerate([True, True, False, False, False])
    ] + [
        RatedExample(10, "", "a", True, "accepted"),
        RatedExample(11, "", "b", False, "rejected"),
    ]
    data = tiny_data(loaded.tokenizer, examples)
    compute_reference(loaded.model, data, "cpu")
    accuracy, kl, pairs = measure(loaded.model, data, "cpu")
    assert (accuracy, kl, pairs) == (0.5, pytest.approx(0.0, abs=1e-9), 6)  # all ties
    # shift the reference so the ratios are known: accepted 2 and -1, rejected 0, 0 and 3
    for index, ratio in zip(data.held_out, [2.0, -1.0, 0.0, 0.0, 3.0], strict=True):
        data.reference[index] -= ratio
    accuracy, _, _ = measure(loaded.model, data, "cpu")
    # pairs (accepted > rejected): 2 beats 0, 0 and not 3; -1 beats none -> 2 of 6
    assert accuracy == pytest.approx(2 / 6, abs=1e-4)


# --- training: resume, LoRA, bad input, what runs show ----------------------------------


@pytest.fixture
def rated_home(store, home, tiny_model):
    """A run `bot` and 40 of its samples rated by the rule."""
    train(store, home, build_recipe("bot", str(tiny_model), ["admired+mine:10"], None, None,
                                    SETTINGS))  # fmt: skip
    sample_and_rate(store, home, "bot", range(40))
    return home


def test_a_ratings_phase_resumes_to_the_same_losses(store, rated_home, tiny_model):
    def tuned(name, **flags):
        return build_recipe(name, str(tiny_model), ["ratings:8"], "bot", None,
                            {**SETTINGS, "eval_every": 4, "save_every": 0, **flags})  # fmt: skip

    train(store, rated_home, tuned("straight"))

    def stop_at_five(report):
        if report.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(store, rated_home, tuned("stopped"), on_step=stop_at_five)
    sample_and_rate(store, rated_home, "bot", range(40, 60))  # rated meanwhile: not taken
    train(store, rated_home, tuned("stopped"), resume=True)
    assert store.rating_evals("stopped") == store.rating_evals("straight")
    final = {e.corpus: e.loss for e in store.evals("straight") if e.step == 8}
    assert {"admired", "mine"} <= set(final)  # measured on what bot learnt, too
    again = {e.corpus: e.loss for e in store.evals("stopped") if e.step == 8}
    assert final == pytest.approx(again, abs=1e-6)


def test_lora_ratings_phase_loads_one_model(store, rated_home, tiny_model, monkeypatch):
    import marinade.training.loop as loop

    loads = []
    real = loop.load_model
    monkeypatch.setattr(loop, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    recipe = build_recipe("lora", str(tiny_model), ["ratings:6"], "bot", None,
                          {**SETTINGS, "method": "lora", "lr": 1e-2})  # fmt: skip
    assert train(store, rated_home, recipe).status == "finished"
    assert len(loads) == 1  # the reference is log-probabilities, not a second model
    measured = store.rating_evals("lora")
    assert measured[0].kl == 0.0 and measured[-1].kl > 0


def test_no_usable_ratings_is_one_line_and_nothing_trained(cli, store, rated_home, tiny_model):
    args = ("--model", str(tiny_model), "--from", "bot", "--batch-size", "2",
            "--block-size", "16")  # fmt: skip
    result = cli("train", "x", *args, "--phase", "ratings@nothing:5")
    assert result.exit_code == 1 and "nothing" in result.stderr
    rated_texts(store, [("fine", "accept")] * 3, experiment=None, model="lonely")
    store.save_experiment({"name": "only-good", "spec": "{}", "status": "done",
                           "created_at": "x", "updated_at": "x"})  # fmt: skip
    rated_texts(store, [("fine", "accept")] * 3, experiment="only-good", model="lonely")
    result = cli("train", "y", *args, "--phase", "ratings@only-good:5")
    assert result.exit_code == 1
    assert "found 3 accepted and 0 rejected" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert store.run("x") is None and store.run("y") is None


def test_runs_show_tells_the_held_out_preference(cli, store, rated_home, tiny_model):
    rated_texts(store, [(f"I like tea {i}.", "accept") for i in range(6)])
    recipe = build_recipe("shown", str(tiny_model), ["ratings:4"], "bot", None,
                          {**SETTINGS, "eval_every": 2})  # fmt: skip
    train(store, rated_home, recipe)
    shown = cli("runs", "show", "shown").stdout
    assert "preference" in shown and "0.500" in shown
    summary = json_lines(cli("runs", "show", "shown", "--json").stdout)[0]
    assert [e["step"] for e in summary["rating_evals"]] == [0, 2, 4]
    assert summary["phases"][0]["ratings"]["train"] > 0
    plotted = cli("runs", "plot", "shown", "-o", str(rated_home.path / "p.png"))
    assert plotted.exit_code == 0 and (rated_home.path / "p.png").stat().st_size > 0


def test_retrain_adds_a_phase_of_only_the_new_ratings(store, rated_home, tiny_model, tmp_path):
    recipe_file = tmp_path / "recipe.toml"
    recipe_file.write_text(
        f'model = "{tiny_model}"\nphases = ["mine:2"]\n[training]\n'
        "batch_size = 4\nblock_size = 32\nwarmup = 1\nlr = 3e-3\n"
    )
    lines = []
    first = retrain(store, rated_home, "bot", recipe_file, ratings_steps=3, on_status=lines.append)
    assert (first.run, first.ratings, first.record.status) == ("bot-2", 40, "finished")
    assert [p["label"] for p in store.run("bot-2").recipe_dict()["phases"]] == [
        "mine:2", "ratings:3",
    ]  # fmt: skip
    later = [(f"I like tea {i}.", "accept") for i in range(6)] + [("x y", "reject")] * 6
    rated_texts(store, later, model="bot-2", at="2026-12-02T00:00:00+00:00")
    second = retrain(store, rated_home, "bot", recipe_file, ratings_steps=3)
    assert (second.run, second.ratings) == ("bot-3", 12)
    frozen = {
        run: {e.sample_id for e in load_data(rated_home.runs / run, 2).examples}
        for run in ("bot-2", "bot-3")
    }
    assert len(frozen["bot-3"]) == 12 and not frozen["bot-2"] & frozen["bot-3"]
    lines.clear()
    third = retrain(store, rated_home, "bot", recipe_file, ratings_steps=3, on_status=lines.append)
    assert third.ratings is None and third.record.status == "finished"
    assert any("no ratings since the last retrain" in line for line in lines)
    assert [p["label"] for p in store.run("bot-4").recipe_dict()["phases"]] == ["mine:2"]


def test_train_flags_choose_which_ratings(cli, store, rated_home, tiny_model):
    others = [("Other good.", "accept")] * 3 + [("other bad", "reject")] * 3
    lonely = rated_texts(store, others, model="lonely", at="2026-12-03T00:00:00+00:00")
    args = ("--model", str(tiny_model), "--from", "bot", "--phase", "ratings:2",
            "--batch-size", "2", "--block-size", "16")  # fmt: skip
    bad = cli("train", "x", *args, "--rated-after", "yesterday")
    assert bad.exit_code == 1 and "--rated-after 'yesterday'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    # bot's own samples were rated on 12-01, lonely's are not of bot's lineage
    newer = cli("train", "newer", *args, "--rated-after", "2026-12-02")
    assert newer.exit_code == 1 and "found 0 accepted and 0 rejected" in newer.stderr
    anyone = cli("train", "any", *args, "--rated-after", "2026-12-02", "--ratings-any-model")
    assert anyone.exit_code == 0, anyone.stderr
    taken = {example.sample_id for example in load_data(rated_home.runs / "any", 1).examples}
    assert taken == set(lonely)
    assert store.run("x") is None and store.run("newer") is None


def test_two_processes_train_ratings_like_one_with_twice_the_accumulation(
    cli, store, rated_home, tiny_model, home_dir
):
    """torchrun with two processes: each draws its own rated examples, gradients are
    averaged, and only one writes the rating evals; the same as one process accumulating."""
    flags = ["--model", str(tiny_model), "--from", "bot", "--phase", "ratings:4"]
    flags += ["--batch-size", "2", "--block-size", "32", "--warmup", "1", "--eval-every", "2"]
    finished = train_in_two_processes(home_dir, "together", flags)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = cli("train", "alone", *flags, "--grad-accum", "2")
    assert result.exit_code == 0, result.stderr
    together, alone = store.rating_evals("together"), store.rating_evals("alone")
    assert [e.step for e in together] == [0, 2, 4] == [e.step for e in alone]
    assert together[-1].accuracy == pytest.approx(alone[-1].accuracy, abs=1e-6)
    assert together[-1].kl == pytest.approx(alone[-1].kl, rel=1e-2, abs=1e-5)
    assert together[-1].kl > 0
