"""Novelty and pre-filter checks of an experiment's samples, made as each chunk is stored.

One SampleChecker serves one `experiment run`: the novelty index and the languages of
each set of training corpora are built once, the first time a sample trained on them is
checked, and then serve every cell. It also knows the words of every sample of the
experiment, so a `duplicate` is a sample with the same words as one with a lower id,
however many runs the experiment took to sample them.
"""

from __future__ import annotations

import json
from typing import Any

from marinade.curation.novelty import TrainingText, words
from marinade.curation.plan import Plan
from marinade.curation.prefilters import prefilter_tags
from marinade.curation.spec import ExperimentSpec
from marinade.language import corpus_languages, is_foreign
from marinade.store import Store
from marinade.training.recipe import Recipe, parse_phase


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
            recipe = Recipe.from_dict(stored.recipe_dict())
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


class SampleChecker:
    """Checks samples of one experiment against the text each one's model was trained on."""

    def __init__(self, store: Store, spec: ExperimentSpec, plan: Plan):
        self.store = store
        self.spec = spec
        self.corpora_of = recipe_corpora(store, spec, plan)
        self.indexes: dict[tuple[str, ...], TrainingText] = {}  # of each set of corpora
        self.languages: dict[tuple[str, ...], frozenset[str]] = {}
        self.first_with: dict[tuple[str, ...], int] = {}  # a sample's words -> lowest id
        earlier = store.experiment_samples(spec.name)
        for sample in earlier:
            self.first_with.setdefault(tuple(words(sample["text"])), sample["id"])
        self.earlier = len(earlier)  # samples stored before this checker was made
        self.checked: set[int] = set()

    def check(self, samples: list[dict[str, Any]]) -> None:
        """Check samples just stored (ids above every earlier sample's) and save the checks."""
        for sample in samples:
            self.first_with.setdefault(tuple(words(sample["text"])), sample["id"])
        self.store.save_sample_checks([self._check(sample) for sample in samples])
        self.checked.update(sample["id"] for sample in samples)

    def check_the_rest(self) -> int:
        """Check again every sample this checker has not (those of earlier `experiment run`s,
        against the thresholds and the corpora of today); returns how many."""
        rest = [
            sample
            for sample in self.store.experiment_samples(self.spec.name)
            if sample["id"] not in self.checked
        ]
        self.check(rest)
        return len(rest)

    def _check(self, sample: dict[str, Any]) -> dict[str, Any]:
        corpora = tuple(sorted(self.corpora_of.get(sample["recipe"], [])))
        if corpora not in self.indexes:
            documents = [
                (document["id"], document["text"])
                for corpus in corpora
                for document in self.store.documents(corpus)
            ]
            self.indexes[corpora] = TrainingText(documents)
            self.languages[corpora] = corpus_languages([text for _, text in documents])
        copy = self.indexes[corpora].longest_copy(sample["text"])
        key = tuple(words(sample["text"]))
        closest = copy.document_id
        if closest is None:
            closest = self.store.closest_document(list(corpora), list(key))
        tags = prefilter_tags(
            sample["text"],
            min_words=self.spec.min_words,
            max_chars=self.spec.max_chars,
            foreign=is_foreign(sample["text"], self.languages[corpora]),
            copied_words=copy.words,
            copied_threshold=self.spec.copied_words,
            duplicate=bool(key) and self.first_with[key] != sample["id"],
            prompt=sample.get("prompt") or "",
        )
        return {
            "sample_id": sample["id"],
            "copied_words": copy.words,
            "closest_document_id": closest,
            "tags": json.dumps(tags),
        }
