"""`marinade train` and `marinade runs list|show|plot|export|rm`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from marinade.cli.common import AsJson, CliState, default_help, err, out, print_json_line, status
from marinade.cli.progress import live_progress
from marinade.cli.signals import exit_code, interrupt_on_stop_signals, stopped_by
from marinade.errors import MarinadeError
from marinade.timestamps import utc_iso
from marinade.training import runs
from marinade.training.recipe import DEFAULT_MODEL, TrainSettings, build_recipe, load_recipe
from marinade.training.split import describe_split

if TYPE_CHECKING:
    from marinade.training.ratings import RatingsFilter

runs_app = typer.Typer(
    help="Training runs: list, inspect, plot, export, remove.", no_args_is_help=True
)

RunName = Annotated[str, typer.Argument(metavar="NAME", help="The run.")]


def setting(name: str, text: str = "") -> Any:
    """The option for TrainSettings field `name` (--lora-rank for lora_rank), its help
    ending in the field's default."""
    return typer.Option(f"--{name.replace('_', '-')}", help=default_help(TrainSettings, name, text))


def train(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The run's name (also in --recipe).")] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help=f"Base model. \\[default: {DEFAULT_MODEL}]"),
    ] = None,
    phase: Annotated[
        list[str] | None,
        typer.Option(
            "--phase",
            "-p",
            help="CORPUS[:STEPS[:LR]]; a+b merges, a=0.3,b=0.7 mixes; STEPS left out or "
            "auto: picked from the corpus's size. Repeat.",
        ),
    ] = None,
    start_from: Annotated[
        str | None,
        typer.Option("--from", help="Start from another run's checkpoint: RUN or RUN@PHASE."),
    ] = None,
    recipe_file: Annotated[
        Path | None, typer.Option("--recipe", help="A TOML recipe file.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    method: Annotated[str | None, setting("method", "full or lora.")] = None,
    lora_rank: Annotated[int | None, setting("lora_rank")] = None,
    lora_target: Annotated[
        list[str] | None,
        typer.Option("--lora-target", help="Module names; repeat. \\[default: peft's]"),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr", help="Peak learning rate. \\[default: 5e-5 with full, 2e-3 with lora]"
        ),
    ] = None,
    batch_size: Annotated[int | None, setting("batch_size")] = None,
    grad_accum: Annotated[int | None, setting("grad_accum")] = None,
    block_size: Annotated[int | None, setting("block_size", "Tokens per row.")] = None,
    warmup: Annotated[
        int | None,
        typer.Option("--warmup", help="Warm-up steps. \\[default: a tenth of the run, at most 20]"),
    ] = None,
    schedule: Annotated[str | None, setting("schedule", "cosine, linear or constant.")] = None,
    seed: Annotated[int | None, setting("seed")] = None,
    eval_every: Annotated[int | None, setting("eval_every")] = None,
    save_every: Annotated[int | None, setting("save_every")] = None,
    sample_every: Annotated[int | None, setting("sample_every", "0 is off.")] = None,
    sample_prompt: Annotated[
        list[str] | None, typer.Option("--sample-prompt", help="Prompt for --sample-every; repeat.")
    ] = None,
    sample_temperature: Annotated[
        float | None, setting("sample_temperature", "For --sample-every.")
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option(
            "--max-minutes",
            help="Stop (resumably) after this long; with --resume, the resumed part.",
        ),
    ] = None,
    held_out: Annotated[
        float | None, setting("held_out", "Share of each corpus's tokens never trained on.")
    ] = None,
    document_start: Annotated[
        str | None,
        setting("document_start", "What marks a document's start: marker, bos or end-of-text."),
    ] = None,
    measure: Annotated[
        list[str] | None,
        typer.Option(
            "--measure",
            help="Also measure this corpus's held-out loss at each evaluation "
            "(what the run forgets); repeat.",
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, cuda:N or mps.")
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            help="auto, float32 or bfloat16 (autocast over float32 weights); auto: bfloat16 "
            "where the CPU or GPU computes it natively. A resumed run keeps its own.",
        ),
    ] = None,
    compile_body: Annotated[
        bool | None,
        typer.Option(
            "--compile",
            help="torch.compile the model for the training steps: 3-12% faster on a CPU "
            "after a first step of minutes. A resumed run keeps its own.",
        ),
    ] = None,
    rated_after: Annotated[
        str | None,
        typer.Option(
            "--rated-after",
            help="A ratings phase takes only ratings given after this date or time (UTC).",
        ),
    ] = None,
    ratings_any_model: Annotated[
        bool,
        typer.Option(
            "--ratings-any-model",
            help="A ratings phase takes every model's rated samples, not only its lineage's.",
        ),
    ] = False,
) -> None:
    """Fine-tune a model in phases: marinate in one corpus, sear with another; a phase
    `ratings` learns from your accept/reject ratings."""
    from marinade.training.loop import train as run_training
    from marinade.training.workers import is_main_process

    state: CliState = ctx.obj
    store = state.store
    flags: dict[str, Any] = {
        "method": method,
        "lora_rank": lora_rank,
        "lora_targets": lora_target,
        "lr": lr,
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "block_size": block_size,
        "warmup": warmup,
        "schedule": schedule,
        "seed": seed,
        "eval_every": eval_every,
        "save_every": save_every,
        "sample_every": sample_every,
        "sample_prompts": sample_prompt,
        "sample_temperature": sample_temperature,
        "max_minutes": max_minutes,
        "held_out": held_out,
        "document_start": document_start,
        "measure": measure,
        "dtype": dtype,
        "compile": compile_body,
    }
    given = {key: value for key, value in flags.items() if value is not None}
    resume_with: dict[str, Any] = {}
    if resume:
        if not name:
            raise MarinadeError("--resume needs the run's name: marinade train NAME --resume")
        recipe = runs.resumable_recipe(store, name)
        others = {"model": model, "phases": phase, "start_from": start_from}
        given.update({key: value for key, value in others.items() if value})
        if recipe_file:
            given["recipe_file"] = recipe_file
        resume_with = runs.resume_overrides(recipe, given)
    else:
        file_values = load_recipe(recipe_file) if recipe_file else None
        recipe = build_recipe(name, model, phase or [], start_from, file_values, given)

    selection = ratings_filter(rated_after, ratings_any_model)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    # launched as several processes, only the main one shows progress and the result
    main_process = is_main_process()
    bar = live_progress(*columns, console=err, transient=True, disable=not main_process)
    with bar as progress:
        task = progress.add_task(
            f"{recipe.name} phase 1/{len(recipe.phases)}",
            total=recipe.total_steps() if recipe.steps_picked() else None,
            loss="-",
            rate="-",
        )

        def on_step(report: Any) -> None:
            stop_check()  # a stop signal whose exception was swallowed on the way
            progress.update(
                task,
                total=report.total,
                completed=report.step,
                description=f"{recipe.name} phase {report.phase}/{len(recipe.phases)}",
                loss=f"{report.loss:.3f}",
                rate=f"{report.tokens_per_second:.0f} tok/s",
            )

        def on_eval(step: int, losses: dict[str, float]) -> None:
            shown = ", ".join(f"{corpus} {loss:.3f}" for corpus, loss in losses.items())
            progress.console.print(f"step {step:>6}  held-out loss: {shown}")

        try:
            with interrupt_on_stop_signals() as stop_check:
                record = run_training(
                    store,
                    state.home,
                    recipe,
                    resume=resume,
                    device=device,
                    on_step=on_step,
                    on_eval=on_eval,
                    on_status=status,
                    resume_with=resume_with,
                    ratings_filter=selection,
                )
        except KeyboardInterrupt as stop:
            stopped = store.run(recipe.name)
            done = stopped.steps_done if stopped else None
            err.print(
                f"{stopped_by(stop)} at step {done}; checkpoint saved. "
                f"Continue with: marinade train {recipe.name} --resume"
            )
            raise typer.Exit(exit_code(stop)) from None
    if not main_process:
        return
    out.print(
        f"run {record.name}: {record.status} at step {record.steps_done}/{record.total_steps}"
        + (f" ({record.message})" if record.message else "")
    )


def ratings_filter(rated_after: str | None, any_model: bool) -> RatingsFilter | None:
    """The --rated-after and --ratings-any-model flags as a filter (None: the default)."""
    from marinade.training.ratings import RatingsFilter

    if rated_after is None and not any_model:
        return None
    after = None
    if rated_after is not None:
        try:
            after = utc_iso(datetime.fromisoformat(rated_after))
        except ValueError:
            raise MarinadeError(
                f"--rated-after {rated_after!r} is not a date or time; "
                "write it as 2026-12-01 or 2026-12-01T09:30"
            ) from None
    return RatingsFilter(rated_after=after, any_model=any_model)


@runs_app.command("list")
def list_runs(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Every training run with its status and progress."""
    state: CliState = ctx.obj
    rows = runs.all_runs(state.store, state.home)
    if as_json:
        for row in rows:
            print_json_line(
                {
                    k: getattr(row, k)
                    for k in ("name", "status", "model", "steps_done", "total_steps", "updated_at")
                }
            )
        return
    table = Table("name", "status", "steps", "model", "updated", box=None)
    for row in rows:
        table.add_row(
            row.name,
            row.status,
            f"{row.steps_done}/{row.total_steps}",
            row.model,
            (row.updated_at or "")[:16],
        )
    out.print(table)


@runs_app.command("show")
def show_run(ctx: typer.Context, name: RunName, as_json: AsJson = False) -> None:
    """A run's recipe, progress, and held-out loss per corpus at each evaluation."""
    summary = runs.run_summary(ctx.obj.store, name, ctx.obj.home)
    if as_json:
        print_json_line(summary)
        return
    out.print(
        f"[bold]{summary['name']}[/bold]: {summary['status']}, "
        f"step {summary['steps_done']}/{summary['total_steps']}, from {summary['model']}, "
        f"in {summary['dtype']}"
        + (f" ({escape(summary['message'])})" if summary["message"] else "")
    )
    for index, phase in enumerate(summary["phases"], 1):
        picked = " (picked from the corpus's size)" if phase["auto"] else ""
        counts = phase.get("ratings")
        if counts:
            edited = f" ({counts['edited']} edited)" if counts["edited"] else ""
            picked += (
                f"; {counts['accepted'] + counts['edited']} accepted{edited}, "
                f"{counts['rejected']} rejected, {counts['held_out']} of them held out"
            )
        out.print(
            f"  phase {index}: {phase['label']:<30} {phase['steps_done']}/{phase['steps']} steps"
            + picked
        )
    for corpus, split in (summary["corpora"] or {}).items():
        out.print(f"  {describe_split(corpus, split)}")
    corpora = sorted({e["corpus"] for e in summary["evals"]})
    table = Table("step", *corpora, title="held-out loss", box=None)
    by_step: dict[int, dict[str, float]] = {}
    for row in summary["evals"]:
        by_step.setdefault(row["step"], {})[row["corpus"]] = row["loss"]
    for step, losses in sorted(by_step.items()):
        table.add_row(str(step), *(f"{losses[c]:.3f}" if c in losses else "" for c in corpora))
    out.print(table)
    if summary["rating_evals"]:
        ratings = Table(
            "step", "phase", "ratings", "preference accuracy", "KL from reference", "pairs",
            title="held-out ratings (accuracy 0.5: no preference yet)", box=None,
        )  # fmt: skip
        for row in summary["rating_evals"]:
            accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
            ratings.add_row(str(row["step"]), str(row["phase"]), row["source"], accuracy,
                            f"{row['kl']:.4f}", str(row["pairs"]))  # fmt: skip
        out.print(ratings)


@runs_app.command("plot")
def plot_run(
    ctx: typer.Context,
    name: RunName,
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file.")] = Path("loss.png"),
) -> None:
    """Held-out loss per corpus over the steps, with phase boundaries marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = runs.run_summary(ctx.obj.store, name)
    if not summary["evals"] and not summary["rating_evals"]:
        raise MarinadeError(f"run {name} has no evaluations yet")
    rated = summary["rating_evals"]
    if rated:  # a second panel: what the ratings phases learnt, on the same steps
        figure, (axes, preference) = plt.subplots(
            2, 1, figsize=(8, 7), sharex=True, height_ratios=(3, 2)
        )
        for source in sorted({e["source"] for e in rated}):
            points = [e for e in rated if e["source"] == source and e["accuracy"] is not None]
            preference.plot([e["step"] for e in points], [e["accuracy"] for e in points],
                            marker="o", label=f"{source}: preference accuracy")  # fmt: skip
            points = [e for e in rated if e["source"] == source]
            preference.plot([e["step"] for e in points], [e["kl"] for e in points], marker="x",
                            linestyle=":", label=f"{source}: KL from reference")  # fmt: skip
        preference.axhline(0.5, color="grey", linewidth=0.5)
        preference.set_ylabel("held-out ratings")
        preference.set_xlabel("optimizer step")
        preference.legend()
    else:
        figure, axes = plt.subplots(figsize=(8, 4.5))
    for corpus in sorted({e["corpus"] for e in summary["evals"]}):
        points = [(e["step"], e["loss"]) for e in summary["evals"] if e["corpus"] == corpus]
        axes.plot([s for s, _ in points], [loss for _, loss in points], marker="o", label=corpus)
    boundary = 0
    for phase in summary["phases"][:-1]:
        boundary += phase["steps"]
        axes.axvline(boundary, color="grey", linestyle="--", linewidth=1)
    axes.set_title(f"{name}: " + " -> ".join(p["label"] for p in summary["phases"]))
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("held-out loss")
    axes.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    out.print(f"wrote {output}")


@runs_app.command("export")
def export_run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="RUN or RUN@PHASE.")],
    folder: Annotated[
        Path, typer.Argument(help="Where to write: a Hugging Face folder, or NAME.gguf in it.")
    ],
    export_format: Annotated[
        str,
        typer.Option(
            "--format", help="hf (a Hugging Face folder) or gguf (llama.cpp, Ollama, LM Studio)."
        ),
    ] = "hf",
    tensor_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="With --format gguf: f32, f16, bf16, q8_0 or q4_0. \\[default: q8_0]"
        ),
    ] = None,
) -> None:
    """Write a run's model (LoRA merged in) as a standalone Hugging Face folder, or as one
    GGUF file with an Ollama Modelfile and a README beside it."""
    state: CliState = ctx.obj
    if export_format == "hf":
        if tensor_type is not None:
            raise MarinadeError(
                "--type goes with --format gguf; a Hugging Face folder keeps float32"
            )
        runs.export_run(state.store, state.home, name, folder)
        out.print(f"wrote {name} to {folder}")
    elif export_format == "gguf":
        tensor_type = tensor_type or "q8_0"
        paths = runs.export_run_gguf(
            state.store, state.home, name, folder, tensor_type, on_status=status
        )
        out.print(f"wrote {', '.join(str(path) for path in paths)}")
    else:
        raise MarinadeError(f"--format must be hf or gguf, not {export_format}")


@runs_app.command("rm")
def remove_run(
    ctx: typer.Context,
    name: RunName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a run: its record, evaluations and checkpoints."""
    state: CliState = ctx.obj
    runs.run_record(state.store, name)
    if not yes and not typer.confirm(f"Delete run {name} and its checkpoints?"):
        raise typer.Exit(1)
    runs.remove_run(state.store, state.home, name)
    out.print(f"deleted run {name}")
