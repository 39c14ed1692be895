"""`marinade models`: what can be loaded, and what is already on this machine."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from marinade.cli.common import CliState, out, print_json_line


def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
) -> None:
    """List the models marinade knows by name and whether each is cached."""
    from marinade.models import list_models, pick_device
    from marinade.precision import choose_precision

    state: CliState = ctx.obj
    infos = list_models(state.home)
    device = pick_device(None)
    precision = choose_precision("auto", device)
    if as_json:
        for info in infos:
            print_json_line(asdict(info))
        return
    table = Table("name", "kind", "cached", "detail", box=None)
    for info in infos:
        table.add_row(info.name, info.kind, "yes" if info.cached else "no", info.detail)
    out.print(table)
    out.print(
        "[dim]Any Hugging Face id (org/name) or local model folder also works as --model.[/dim]"
    )
    out.print(f"--dtype auto on {device}: {precision.reason}", markup=False)
