"""`marinade queue add|list|edit|drop|retry|mark-posted|schedule|import|export|sync`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from marinade.cli.common import CliState, err, out, print_json_line, printable
from marinade.errors import MarinadeError
from marinade.store import Store

app = typer.Typer(help="The posting queue: what goes out, where and when.", no_args_is_help=True)

AccountOption = Annotated[
    list[str] | None,
    typer.Option(
        "--account", help="Post to this account; repeat for several. \\[default: the one]"
    ),
]
AtOption = Annotated[
    str | None, typer.Option("--at", help="Pin the due time: ISO 8601, e.g. 2026-12-01T09:00:00Z")
]
ItemId = Annotated[int, typer.Argument(metavar="ID", help="The queue item.")]


@app.command("add")
def add_command(
    ctx: typer.Context,
    sample_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="A sample to queue.")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="A text of your own.")] = None,
    accepted: Annotated[
        bool, typer.Option("--accepted", help="Every accepted sample not queued yet.")
    ] = False,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="With --accepted: only this experiment's.")
    ] = None,
    account: AccountOption = None,
    at: AtOption = None,
    skip_long: Annotated[
        bool, typer.Option("--skip-long", help="With --accepted: leave out texts too long.")
    ] = False,
    again: Annotated[
        bool,
        typer.Option("--again", help="With ID: queue it even if it is queued or posted already."),
    ] = False,
) -> None:
    """Queue a sample, every accepted sample, or a text. Lengths are checked first."""
    from marinade.publishing.queue import Entry, add_to_queue, queue_accepted, sample_entry
    from marinade.publishing.schedule import parse_time

    state: CliState = ctx.obj
    store = state.store
    if sum((sample_id is not None, text is not None, accepted)) != 1:
        raise MarinadeError("give one of: a sample ID, --text TEXT or --accepted")
    if experiment and not accepted:
        raise MarinadeError("--experiment goes with --accepted")
    if again and sample_id is None:
        raise MarinadeError("--again goes with a sample ID")
    due = parse_time(at, store) if at else None
    if accepted:
        result = queue_accepted(store, experiment, account, due, skip_long)
        for left_out, name in result.left_out:
            out.print(f"left out sample {left_out}: too long for {name}")
        if not result.ids:
            out.print("nothing to queue")
        _print_queued(store, result.ids)
        return
    if sample_id is not None:
        entries = [sample_entry(store, sample_id)]
    else:
        entries = [Entry(text=(text or "").strip())]
    _print_queued(store, add_to_queue(store, entries, account, due, again=again))


def _print_queued(store: Store, ids: list[int]) -> None:
    for item_id in ids:
        item = store.queue_item(item_id)
        out.print(f"queued {item_id} for {item.account}, due {item.due_at}")


@app.command("list")
def list_command(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", help="queued, posting, posted, failed or unknown."),
    ] = None,
    account: Annotated[str | None, typer.Option("--account")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per item.")] = False,
) -> None:
    """What is due, posted, failed or unknown, by due time."""
    from marinade.publishing.queue import parse_status, queue_row
    from marinade.store import QueueStatus
    from marinade.timestamps import now_iso

    state: CliState = ctx.obj
    items = state.store.queue_items(parse_status(status), account)
    if as_json:
        for item in items:
            print_json_line(queue_row(item))
        return
    table = Table("id", "status", "due (UTC)", "account", "text", "remote / reason", box=None)
    now = now_iso()
    for item in items:
        queued = item.status is QueueStatus.QUEUED
        shown_status = item.status.value
        if queued and max(item.due_at, item.retry_at or "") <= now:
            shown_status = "queued, due"
        detail = item.url or item.remote_id or item.error or ""
        if queued and item.retry_at:
            detail = f"retry at {item.retry_at[:16]}: {item.error}"
        table.add_row(
            str(item.id),
            shown_status,
            item.due_at[:16].replace("T", " "),
            item.account,
            Text(printable(item.text.replace("\n", " ")[:60])),
            Text(printable(detail)),
        )
    out.print(table)


@app.command("edit")
def edit_command(
    ctx: typer.Context,
    item_id: ItemId,
    text: Annotated[
        str | None, typer.Option("--text", help="The new text \\[default: open $EDITOR].")
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="Move to this account.")] = None,
    at: AtOption = None,
) -> None:
    """Change an item's text, account or due time (while it is not posted)."""
    from marinade.publishing.queue import edit_item
    from marinade.publishing.schedule import parse_time

    state: CliState = ctx.obj
    store = state.store
    if text is None and account is None and at is None:
        edited = _edit_in_editor(store.queue_item(item_id).text)
        if edited is None:
            out.print("not changed")
            return
        text = edited
    due = parse_time(at, store) if at else None
    item = edit_item(store, item_id, text=text, at=due, account=account)
    out.print(f"item {item_id}: {item.account}, due {item.due_at}")


@app.command("drop")
def drop_command(ctx: typer.Context, item_id: ItemId) -> None:
    """Remove an item that is not posted."""
    from marinade.publishing.queue import drop_item

    state: CliState = ctx.obj
    drop_item(state.store, item_id)
    out.print(f"item {item_id} dropped")


@app.command("retry")
def retry_command(ctx: typer.Context, item_id: ItemId) -> None:
    """Queue a failed or unknown item again (you checked: it was not posted)."""
    from marinade.publishing.queue import retry_item

    state: CliState = ctx.obj
    retry_item(state.store, item_id)
    out.print(f"item {item_id} queued again")


@app.command("mark-posted")
def mark_posted_command(
    ctx: typer.Context,
    item_id: ItemId,
    remote_id: Annotated[str | None, typer.Option("--remote-id")] = None,
    url: Annotated[str | None, typer.Option("--url")] = None,
) -> None:
    """Record that an unknown (or failed) item was posted after all."""
    from marinade.publishing.queue import mark_posted

    state: CliState = ctx.obj
    mark_posted(state.store, item_id, remote_id, url)
    out.print(f"item {item_id} marked posted")


@app.command("schedule")
def schedule_command(
    ctx: typer.Context,
    slots: Annotated[
        str | None, typer.Option("--slots", help='Times of day, e.g. "09:00,18:30".')
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone", help="IANA name, e.g. Europe/Paris \\[default: as before, UTC]."
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No slots: post at once.")] = False,
) -> None:
    """Set posting slots; unpinned queued items move to the next free slots."""
    from marinade.publishing.schedule import get_schedule, set_schedule

    state: CliState = ctx.obj
    if slots is None and not clear:
        schedule = get_schedule(state.store)
        if schedule is None:
            out.print("no slots: items are due when added (or at --at)")
        else:
            out.print(f"slots {schedule.label()} ({schedule.timezone})")
        return
    moved = set_schedule(state.store, None if clear else slots, timezone)
    out.print(f"{moved} queued items re-slotted")


@app.command("export")
def export_command(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="CSV file to write.")]
) -> None:
    """The queue as CSV (UTF-8 with BOM, formula cells neutralised)."""
    from marinade.publishing.spreadsheet import export_queue

    state: CliState = ctx.obj
    count = export_queue(state.store, path)
    out.print(f"{count} items written to {path}")


@app.command("import")
def import_command(
    ctx: typer.Context, path: Annotated[Path, typer.Argument(help="CSV file to read.")]
) -> None:
    """Update items by id and queue rows without one, all or nothing. A row without an id
    whose account and text are queued already is recognised, not queued twice."""
    from marinade.publishing.spreadsheet import import_queue

    state: CliState = ctx.obj
    report = import_queue(state.store, path)
    line = f"{len(report.added)} added, {len(report.updated)} updated, {report.unchanged} unchanged"
    if report.recognised:
        line += (
            f"; {len(report.recognised)} rows without an id were already queued"
            f" (items {_ids(report.recognised)}): not added again"
        )
    if report.not_editable:
        line += (
            f"; {len(report.not_editable)} items are posted or being posted"
            f" (items {_ids(report.not_editable)}): they keep their text, account and time"
        )
    out.print(line, markup=False)


def _ids(ids: list[int], most: int = 10) -> str:
    shown = ", ".join(str(item_id) for item_id in ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


@app.command("sync")
def sync_command(
    ctx: typer.Context,
    sheet: Annotated[
        str, typer.Option("--sheet", help="The Google Sheet: its id, or its address.")
    ],
    worksheet: Annotated[
        str | None,
        typer.Option("--worksheet", help="The worksheet's name \\[default: as before, the first]."),
    ] = None,
    credentials: Annotated[
        str | None,
        typer.Option(
            "--credentials",
            help="Service-account or OAuth (authorized-user) JSON file, mode 600"
            " \\[default: as before, else $GOOGLE_APPLICATION_CREDENTIALS].",
        ),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option("--token-env", help="Variable holding such JSON, or an OAuth access token."),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url", help="The Sheets API \\[default: https://sheets.googleapis.com]."
        ),
    ] = None,
    prefer: Annotated[
        str | None,
        typer.Option("--prefer", help="Settle conflicts: sheet or queue \\[default: report them]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object.")] = False,
) -> None:
    """Sheet rows become queue items or updates; the queue's state is written back."""
    import dataclasses
    import sqlite3

    from marinade.publishing.sheet_sync import remember_source, remembered_source, sync_sheet
    from marinade.publishing.sheets import spreadsheet_id

    state: CliState = ctx.obj
    before = remembered_source(state.store, spreadsheet_id(sheet))
    if credentials and token_env:
        raise MarinadeError("give --credentials or --token-env, not both")
    if credentials:
        credentials = str(Path(credentials).expanduser().resolve())
    source = dataclasses.replace(
        before,
        worksheet=worksheet or before.worksheet,
        credentials=credentials or (None if token_env else before.credentials),
        token_env=token_env or (None if credentials else before.token_env),
        api_url=(api_url or before.api_url).rstrip("/"),
    )
    try:
        report = sync_sheet(state.store, source, prefer)
    except sqlite3.OperationalError as error:  # another sync or a long write holds the lock
        raise MarinadeError(f"{state.store.path} is busy ({error}); nothing was synced") from None
    remember_source(state.store, source)  # where the credentials are; never the secret
    if as_json:
        print_json_line(report.as_dict())
        return
    for note in report.notes:
        out.print(note, markup=False)
    for conflict in report.conflicts:
        err.print(f"conflict: {conflict}", soft_wrap=True, markup=False)
    out.print(sync_summary(report), markup=False)


def sync_summary(report: Any) -> str:
    parts = [
        f"{len(report.added)} added",
        f"{len(report.updated)} updated",
        f"{len(report.dropped)} dropped",
        f"{len(report.appended)} rows appended",
        f"{report.rows_written} rows written back ({report.cells_written} cells)",
    ]
    if report.not_editable:
        parts.append(f"{len(report.not_editable)} posted items keep their text, account and time")
    if report.kept:
        parts.append(f"{len(report.kept)} posted or unknown items whose row was deleted kept")
    if report.conflicts:
        parts.append(f"{len(report.conflicts)} conflicts left for you")
    return f"sheet {report.worksheet}: " + ", ".join(parts)


def _edit_in_editor(text: str) -> str | None:
    """The text after $VISUAL or $EDITOR (else vi) edited it; None if left as it was."""
    import os
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "post.txt"
        path.write_text(text, encoding="utf-8")
        if subprocess.run([*shlex.split(editor), str(path)]).returncode != 0:
            raise MarinadeError(f"the editor {editor!r} failed; not changed")
        edited = path.read_text(encoding="utf-8")
    return None if edited.strip() == text.strip() else edited
