"""The posting queue before anything is sent: add items (lengths checked first), edit,
drop, retry, mark posted, and an item as `queue list --json` shows it.

Every item goes `queued -> posting -> posted | failed | unknown` (`QueueStatus`); sending
is posting.py, due times schedule.py. Adding checks every text against every account
first (its length with the account's hashtag on model-written texts, and that the
sample is not already queued, posting, posted or unknown for that account), so one bad
entry queues nothing. Editing, dropping, retrying and marking posted look at the item's
status, and the change is made only while the status is still one that allows it: a
posted item stays in the record as it was.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marinade.errors import MarinadeError
from marinade.publishing.account import Account
from marinade.publishing.accounts import get_account, target_account
from marinade.publishing.adapters import adapter_named, length_limit
from marinade.publishing.schedule import get_schedule, next_slot
from marinade.store import QueueItem, QueueStatus, Store
from marinade.timestamps import utc_iso, utc_now

# a sample with an item in one of these for an account is not queued there again (a
# failed one may be: nothing went out)
SAME_SAMPLE = (QueueStatus.QUEUED, QueueStatus.POSTING, QueueStatus.POSTED, QueueStatus.UNKNOWN)
EDITABLE = (QueueStatus.QUEUED, QueueStatus.FAILED, QueueStatus.UNKNOWN)
RETRYABLE = (QueueStatus.FAILED, QueueStatus.UNKNOWN)  # the user says whether it went out


def final_text(text: str, account: Account, model_written: bool) -> str:
    """What is posted: the text, plus the account's hashtag on model-written posts (where
    the platform has tags, as Tumblr does, the adapter puts it there instead)."""
    hashtag = account.setting("hashtag")
    if adapter_named(account.platform).hashtag_as_tag:
        return text
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
    return _queue_for(store, entries, _targets(store, account_names), at, now, again)


def _targets(store: Store, account_names: list[str] | None) -> list[Account]:
    """The accounts named, else the default one."""
    return [get_account(store, name) for name in account_names or []] or [
        target_account(store, None)
    ]


def _queue_for(
    store: Store,
    entries: list[Entry],
    targets: list[Account],
    at: datetime | None,
    now: datetime | None,
    again: bool,
) -> list[int]:
    now = now or utc_now()
    for account in targets:
        for entry in entries:
            earlier = None if again else earlier_item(store, entry.sample_id, account.name)
            if earlier is not None:
                raise MarinadeError(
                    f"sample {entry.sample_id} is already in the queue for account "
                    f"{account.name}: item {earlier.id}, {earlier.status}; nothing was "
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
    return store.add_queue_items(new_item_rows(store, entries, targets, at, now))


def new_item_rows(
    store: Store, entries: list[Entry], targets: list[Account], at: datetime | None, now: datetime
) -> list[dict[str, Any]]:
    """The queue rows for entries already checked: due at `at`, else now, else (with
    posting slots) at each account's next free slots."""
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
                taken.add(utc_iso(due))
            rows.append(
                {
                    "text": entry.text,
                    "sample_id": entry.sample_id,
                    "account": account.name,
                    "due_at": utc_iso(due),
                    "pinned": int(at is not None),
                    "status": QueueStatus.QUEUED,
                    "attempts": 0,
                    "idempotency_key": f"marinade-{uuid.uuid4().hex}",
                    "created_at": utc_iso(now),
                    "updated_at": utc_iso(now),
                }
            )
    return rows


def earlier_item(store: Store, sample_id: int | None, account: str) -> QueueItem | None:
    """The item that already queued (or posted) this sample for this account, if any."""
    if sample_id is None:
        return None
    return store.sample_queue_item(sample_id, account, SAME_SAMPLE)


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
    targets = _targets(store, account_names)
    if experiment and not store.accepted_samples(experiment):
        store.experiment(experiment)  # a misspelt name is an error, not "nothing to queue"
    plan: list[tuple[Account, list[Entry]]] = []
    left_out: list[tuple[int, str]] = []
    for target in targets:
        checked = [
            (entry, length_problem(entry.text, target, True))
            for entry in accepted_entries(store, experiment, target.name)
        ]
        long = [(entry, problem) for entry, problem in checked if problem]
        if long and not skip_long:
            entry, problem = long[0]
            raise MarinadeError(
                f"sample {entry.sample_id} is too long for account {target.name}: "
                f"{problem}; nothing was queued (edit it, or --skip-long)"
            )
        left_out += [(e.sample_id, target.name) for e, _ in long if e.sample_id is not None]
        plan.append((target, [entry for entry, problem in checked if not problem]))
    ids: list[int] = []
    for target, entries in plan:
        if entries:
            ids += _queue_for(store, entries, [target], at, now, again=False)
    return AcceptedQueued(ids, left_out)


def edit_item(
    store: Store,
    item_id: int,
    text: str | None = None,
    at: datetime | None = None,
    account: str | None = None,
    now: datetime | None = None,
) -> QueueItem:
    item = store.queue_item(item_id)
    if item.status not in EDITABLE:
        raise MarinadeError(f"queue item {item_id} is {item.status}; it can't be edited")
    fields: dict[str, Any] = {}
    target = get_account(store, account or item.account)
    new_text = item.text if text is None else text.strip()
    problem = length_problem(new_text, target, item.sample_id is not None)
    if problem:
        raise MarinadeError(f"queue item {item_id}: {problem}; not changed")
    if text is not None:
        fields["text"] = new_text
    if account is not None:
        fields["account"] = target.name
    if at is not None:
        fields.update(due_at=utc_iso(at), pinned=1)
    if fields:
        fields["updated_at"] = utc_iso(now or utc_now())
        if not store.update_queue_item(item_id, fields, only_status=EDITABLE):
            raise MarinadeError(f"queue item {item_id} changed meanwhile; not changed")
    return store.queue_item(item_id)


def drop_item(store: Store, item_id: int) -> None:
    item = store.queue_item(item_id)
    if item.status in (QueueStatus.POSTING, QueueStatus.POSTED):
        raise MarinadeError(f"queue item {item_id} is {item.status}; it stays in the record")
    store.delete_queue_item(item_id)


def retry_item(store: Store, item_id: int, now: datetime | None = None) -> None:
    """A failed or unknown item goes back to the queue (the user says it was not posted)."""
    item = store.queue_item(item_id)
    if item.status not in RETRYABLE:
        raise MarinadeError(f"queue item {item_id} is {item.status}; only failed or unknown")
    fields = {"status": QueueStatus.QUEUED, "attempts": 0, "retry_at": None, "error": None}
    store.update_queue_item(item_id, {**fields, "updated_at": utc_iso(now or utc_now())}, RETRYABLE)


def mark_posted(
    store: Store, item_id: int, remote_id: str | None, url: str | None, now: datetime | None = None
) -> None:
    """The user checked: an unknown (or failed) item was posted after all."""
    item = store.queue_item(item_id)
    if item.status not in RETRYABLE:
        raise MarinadeError(f"queue item {item_id} is {item.status}; only failed or unknown")
    moment = utc_iso(now or utc_now())
    fields = {
        "status": QueueStatus.POSTED,
        "remote_id": remote_id,
        "url": url,
        "error": None,
        "posted_at": item.sent_at or moment,
        "posted_text": item.posted_text,
        "updated_at": moment,
    }
    store.update_queue_item(item_id, fields, RETRYABLE)


def queue_row(item: QueueItem) -> dict[str, Any]:
    """One item as `queue list --json` prints it (and the review page's Queue tab sends)."""
    return {
        "id": item.id,
        "text": item.text,
        "account": item.account,
        "status": item.status.value,
        "due_at": item.due_at,
        "remote_id": item.remote_id,
        "url": item.url,
        "sample_id": item.sample_id,
        "pinned": item.pinned,
        "attempts": item.attempts,
        "retry_at": item.retry_at,
        "error": item.error,
        "posted_at": item.posted_at,
        "posted_text": item.posted_text,
    }


def parse_status(text: str | None) -> QueueStatus | None:
    """A status as the user typed it (`queue list --status`); None stays None."""
    if text is None:
        return None
    try:
        return QueueStatus(text)
    except ValueError:
        names = ", ".join(status.value for status in QueueStatus)
        raise MarinadeError(f"unknown status {text!r}; use one of {names}") from None
