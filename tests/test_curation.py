"""Experiment grids: the plan that shares phases, novelty, pre-filters, Wilson intervals,
and `experiment run` / `report` end to end on a tiny GPT-2."""

from __future__ import annotations

import json

import pytest

from conftest import json_lines
from marinade.corpus.document import ImportOptions
from marinade.corpus.importing import import_corpus
from marinade.curation.checks import recipe_corpora
from marinade.curation.novelty import MAX_POSTINGS, TrainingText
from marinade.curation.plan import PlannedRun, plan_experiment
from marinade.curation.prefilters import is_loop, prefilter_tags
from marinade.curation.report import best_cell, cells, wilson_interval
from marinade.curation.spec import load_experiment, parse_experiment
from marinade.errors import MarinadeError
from marinade.language import corpus_languages, detect_language, is_foreign


def test_wilson_interval_known_answers():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(14, 200) == pytest.approx((0.0422, 0.1141), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def spec(recipes, **top):
    return parse_experiment({"name": "grid", "recipes": recipes, **top}, "grid.toml")


def test_plan_trains_a_shared_first_phase_once():
    plan = plan_experiment(
        spec(
            [
                {"name": "merged", "phases": ["admired+mine:1600"]},
                {"name": "marinade", "phases": ["admired:1500", "mine:100"]},
                {"name": "other", "phases": ["admired:1500", "theirs:100"]},
                {"name": "long", "phases": ["admired:1500", "mine:100", "theirs:10"]},
                {"name": "base", "model": "gpt2"},
                {"name": "old", "run": "tweetbot@1"},
            ]
        )
    )
    shared = next(run.name for run in plan.runs if "shared" in run.name)
    assert set(plan.runs) == {
        PlannedRun("grid-merged", "smollm2", ("admired+mine:1600",)),
        PlannedRun(shared, "smollm2", ("admired:1500",)),
        PlannedRun("grid-marinade", "smollm2", ("mine:100",), f"{shared}@1"),
        PlannedRun("grid-other", "smollm2", ("theirs:100",), f"{shared}@1"),
        PlannedRun("grid-long", "smollm2", ("theirs:10",), "grid-marinade@1"),
    }
    order = [run.name for run in plan.runs]
    assert order.index(shared) < order.index("grid-marinade") < order.index("grid-long")
    assert plan.models == {
        "merged": "grid-merged",
        "marinade": "grid-marinade",
        "other": "grid-other",
        "long": "grid-long",
        "base": "gpt2",
        "old": "tweetbot@1",
    }


ISSUE_GRID = """
name = "tweets"
temperatures = [0.8, 1.0, 1.2]
samples_per_cell = 200
max_new_tokens = 60
prompts = []                       # empty: unconditional
[training]                         # settings shared by every recipe, as in `marinade train`
method = "lora"
block_size = 128
[[recipes]]
name = "merged"
phases = ["admired+mine:1600"]
[[recipes]]
name = "marinade"
phases = ["admired:1500", "mine:100"]
[[recipes]]
name = "base"                      # a control: the base model, untrained
model = "smollm2"
"""


def test_the_grid_in_the_issue_reads_and_plans(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(ISSUE_GRID)
    grid = load_experiment(path)
    assert (grid.temperatures, grid.samples_per_cell, grid.max_new_tokens) == (
        (0.8, 1.0, 1.2),
        200,
        60,
    )
    assert grid.prompts == (None,)  # unconditional
    assert grid.training == {"method": "lora", "block_size": 128}
    plan = plan_experiment(grid)
    assert {(run.name, run.phases, run.start_from) for run in plan.runs} == {
        ("tweets-merged", ("admired+mine:1600",), None),
        ("tweets-marinade", ("admired:1500", "mine:100"), None),
    }
    assert plan.models == {
        "merged": "tweets-merged",
        "marinade": "tweets-marinade",
        "base": "smollm2",
    }


def test_plan_keeps_different_base_models_apart():
    plan = plan_experiment(
        spec(
            [
                {"name": "a", "phases": ["mine:10"], "model": "gpt2"},
                {"name": "b", "phases": ["mine:10"]},
            ]
        )
    )
    assert {(run.name, run.model, run.start_from) for run in plan.runs} == {
        ("grid-a", "gpt2", None),
        ("grid-b", "smollm2", None),
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"recipes": [{"name": "a"}], "temperatures": [0.8, "hot"]}, "'hot' is not a number"),
        ({"recipes": [{"name": "a"}], "colour": 1}, "unknown key 'colour'"),
        ({"recipes": []}, "at least one"),
        ({"recipes": [{"name": "a", "phases": ["mine:0"]}]}, "recipe a:"),
        ({"recipes": [{"name": "a", "phases": ["m:1"], "run": "r"}]}, "not both"),
        ({"recipes": [{"name": "a"}, {"name": "a"}]}, "two recipes are named 'a'"),
        ({"recipes": [{"name": "a"}], "training": {"lr": "fast"}}, "lr in [training]"),
        ({"recipes": [{"name": "a"}], "samples_per_cell": 0}, "samples_per_cell"),
    ],
)
def test_bad_experiment_files(data, message):
    with pytest.raises(MarinadeError, match="grid.toml") as error:
        parse_experiment({"name": "grid", **data}, "grid.toml")
    assert message in str(error.value)


def test_longest_copy_word_for_word():
    index = TrainingText(
        [
            (11, "The lamplighter came along the quay at dusk and lit the lamps."),
            (12, "I like tea and toast, and rain on the roof."),
        ]
    )
    copy = index.longest_copy("Then THE LAMPLIGHTER came along the quay, at dusk, and sang")
    assert (copy.words, copy.document_id) == (9, 11)  # "the lamplighter ... dusk and"
    copy = index.longest_copy("rain on the roof and tea")
    assert (copy.words, copy.document_id) == (4, 12)
    assert index.longest_copy("entirely new words").words == 0
    assert index.longest_copy("tea, never").words == 1  # one shared word, no stretch


def test_a_long_copy_is_found_through_rare_words_when_common_ones_are_crowded():
    common = [(i, f"one of the things number {i}") for i in range(MAX_POSTINGS + 5)]
    index = TrainingText([*common, (999, "one of the harbour lamps was lit by a tall man")])
    copy = index.longest_copy("yes, one of the harbour lamps was lit by a tall man today")
    assert (copy.words, copy.document_id) == (11, 999)


def test_prefilter_tags():
    def tags(text, **given):
        options = dict(
            min_words=3,
            max_chars=40,
            foreign=False,
            copied_words=0,
            copied_threshold=8,
            duplicate=False,
        )
        return prefilter_tags(text, **{**options, **given})

    assert tags("") == ["empty"]
    assert tags("Hi there.") == ["short"]
    assert tags("A fine post about the sea.") == []
    assert tags("A fine post about the sea, written at dusk.") == ["too-long"]
    assert tags("And the sea and the sea and the sea.") == ["loop"]
    assert tags("Lorem ipsum dolor sit amet.", foreign=True) == ["language"]
    assert tags("A fine post about the sea.", duplicate=True) == ["duplicate"]
    assert tags("A fine post about the sea.", copied_words=8) == ["copied"]
    assert tags("a fine post about the sea") == ["fragment", "cut"]
    assert is_loop("no no no no".split())
    assert not is_loop("the cat sat on the mat by the door".split())


def test_language_of_samples_against_the_corpus():
    english = [
        "I like tea and toast, and rain on the roof in the morning.",
        "The lamplighter walked the quay at dusk and the harbour was quiet.",
        "Every evening the lamps came on one by one along the water.",
    ]
    assert corpus_languages(english) == {"en"}
    french = "Je voudrais un café et un croissant, s'il vous plaît."
    # a quarter of the documents in French: the corpus is in both languages
    assert corpus_languages([*english, french]) == {"en", "fr"}
    assert corpus_languages(["too short"]) == frozenset()
    one_liners = ["good morning", "see you soon", "thanks for the tea", "what a day"]
    assert corpus_languages(one_liners) == {"en"}  # judged together
    assert detect_language("ok then") is None  # too short to judge
    assert is_foreign("Ich habe heute keine Zeit, weil ich arbeiten muss.", {"en"})
    assert not is_foreign("Ich habe heute keine Zeit, weil ich arbeiten muss.", {"en", "de"})
    # English words the small corpus never used are still English
    assert not is_foreign("The quick brown fox jumps over the lazy dog", {"en"})
    assert not is_foreign("Ich habe heute keine Zeit, weil ich arbeiten muss.", set())


def test_cells_and_the_best_cell():
    grid = {"recipes": [{"name": "a"}, {"name": "b"}], "temperatures": [0.8], "top_p": [1.0]}
    row = {"recipe": "a", "temperature": 0.8, "top_p": 1.0, "tags": "[]"}
    rows = [
        *[{**row, "rating": "accept"}] * 3,
        {**row, "rating": "reject", "tags": None},
        {**row, "recipe": "b", "rating": "accept"},
        {**row, "recipe": "b", "rating": None, "tags": '["copied"]'},
    ]
    a, b = cells(grid, rows)
    assert (a.samples, a.rated, a.accepted, a.rate) == (4, 4, 3, 0.75)
    assert (b.samples, b.rated, b.accepted, b.copied_rate) == (2, 1, 1, 0.5)
    # 3 of 4 is surer than 1 of 1: its interval's low end is higher (0.30 against 0.21)
    assert best_cell([a, b]) is a


ADMIRED = [
    f"The lamplighter walked the quay at dusk, lamp number {i}, and the harbour was quiet."
    for i in range(30)
]
MINE = [f"I like tea and toast, and rain on the roof number {i}." for i in range(30)]


@pytest.fixture
def corpora(tmp_path, store):
    for name, texts in (("admired", ADMIRED), ("mine", MINE)):
        folder = tmp_path / name
        folder.mkdir()
        for i, text in enumerate(texts):
            (folder / f"{i}.txt").write_text(text)
        import_corpus(store, folder, name, options=ImportOptions())


def write_grid(tmp_path, tiny_model, samples=3):
    path = tmp_path / "grid.toml"
    path.write_text(
        f"""
name = "grid"
model = "{tiny_model}"
temperatures = [0.8, 1.2]
samples_per_cell = {samples}
max_new_tokens = 12
prompts = []
whole_sentences = false            # a random tiny model rarely ends a sentence
[training]
batch_size = 2
block_size = 32
warmup = 1
eval_every = 0
[[recipes]]
name = "marinade"
phases = ["admired:3", "mine:2"]
[[recipes]]
name = "other"
phases = ["admired:3", "admired+mine:2"]
[[recipes]]
name = "base"
"""
    )
    return path


def test_experiment_run_resume_and_report(cli, store, corpora, tiny_model, tmp_path):
    grid = write_grid(tmp_path, tiny_model)
    result = cli("experiment", "run", str(grid))
    assert result.exit_code == 0, result.stderr
    runs = {run.name: run for run in store.runs()}
    shared = [name for name in runs if name.startswith("grid-shared-")]
    assert len(shared) == 1  # admired:3 trained once, for both recipes
    # a progress bar for each run trained (two of them 2 steps long) and each cell
    for bar in (f"train {shared[0]}", "train grid-marinade", "train grid-other", "base T=1.2"):
        assert bar in result.stderr
    assert runs["grid-marinade"].model == f"{shared[0]}@1"
    assert all(run.status == "finished" for run in runs.values())
    samples = store.experiment_samples("grid")
    assert len(samples) == 3 * 2 * 3
    per_cell = {(s["recipe"], s["temperature"]): [] for s in samples}
    for sample in samples:
        per_cell[(sample["recipe"], sample["temperature"])].append(sample["seed"])
    assert all(sorted(seeds) == [0, 1, 2] for seeds in per_cell.values())
    assert {s["model"] for s in samples if s["recipe"] == "base"} == {str(tiny_model)}
    assert all(s["tags"] is not None for s in samples)  # every sample checked

    # run again: nothing retrained, nothing resampled; a lost sample is made again
    store.db.conn.execute("delete from sample_checks where sample_id = ?", [samples[0]["id"]])
    store.db.conn.execute("delete from samples where id = ?", [samples[0]["id"]])
    store.db.conn.commit()
    updated = {name: run.updated_at for name, run in runs.items()}
    assert cli("experiment", "run", str(grid)).exit_code == 0
    again = store.experiment_samples("grid")
    assert len(again) == len(samples)
    assert {name: run.updated_at for name, run in ((r.name, r) for r in store.runs())} == (updated)
    remade = next(s for s in again if s["id"] not in {x["id"] for x in samples})
    assert (remade["recipe"], remade["temperature"], remade["seed"]) == (
        samples[0]["recipe"],
        samples[0]["temperature"],
        samples[0]["seed"],
    )

    for sample in again:
        if sample["recipe"] == "marinade" and sample["temperature"] == 0.8:
            rating = "accept" if sample["seed"] < 2 else "reject"
            store.rate_sample(sample["id"], rating, now="now")
    result = cli("experiment", "report", "grid", "--json")
    report = {(c["recipe"], c["temperature"]): c for c in json_lines(result.stdout)}
    assert len(report) == 6
    cell = report[("marinade", 0.8)]
    assert (cell["rated"], cell["accepted"]) == (3, 2)
    assert cell["rate"] == pytest.approx(2 / 3)
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(wilson_interval(2, 3))
    assert report[("base", 1.2)]["rated"] == 0
    plot = tmp_path / "grid.png"
    result = cli("experiment", "report", "grid", "--plot", str(plot))
    assert "best cell: marinade at temperature 0.8" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
    listed = json_lines(cli("experiment", "list", "--json").stdout)
    assert [(e["name"], e["status"], e["rated"]) for e in listed] == [("grid", "finished", 3)]
    result = cli("experiment", "rm", "grid", "--yes")
    assert result.exit_code == 0 and "its 18 samples" in result.stdout
    assert store.experiments() == [] and store.experiment_samples("grid") == []
    assert store.db.conn.execute("select count(*) from ratings").fetchone()[0] == 0
    assert {run.name for run in store.runs()} == set(runs)  # the runs stay


def test_experiment_errors(cli, store, corpora, tiny_model, tmp_path):
    grid = tmp_path / "bad.toml"
    grid.write_text('name = "bad"\n[[recipes]]\nname = "a"\nphases = ["nosuch:3"]\n')
    result = cli("experiment", "run", str(grid))
    assert result.exit_code == 1
    assert "no corpus named 'nosuch'" in result.stderr
    assert store.experiments() == []
    result = cli("experiment", "report", "nosuch")
    assert result.exit_code == 1 and "no experiment named 'nosuch'" in result.stderr
    assert cli("experiment", "run", str(tmp_path / "missing.toml")).exit_code == 1
    grid.write_text(
        'name = "bad"\n[[recipes]]\nname = "a"\nphases = ["mine:3"]\n'
        '[[recipes]]\nname = "old"\nrun = "nosuch@1"\n'
    )
    result = cli("experiment", "run", str(grid))
    assert result.exit_code == 1
    assert "recipe old: no run named 'nosuch'" in result.stderr
    assert store.experiments() == [] and store.runs() == []  # nothing trained first


def test_checks_store_copied_and_closest_document(cli, store, corpora, tiny_model, tmp_path):
    grid = write_grid(tmp_path, tiny_model, samples=1)
    assert cli("experiment", "run", str(grid)).exit_code == 0
    sample, german, english = store.experiment_samples("grid")[:3]
    # a sample that copies a training document: the check finds it on the next run
    copied = "The lamplighter walked the quay at dusk, lamp number 7, and the harbour"
    texts = {
        sample["id"]: copied,
        german["id"]: "Ich habe heute keine Zeit, weil ich arbeiten muss.",
        english["id"]: "The quick brown fox jumps over the lazy dog.",  # new words, English
    }
    for sample_id, text in texts.items():
        store.db.conn.execute("update samples set text = ? where id = ?", [text, sample_id])
    store.db.conn.commit()
    assert cli("experiment", "run", str(grid)).exit_code == 0
    tags = {s["id"]: json.loads(s["tags"]) for s in store.experiment_samples("grid")}
    assert "language" in tags[german["id"]]
    assert "language" not in tags[english["id"]] and "language" not in tags[sample["id"]]
    checked = next(s for s in store.experiment_samples("grid") if s["id"] == sample["id"])
    assert checked["copied_words"] == 13
    assert "copied" in json.loads(checked["tags"])
    export = ("samples", "export", "--experiment", "grid")
    exported = json_lines(cli(*export, "--check", "copied").stdout)
    assert [(row["id"], row["copied_words"]) for row in exported] == [(sample["id"], 13)]
    rest = json_lines(cli(*export, "--without-check", "copied").stdout)
    assert len(rest) == 5 and sample["id"] not in {row["id"] for row in rest}
    document = store.db.conn.execute(
        "select text from documents where id = ?", [checked["closest_document_id"]]
    ).fetchone()[0]
    assert "lamp number 7," in document


def test_a_control_is_checked_against_the_corpora_of_the_runs_beside_it(
    cli, store, corpora, tiny_model, tmp_path
):
    assert cli("experiment", "run", str(write_grid(tmp_path, tiny_model, samples=1))).exit_code == 0
    reuse = spec([{"name": "old", "run": "grid-marinade"}, {"name": "base"}])
    # grid-marinade seared on mine after the shared run's admired
    assert recipe_corpora(store, reuse, plan_experiment(reuse)) == {
        "old": ["mine", "admired"],
        "base": ["mine", "admired"],
    }


def run_ids(store):
    return {run.name: (run.created_at, run.updated_at) for run in store.runs()}


def test_a_grid_that_trains_differently_refuses_its_old_runs(
    cli, store, corpora, tiny_model, tmp_path
):
    grid = write_grid(tmp_path, tiny_model, samples=1)
    assert cli("experiment", "run", str(grid)).exit_code == 0
    runs, samples = run_ids(store), store.experiment_samples("grid")
    shared = next(name for name in runs if name.startswith("grid-shared-"))
    original = grid.read_text()

    # a new learning rate for every run: the first one trained says so, and nothing runs
    grid.write_text(original.replace("warmup = 1", "warmup = 1\nlr = 1e-4"))
    result = cli("experiment", "run", str(grid))
    assert result.exit_code == 1
    assert (
        f"run {shared} was trained with lr 5e-05, the grid now says lr 0.0001: rename the "
        f"experiment to train a new run, or delete this one (marinade runs rm {shared})"
    ) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert run_ids(store) == runs and store.experiment_samples("grid") == samples

    # another base model for one recipe: its run names what changed
    grid.write_text(
        original.replace('name = "marinade"\n', f'name = "marinade"\nmodel = "{tiny_model}/"\n')
    )
    result = cli("experiment", "run", str(grid))
    assert result.exit_code == 1
    assert f"run grid-marinade was trained with model {tiny_model} and start {shared}@1" in (
        result.stderr
    )
    assert "rename the recipe to train a new run" in result.stderr
    assert run_ids(store) == runs and store.experiment_samples("grid") == samples

    # settings that only watch a run (evaluations, checkpoints, time limit) may change
    grid.write_text(
        original.replace("eval_every = 0", "eval_every = 7\nsave_every = 3\nmax_minutes = 9")
    )
    result = cli("experiment", "run", str(grid))
    assert result.exit_code == 0, result.stderr
    assert run_ids(store) == runs and len(store.experiment_samples("grid")) == len(samples)


def test_samples_of_a_deleted_run_are_not_passed_off_as_the_new_ones(
    cli, store, corpora, tiny_model, tmp_path
):
    grid = write_grid(tmp_path, tiny_model, samples=1)
    assert cli("experiment", "run", str(grid)).exit_code == 0
    assert cli("runs", "rm", "grid-marinade", "--yes").exit_code == 0
    result = cli("experiment", "run", str(grid))
    assert result.exit_code == 1
    assert (
        "experiment grid has samples of recipe marinade from an earlier run grid-marinade: "
        "rename the recipe, or delete the experiment's samples (marinade experiment rm grid)"
    ) in result.stderr
    assert store.run("grid-marinade") is None  # not trained again behind the old samples
    assert cli("experiment", "rm", "grid", "--yes").exit_code == 0
    assert cli("experiment", "run", str(grid)).exit_code == 0
    assert store.run("grid-marinade").status == "finished"


def test_an_interrupted_experiment_resumes_its_run(store, home_dir, corpora, tiny_model, tmp_path):
    from marinade.curation.experiment import run_experiment
    from marinade.home import open_home

    grid = load_experiment(write_grid(tmp_path, tiny_model, samples=1))
    home = open_home(home_dir)

    def ctrl_c(run_name, report):
        if run_name == "grid-marinade":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(store, home, grid, on_train_step=ctrl_c)
    assert store.run("grid-marinade").status == "interrupted"
    assert store.experiment("grid")["status"] == "interrupted"
    said = []
    run_experiment(store, home, grid, on_status=said.append)
    assert "resuming grid-marinade: mine:2" in said
    assert store.run("grid-marinade").status == "finished"
    assert store.experiment("grid")["status"] == "finished"


def test_each_cell_is_checked_as_it_is_sampled(
    store, home_dir, corpora, tiny_model, tmp_path, monkeypatch
):
    from marinade.curation import checks
    from marinade.curation.experiment import run_experiment
    from marinade.home import open_home

    grid = load_experiment(write_grid(tmp_path, tiny_model, samples=2))
    home = open_home(home_dir)
    built = []

    class CountedTrainingText(TrainingText):
        def __init__(self, documents):
            built.append(1)
            super().__init__(documents)

    monkeypatch.setattr(checks, "TrainingText", CountedTrainingText)

    def ctrl_c_at_the_second_cell(cell):
        if cell.label == "marinade T=1.2":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(store, home, grid, on_cell=ctrl_c_at_the_second_cell)
    samples = store.experiment_samples("grid")
    assert {(s["recipe"], s["temperature"]) for s in samples} == {("marinade", 0.8)}
    assert len(samples) == 2 and all(s["tags"] is not None for s in samples)

    built.clear()
    run_experiment(store, home, grid)
    samples = store.experiment_samples("grid")
    assert len(samples) == 3 * 2 * 2 and all(s["tags"] is not None for s in samples)
    assert len(built) == 1  # every recipe trained on admired and mine: one index for six cells


def test_a_cell_is_sampled_in_the_samplers_batches_and_its_bar_moves_within_one(
    store, home_dir, corpora, tiny_model, tmp_path, monkeypatch
):
    """A cell of 70 is one batch of 70 (not the batches of 50 that were ~1.2x slower),
    and its progress counts samples while that batch is being sampled."""
    import marinade.sampling
    from marinade.curation.experiment import run_experiment
    from marinade.home import open_home

    path = tmp_path / "one-cell.toml"
    path.write_text(
        f"""
name = "one"
model = "{tiny_model}"
temperatures = [1.0]
samples_per_cell = 70
max_new_tokens = 12
whole_sentences = false
[[recipes]]
name = "base"
"""
    )
    seen: list[int] = []
    run_experiment(
        store, open_home(home_dir), load_experiment(path), on_cell=lambda c: seen.append(c.done)
    )
    samples = store.experiment_samples("one")
    assert len(samples) == 70 and {s["batch_size"] for s in samples} == {70}
    assert seen[0] == 0 and seen[-1] == 70 and any(0 < done < 70 for done in seen)
    assert seen == sorted(seen)

    # where the sampler's batch is smaller, the cell goes in batches of that size
    store.db.execute("delete from samples")
    store.db.conn.commit()
    monkeypatch.setattr(marinade.sampling, "MAX_AUTO_BATCH", 32)
    run_experiment(store, open_home(home_dir), load_experiment(path))
    sizes = [s["batch_size"] for s in store.experiment_samples("one")]
    assert sorted(sizes) == [6] * 6 + [32] * 64


def test_dropped_samples_are_recorded_and_not_drawn_again(cli, store, tiny_model, tmp_path):
    grid = tmp_path / "drops.toml"
    grid.write_text(
        f"""
name = "drops"
temperatures = [1.0]
samples_per_cell = 8
max_new_tokens = 6
[[recipes]]
name = "base"
model = "{tiny_model}"
"""
    )  # no prompts: whole sentences on; a random tiny model rarely ends a sentence
    assert cli("experiment", "run", str(grid)).exit_code == 0
    kept = store.experiment_samples("drops")
    drops = store.cell_drop_count("drops")
    dropped = sum(drops.values())
    assert dropped > 0 and len(kept) + dropped == 8
    report = json_lines(cli("experiment", "report", "drops", "--json").stdout)
    assert [cell["dropped"] for cell in report] == [dropped]

    result = cli("experiment", "run", str(grid))  # again: nothing is drawn again
    assert result.exit_code == 0, result.stderr
    assert len(store.experiment_samples("drops")) == len(kept)
    assert sum(store.cell_drop_count("drops").values()) == dropped
    assert cli("experiment", "rm", "drops", "--yes").exit_code == 0
    assert store.cell_drop_count("drops") == {}
