"""`marinade post --due` (one pass, for cron or a systemd timer) and `marinade scheduler`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from marinade.cli.common import CliState, err, out, print_json_line, printable, status
from marinade.cli.signals import stop_requested_by_signals

if TYPE_CHECKING:
    from marinade.publishing.posting import PostOutcome


def _print_outcomes(outcomes: list[PostOutcome], as_json: bool) -> int:
    from dataclasses import asdict

    from marinade.publishing.posting import SKIPPED
    from marinade.store import QueueStatus

    problems = 0
    for outcome in outcomes:
        if as_json:
            print_json_line(asdict(outcome))
            continue
        if outcome.status == QueueStatus.POSTED:
            out.print(
                f"posted {outcome.item_id} to {outcome.account}: "
                f"{outcome.url or 'id ' + str(outcome.remote_id)}",
                markup=False,
            )
        else:
            problems += outcome.status in (QueueStatus.FAILED, QueueStatus.UNKNOWN, SKIPPED)
            line = f"{outcome.status} {outcome.item_id} ({outcome.account}): {outcome.error}"
            err.print(
                printable(line),
                soft_wrap=True,
                markup=False,
            )
    return problems


def post(
    ctx: typer.Context,
    due: Annotated[bool, typer.Option("--due", help="Post every item that is due now.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Write what is due to an outbox file; change nothing."),
    ] = False,
    outbox: Annotated[
        Path | None, typer.Option("--outbox", help="With --dry-run \\[default: HOME/outbox.jsonl].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per item.")] = False,
) -> None:
    """Post what is due, once: for cron or a systemd timer. Exit 1 if an item went wrong."""
    from marinade.errors import MarinadeError
    from marinade.publishing.posting import dry_run as rehearse
    from marinade.publishing.posting import post_due

    state: CliState = ctx.obj
    if not due:
        raise MarinadeError("say --due: post every item that is due now")
    if dry_run:
        path = outbox or state.home.path / "outbox.jsonl"
        shown = rehearse(state.store, path)
        for item in shown:
            if as_json:
                print_json_line({"id": item.id, "account": item.account, "text": item.posted_text})
            else:
                out.print(
                    printable(f"would post {item.id} to {item.account}: {item.posted_text}"),
                    markup=False,
                )
        status(f"{len(shown)} due; written to {path}; the queue is unchanged")
        return
    try:
        outcomes = post_due(state.store)
    except sqlite3.OperationalError as error:  # a long write elsewhere; cron tries again
        raise MarinadeError(f"{state.store.path} is busy ({error}); nothing was posted") from None
    if not outcomes and not as_json:
        status("nothing due")
    if _print_outcomes(outcomes, as_json):
        raise typer.Exit(1)


def scheduler(
    ctx: typer.Context,
    every: Annotated[float, typer.Option("--every", help="Seconds between passes.")] = 60.0,
    passes: Annotated[
        int | None, typer.Option("--passes", help="Stop after this many passes \\[default: never].")
    ] = None,
    fetch_every: Annotated[
        float | None,
        typer.Option("--fetch-every", help="Hours between fetches of every fetched account."),
    ] = None,
    retrain_name: Annotated[
        str | None, typer.Option("--retrain", help="Retrain this run name on a period.")
    ] = None,
    recipe: Annotated[Path | None, typer.Option("--recipe", help="With --retrain.")] = None,
    retrain_every: Annotated[
        float | None, typer.Option("--retrain-every", help="Days between retrains.")
    ] = None,
    own_corpus: Annotated[
        str | None, typer.Option("--own-corpus", help="With --retrain: as retrain's.")
    ] = None,
    ratings_steps: Annotated[
        int | None, typer.Option("--ratings-steps", help="With --retrain: as retrain's.")
    ] = None,
    sync_sheet: Annotated[
        str | None,
        typer.Option(
            "--sync-sheet", help="Sync this Google Sheet (as `queue sync` did) before posting."
        ),
    ] = None,
    sync_every: Annotated[
        float | None,
        typer.Option("--sync-every", help="Minutes between sheet syncs \\[default: 10]."),
    ] = None,
) -> None:
    """Post what is due every minute until Ctrl-C (two at once are safe); fetch, retrain."""
    from datetime import timedelta

    from marinade.publishing.scheduler import Plan, scheduler_pass
    from marinade.publishing.sheets import spreadsheet_id

    state: CliState = ctx.obj
    plan = Plan(
        fetch_every=timedelta(hours=fetch_every) if fetch_every else None,
        retrain_name=retrain_name,
        retrain_recipe=recipe,
        retrain_every=timedelta(days=retrain_every) if retrain_every else None,
        retrain_own_corpus=own_corpus,
        retrain_ratings_steps=ratings_steps,
        sync_sheet=spreadsheet_id(sync_sheet) if sync_sheet else None,
        sync_every=timedelta(minutes=sync_every) if sync_every else None,
    )
    plan.check()
    done = 0
    status(f"scheduler: posting what is due every {every:g} s; Ctrl-C stops")
    # A stop signal lets the pass under way finish (the post being sent is sent and
    # recorded), then the loop ends; a second one stops at once.
    try:
        with stop_requested_by_signals() as stop:
            while (passes is None or done < passes) and not stop:
                report = scheduler_pass(state.store, state.home, plan, on_status=status)
                if report.synced is not None:
                    from marinade.cli.queue import sync_summary

                    for conflict in report.synced.conflicts:
                        err.print(f"conflict: {conflict}", soft_wrap=True, markup=False)
                    status(sync_summary(report.synced))
                _print_outcomes(report.posted, as_json=False)
                if report.fetched is not None:
                    status(f"fetched: {report.fetched} new documents")
                if report.retrained is not None:
                    status(f"retrained: run {report.retrained.run}")
                for error in report.errors:  # one bad pass must not stop the loop
                    err.print(f"Error: {error}", soft_wrap=True, markup=False)
                done += 1
                deadline = time.monotonic() + every
                while (passes is None or done < passes) and not stop:
                    if (left := deadline - time.monotonic()) <= 0:
                        break
                    time.sleep(min(left, 0.2))  # wakes for a stop signal within 0.2 s
        if stop:
            status(f"scheduler stopped ({stop.signal_name}) after finishing what it was sending")
    except KeyboardInterrupt:
        status("scheduler stopped")
