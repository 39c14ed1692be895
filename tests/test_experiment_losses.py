"""The report's held-out losses: known evals stored for a grid's runs come back per recipe
(final, base from the control or step 0, curves through shared runs), in the table, in
--json and as forgetting-curve panels beside the heatmap; and a grid's runs measure every
corpus it trains on."""

from __future__ import annotations

import json
import urllib.request

import pytest

from conftest import json_lines
from marinade.curation.losses import experiment_losses, recipe_losses
from marinade.curation.plan import plan_experiment
from marinade.curation.spec import parse_experiment
from marinade.store import Run, RunStatus
from marinade.training.recipe import build_recipe


def save_grid(store, recipes: list[dict], name: str = "g") -> dict:
    """An experiment `name` with `recipes`, stored as `experiment run` stores it."""
    spec = parse_experiment(
        {"name": name, "model": "base-model", "recipes": recipes, "samples_per_cell": 1}, "test"
    )
    store.save_experiment(
        {
            "name": name,
            "created_at": "2026-01-01T00:00:00+00:00",
            "spec": json.dumps(spec.to_dict()),
            "status": "finished",
            "updated_at": "2026-01-01T00:00:00+00:00",
        }
    )
    return {run.name: run for run in plan_experiment(spec).runs}


def save_run(store, planned, evals: dict[int, dict[str, float]]) -> None:
    """A finished run as the plan has it, with held-out losses {step: {corpus: loss}}."""
    recipe = build_recipe(
        planned.name, planned.model, list(planned.phases), planned.start_from, None, {}
    )
    store.save_run(
        Run(
            name=planned.name,
            model=planned.start_from or planned.model,
            recipe=json.dumps(recipe.to_dict()),
            status=RunStatus.FINISHED,
            steps_done=recipe.total_steps(),
            total_steps=recipe.total_steps(),
            corpus_versions="{}",
            message=None,
            created_at="2026-01-01T00:00:00+00:00",
            updated_at=None,
        )
    )
    for step, losses in evals.items():
        store.add_evals(planned.name, step, 1, losses)


MARINADE = {0: {"admired": 5.0, "mine": 4.5}, 4: {"admired": 4.2, "mine": 4.0},
            6: {"admired": 4.4, "mine": 3.1}}  # fmt: skip
MERGED = {0: {"admired": 5.0, "mine": 4.5}, 6: {"admired": 4.1, "mine": 3.3}}
MINE_ONLY = {0: {"admired": 5.0, "mine": 4.5}, 2: {"admired": 4.8, "mine": 3.2}}
RECIPES = [
    {"name": "marinade", "phases": ["admired:4", "mine:2"]},
    {"name": "merged", "phases": ["admired+mine:6"]},
    {"name": "mine-only", "phases": ["mine:2"]},
]


@pytest.fixture
def grid(store):
    """The grid of the README's experiment with a control, its runs and evals stored."""
    runs = save_grid(store, [*RECIPES, {"name": "base"}])
    save_run(store, runs["g-marinade"], MARINADE)
    save_run(store, runs["g-merged"], MERGED)
    save_run(store, runs["g-mine-only"], MINE_ONLY)
    return runs


def test_report_json_carries_each_recipes_final_and_base_losses(cli, store, grid):
    result = cli("experiment", "report", "g", "--json")
    assert result.exit_code == 0, result.stderr
    by_recipe = {row["recipe"]: row for row in json_lines(result.stdout)}
    assert set(by_recipe) == {"marinade", "merged", "mine-only", "base"}
    base = {"admired": 5.0, "mine": 4.5}
    expected = {
        "marinade": ({"admired": 4.4, "mine": 3.1}, 6),
        "merged": ({"admired": 4.1, "mine": 3.3}, 6),
        "mine-only": ({"admired": 4.8, "mine": 3.2}, 2),
        "base": (base, 0),  # the control: the base model, step 0 of the runs trained from it
    }
    for recipe, (losses, step) in expected.items():
        row = by_recipe[recipe]
        assert row["held_out_loss"] == pytest.approx(losses)
        assert row["held_out_step"] == step
        assert row["base_held_out_loss"] == pytest.approx(base)
        assert "rate" in row and "samples" in row  # still the cell's own fields


def test_report_table_shows_the_losses_beside_the_rates(cli, grid):
    result = cli("experiment", "report", "g")
    assert result.exit_code == 0, result.stderr
    line = next(
        line for line in result.stdout.splitlines() if "mine-only" in line and "4.800" in line
    )
    assert "4.800 (5.000)" in line and "3.200 (4.500)" in line


def test_curves_follow_a_shared_first_phase_into_each_recipe(store):
    runs = save_grid(
        store,
        [
            {"name": "marinade", "phases": ["admired:4", "mine:2"]},
            {"name": "other", "phases": ["admired:4", "admired+mine:2"]},
        ],
    )
    shared = next(name for name in runs if "-shared-" in name)
    save_run(
        store, runs[shared], {0: {"admired": 5.0, "mine": 4.6}, 4: {"admired": 4.0, "mine": 4.4}}
    )
    # each later run starts at the shared run's phase-1 checkpoint: its step 0 is step 4
    save_run(
        store,
        runs["g-marinade"],
        {0: {"admired": 4.0, "mine": 4.4}, 2: {"admired": 4.3, "mine": 3.0}},
    )
    save_run(
        store, runs["g-other"], {0: {"admired": 4.0, "mine": 4.4}, 2: {"admired": 3.9, "mine": 3.6}}
    )
    corpora, curves = experiment_losses(store, "g")
    assert corpora == ["admired", "mine"]
    marinade = next(curve for curve in curves if curve.recipe == "marinade")
    assert marinade.points["mine"] == [(0, 4.6), (4, 4.4), (6, 3.0)]
    assert marinade.phase_ends == (4, 6)
    losses = {row.recipe: row for row in recipe_losses(curves)}
    assert losses["other"].held_out_loss == {"admired": 3.9, "mine": 3.6}
    assert losses["other"].held_out_step == 6
    assert losses["other"].base_held_out_loss == {"admired": 5.0, "mine": 4.6}  # no control


@pytest.mark.parametrize("control", [True, False])
def test_plot_writes_the_curves_beside_the_heatmap(cli, store, tmp_path, control):
    runs = save_grid(store, RECIPES + ([{"name": "base"}] if control else []))
    save_run(store, runs["g-marinade"], MARINADE)
    save_run(store, runs["g-merged"], MERGED)  # mine-only not trained yet: no line, no error
    plot = tmp_path / "report.png"
    result = cli("experiment", "report", "g", "--plot", str(plot))
    assert result.exit_code == 0, result.stderr
    curves = tmp_path / "report-losses.png"
    assert plot.read_bytes()[:4] == b"\x89PNG" and curves.read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {plot} and {curves}" in result.stdout.replace("\n", "")


def test_a_grid_measures_every_corpus_it_trains_on_in_every_run(store):
    from marinade.curation.experiment import _recipe_of

    spec = parse_experiment(
        {"name": "g", "recipes": RECIPES, "training": {"measure": ["other"]}}, "t"
    )
    for planned in plan_experiment(spec).runs:
        assert _recipe_of(spec, planned).settings.measure == ("other", "admired", "mine")


def test_the_report_tab_shows_the_losses_and_the_curves(store, grid):
    from marinade.review.app import create_app
    from marinade.review.server import running_server
    from review_helpers import http_requests

    with running_server(create_app(store.path)) as url:
        request = http_requests(url)
        _, text = request("GET", "/report?format=json")
        report = json.loads(text)["experiments"][0]
        assert report["corpora"] == ["admired", "mine"]
        losses = {row["recipe"]: row for row in report["losses"]}
        assert losses["marinade"]["held_out_loss"] == {"admired": 4.4, "mine": 3.1}
        assert losses["base"]["held_out_loss"] == {"admired": 5.0, "mine": 4.5}
        _, html = request("GET", "/report")
        assert "4.400 (5.000)" in html and 'src="/report/g/losses.png"' in html
        with urllib.request.urlopen(f"{url.rstrip('/')}/report/g/losses.png") as response:
            assert response.headers["content-type"] == "image/png"
            assert response.read()[:4] == b"\x89PNG"


def test_train_measure_evaluates_a_corpus_the_run_does_not_train_on(
    cli, store, tiny_model, tmp_path
):
    from marinade.corpus.document import ImportOptions
    from marinade.corpus.importing import import_corpus

    for name in ("admired", "mine"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(20):
            (folder / f"{i}.txt").write_text(f"{name} writes sentence number {i} by the sea.")
        import_corpus(store, folder, name, options=ImportOptions())
    args = ["--model", str(tiny_model), "--batch-size", "2", "--block-size", "32"]
    result = cli(
        "train", "r", "--phase", "mine:4", "--eval-every", "2", "--measure", "admired", *args
    )
    assert result.exit_code == 0, result.stderr
    steps = {(e.step, e.corpus) for e in store.evals("r")}
    assert steps == {(s, c) for s in (0, 2, 4) for c in ("admired", "mine")}
    result = cli("train", "bad", "--phase", "mine:2", "--measure", "nosuch", *args)
    assert result.exit_code != 0 and "nosuch" in result.output
