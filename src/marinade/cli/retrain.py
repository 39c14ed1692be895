"""`marinade retrain NAME --recipe FILE`: new posts and accepted outputs -> corpus -> a new run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, TaskID, TextColumn, TimeRemainingColumn

from marinade.cli.common import AsJson, CliState, err, out, print_json_line
from marinade.cli.progress import live_progress
from marinade.cli.signals import exit_code, interrupt_on_stop_signals, stopped_by
from marinade.store import RunStatus


def retrain(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The run's name; NAME-2, NAME-3 ... once taken.")],
    recipe_file: Annotated[Path, typer.Option("--recipe", help="The TOML recipe to run again.")],
    corpus: Annotated[
        str, typer.Option("--corpus", help="Corpus for model-written text.")
    ] = "accepted",
    own_corpus: Annotated[
        str | None,
        typer.Option("--own-corpus", help="Put the texts you wrote and posted into this corpus."),
    ] = None,
    no_accepted: Annotated[
        bool, typer.Option("--no-accepted", help="Only posted items, not every accepted sample.")
    ] = False,
    fetch: Annotated[
        bool, typer.Option("--fetch", help="First fetch every account fetched before.")
    ] = False,
    ratings_steps: Annotated[
        int | None,
        typer.Option(
            "--ratings-steps",
            help="End with a ratings phase of this many steps: what was rated since last time.",
        ),
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda or mps.")] = None,
    as_json: AsJson = False,
) -> None:
    """Import what was posted since last time (marked model-written), then train a new run."""
    from marinade.loop_back.retrain import retrain as run_retrain

    state: CliState = ctx.obj
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    with live_progress(*columns, console=err, transient=True) as progress:
        task: TaskID | None = None

        def on_step(step: Any) -> None:
            nonlocal task
            stop_check()  # a stop signal whose exception was swallowed on the way
            if task is None:
                task = progress.add_task(f"retrain {name}", total=step.total, loss="-")
            progress.update(task, completed=step.step, loss=f"{step.loss:.3f}")

        def on_status(message: str) -> None:
            progress.console.print(f"[dim]{message}[/dim]")

        try:
            with interrupt_on_stop_signals() as stop_check:
                report = run_retrain(
                    state.store,
                    state.home,
                    name,
                    recipe_file,
                    corpus=corpus,
                    include_accepted=not no_accepted,
                    own_corpus=own_corpus,
                    fetch=fetch,
                    device=device,
                    on_status=on_status,
                    on_step=on_step,
                    ratings_steps=ratings_steps,
                )
        except KeyboardInterrupt as stop:
            runs = state.store.runs()  # the newest is the one retrain started, if it got there
            if runs and runs[-1].status == RunStatus.INTERRUPTED:
                then = f"checkpoint saved. Continue with: marinade train {runs[-1].name} --resume"
            else:
                then = "nothing was trained"
            err.print(f"{stopped_by(stop)}; {then}")
            raise typer.Exit(exit_code(stop)) from None
    record = report.record
    if as_json:
        print_json_line(
            {
                "run": report.run,
                "corpus": report.corpus,
                "posted": report.posted,
                "accepted": report.accepted,
                "kept": report.import_report.kept,
                "own_kept": report.own_report.kept if report.own_report else None,
                "ratings": report.ratings,
                "status": record.status if record else None,
                "steps_done": record.steps_done if record else None,
            }
        )
        return
    out.print(
        f"run {report.run}: {record.status if record else None} at step "
        f"{record.steps_done if record else None}/{record.total_steps if record else None}; "
        f"corpus {report.corpus} +{report.import_report.kept}"
    )
