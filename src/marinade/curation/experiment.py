"""Run an experiment: train what is missing, sample every cell, check every sample.

Each step looks at the store first, so `experiment run` stopped anywhere (Ctrl-C,
a crash) picks up where it was: finished runs are kept, interrupted ones
resumed, and a cell samples only the seeds it does not have yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from marinade.curation.language import corpus_languages, is_foreign
from marinade.curation.novelty import TrainingText, words
from marinade.curation.plan import Plan, PlannedRun, plan_experiment
from marinade.curation.prefilters import prefilter_tags
from marinade.curation.spec import ExperimentSpec
from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.sample_settings import SampleSettings
from marinade.store import Store
from marinade.training.recipe import Recipe, parse_phase

CHUNK = 50  # samples stored together: Ctrl-C loses at most this many


@dataclass(frozen=True)
class CellProgress:
    label: str  # "marinade T=0.8"
    done: int
    total: int


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_experiment(
    store: Store,
    home: Home,
    spec: ExperimentSpec,
    device: str | None = None,
    on_status: Callable[[str], None] | None = None,
    on_train_step: Callable[[str, Any], None] | None = None,  # (run name, StepReport)
    on_cell: Callable[[CellProgress], None] | None = None,
) -> Plan:
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
    record = _existing(store, spec.name) or {"name": spec.name, "created_at": now()}
    record.update(spec=json.dumps(spec.to_dict()), status="running", updated_at=now())
    store.save_experiment(record)
    try:
        for planned in plan.runs:
            _train(store, home, spec, planned, device, on_status, on_train_step)
        for recipe in spec.recipes:
            _sample_recipe(
                store, home, spec, recipe.name, plan.models[recipe.name], device, on_cell
            )
        if on_status:
            on_status("checking samples against the training text")
        check_samples(store, spec, plan)
    except KeyboardInterrupt:
        store.save_experiment({**record, "status": "interrupted", "updated_at": now()})
        raise
    except Exception:
        store.save_experiment({**record, "status": "failed", "updated_at": now()})
        raise
    store.save_experiment({**record, "status": "finished", "updated_at": now()})
    return plan


def _existing(store: Store, name: str) -> dict[str, Any] | None:
    try:
        return store.experiment(name)
    except MarinadeError:
        return None


def _train(
    store: Store,
    home: Home,
    spec: ExperimentSpec,
    planned: PlannedRun,
    device: str | None,
    on_status: Callable[[str], None] | None,
    on_train_step: Callable[[str, Any], None] | None,
) -> None:
    from marinade.training.loop import train
    from marinade.training.recipe import build_recipe

    recipe = build_recipe(
        planned.name, planned.model, list(planned.phases), planned.start_from, None, spec.training
    )
    existing = store.run(planned.name)
    if existing is not None:
        stored = Recipe.from_dict(json.loads(existing["recipe"]))
        if stored.phases != recipe.phases or stored.start_from != recipe.start_from:
            raise MarinadeError(
                f"run {planned.name} exists with other phases; remove it "
                f"(marinade runs rm {planned.name}) or rename the experiment"
            )
        if existing["status"] == "finished":
            return
    if on_status:
        action = "resuming" if existing else "training"
        on_status(f"{action} {planned.name}: {', '.join(planned.phases)}")

    def on_step(report: Any) -> None:
        if on_train_step:
            on_train_step(planned.name, report)

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
    on_cell: Callable[[CellProgress], None] | None,
) -> None:
    from marinade.generation import generate_samples
    from marinade.models import load_model

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
                top_p=top_p, max_new_tokens=spec.max_new_tokens, stop=spec.stop
            )
            for prompt, left in missing.items():
                for start in range(0, len(left), CHUNK):
                    loaded = loaded or load_model(model_name, home, device=device)
                    chunk = left[start : start + CHUNK]
                    generate_samples(
                        store,
                        loaded,
                        prompt,
                        chunk,
                        [temperature],
                        settings,
                        origin="experiment",
                        labels={"experiment": spec.name, "recipe": recipe},
                    )
                    done += len(chunk)
                    if on_cell:
                        on_cell(CellProgress(label, done, total))


def recipe_corpora(store: Store, spec: ExperimentSpec, plan: Plan) -> dict[str, list[str]]:
    """The corpora each recipe's model was trained on; for a control (an untrained
    model), every corpus of the experiment, to show it copies none of them."""
    run_phases = {run.name: run for run in plan.runs}

    def chain(run_name: str) -> list[str]:
        name = run_name.split("@")[0]
        if name in run_phases:
            planned = run_phases[name]
            phases, start = list(planned.phases), planned.start_from
        else:
            stored = store.run(name)
            if stored is None:
                return []
            recipe = Recipe.from_dict(json.loads(stored["recipe"]))
            phases, start = [phase.label() for phase in recipe.phases], recipe.start_from
        corpora = [corpus for phase in phases for corpus in parse_phase(phase).names()]
        return corpora + (chain(start) if start else [])

    own = {
        recipe.name: list(dict.fromkeys(chain(plan.models[recipe.name])))
        for recipe in spec.recipes
        if recipe.trains or recipe.run
    }
    everything = list(dict.fromkeys(corpus for corpora in own.values() for corpus in corpora))
    return {recipe.name: own.get(recipe.name) or everything for recipe in spec.recipes}


def check_samples(store: Store, spec: ExperimentSpec, plan: Plan) -> int:
    """Novelty and pre-filter tags for every sample of the experiment; returns how many."""
    corpora_of = recipe_corpora(store, spec, plan)
    indexes: dict[tuple[str, ...], TrainingText] = {}
    languages: dict[tuple[str, ...], frozenset[str]] = {}  # of each set of corpora
    seen: set[tuple[str, ...]] = set()
    rows = []
    for sample in store.experiment_samples(spec.name):
        corpora = tuple(sorted(corpora_of.get(sample["recipe"], [])))
        if corpora not in indexes:
            documents = [
                (document["id"], document["text"])
                for corpus in corpora
                for document in store.documents(corpus)
            ]
            indexes[corpora] = TrainingText(documents)
            languages[corpora] = corpus_languages([text for _, text in documents])
        index = indexes[corpora]
        copy = index.longest_copy(sample["text"])
        key = tuple(words(sample["text"]))
        closest = copy.document_id
        if closest is None:
            closest = store.closest_document(list(corpora), list(key))
        tags = prefilter_tags(
            sample["text"],
            min_words=spec.min_words,
            max_chars=spec.max_chars,
            foreign=is_foreign(sample["text"], languages[corpora]),
            copied_words=copy.words,
            copied_threshold=spec.copied_words,
            duplicate=bool(key) and key in seen,
        )
        seen.add(key)
        rows.append(
            {
                "sample_id": sample["id"],
                "copied_words": copy.words,
                "closest_document_id": closest,
                "tags": json.dumps(tags),
            }
        )
    store.save_sample_checks(rows)
    return len(rows)
