"""Held-out losses of an experiment's recipes: each recipe's final loss per corpus, and its
curve from the base model to its end (the forgetting curves of `experiment report --plot`).

A recipe's model is a run, RUN@PHASE, or a bare model (a control). A run that starts from
another run's checkpoint (plan.py's shared first phases) carries on that run's curve: its
steps count on from the step that checkpoint holds, so each recipe's curve runs from step 0
of the first run of its lineage (the base model, evaluated before any training) through
every phase boundary to its end. A control is the base model itself: its losses are the
step-0 evaluation of a run the grid trained from that model (the same held-out blocks,
since the runs of one grid share their held-out settings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from marinade.curation.plan import plan_experiment
from marinade.curation.spec import ExperimentSpec
from marinade.training.recipe import Recipe, phase_ends

if TYPE_CHECKING:
    from pathlib import Path

    from marinade.store import Store


@dataclass(frozen=True)
class LossCurve:
    """One recipe's held-out losses against the steps of its lineage."""

    recipe: str
    model: str  # what the recipe samples: a run, RUN@PHASE or a base model
    base_model: str  # the model its lineage started from
    points: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # corpus -> steps
    phase_ends: tuple[int, ...] = ()  # the steps at which its phases end
    control: bool = False  # a bare model: no training, no curve of its own

    @property
    def last_step(self) -> int | None:
        steps = [step for points in self.points.values() for step, _ in points]
        return max(steps) if steps else None

    def final(self) -> dict[str, float]:
        """Each corpus's last measured loss."""
        return {corpus: points[-1][1] for corpus, points in self.points.items() if points}

    def at_start(self) -> dict[str, float]:
        """Each corpus's loss at step 0: the base model's, for a lineage from a base model."""
        return {
            corpus: points[0][1]
            for corpus, points in self.points.items()
            if points and points[0][0] == 0
        }


@dataclass(frozen=True)
class RecipeLosses:
    """What the report shows beside a recipe's accept rates."""

    recipe: str
    held_out_loss: dict[str, float]  # corpus -> the final held-out loss
    held_out_step: int | None  # the step of the last evaluation (0 for a control)
    base_held_out_loss: dict[str, float]  # corpus -> the base model's (control or step 0)


def _lineage(store: Store, model: str) -> tuple[str, list[tuple[str, int | None]]]:
    """The base model and the runs (each with the last step it contributes; None: all)
    from the first run of `model`'s lineage to `model` itself. No runs: a bare model."""
    segments: list[tuple[str, int | None]] = []
    base: str = model
    current: str | None = model
    while current:
        name, _, phase = current.partition("@")
        run = store.run(name)
        if run is None or any(seen == name for seen, _ in segments):
            break
        recipe = Recipe.from_dict(run.recipe_dict())
        ends = phase_ends(recipe) if recipe.steps_picked() else []
        number = int(phase) if phase.isdigit() else 0
        segments.append((name, ends[number - 1] if 0 < number <= len(ends) else None))
        base, current = recipe.model, recipe.start_from
    return base, segments[::-1]


def loss_curve(store: Store, recipe: str, model: str, corpora: list[str]) -> LossCurve:
    """The curve of the recipe that samples `model`, for `corpora` (empty: every corpus)."""
    base_model, segments = _lineage(store, model)
    if not segments:
        return LossCurve(recipe, model, base_model, control=True)
    points: dict[str, list[tuple[int, float]]] = {}
    boundaries: list[int] = []
    offset = 0
    for name, upto in segments:
        run = store.run(name)
        assert run is not None
        for measured in store.evals(name):
            if upto is not None and measured.step > upto:
                continue
            if corpora and measured.corpus not in corpora:
                continue
            line = points.setdefault(measured.corpus, [])
            step = offset + measured.step
            if not line or line[-1][0] < step:  # a run's step 0 repeats where the last ended
                line.append((step, measured.loss))
        ends = phase_ends(Recipe.from_dict(run.recipe_dict()))
        boundaries += [offset + end for end in ends if upto is None or end <= upto]
        offset += upto if upto is not None else (ends[-1] if ends else run.steps_done)
    ordered = {corpus: points[corpus] for corpus in (corpora or sorted(points)) if corpus in points}
    return LossCurve(recipe, model, base_model, ordered, tuple(boundaries))


def experiment_curves(store: Store, spec: dict[str, Any]) -> tuple[list[str], list[LossCurve]]:
    """The corpora the grid trains on (else every corpus measured) and each recipe's curve,
    in the spec's order; `spec` as stored with the experiment."""
    parsed = ExperimentSpec.from_dict(spec)
    models = plan_experiment(parsed).models
    corpora = parsed.corpora()
    curves = [
        loss_curve(store, recipe.name, models[recipe.name], corpora) for recipe in parsed.recipes
    ]
    if not corpora:  # a grid of reused runs: whatever they measured
        corpora = list(dict.fromkeys(c for curve in curves for c in curve.points))
    return corpora, curves


def base_losses(curves: list[LossCurve], base_model: str) -> dict[str, float]:
    """The losses of `base_model` before training: step 0 of any run the grid trained from
    it, corpus by corpus (the first curve that has one)."""
    losses: dict[str, float] = {}
    for curve in curves:
        if curve.control or curve.base_model != base_model:
            continue
        for corpus, loss in curve.at_start().items():
            losses.setdefault(corpus, loss)
    return losses


def recipe_losses(curves: list[LossCurve]) -> list[RecipeLosses]:
    """Per recipe: its final held-out losses and the base model's beside them."""
    rows = []
    for curve in curves:
        base = base_losses(curves, curve.base_model)
        if curve.control:
            rows.append(RecipeLosses(curve.recipe, dict(base), 0 if base else None, base))
        else:
            rows.append(
                RecipeLosses(curve.recipe, curve.final(), curve.last_step, base or curve.at_start())
            )
    return rows


def experiment_losses(store: Store, name: str) -> tuple[list[str], list[LossCurve]]:
    """The corpora and curves of experiment `name`, from its stored spec."""
    return experiment_curves(store, json.loads(store.experiment(name)["spec"]))


def plot_curves(
    corpora: list[str], curves: list[LossCurve], experiment: str, output: Path | BinaryIO
) -> None:
    """One panel per corpus: held-out loss against step, one line per recipe, its phase
    boundaries as dotted vertical lines of its colour, a control as a dashed level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = max(1, len(corpora))
    figure, axes_row = plt.subplots(1, panels, figsize=(4.5 * panels, 3.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, corpus in enumerate(corpora or [""]):
        axes = axes_row[0][index]
        for number, curve in enumerate(curves):
            colour = colours[number % len(colours)]
            if curve.control:
                level = base_losses(curves, curve.base_model).get(corpus)
                if level is not None:
                    axes.axhline(
                        level, color=colour, linestyle="--", label=f"{curve.recipe} (base)"
                    )
                continue
            points = curve.points.get(corpus, [])
            if not points:
                continue
            steps, losses = zip(*points, strict=True)
            axes.plot(steps, losses, marker=".", color=colour, label=curve.recipe)
            for end in curve.phase_ends[:-1]:  # the last end is the curve's end
                axes.axvline(end, color=colour, linestyle=":", alpha=0.6)
        axes.set_title(f"held-out loss on {corpus}" if corpus else "no held-out losses yet")
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    figure.suptitle(f"{experiment}: forgetting curves (dotted: phase boundaries)")
    figure.tight_layout()
    figure.savefig(output, dpi=110, format="png")
    plt.close(figure)
