"""The one way marinade writes a time: UTC ISO 8601 to the second.

Every time stored (samples, runs, imports, the queue, the outbox) is a string like
`2026-03-02T10:11:12+00:00`, so text order is time order in SQL and two times are
compared by comparing strings. A naive datetime (an archive's date without an offset)
is taken as UTC. Imports nothing of marinade, so any module may use it.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Now, as an aware datetime in UTC."""
    return datetime.now(timezone.utc)


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC, seconds precision; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def now_iso() -> str:
    """Now as marinade stores it: `utc_iso(utc_now())`."""
    return utc_iso(utc_now())
