"""Run an experiment: train what is missing, sample every cell, check every sample.

Each step looks at the store first, so `experiment run` stopped anywhere (Ctrl-C,
a crash) picks up where it was: finished runs are kept, interrupted ones
resumed, and a cell samples only the seeds it does not have yet. A cell is sampled
in the sampler's own batches (a whole tweet-length cell of 200 is one batch: ~1.2x
the speed of batches of 50), each stored and checked (novelty, pre-filters) as soon as
it is sampled, so Ctrl-C loses at most the batch being sampled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from marinade.curation.checks import SampleChecker
from marinade.curation.plan import Plan, PlannedRun, plan_experiment
from marinade.curation.spec import ExperimentSpec
from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.sample_settings import SampleSettings
from marinade.store import RunStatus, Store
from marinade.timestamps import now_iso
from marinade.training.recipe import Recipe, TrainSettings, parse_phase


@dataclass(frozen=True)
class CellProgress:
    label: str  # "marinade T=0.8"
    done: int
    total: int


def run_experiment(
    store: Store,
    home: Home,
    spec: ExperimentSpec,
    device: str | None = None,
    on_status: Callable[[str], None] | None = None,
    on_train_step: Callable[[str, Any], None] | None = None,  # (run name, StepReport)
    on_cell: Callable[[CellProgress], None] | None = None,
    dtype: str | None = None,
) -> Plan:
    """Train the runs the grid is missing, then sample the cells it is missing.

    `dtype` (auto, float32, bfloat16): what new runs train in and every cell samples in;
    a run trained already keeps its own."""
    from marinade.models import pick_device
    from marinade.precision import choose_precision

    choose_precision(dtype, pick_device(device))  # a bad --dtype fails before anything runs
    plan = plan_experiment(spec)
    for planned in plan.runs:  # a typo in a corpus name fails before anything runs
        for phase in planned.phases:
            for corpus in parse_phase(phase).names():
                store.corpus(corpus)
    for recipe in spec.recipes:  # and so does one in the name of a run to reuse
        if recipe.run and store.run(recipe.run.split("@")[0]) is None:
            raise MarinadeError(
                f"experiment {spec.name}, recipe {recipe.name}: no run named "
                f"{recipe.run.split('@')[0]!r}; see `marinade runs list`"
            )
    recipes = {planned.name: _recipe_of(spec, planned, dtype) for planned in plan.runs}
    for planned in plan.runs:  # and so does a grid that no longer matches a run it trained
        _check_reusable(store, spec, recipes[planned.name])
    _check_samples_match_runs(store, spec, plan)
    record = _existing(store, spec.name) or {"name": spec.name, "created_at": now_iso()}
    record.update(spec=json.dumps(spec.to_dict()), status="running", updated_at=now_iso())
    store.save_experiment(record)
    try:
        for planned in plan.runs:
            _train(store, home, recipes[planned.name], device, on_status, on_train_step)
        checker = SampleChecker(store, spec, plan)  # each chunk is checked as it is stored
        for recipe in spec.recipes:
            _sample_recipe(
                store, home, spec, recipe.name, plan.models[recipe.name], device, checker,
                on_cell, dtype,
            )  # fmt: skip
        if on_status and checker.earlier:
            on_status(f"checking {checker.earlier} earlier samples against the training text")
        checker.check_the_rest()  # those sampled by an earlier `experiment run`
    except KeyboardInterrupt:
        store.save_experiment({**record, "status": "interrupted", "updated_at": now_iso()})
        raise
    except Exception:
        store.save_experiment({**record, "status": "failed", "updated_at": now_iso()})
        raise
    store.save_experiment({**record, "status": "finished", "updated_at": now_iso()})
    return plan


def _existing(store: Store, name: str) -> dict[str, Any] | None:
    try:
        return store.experiment(name)
    except MarinadeError:
        return None


def _recipe_of(spec: ExperimentSpec, planned: PlannedRun, dtype: str | None = None) -> Recipe:
    from marinade.training.recipe import build_recipe

    # every run measures every corpus the grid trains on: the forgetting curves of the report
    measure = tuple(dict.fromkeys([*spec.training.get("measure", ()), *spec.corpora()]))
    training = {**spec.training, "measure": measure, **({"dtype": dtype} if dtype else {})}
    return build_recipe(
        planned.name, planned.model, list(planned.phases), planned.start_from, None, training
    )


# Settings that change how a run is watched or stopped, not the weights it ends with: a grid
# may change them and still resume or reuse its runs (which keep the values they started with).
WATCH_SETTINGS = frozenset(
    (
        "eval_every",
        "save_every",
        "sample_every",
        "sample_prompts",
        "sample_temperature",
        "max_minutes",
        "measure",  # evaluations only: a run that measures fewer corpora is still reused
        "dtype",  # a run keeps the precision it started in, as `train --resume` does
    )
)


def recipe_differences(trained: Recipe, wanted: Recipe) -> list[tuple[str, str, str]]:
    """(what, trained with, wanted) for everything that would make `wanted` train other
    weights than `trained` did; empty when the stored run can be reused or resumed."""
    pairs: list[tuple[str, Any, Any]] = [
        ("model", trained.model, wanted.model),
        ("start", trained.start_from or "the base model", wanted.start_from or "the base model"),
        ("phases", _labels(trained), _labels(wanted)),
    ]
    for setting in fields(TrainSettings):
        if setting.name not in WATCH_SETTINGS:
            pairs.append(
                (
                    setting.name,
                    getattr(trained.settings, setting.name),
                    getattr(wanted.settings, setting.name),
                )
            )
    return [(what, _shown(old), _shown(new)) for what, old, new in pairs if old != new]


def _labels(recipe: Recipe) -> str:
    return ", ".join(phase.request() for phase in recipe.phases)


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _check_reusable(store: Store, spec: ExperimentSpec, wanted: Recipe) -> None:
    """Refuse to reuse or resume a run that the grid would now train differently."""
    existing = store.run(wanted.name)
    if existing is None:
        return
    trained = Recipe.from_dict(existing.recipe_dict())
    differences = recipe_differences(trained, wanted)
    if not differences:
        return
    trained_with = " and ".join(f"{what} {value}" for what, value, _ in differences)
    grid_says = " and ".join(f"{what} {value}" for what, _, value in differences)
    shared = wanted.name.startswith(f"{spec.name}-shared-")
    rename = "the experiment" if shared else "the recipe"
    raise MarinadeError(
        f"run {wanted.name} was trained with {trained_with}, the grid now says {grid_says}: "
        f"rename {rename} to train a new run, or delete this one (marinade runs rm {wanted.name})"
    )


def _check_samples_match_runs(store: Store, spec: ExperimentSpec, plan: Plan) -> None:
    """Refuse to keep a recipe's samples when the run they came from is gone or was trained
    again since (`marinade runs rm` then `experiment run`): they would pass for the new run's."""
    first_sample: dict[str, str] = {}
    for sample in store.experiment_samples(spec.name):
        first_sample.setdefault(sample["recipe"], sample["created_at"])
    for recipe in spec.recipes:
        if not recipe.trains or recipe.name not in first_sample:
            continue
        run_name = plan.models[recipe.name]
        run = store.run(run_name)
        if run is None or run.created_at > first_sample[recipe.name]:
            raise MarinadeError(
                f"experiment {spec.name} has samples of recipe {recipe.name} from an earlier "
                f"run {run_name}: rename the recipe, or delete the experiment's samples "
                f"(marinade experiment rm {spec.name})"
            )


def _train(
    store: Store,
    home: Home,
    recipe: Recipe,
    device: str | None,
    on_status: Callable[[str], None] | None,
    on_train_step: Callable[[str, Any], None] | None,
) -> None:
    from marinade.training.loop import train

    existing = store.run(recipe.name)  # _check_reusable found it trained as the grid says
    if existing is not None and existing.status == RunStatus.FINISHED:
        return
    if on_status:
        action = "resuming" if existing else "training"
        on_status(f"{action} {recipe.name}: {_labels(recipe)}")

    def on_step(report: Any) -> None:
        if on_train_step:
            on_train_step(recipe.name, report)

    train(
        store,
        home,
        recipe,
        resume=existing is not None,
        device=device,
        on_step=on_step,
        on_status=on_status,
    )


def _sample_recipe(
    store: Store,
    home: Home,
    spec: ExperimentSpec,
    recipe: str,
    model_name: str,
    device: str | None,
    checker: SampleChecker,
    on_cell: Callable[[CellProgress], None] | None,
    dtype: str | None = None,
) -> None:
    from marinade.generation import generate_samples
    from marinade.models import load_model
    from marinade.sampling import rows_per_batch  # imports torch: only when sampling

    loaded = None
    seeds = range(spec.seed, spec.seed + spec.samples_per_cell)
    for temperature in spec.temperatures:
        for top_p in spec.top_ps:
            label = f"{recipe} T={temperature:g}" + (f" p={top_p:g}" if top_p != 1.0 else "")
            total = spec.samples_per_cell * len(spec.prompts)
            missing = {}
            for prompt in spec.prompts:
                have = store.cell_seeds(spec.name, recipe, temperature, top_p, prompt)
                missing[prompt] = [seed for seed in seeds if seed not in have]
            done = total - sum(len(left) for left in missing.values())
            if on_cell:
                on_cell(CellProgress(label, done, total))
            settings = SampleSettings(
                top_p=top_p,
                max_new_tokens=spec.max_new_tokens,
                stop=spec.stop,
                whole_sentences=spec.whole_sentences,
            )
            for prompt, left in missing.items():
                if not left:
                    continue
                loaded = loaded or load_model(model_name, home, device=device, dtype=dtype)
                size = rows_per_batch(
                    loaded.model, loaded.tokenizer, prompt, settings, loaded.document_start
                )
                for start in range(0, len(left), size):
                    chunk = left[start : start + size]
                    stored = generate_samples(
                        store,
                        loaded,
                        prompt,
                        chunk,
                        [temperature],
                        settings,
                        origin="experiment",
                        labels={"experiment": spec.name, "recipe": recipe},
                        on_progress=_cell_progress(on_cell, label, done, total, settings),
                    )
                    checker.check(stored)
                    kept = {row["seed"] for row in stored}
                    dropped = [seed for seed in chunk if seed not in kept]
                    if dropped:
                        store.add_cell_drops(spec.name, recipe, temperature, top_p, prompt, dropped)
                    done += len(chunk)
                    if on_cell:
                        on_cell(CellProgress(label, done, total))


def _cell_progress(
    on_cell: Callable[[CellProgress], None] | None,
    label: str,
    done: int,
    total: int,
    settings: SampleSettings,
) -> Callable[[int], None] | None:
    """The sampler's token slots as samples done, so a cell's bar moves within a batch."""
    if on_cell is None:
        return None
    cap, slots = settings.token_cap(), 0

    def report(more: int) -> None:
        nonlocal slots
        slots += more
        on_cell(CellProgress(label, done + slots // cap, total))

    return report
