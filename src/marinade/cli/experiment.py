"""`marinade experiment run|list|report`: grids of recipe x temperature, N samples per cell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from marinade.cli.common import AsJson, CliState, err, out, print_json_line, status
from marinade.cli.progress import live_progress
from marinade.cli.signals import exit_code, interrupt_on_stop_signals, stopped_by

app = typer.Typer(
    help="Experiments: train recipes, sample every cell, report accept rates.",
    no_args_is_help=True,
)


@app.command("run")
def run(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(metavar="GRID.toml", help="The experiment.")],
    device: Annotated[str | None, typer.Option(help="cpu, cuda, mps \\[default: auto]")] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            help="auto, float32 or bfloat16, for new runs and every cell; a run trained "
            "already keeps its own. auto: bfloat16 where the hardware computes it natively.",
        ),
    ] = None,
) -> None:
    """Train the recipes that are missing, then sample every cell (resumable)."""
    from marinade.curation.experiment import CellProgress, run_experiment
    from marinade.curation.spec import load_experiment

    state: CliState = ctx.obj
    spec = load_experiment(spec_file)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[extra]}"),
        TimeRemainingColumn(),
    )
    with live_progress(*columns, console=err) as progress:
        tasks: dict[str, TaskID] = {}

        def on_train_step(run_name: str, report: Any) -> None:
            stop_check()  # a stop signal whose exception was swallowed on the way
            key = f"train {run_name}"  # one bar per run the experiment trains
            if key not in tasks:
                tasks[key] = progress.add_task(key, total=report.total, extra="")
            progress.update(
                tasks[key],
                completed=report.step,
                extra=f"loss {report.loss:.3f}  {report.tokens_per_second:.0f} tok/s",
            )

        def on_cell(cell: CellProgress) -> None:
            if cell.label not in tasks:
                tasks[cell.label] = progress.add_task(cell.label, total=cell.total, extra="")
            progress.update(tasks[cell.label], completed=cell.done)

        def on_status(message: str) -> None:
            progress.console.print(f"[dim]{message}[/dim]")

        try:
            with interrupt_on_stop_signals() as stop_check:
                plan = run_experiment(
                    state.store,
                    state.home,
                    spec,
                    device=device,
                    dtype=dtype,
                    on_status=on_status,
                    on_train_step=on_train_step,
                    on_cell=on_cell,
                )
        except KeyboardInterrupt as stop:
            err.print(f"{stopped_by(stop)}; continue with: marinade experiment run {spec_file}")
            raise typer.Exit(exit_code(stop)) from None
    for recipe, model in plan.models.items():
        status(f"{recipe}: sampled {model}")
    out.print(
        f"experiment {spec.name}: {len(spec.recipes)} recipes x "
        f"{len(spec.temperatures) * len(spec.top_ps)} settings x {spec.samples_per_cell} samples. "
        f"Rate them with: marinade review --experiment {spec.name}"
    )


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    as_json: AsJson = False,
) -> None:
    """Experiments with their status, samples and ratings."""
    state: CliState = ctx.obj
    rows = state.store.experiments()
    if as_json:
        for row in rows:
            print_json_line({**row, "spec": json.loads(row["spec"])})
        return
    table = Table("name", "status", "samples", "rated", "updated")
    for row in rows:
        table.add_row(
            row["name"], row["status"], str(row["samples"]), str(row["rated"]), row["updated_at"]
        )
    out.print(table)


@app.command("report")
def report(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The experiment.")],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One JSON object per cell, with its recipe's losses."),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write a heatmap of accept rates (PNG), and beside it STEM-losses.png: "
            "held-out loss against step, one panel per corpus.",
        ),
    ] = None,
) -> None:
    """Accept rate per recipe x temperature with 95% Wilson intervals, the best cell, and
    each recipe's final held-out loss per corpus beside the base model's."""
    from dataclasses import asdict

    from marinade.curation.losses import experiment_curves, plot_curves, recipe_losses
    from marinade.curation.report import as_json as cells_json
    from marinade.curation.report import best_cell, experiment_cells, plot_heatmap

    state: CliState = ctx.obj
    spec, table = experiment_cells(state.store, name)
    corpora, curves = experiment_curves(state.store, spec)
    losses = {row.recipe: row for row in recipe_losses(curves)}
    curves_plot = plot.with_name(f"{plot.stem}-losses{plot.suffix or '.png'}") if plot else None
    if plot and curves_plot:
        plot_heatmap(table, name, plot)
        plot_curves(corpora, curves, name, curves_plot)
    if as_json:
        for row in cells_json(table):
            recipe_loss = asdict(losses[row["recipe"]]) if row["recipe"] in losses else {}
            recipe_loss.pop("recipe", None)
            print_json_line({"experiment": name, **row, **recipe_loss})
        return
    several_top_p = len(spec["top_p"]) > 1
    headers = ["recipe", "temp"] + (["top-p"] if several_top_p else [])
    dropping = bool(spec.get("whole_sentences"))
    view = Table(
        *headers,
        "samples",
        *(["dropped"] if dropping else []),
        "rated",
        "accepted",
        "rate",
        "95% interval",
        "copied",
        "fragment",
        "cut",
    )
    share = lambda rate: f"{rate:.0%}" if rate is not None else "-"  # noqa: E731
    for cell in table:
        view.add_row(
            cell.recipe,
            f"{cell.temperature:g}",
            *([f"{cell.top_p:g}"] if several_top_p else []),
            str(cell.samples),
            *([str(cell.dropped)] if dropping else []),
            str(cell.rated),
            str(cell.accepted),
            f"{cell.rate:.0%}" if cell.rate is not None else "-",
            f"{cell.ci_low:.0%}-{cell.ci_high:.0%}" if cell.rated else "-",
            share(cell.copied_rate),
            share(cell.fragment_rate),
            share(cell.cut_rate),
        )
    out.print(view)
    best = best_cell(table)
    if best is None:
        out.print(f"nothing rated yet: marinade review --experiment {name}")
    else:
        out.print(
            f"best cell: {best.recipe} at temperature {best.temperature:g}"
            + (f", top-p {best.top_p:g}" if best.top_p != 1.0 else "")
            + f" ({best.accepted}/{best.rated} accepted, at least {best.ci_low:.0%} at 95%)"
        )
    out.print(loss_table(corpora, list(losses.values())))
    if plot:
        out.print(f"wrote {plot} and {curves_plot}")


def loss_table(corpora: list[str], rows: list[Any]) -> Table:
    """Recipes down, the corpora across: final held-out loss, the base model's beside it."""
    view = Table("recipe", "step", *(f"loss {corpus} (base)" for corpus in corpora))
    view.title = "held-out loss per corpus at the last evaluation"
    for row in rows:
        cells = [f"{row.held_out_loss[c]:.3f}" if c in row.held_out_loss else "-" for c in corpora]
        bases = [
            f" ({row.base_held_out_loss[c]:.3f})" if c in row.base_held_out_loss else ""
            for c in corpora
        ]
        step = "-" if row.held_out_step is None else str(row.held_out_step)
        view.add_row(
            row.recipe, step, *(cell + base for cell, base in zip(cells, bases, strict=True))
        )
    return view


@app.command("rm")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The experiment.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete an experiment, its samples and their ratings (the runs it trained stay)."""
    state: CliState = ctx.obj
    state.store.experiment(name)
    if not yes and not typer.confirm(f"Delete experiment {name}, its samples and ratings?"):
        raise typer.Exit(1)
    count = state.store.delete_experiment(name)
    out.print(f"deleted experiment {name} and its {count} samples")
