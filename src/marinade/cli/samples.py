"""`marinade samples list|show|export`: every sample ever generated, from the store."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from marinade.cli.common import CliState, out, print_json_line
from marinade.errors import MarinadeError
from marinade.store import SAMPLE_COLUMNS

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
    table = Table("id", "created", "model", "seed", "temp", box=None)
    table.add_column("text", no_wrap=True, overflow="ellipsis")
    for row in rows:
        preview = " ".join(row["text"].split())
        table.add_row(
            str(row["id"]),
            row["created_at"][:16],
            row["model"],
            str(row["seed"]),
            str(row["temperature"]),
            preview[:70] + ("…" if len(preview) > 70 else ""),
        )
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
            out.print(f"[dim]{column:>15}[/dim]  {escape(str(row[column]))}")
    out.rule()
    if row["prompt"]:
        out.print(row["prompt"], style="bold", end="", markup=False)
    out.print(row["text"], markup=False)


@app.command("export")
def export_samples(
    ctx: typer.Context,
    export_format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File; stdout when left out.")
    ] = None,
    model: ModelFilter = None,
) -> None:
    """Every sample (oldest first) as JSON lines or CSV."""
    if export_format not in ("jsonl", "csv"):
        raise MarinadeError(f"--format must be jsonl or csv, not {export_format}")
    state: CliState = ctx.obj
    rows = state.store.samples(model=model, newest_first=False)
    handle = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if export_format == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=SAMPLE_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    finally:
        if output:
            handle.close()
