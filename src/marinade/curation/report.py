"""Success rates per cell (recipe x temperature x top-p) with 95% Wilson intervals."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from marinade.store import Store

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval: sound for small counts and rates near 0 or 1,
    where the textbook p +- z*sqrt(p(1-p)/n) collapses to a point. (0, 1) for no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Cell:
    recipe: str
    temperature: float
    top_p: float
    samples: int = 0
    rated: int = 0
    accepted: int = 0
    copied: int = 0
    fragment: int = 0  # samples tagged "fragment" (begins mid-sentence)
    cut: int = 0  # samples tagged "cut" (ends mid-clause)
    dropped: int = 0  # whole sentences: samples drawn and dropped for want of a sentence end
    rate: float | None = None  # accepted / rated
    ci_low: float = 0.0
    ci_high: float = 1.0
    copied_rate: float | None = None
    fragment_rate: float | None = None
    cut_rate: float | None = None

    def finish(self, dropped: int | None = None, planned: int = 0) -> None:
        """Rates and shares from the counts. `dropped`: as recorded (cell_drops); None for
        an experiment sampled before drops were recorded: the planned samples not stored."""
        self.rate = self.accepted / self.rated if self.rated else None
        self.ci_low, self.ci_high = wilson_interval(self.accepted, self.rated)
        share = (lambda count: count / self.samples) if self.samples else (lambda count: None)
        self.copied_rate = share(self.copied)
        self.fragment_rate = share(self.fragment)
        self.cut_rate = share(self.cut)
        self.dropped = max(0, planned - self.samples) if dropped is None else dropped


def cells(
    spec: dict[str, Any],
    rows: list[dict[str, Any]],
    drops: dict[tuple[str, float, float | None], int] | None = None,
) -> list[Cell]:
    """One cell per recipe x temperature x top-p of the spec (in its order), counted from
    the experiment's samples (each with recipe, temperature, top_p, rating, tags) and the
    samples whole sentences dropped per cell (store.cell_drop_count)."""
    table = {
        (recipe["name"], float(temperature), float(top_p)): Cell(recipe["name"], temperature, top_p)
        for recipe in spec["recipes"]
        for temperature in spec["temperatures"]
        for top_p in spec["top_p"]
    }
    for row in rows:
        top_p = 1.0 if row["top_p"] is None else float(row["top_p"])
        cell = table.get((row["recipe"], float(row["temperature"]), top_p))
        if cell is None:
            continue  # a cell the spec no longer has
        cell.samples += 1
        if row["rating"] in ("accept", "reject"):
            cell.rated += 1
            cell.accepted += row["rating"] == "accept"
        tags = json.loads(row["tags"] or "[]")
        cell.copied += "copied" in tags
        cell.fragment += "fragment" in tags
        cell.cut += "cut" in tags
    # whole sentences store no sample without a sentence end; an experiment sampled before
    # drops were recorded counts the planned samples it does not have as dropped
    planned = spec["samples_per_cell"] * len(spec["prompts"]) if spec.get("whole_sentences") else 0
    recorded: dict[tuple[str, float, float], int] = {}
    for (recipe, temperature, drawn_top_p), count in (drops or {}).items():
        key = (recipe, float(temperature), 1.0 if drawn_top_p is None else float(drawn_top_p))
        recorded[key] = recorded.get(key, 0) + count
    for key, cell in table.items():
        cell.finish(recorded.get(key, 0) if drops else None, planned)
    return list(table.values())


def experiment_cells(store: Store, name: str) -> tuple[dict[str, Any], list[Cell]]:
    """An experiment's spec, as stored with it, and its cells counted from its samples now."""
    spec = json.loads(store.experiment(name)["spec"])
    return spec, cells(spec, store.experiment_samples(name), store.cell_drop_count(name))


def best_cell(table: list[Cell]) -> Cell | None:
    """The cell whose interval's lower end is highest: the best rate we can be sure of."""
    rated = [cell for cell in table if cell.rated]
    return max(rated, key=lambda cell: (cell.ci_low, cell.rate or 0.0)) if rated else None


def best_temperature(ratings: list[dict[str, Any]]) -> float | None:
    """The temperature whose accept rate's interval has the highest lower end (as in
    best_cell), from rows of temperature, rated and accepted; None when nothing is rated."""
    rated = [row for row in ratings if row["rated"]]
    if not rated:
        return None
    best = max(
        rated,
        key=lambda row: (
            wilson_interval(row["accepted"], row["rated"])[0],
            row["accepted"] / row["rated"],
        ),
    )
    return float(best["temperature"])


def as_json(table: list[Cell]) -> list[dict[str, Any]]:
    return [asdict(cell) for cell in table]


def plot_heatmap(table: list[Cell], experiment: str, output: Path | BinaryIO) -> None:
    """Recipes down, temperatures (and top-p) across, coloured by accept rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = list(dict.fromkeys(cell.recipe for cell in table))
    columns = list(dict.fromkeys((cell.temperature, cell.top_p) for cell in table))
    grid = [[math.nan] * len(columns) for _ in recipes]
    figure, axes = plt.subplots(figsize=(2.0 + 1.6 * len(columns), 1.2 + 0.8 * len(recipes)))
    for cell in table:
        row, column = recipes.index(cell.recipe), columns.index((cell.temperature, cell.top_p))
        grid[row][column] = cell.rate if cell.rate is not None else math.nan
        label = (
            f"{cell.accepted}/{cell.rated}\n{cell.rate:.0%} [{cell.ci_low:.0%}-{cell.ci_high:.0%}]"
            if cell.rated
            else f"0/{cell.samples} rated"
        )
        axes.text(column, row, label, ha="center", va="center", fontsize=8)
    image = axes.imshow(grid, cmap="YlGn", vmin=0, vmax=1, aspect="auto")
    figure.colorbar(image, ax=axes, label="accepted / rated")
    axes.set_xticks(range(len(columns)))
    axes.set_xticklabels([f"T={t:g}" + (f"\np={p:g}" if p != 1.0 else "") for t, p in columns])
    axes.set_yticks(range(len(recipes)))
    axes.set_yticklabels(recipes)
    axes.set_title(f"{experiment}: accepted / rated (95% Wilson interval)")
    figure.tight_layout()
    figure.savefig(output, dpi=120, format="png")
    plt.close(figure)
