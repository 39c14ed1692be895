"""One pass of `marinade scheduler`: on its period sync the Google Sheet queue, post
what is due, and on their periods fetch the accounts fetched before and retrain. The
loop itself is the CLI's; a pass is a function so that cron (`queue sync`, `post --due`,
`corpus fetch`, `retrain`) and the scheduler do the same."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.publishing.posting import PostOutcome, post_due
from marinade.store import Store
from marinade.store.db import is_busy
from marinade.timestamps import utc_iso, utc_now

SYNC_EVERY = timedelta(minutes=10)  # `--sync-sheet` without `--sync-every`


@dataclass(frozen=True)
class Plan:
    fetch_every: timedelta | None = None
    retrain_name: str | None = None
    retrain_recipe: Path | None = None
    retrain_every: timedelta | None = None
    retrain_own_corpus: str | None = None  # retrain's --own-corpus
    retrain_ratings_steps: int | None = None  # retrain's --ratings-steps
    sync_sheet: str | None = None  # a spreadsheet id `queue sync` used before
    sync_every: timedelta | None = None

    def check(self) -> None:
        if self.sync_every is not None and self.sync_sheet is None:
            raise MarinadeError("--sync-every goes with --sync-sheet ID")
        if (self.retrain_name is None) != (self.retrain_recipe is None):
            raise MarinadeError("--retrain NAME and --recipe FILE go together")
        if self.retrain_name and self.retrain_every is None:
            raise MarinadeError("--retrain needs --retrain-every DAYS")
        if self.retrain_ratings_steps is not None and self.retrain_name is None:
            raise MarinadeError("--ratings-steps goes with --retrain NAME")


@dataclass
class PassReport:
    posted: list[PostOutcome] = field(default_factory=list)
    fetched: int | None = None  # new documents, when a fetch ran
    retrained: Any = None  # the RetrainReport, when a retrain ran
    synced: Any = None  # the SyncReport, when the sheet was synced
    errors: list[str] = field(default_factory=list)


def _due(store: Store, key: str, every: timedelta | None, now: datetime) -> bool:
    """True (and the time recorded) when `every` has passed since `key` last ran."""
    if every is None:
        return False
    last = store.publishing_value(key)
    if last is not None and datetime.fromisoformat(last) + every > now:
        return False
    store.set_publishing_value(key, utc_iso(now))
    return True


def scheduler_pass(
    store: Store,
    home: Home,
    plan: Plan,
    now: Callable[[], datetime] = utc_now,
    on_status: Callable[[str], None] | None = None,
) -> PassReport:
    report = PassReport()
    if plan.sync_sheet and _due(
        store, f"scheduler:synced_at:{plan.sync_sheet}", plan.sync_every or SYNC_EVERY, now()
    ):
        from marinade.publishing.sheet_sync import remembered_source, sync_sheet

        try:  # before posting: the rows added or edited since go out on time
            report.synced = sync_sheet(store, remembered_source(store, plan.sync_sheet), now=now)
        except MarinadeError as error:
            report.errors.append(str(error))
        except sqlite3.OperationalError as error:
            report.errors.append(f"the sheet sync waits for the next pass: busy ({error})")
    try:
        report.posted = post_due(store, now)
    except MarinadeError as error:
        report.errors.append(str(error))
    except sqlite3.OperationalError as error:  # another program holds the database
        report.errors.append(f"posting waits for the next pass: the database is busy ({error})")
    if _due(store, "scheduler:fetched_at", plan.fetch_every, now()):
        from marinade.loop_back.fetch import fetch_all

        try:
            report.fetched = sum(r.import_report.kept for r in fetch_all(store))
        except MarinadeError as error:
            report.errors.append(str(error))
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
            report.errors.append(
                f"fetching waits for the next pass: the database is busy ({error})"
            )
    if plan.retrain_name and plan.retrain_recipe:
        key = f"scheduler:retrained_at:{plan.retrain_name}"
        if _due(store, key, plan.retrain_every, now()):
            from marinade.loop_back.retrain import retrain

            try:
                report.retrained = retrain(
                    store,
                    home,
                    plan.retrain_name,
                    plan.retrain_recipe,
                    own_corpus=plan.retrain_own_corpus,
                    on_status=on_status,
                    ratings_steps=plan.retrain_ratings_steps,
                )
            except MarinadeError as error:
                report.errors.append(str(error))
            except sqlite3.OperationalError as error:
                if not is_busy(error):
                    raise
                report.errors.append(
                    f"retraining waits for the next pass: the database is busy ({error})"
                )
    return report
