"""When queue items are due: posting slots (times of day in a timezone), and the times.

Every time in the queue is a UTC ISO 8601 string to the second (`timestamps.utc_iso`), so
text order is time order in SQL. Slots are local times of day computed with `zoneinfo`, so a
daylight-saving change keeps 09:00 at 09:00 local. An item added without a time takes
its account's next slot that no unposted item holds; `--at` pins a time, and a new
schedule moves only the unpinned queued items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marinade.errors import MarinadeError
from marinade.store import QueueStatus, Store
from marinade.timestamps import utc_iso, utc_now

SLOT = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


@dataclass(frozen=True)
class Schedule:
    slots: tuple[time, ...]  # local times of day, sorted
    timezone: str

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def label(self) -> str:
        return ",".join(slot.strftime("%H:%M") for slot in self.slots)


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MarinadeError(f"unknown timezone {name!r}; use a name like Europe/Paris") from None


def parse_slots(text: str) -> tuple[time, ...]:
    slots = set()
    for part in text.split(","):
        match = SLOT.match(part.strip())
        if not match:
            raise MarinadeError(f"bad slot {part.strip()!r}: use HH:MM, as in 09:00,18:30")
        slots.add(time(int(match[1]), int(match[2])))
    return tuple(sorted(slots))


def get_schedule(store: Store) -> Schedule | None:
    slots = store.publishing_value("slots")
    if not slots:
        return None
    return Schedule(parse_slots(slots), store.publishing_value("timezone") or "UTC")


def set_schedule(
    store: Store, slots: str | None, timezone_name: str | None, now: datetime | None = None
) -> int:
    """Set (or with slots None, clear) the posting slots; re-slots unpinned queued items.
    Without a timezone, the one set before stays (UTC at first).

    Returns how many items got a new due time.
    """
    timezone_name = timezone_name or store.publishing_value("timezone") or "UTC"
    zone_named(timezone_name)
    if slots is None:
        store.set_publishing_value("slots", None)
    else:
        store.set_publishing_value("slots", Schedule(parse_slots(slots), timezone_name).label())
    store.set_publishing_value("timezone", timezone_name)
    return reslot(store, now or utc_now())


def reslot(store: Store, now: datetime) -> int:
    """Give every unpinned queued item the next free slot (or now, without slots), in id order."""
    schedule = get_schedule(store)
    items = sorted(
        (item for item in store.queue_items(QueueStatus.QUEUED) if not item.pinned),
        key=lambda item: item.id,
    )
    for item in items:  # free their slots first, then hand them out again in order
        store.update_queue_item(item.id, {"due_at": ""})
    for item in items:
        due = next_due(store, schedule, item.account, now)
        store.update_queue_item(item.id, {"due_at": utc_iso(due)})
    return len(items)


def next_slot(schedule: Schedule, after: datetime, taken: set[str]) -> datetime:
    """The first slot strictly after `after` that no item of the account holds."""
    zone = schedule.zone()
    day: date = after.astimezone(zone).date()
    for _ in range(366 * 10):
        for slot in schedule.slots:
            local = datetime.combine(day, slot, tzinfo=zone)
            if local > after and utc_iso(local) not in taken:
                return local.astimezone(timezone.utc)
        day += timedelta(days=1)
    raise MarinadeError("no free slot in the next ten years; add slots or drop queued items")


def next_due(store: Store, schedule: Schedule | None, account: str, now: datetime) -> datetime:
    if schedule is None:
        return now
    return next_slot(schedule, now, store.taken_due_times(account))


def parse_time(text: str, store: Store) -> datetime:
    """An ISO 8601 time; one without an offset is in the schedule's timezone (else UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MarinadeError(
            f"bad time {text!r}: use ISO 8601, as in 2026-12-01T09:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone_named(store.publishing_value("timezone") or "UTC"))
    return moment.astimezone(timezone.utc)
