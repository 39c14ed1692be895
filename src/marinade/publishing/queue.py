"""The posting queue: add (length checked first), slot into due times, claim, post, record.

Every item goes `queued -> posting -> posted | failed | unknown`. Posting one item is
three steps: claim it (one BEGIN IMMEDIATE transaction turns it `posting` for this
process), send it, record the answer. So two schedulers on one database never send the
same item: only one of them can claim it. A process that dies between claim and record
leaves the item `posting`; the next pass finds its claimer gone and marks it `unknown`,
never `queued`, because it may have been posted. `unknown` items are sent again only on
platforms that de-duplicate (Mastodon's Idempotency-Key, remembered for an hour);
elsewhere they wait for `queue retry` or `queue mark-posted`.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marinade.errors import MarinadeError
from marinade.publishing.account import Account
from marinade.publishing.accounts import get_account, target_account
from marinade.publishing.adapters import (
    Adapter,
    NotSent,
    OutcomeUnknown,
    Post,
    Posted,
    Rejected,
    adapter_named,
    all_adapters,
    length_limit,
)
from marinade.store import Store

STATUSES = ("queued", "posting", "posted", "failed", "unknown")
STALE_AFTER = timedelta(minutes=15)  # a claim older than this is abandoned (any host)
DEDUPE_WINDOW = timedelta(minutes=50)  # Mastodon keeps an Idempotency-Key for an hour
MAX_ATTEMPTS = 8  # sends refused by rate limits or 5xx before an item is `failed`
BACKOFF_START, BACKOFF_MAX = 60.0, 3600.0  # seconds, doubling per attempt
SLOT = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 to the second: every time in the queue, so text order is time order."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


# schedule: slots in a timezone


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
        (item for item in store.queue_items("queued") if not item["pinned"]),
        key=lambda item: item["id"],
    )
    for item in items:  # free their slots first, then hand them out again in order
        store.update_queue_item(item["id"], {"due_at": ""})
    for item in items:
        due = next_due(store, schedule, item["account"], now)
        store.update_queue_item(item["id"], {"due_at": iso(due)})
    return len(items)


def next_slot(schedule: Schedule, after: datetime, taken: set[str]) -> datetime:
    """The first slot strictly after `after` that no item of the account holds."""
    zone = schedule.zone()
    day: date = after.astimezone(zone).date()
    for _ in range(366 * 10):
        for slot in schedule.slots:
            local = datetime.combine(day, slot, tzinfo=zone)
            if local > after and iso(local) not in taken:
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


# adding and editing


def final_text(text: str, account: Account, model_written: bool) -> str:
    """What is posted: the text, plus the account's hashtag on model-written posts."""
    hashtag = account.setting("hashtag")
    if model_written and hashtag and hashtag.lower() not in text.lower():
        return f"{text.rstrip()} {hashtag}"
    return text


def length_problem(text: str, account: Account, model_written: bool) -> str | None:
    adapter = adapter_named(account.platform)
    limit = length_limit(adapter, account)
    if not text.strip():
        return "the text is empty"
    if limit is None:
        return None
    length = adapter.length(final_text(text, account, model_written))
    if length > limit:
        hashtag = " with its hashtag" if model_written and account.setting("hashtag") else ""
        return f"{length} characters{hashtag}, over {account.platform}'s {limit}"
    return None


@dataclass(frozen=True)
class Entry:
    """A text to queue and the sample it came from (None: written by a person)."""

    text: str
    sample_id: int | None = None

    def label(self) -> str:
        return f"sample {self.sample_id}" if self.sample_id is not None else repr(self.text[:40])


def add_to_queue(
    store: Store,
    entries: list[Entry],
    account_names: list[str] | None = None,
    at: datetime | None = None,
    now: datetime | None = None,
    again: bool = False,
) -> list[int]:
    """Queue each entry for each account (the default one when none is named).

    Every length is checked first: one text too long for one account queues nothing. So
    is every sample: one already queued, posting, posted or unknown for an account is
    refused (nothing is queued), unless `again`.
    """
    now = now or utc_now()
    targets = [get_account(store, name) for name in account_names or []] or [
        target_account(store, None)
    ]
    for account in targets:
        for entry in entries:
            earlier = None if again else earlier_item(store, entry.sample_id, account.name)
            if earlier is not None:
                raise MarinadeError(
                    f"sample {entry.sample_id} is already in the queue for account "
                    f"{account.name}: item {earlier['id']}, {earlier['status']}; nothing was "
                    "queued (--again queues it once more)"
                )
            problem = length_problem(entry.text, account, entry.sample_id is not None)
            if problem:
                raise MarinadeError(
                    f"{entry.label()} is too long for account {account.name}: {problem}; "
                    "nothing was queued"
                    if "over" in problem
                    else f"{entry.label()}: {problem}; nothing was queued"
                )
    schedule = get_schedule(store)
    rows: list[dict[str, Any]] = []
    for account in targets:
        taken = store.taken_due_times(account.name)
        for entry in entries:
            if at is not None:
                due = at
            elif schedule is None:
                due = now
            else:
                due = next_slot(schedule, now, taken)
                taken.add(iso(due))
            rows.append(
                {
                    "text": entry.text,
                    "sample_id": entry.sample_id,
                    "account": account.name,
                    "due_at": iso(due),
                    "pinned": int(at is not None),
                    "status": "queued",
                    "attempts": 0,
                    "idempotency_key": f"marinade-{uuid.uuid4().hex}",
                    "created_at": iso(now),
                    "updated_at": iso(now),
                }
            )
    return store.add_queue_items(rows)


SAME_SAMPLE = ("queued", "posting", "posted", "unknown")  # a failed one may be queued anew


def earlier_item(store: Store, sample_id: int | None, account: str) -> dict[str, Any] | None:
    """The item that already queued (or posted) this sample for this account, if any."""
    if sample_id is None:
        return None
    for item in store.queue_items(None, account):
        if item["sample_id"] == sample_id and item["status"] in SAME_SAMPLE:
            return item
    return None


def sample_entry(store: Store, sample_id: int) -> Entry:
    """A sample as a queue entry: the rater's edit where there is one."""
    sample = store.get_sample(sample_id)
    rating = store.rating(sample_id)
    text = (rating or {}).get("edited_text") or sample["text"]
    return Entry(text=text.strip(), sample_id=sample_id)


def accepted_entries(store: Store, experiment: str | None, account: str) -> list[Entry]:
    """Accepted samples not yet queued for `account`."""
    already = store.queued_sample_ids(account)
    return [
        Entry(text=row["text"].strip(), sample_id=row["id"])
        for row in store.accepted_samples(experiment)
        if row["id"] not in already
    ]


@dataclass(frozen=True)
class AcceptedQueued:
    """What `queue_accepted` did: the new item ids, and samples left out as too long."""

    ids: list[int]
    left_out: list[tuple[int, str]]  # (sample id, account name)


def queue_accepted(
    store: Store,
    experiment: str | None = None,
    account_names: list[str] | None = None,
    at: datetime | None = None,
    skip_long: bool = False,
    now: datetime | None = None,
) -> AcceptedQueued:
    """Queue every accepted sample not yet queued, per account (the default one when none
    is named): a sample queued for one account may be new to another.

    Every length is checked first: a text too long for an account queues nothing, unless
    `skip_long`, which leaves such samples out (and says which).
    """
    targets = [get_account(store, name) for name in account_names or []] or [
        target_account(store, None)
    ]
    if experiment and not store.accepted_samples(experiment):
        store.experiment(experiment)  # a misspelt name is an error, not "nothing to queue"
    plan: list[tuple[str, list[Entry]]] = []
    left_out: list[tuple[int, str]] = []
    for target in targets:
        entries = accepted_entries(store, experiment, target.name)
        long = [entry for entry in entries if length_problem(entry.text, target, True)]
        if long and not skip_long:
            problem = length_problem(long[0].text, target, True)
            raise MarinadeError(
                f"sample {long[0].sample_id} is too long for account {target.name}: "
                f"{problem}; nothing was queued (edit it, or --skip-long)"
            )
        left_out += [(e.sample_id, target.name) for e in long if e.sample_id is not None]
        plan.append((target.name, [entry for entry in entries if entry not in long]))
    ids: list[int] = []
    for name, entries in plan:
        if entries:
            ids += add_to_queue(store, entries, [name], at, now)
    return AcceptedQueued(ids, left_out)


EDITABLE = ("queued", "failed", "unknown")


def edit_item(
    store: Store,
    item_id: int,
    text: str | None = None,
    at: datetime | None = None,
    account: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    item = store.queue_item(item_id)
    if item["status"] not in EDITABLE:
        raise MarinadeError(f"queue item {item_id} is {item['status']}; it can't be edited")
    fields: dict[str, Any] = {}
    target = get_account(store, account or item["account"])
    new_text = item["text"] if text is None else text.strip()
    problem = length_problem(new_text, target, item["sample_id"] is not None)
    if problem:
        raise MarinadeError(f"queue item {item_id}: {problem}; not changed")
    if text is not None:
        fields["text"] = new_text
    if account is not None:
        fields["account"] = target.name
    if at is not None:
        fields.update(due_at=iso(at), pinned=1)
    if fields:
        fields["updated_at"] = iso(now or utc_now())
        if not store.update_queue_item(item_id, fields, only_status=EDITABLE):
            raise MarinadeError(f"queue item {item_id} changed meanwhile; not changed")
    return store.queue_item(item_id)


def drop_item(store: Store, item_id: int) -> None:
    item = store.queue_item(item_id)
    if item["status"] in ("posting", "posted"):
        raise MarinadeError(f"queue item {item_id} is {item['status']}; it stays in the record")
    store.delete_queue_item(item_id)


def retry_item(store: Store, item_id: int, now: datetime | None = None) -> None:
    """A failed or unknown item goes back to the queue (the user says it was not posted)."""
    item = store.queue_item(item_id)
    if item["status"] not in ("failed", "unknown"):
        raise MarinadeError(f"queue item {item_id} is {item['status']}; only failed or unknown")
    fields = {"status": "queued", "attempts": 0, "retry_at": None, "error": None}
    store.update_queue_item(
        item_id, {**fields, "updated_at": iso(now or utc_now())}, ("failed", "unknown")
    )


def mark_posted(
    store: Store, item_id: int, remote_id: str | None, url: str | None, now: datetime | None = None
) -> None:
    """The user checked: an unknown (or failed) item was posted after all."""
    item = store.queue_item(item_id)
    if item["status"] not in ("failed", "unknown"):
        raise MarinadeError(f"queue item {item_id} is {item['status']}; only failed or unknown")
    moment = iso(now or utc_now())
    fields = {
        "status": "posted",
        "remote_id": remote_id,
        "url": url,
        "error": None,
        "posted_at": item["sent_at"] or moment,
        "posted_text": item["posted_text"],
        "updated_at": moment,
    }
    store.update_queue_item(item_id, fields, ("failed", "unknown"))


# posting


@dataclass(frozen=True)
class PostOutcome:
    item_id: int
    account: str
    status: str  # posted, failed, unknown, queued (retry later), skipped (account unusable)
    remote_id: str | None = None
    url: str | None = None
    error: str | None = None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _claimer_gone(claimed_by: str | None) -> bool:
    """True when the claiming process ran on this host and no longer exists."""
    host, _, rest = (claimed_by or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover_abandoned(store: Store, now: datetime | None = None) -> list[int]:
    """`posting` items whose claimer died (or that are older than STALE_AFTER) -> unknown."""
    now = now or utc_now()
    recovered = []
    for item in store.posting_items():
        stale = item["claimed_at"] is None or item["claimed_at"] < iso(now - STALE_AFTER)
        if stale or _claimer_gone(item["claimed_by"]):
            reason = "the process posting it stopped before recording the answer"
            if store.mark_unknown(item["id"], item["claimed_by"], reason, iso(now)):
                recovered.append(item["id"])
    return recovered


def backoff(attempts: int) -> float:
    return min(BACKOFF_START * 2 ** max(0, attempts - 1), BACKOFF_MAX)


def post_item(
    store: Store, item: dict[str, Any], worker: str, now: Callable[[], datetime]
) -> PostOutcome:
    """Send one claimed item and record the answer."""
    account = get_account(store, item["account"])
    adapter: Adapter = adapter_named(account.platform)
    model_written = item["sample_id"] is not None
    text = final_text(item["text"], account, model_written)
    post = Post(item["id"], text, item["idempotency_key"], model_written)
    fields: dict[str, Any]
    try:
        posted: Posted = adapter.post(account, post)
    except Rejected as error:
        fields = {"status": "failed", "error": error.reason}
    except NotSent as error:
        if item["attempts"] >= MAX_ATTEMPTS:
            reason = f"gave up after {item['attempts']} attempts: {error.reason}"
            fields = {"status": "failed", "error": reason}
        else:
            wait = error.retry_after if error.retry_after is not None else backoff(item["attempts"])
            retry_at = iso(now() + timedelta(seconds=max(wait, 1.0)))
            # nothing went out this time; an item that may have gone out before stays unknown
            status = "unknown" if item["claimed_from"] == "unknown" else "queued"
            fields = {"status": status, "retry_at": retry_at, "error": error.reason}
            fields["sent_at"] = item["sent_at_before"]
    except OutcomeUnknown as error:
        fields = _unknown(item, now, error.reason)
    except MarinadeError:
        raise  # the account is unusable (a missing token): post_due gives the claim back
    except Exception as error:  # a library's surprise: the request may have gone out
        fields = _unknown(item, now, f"unexpected {error.__class__.__name__}: {error}")
    else:
        fields = {
            "status": "posted",
            "remote_id": posted.remote_id,
            "url": posted.url,
            "error": None,
            "posted_at": iso(now()),
        }
    if fields.get("error"):
        fields["error"] = without_secret(fields["error"], account)
    fields.update(posted_text=text, updated_at=iso(now()))
    store.finish_claim(item["id"], worker, fields)
    return PostOutcome(
        item["id"],
        account.name,
        fields["status"],
        fields.get("remote_id"),
        fields.get("url"),
        fields.get("error"),
    )


def without_secret(reason: str, account: Account) -> str:
    """An error reason with the account's secret blanked: a server that echoes the token
    back in its answer must not get it into the database or the log."""
    try:
        secret = account.secret(required=False)
    except MarinadeError:
        return reason
    return reason.replace(secret, "[secret]") if secret else reason


def _unknown(item: dict[str, Any], now: Callable[[], datetime], reason: str) -> dict[str, Any]:
    # where the platform de-duplicates, a later pass sends it again, after a pause
    retry_at = iso(now() + timedelta(seconds=backoff(item["attempts"])))
    return {"status": "unknown", "error": reason, "retry_at": retry_at}


def post_due(
    store: Store,
    now: Callable[[], datetime] = utc_now,
    worker: str | None = None,
) -> list[PostOutcome]:
    """Post everything due, one claimed item at a time; returns what happened to each.

    An account that cannot be used (no such account, a missing token) is skipped for
    this pass and its items stay queued.
    """
    worker = worker or worker_id()
    recover_abandoned(store, now())
    dedupers = tuple(adapter.name for adapter in all_adapters() if adapter.dedupes)
    outcomes: list[PostOutcome] = []
    skipped: list[str] = []
    while True:
        moment = now()
        item = store.claim_next_due(
            iso(moment),
            worker,
            redo_unknown=dedupers,
            redo_unknown_sent_after=iso(moment - DEDUPE_WINDOW),
            redo_unknown_attempts=MAX_ATTEMPTS,
            exclude_accounts=tuple(skipped),
        )
        if item is None:
            return outcomes
        try:
            outcomes.append(post_item(store, item, worker, now))
        except MarinadeError as error:  # unusable account: give the claim back untouched
            store.finish_claim(
                item["id"],
                worker,
                {
                    "status": item["claimed_from"],  # an unknown one stays unknown
                    "attempts": item["attempts"] - 1,
                    "sent_at": item["sent_at_before"],
                    "error": str(error),
                },
            )
            skipped.append(item["account"])
            outcomes.append(PostOutcome(item["id"], item["account"], "skipped", error=str(error)))


def dry_run(store: Store, outbox: Path, now: datetime | None = None) -> list[dict[str, Any]]:
    """What `post --due` would send now, written to an outbox file; the queue is untouched."""
    from marinade.publishing.adapters.outbox import write_to_outbox

    moment = iso(now or utc_now())
    due = [
        item
        for item in store.queue_items("queued")
        if item["due_at"] <= moment and (item["retry_at"] or "") <= moment
    ]
    shown = []
    for item in due:
        account = get_account(store, item["account"])
        text = final_text(item["text"], account, item["sample_id"] is not None)
        write_to_outbox(outbox, Post(item["id"], text, item["idempotency_key"]), account.name)
        shown.append({**item, "posted_text": text})
    return shown


def queue_row(item: dict[str, Any]) -> dict[str, Any]:
    """One item as `queue list --json` prints it."""
    keys = (
        "id",
        "text",
        "account",
        "status",
        "due_at",
        "remote_id",
        "url",
        "sample_id",
        "pinned",
        "attempts",
        "retry_at",
        "error",
        "posted_at",
        "posted_text",
    )
    return {key: item.get(key) for key in keys} | {"pinned": bool(item.get("pinned"))}


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise MarinadeError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
