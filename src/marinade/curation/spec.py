"""An experiment grid read from TOML: recipes x temperatures (x top-p), N samples per cell.

name = "tweets"
temperatures = [0.8, 1.0, 1.2]
samples_per_cell = 200
max_new_tokens = 60
prompts = []                      # empty: unconditional
whole_sentences = true            # end samples at a sentence end (default: on without prompts)
[training]                        # shared by every recipe, as in `marinade train`
method = "lora"
[[recipes]]
name = "marinade"
phases = ["admired:1500", "mine:100"]
[[recipes]]
name = "base"                     # a control: the base model, untrained
model = "smollm2"
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marinade.errors import MarinadeError
from marinade.files import read_toml
from marinade.names import check_name
from marinade.training.recipe import (
    DEFAULT_MODEL,
    TrainSettings,
    parse_phase,
    setting_value,
)


@dataclass(frozen=True)
class RecipeSpec:
    """One row of the grid: phases to train, an existing run, or a bare model (a control)."""

    name: str
    model: str  # the base model to train from (or to sample, for a control)
    phases: tuple[str, ...] = ()  # phase texts, each already checked
    run: str | None = None  # an existing run (or RUN@PHASE) to sample instead of training

    @property
    def trains(self) -> bool:
        return bool(self.phases)


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    recipes: tuple[RecipeSpec, ...]
    temperatures: tuple[float, ...] = (0.8,)
    top_ps: tuple[float, ...] = (1.0,)  # 1.0: off
    prompts: tuple[str | None, ...] = (None,)  # None: unconditional
    samples_per_cell: int = 200
    max_new_tokens: int = 60
    seed: int = 0  # every cell uses seeds seed .. seed + samples_per_cell - 1
    stop: str | None = None
    training: dict[str, Any] = field(default_factory=dict)  # TrainSettings overrides
    copied_words: int = 8  # a sample copying this many words in a row is tagged "copied"
    max_chars: int = 280  # longer samples are tagged "too-long" (X: 280, Bluesky: 300)
    min_words: int = 3  # shorter samples are tagged "short"
    # end each sample at its last sentence end, drop one without (sampling.py); the
    # file's default: on when the prompts are empty (unconditional), off with prompts
    whole_sentences: bool = False

    def corpora(self) -> list[str]:
        """Every corpus a recipe of the grid trains on, in first-seen order."""
        names = (
            name
            for recipe in self.recipes
            for phase in recipe.phases
            for name in parse_phase(phase).corpus_names()
        )
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recipes": [vars(recipe) for recipe in self.recipes],
            "temperatures": list(self.temperatures),
            "top_p": list(self.top_ps),
            "prompts": list(self.prompts),
            "samples_per_cell": self.samples_per_cell,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "stop": self.stop,
            "training": self.training,
            "copied_words": self.copied_words,
            "max_chars": self.max_chars,
            "min_words": self.min_words,
            "whole_sentences": self.whole_sentences,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentSpec:
        return cls(
            name=data["name"],
            recipes=tuple(
                RecipeSpec(**{**recipe, "phases": tuple(recipe["phases"])})
                for recipe in data["recipes"]
            ),
            temperatures=tuple(data["temperatures"]),
            top_ps=tuple(data["top_p"]),
            prompts=tuple(data["prompts"]),
            samples_per_cell=data["samples_per_cell"],
            max_new_tokens=data["max_new_tokens"],
            seed=data["seed"],
            stop=data["stop"],
            training=data["training"],
            copied_words=data["copied_words"],
            max_chars=data["max_chars"],
            min_words=data["min_words"],
            whole_sentences=data.get("whole_sentences", False),  # stored before it existed
        )


TOP_KEYS = (
    "name, model, temperatures, top_p, prompts, samples_per_cell, max_new_tokens, seed, "
    "stop, copied_words, max_chars, min_words, whole_sentences, [training], [[recipes]]"
)


def load_experiment(path: Path) -> ExperimentSpec:
    """Read and check an experiment file; errors name the file and the key."""
    return parse_experiment(read_toml(path, "experiment"), str(path))


def parse_experiment(data: dict[str, Any], where: str) -> ExperimentSpec:
    def fail(problem: str) -> MarinadeError:
        return MarinadeError(f"{where}: {problem}")

    known = set(TOP_KEYS.replace("[", "").replace("]", "").split(", "))
    for key in data:
        if key not in known:
            raise fail(f"unknown key {key!r} (known: {TOP_KEYS})")
    name = data.get("name")
    if not isinstance(name, str):
        raise fail('an experiment needs a name: name = "tweets"')
    try:
        check_name(name, "experiment")
    except MarinadeError as error:
        raise fail(str(error)) from None

    def numbers(key: str, default: list[Any], low: float, high: float) -> tuple[Any, ...]:
        values = data.get(key, default)
        if not isinstance(values, list) or not values:
            raise fail(f"{key} must be a non-empty list of numbers, like [0.8, 1.0]")
        for value in values:
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not low <= value <= high
            ):
                raise fail(f"{key}: {value!r} is not a number in [{low}, {high}]")
        if len(set(values)) != len(values):
            raise fail(f"{key} lists a value twice")
        return tuple(float(value) for value in values)

    def whole(key: str, default: int, low: int) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise fail(f"{key} must be a whole number of at least {low}, not {value!r}")
        return value

    temperatures = numbers("temperatures", [0.8], 0.0, 10.0)
    top_ps = numbers("top_p", [1.0], 0.0, 1.0)
    if 0.0 in top_ps:
        raise fail("top_p values must be above 0 (1.0: off)")
    prompts = data.get("prompts", [])
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise fail('prompts must be a list of strings (empty: unconditional), like ["I think"]')
    whole_sentences = data.get("whole_sentences", not prompts)
    if not isinstance(whole_sentences, bool):
        raise fail(f"whole_sentences must be true or false, not {whole_sentences!r}")
    stop = data.get("stop")
    if stop is not None and (not isinstance(stop, str) or not stop):
        raise fail('stop must be a non-empty string, like "\\n"')

    training: dict[str, Any] = {}
    table = data.get("training", {})
    if not isinstance(table, dict):
        raise fail("training must be a [training] table")
    for key, value in table.items():
        training[key] = setting_value(Path(where), key, value)
    try:
        TrainSettings(**training)  # checks itself
    except MarinadeError as error:
        raise fail(f"[training]: {error}") from None

    default_model = data.get("model", DEFAULT_MODEL)
    if not isinstance(default_model, str):
        raise fail(f"model must be a string, not {default_model!r}")
    recipes = data.get("recipes")
    if not isinstance(recipes, list) or not recipes:
        raise fail("an experiment needs at least one [[recipes]] table")
    parsed: list[RecipeSpec] = []
    for index, table in enumerate(recipes, 1):
        parsed.append(_recipe(table, index, default_model, fail))
    names = [recipe.name for recipe in parsed]
    for recipe_name in names:
        if names.count(recipe_name) > 1:
            raise fail(f"two recipes are named {recipe_name!r}")

    return ExperimentSpec(
        name=name,
        recipes=tuple(parsed),
        temperatures=temperatures,
        top_ps=top_ps,
        prompts=tuple(prompts) or (None,),
        samples_per_cell=whole("samples_per_cell", 200, 1),
        max_new_tokens=whole("max_new_tokens", 60, 1),
        seed=whole("seed", 0, 0),
        stop=stop,
        training=training,
        copied_words=whole("copied_words", 8, 1),
        max_chars=whole("max_chars", 280, 1),
        min_words=whole("min_words", 3, 0),
        whole_sentences=whole_sentences,
    )


def _recipe(table: Any, index: int, default_model: str, fail: Any) -> RecipeSpec:
    if not isinstance(table, dict):
        raise fail(f"recipe {index} must be a [[recipes]] table")
    for key in table:
        if key not in ("name", "model", "phases", "run"):
            raise fail(f"recipe {index}: unknown key {key!r} (known: name, model, phases, run)")
    name = table.get("name")
    if not isinstance(name, str):
        raise fail(f'recipe {index} needs a name: name = "marinade"')
    try:
        check_name(name, "recipe")
    except MarinadeError as error:
        raise fail(f"recipe {index}: {error}") from None
    model = table.get("model", default_model)
    run = table.get("run")
    phases = table.get("phases", [])
    for key, value in (("model", model), ("run", run)):
        if value is not None and not isinstance(value, str):
            raise fail(f"recipe {name}: {key} must be a string, not {value!r}")
    if not isinstance(phases, list) or not all(isinstance(phase, str) for phase in phases):
        raise fail(f'recipe {name}: phases must be a list of strings like ["mine:100"]')
    if run and phases:
        raise fail(f"recipe {name}: give phases (to train) or run (to reuse a run), not both")
    checked = []
    for phase in phases:
        try:
            checked.append(parse_phase(phase).label())
        except MarinadeError as error:
            raise fail(f"recipe {name}: {error}") from None
    return RecipeSpec(name=name, model=model, phases=tuple(checked), run=run)
