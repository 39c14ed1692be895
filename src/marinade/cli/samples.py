"""`marinade samples list|show|reproduce|export|rate`: every sample generated, from the store."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from marinade.cli.common import (
    CliState,
    json_line,
    listed_model,
    listed_time,
    out,
    print_json_line,
    printable,
    shorten,
    status,
)
from marinade.errors import MarinadeError
from marinade.store import EXPORT_COLUMNS, SAMPLE_COLUMNS
from marinade.timestamps import now_iso

app = typer.Typer(help="Samples logged in the store.", no_args_is_help=True)

ModelFilter = Annotated[
    str | None, typer.Option("--model", "-m", help="Only this model's samples.")
]


@app.command("list")
def list_samples(
    ctx: typer.Context,
    model: ModelFilter = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest first; 0 for all.")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest samples, one line each."""
    state: CliState = ctx.obj
    rows = list(state.store.samples(model=model, limit=limit or None))
    if as_json:
        for row in rows:
            print_json_line(row)
        return
    cells = [
        [
            str(row["id"]),
            listed_time(row["created_at"]),
            listed_model(row["model"]),
            str(row["seed"]),
            str(row["temperature"]),
        ]
        for row in rows
    ]
    headers = ["id", "created", "model", "seed", "temp"]
    table = Table(*headers, "text", box=None)
    # the text gets what the other columns leave of the terminal, so they are never squeezed
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    room = max(20, out.width - sum(widths) - 2 * (len(headers) + 1))  # padding: 2 a column
    for row, fixed in zip(rows, cells, strict=True):
        table.add_row(*map(escape, fixed), escape(printable(shorten(row["text"], room))))
    out.print(table)


@app.command("show")
def show_sample(
    ctx: typer.Context,
    sample_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One sample with every setting that made it."""
    state: CliState = ctx.obj
    row = state.store.get_sample(sample_id)
    if as_json:
        print_json_line(row)
        return
    for column in SAMPLE_COLUMNS:
        if column not in ("prompt", "text"):
            out.print(f"[dim]{column:>15}[/dim]  {escape(printable(str(row[column])))}")
    out.rule()
    if row["prompt"]:
        out.print(printable(row["prompt"]), style="bold", end="", markup=False)
    out.print(printable(row["text"]), markup=False)


@app.command("reproduce")
def reproduce(
    ctx: typer.Context,
    sample_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Sample ID again with what the store recorded (model, seed, settings, dtype, batch);
    exit 1 when the text differs."""
    from marinade.reproduce import reproduce_sample

    state: CliState = ctx.obj
    again = reproduce_sample(state.store, state.home, sample_id)
    if as_json:
        print_json_line(
            {"id": sample_id, "identical": again.identical, "text": again.text,
             "stored_text": again.sample["text"], "dtype": again.dtype, "batch": again.batch}
        )  # fmt: skip
    else:
        out.print(printable(again.text), markup=False)
    how = f"{again.sample['model']}, {again.dtype}, seed {again.sample['seed']}, "
    how += f"in a batch of {again.batch}"
    if again.identical:
        status(f"sample {sample_id} reproduced: the same text ({how})")
        return
    # the same seeds round differently on another generation of CPU (README, Precision)
    why = "; a sample drawn on another kind of CPU or GPU, or another PyTorch, can differ"
    if again.dtype == "bfloat16":  # marinade/cpu_bf16.py
        why = "; bfloat16 samples taken before 2026-12-03 were computed with other CPU kernels"
        why += ", and bf16 rounds differently on another kind of CPU"
    raise MarinadeError(f"sample {sample_id} came out different this time ({how}){why}")


@app.command("export")
def export_samples(
    ctx: typer.Context,
    export_format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File; stdout when left out.")
    ] = None,
    model: ModelFilter = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Only this experiment's samples.")
    ] = None,
    with_checks: Annotated[
        list[str] | None,
        typer.Option("--check", help="Only samples an automatic check tagged so (e.g. copied)."),
    ] = None,
    without_checks: Annotated[
        list[str] | None,
        typer.Option("--without-check", help="Leave out samples tagged so (e.g. copied, loop)."),
    ] = None,
) -> None:
    """Every sample (oldest first) with its rating and automatic checks, as JSON lines or CSV."""
    if export_format not in ("jsonl", "csv"):
        raise MarinadeError(f"--format must be jsonl or csv, not {export_format}")
    state: CliState = ctx.obj
    if experiment is not None and state.store.experiment_sample_count(experiment) == 0:
        raise MarinadeError(f"no samples in experiment {experiment!r}; see `marinade samples list`")
    rows = (
        row
        for row in state.store.export_samples(experiment=experiment, model=model)
        if all(tag in row["checks"] for tag in with_checks or [])
        and not any(tag in row["checks"] for tag in without_checks or [])
    )
    handle = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if export_format == "jsonl":
            for row in rows:
                handle.write(json_line(row) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            for row in rows:
                lists = {key: ",".join(row[key]) for key in ("rating_tags", "checks")}
                writer.writerow({**row, **lists})
    finally:
        if output:
            handle.close()


@app.command("rate")
def rate_sample(
    ctx: typer.Context,
    sample_id: Annotated[int, typer.Argument(metavar="ID")],
    rating: Annotated[
        str | None, typer.Argument(metavar="[accept|reject]", show_default=False)
    ] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag such as funny; repeat for more.")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note kept with the rating.")] = None,
    edit: Annotated[
        str | None, typer.Option("--edit", help="Your edit of the text, kept beside the original.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the sample's rating.")] = False,
) -> None:
    """Accept or reject a sample (the latest rating wins), or --clear its rating."""
    state: CliState = ctx.obj
    if clear:
        if rating is not None or tags or note is not None or edit is not None:
            raise MarinadeError("--clear takes no rating, --tag, --note or --edit")
    elif rating not in ("accept", "reject"):
        raise MarinadeError(
            "give a rating, accept or reject, or --clear"
            + (f" (not {rating!r})" if rating is not None else "")
        )
    now = now_iso()
    state.store.rate_sample(
        sample_id, None if clear else rating, tags=tags, note=note, edited_text=edit, now=now
    )
    out.print(f"sample {sample_id}: " + ("rating cleared" if clear else f"{rating}ed"))
