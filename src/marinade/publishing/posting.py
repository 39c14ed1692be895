"""Posting what is due: claim, send, record.

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

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from marinade.errors import MarinadeError
from marinade.processes import worker_gone, worker_id
from marinade.publishing.account import Account
from marinade.publishing.accounts import get_account
from marinade.publishing.adapters import (
    Adapter,
    NotSent,
    OutcomeUnknown,
    Post,
    Posted,
    Rejected,
    adapter_named,
    all_adapters,
    exception_outcome,
)
from marinade.publishing.queue import final_text
from marinade.publishing.redaction import redact
from marinade.store import Claim, QueueItem, QueueStatus, Store
from marinade.timestamps import utc_iso, utc_now

STALE_AFTER = timedelta(minutes=15)  # a claim older than this is abandoned (any host)
DEDUPE_WINDOW = timedelta(minutes=50)  # Mastodon keeps an Idempotency-Key for an hour
MAX_ATTEMPTS = 8  # sends refused by rate limits or 5xx before an item is `failed`
BACKOFF_START, BACKOFF_MAX = 60.0, 3600.0  # seconds, doubling per attempt
SKIPPED = "skipped"  # a PostOutcome's status when the account could not be used


@dataclass(frozen=True)
class PostOutcome:
    item_id: int
    account: str
    status: str  # a QueueStatus (posted, failed, unknown, queued: retry later) or SKIPPED
    remote_id: str | None = None
    url: str | None = None
    error: str | None = None


def recover_abandoned(store: Store, now: datetime | None = None) -> list[int]:
    """`posting` items whose claimer died (or that are older than STALE_AFTER) -> unknown."""
    now = now or utc_now()
    recovered = []
    for item in store.posting_items():
        stale = item.claimed_at is None or item.claimed_at < utc_iso(now - STALE_AFTER)
        if stale or worker_gone(item.claimed_by):
            reason = "the process posting it stopped before recording the answer"
            if store.mark_unknown(item.id, item.claimed_by, reason, utc_iso(now)):
                recovered.append(item.id)
    return recovered


def backoff(attempts: int) -> float:
    return min(BACKOFF_START * 2 ** max(0, attempts - 1), BACKOFF_MAX)


def post_item(store: Store, claim: Claim, worker: str, now: Callable[[], datetime]) -> PostOutcome:
    """Send one claimed item and record the answer."""
    item = claim.item
    account = get_account(store, item.account)
    adapter: Adapter = adapter_named(account.platform)
    model_written = item.sample_id is not None
    text = final_text(item.text, account, model_written)
    post = Post(item.id, text, item.idempotency_key, model_written)
    fields: dict[str, Any]
    try:
        posted: Posted = adapter.post(account, post)
    except Rejected as error:
        fields = {"status": QueueStatus.FAILED, "error": error.reason}
    except NotSent as error:
        if item.attempts >= MAX_ATTEMPTS:
            reason = f"gave up after {item.attempts} attempts: {error.reason}"
            fields = {"status": QueueStatus.FAILED, "error": reason}
        else:
            wait = error.retry_after if error.retry_after is not None else backoff(item.attempts)
            retry_at = utc_iso(now() + timedelta(seconds=max(wait, 1.0)))
            # nothing went out this time; an item that may have gone out before stays unknown
            status = (
                QueueStatus.UNKNOWN
                if claim.claimed_from is QueueStatus.UNKNOWN
                else QueueStatus.QUEUED
            )
            fields = {"status": status, "retry_at": retry_at, "error": error.reason}
            fields["sent_at"] = claim.sent_at_before
    except OutcomeUnknown as error:
        fields = _unknown(item, now, error.reason)
    except MarinadeError:
        raise  # the account is unusable (a missing token): post_due gives the claim back
    except Exception as error:  # a library's surprise: the request may have gone out ...
        outcome = exception_outcome(error)
        if isinstance(outcome, Rejected):  # ... unless it could not even be made
            fields = {"status": QueueStatus.FAILED, "error": outcome.reason}
        else:
            fields = _unknown(item, now, f"unexpected {error.__class__.__name__}: {error}")
    else:
        fields = {
            "status": QueueStatus.POSTED,
            "remote_id": posted.remote_id,
            "url": posted.url,
            "error": None,
            "posted_at": utc_iso(now()),
        }
    if fields.get("error"):
        fields["error"] = without_secret(fields["error"], account)
    fields.update(posted_text=text, updated_at=utc_iso(now()))
    store.finish_claim(item.id, worker, fields)
    return PostOutcome(
        item.id,
        account.name,
        fields["status"],
        fields.get("remote_id"),
        fields.get("url"),
        fields.get("error"),
    )


def without_secret(reason: str, account: Account) -> str:
    """An error reason with the account's secret (in every form it can take, and a
    webhook's URL) blanked: a server or a library that echoes the token back must not
    get it into the database or the log."""
    return redact(reason, account.secrets_to_hide())


def _unknown(item: QueueItem, now: Callable[[], datetime], reason: str) -> dict[str, Any]:
    # where the platform de-duplicates, a later pass sends it again, after a pause
    retry_at = utc_iso(now() + timedelta(seconds=backoff(item.attempts)))
    return {"status": QueueStatus.UNKNOWN, "error": reason, "retry_at": retry_at}


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
        claim = store.claim_next_due(
            utc_iso(moment),
            worker,
            redo_unknown=dedupers,
            redo_unknown_sent_after=utc_iso(moment - DEDUPE_WINDOW),
            redo_unknown_attempts=MAX_ATTEMPTS,
            exclude_accounts=tuple(skipped),
        )
        if claim is None:
            return outcomes
        item = claim.item
        try:
            outcomes.append(post_item(store, claim, worker, now))
        except MarinadeError as error:  # unusable account: give the claim back untouched
            reason = _without_account_secret(str(error), store, item.account)
            store.finish_claim(
                item.id,
                worker,
                {
                    "status": claim.claimed_from,  # an unknown one stays unknown
                    "attempts": item.attempts - 1,
                    "sent_at": claim.sent_at_before,
                    "error": reason,
                },
            )
            skipped.append(item.account)
            outcomes.append(PostOutcome(item.id, item.account, SKIPPED, error=reason))


def _without_account_secret(reason: str, store: Store, account_name: str) -> str:
    try:
        return without_secret(reason, get_account(store, account_name))
    except MarinadeError:  # no such account: it has no secret to hide
        return reason


def dry_run(store: Store, outbox: Path, now: datetime | None = None) -> list[QueueItem]:
    """What `post --due` would send now, written to an outbox file, each item with the
    `posted_text` it would be sent as; the queue is untouched."""
    from marinade.publishing.adapters.outbox import write_to_outbox

    moment = utc_iso(now or utc_now())
    due = [
        item
        for item in store.queue_items(QueueStatus.QUEUED)
        if item.due_at <= moment and (item.retry_at or "") <= moment
    ]
    shown = []
    for item in due:
        account = get_account(store, item.account)
        text = final_text(item.text, account, item.sample_id is not None)
        write_to_outbox(outbox, Post(item.id, text, item.idempotency_key), account.name)
        shown.append(dataclasses.replace(item, posted_text=text))
    return shown
