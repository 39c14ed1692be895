"""Which runs an experiment trains, so that recipes sharing their first phases train them once.

Recipes from the same base model are laid out as a tree of phase sequences. A run
ends wherever recipes part ways (a prefix followed by two different phases, or by
one phase in one recipe and the end of another) and at the end of every recipe.
Each run starts from the last phase checkpoint of the run before it in the tree:

    marinade = admired:1500, mine:100        tweets-shared-… : admired:1500
    other    = admired:1500, theirs:100  ->  tweets-marinade : mine:100   from shared@1
                                             tweets-other    : theirs:100 from shared@1
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from marinade.curation.spec import ExperimentSpec


@dataclass(frozen=True)
class PlannedRun:
    name: str
    model: str  # the base model, when start_from is None
    phases: tuple[str, ...]
    start_from: str | None = None  # RUN@PHASE of an earlier planned run


@dataclass(frozen=True)
class Plan:
    runs: tuple[PlannedRun, ...]  # in training order: a run comes after the one it starts from
    models: dict[str, str]  # recipe name -> the model to sample (a run, RUN@PHASE or a model)


def plan_experiment(spec: ExperimentSpec) -> Plan:
    models: dict[str, str] = {}
    runs: list[PlannedRun] = []
    trained = [recipe for recipe in spec.recipes if recipe.trains]
    for recipe in spec.recipes:
        if recipe.run:
            models[recipe.name] = recipe.run
        elif not recipe.trains:
            models[recipe.name] = recipe.model  # a control: the base model itself
    for base in dict.fromkeys(recipe.model for recipe in trained):
        group = [recipe for recipe in trained if recipe.model == base]
        sequences = {recipe.name: recipe.phases for recipe in group}
        ends = _run_ends(list(sequences.values()))
        planned: dict[tuple[str, ...], PlannedRun] = {}  # by the phase sequence it ends
        for end in sorted(ends, key=len):
            owners = [name for name, phases in sequences.items() if phases == end]
            name = (
                f"{spec.name}-{owners[0]}" if owners else f"{spec.name}-shared-{_digest(base, end)}"
            )
            parent = max((cut for cut in planned if end[: len(cut)] == cut), key=len, default=())
            start_from = None
            if parent:  # the end of the run before it: its last phase
                start_from = f"{planned[parent].name}@{len(planned[parent].phases)}"
            run = PlannedRun(
                name=name, model=base, phases=end[len(parent) :], start_from=start_from
            )
            runs.append(run)
            planned[end] = run
            for owner in owners:
                models[owner] = name
    return Plan(runs=tuple(runs), models=models)


def _run_ends(sequences: list[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """Every recipe's end, and every prefix after which the recipes sharing it part ways."""
    ends = set(sequences)
    for sequence in sequences:
        for length in range(1, len(sequence)):
            prefix = sequence[:length]
            following = {
                other[length] if len(other) > length else None
                for other in sequences
                if other[:length] == prefix
            }
            if len(following) > 1:
                ends.add(prefix)
    return ends


def _digest(model: str, phases: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join((model, *phases)).encode()).hexdigest()[:8]
