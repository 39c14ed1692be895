"""The queue: slots, lengths, default accounts, and exactly-once posting against a real
local server: claims, retries, unknown outcomes, a crash between claim and post, and
schedulers racing on one database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from marinade.errors import MarinadeError
from marinade.publishing.accounts import add_account
from marinade.publishing.posting import MAX_ATTEMPTS, post_due
from marinade.publishing.queue import (
    Entry,
    accepted_entries,
    add_to_queue,
    drop_item,
    edit_item,
    mark_posted,
    retry_item,
)
from marinade.publishing.schedule import set_schedule
from marinade.store import Store
from platform_server import MASTODON_TOKEN, PlatformServer

SRC = Path(__file__).resolve().parents[1] / "src"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)  # a Friday, 13:00 in Paris


@pytest.fixture
def server():
    with PlatformServer() as running:
        yield running


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", MASTODON_TOKEN)


def mastodon(store, server, name="bot", **settings):
    return add_account(
        store,
        name,
        "mastodon",
        {"instance": server.url, "token_env": "MASTODON_TOKEN", "timeout": 1, **settings},
    )


def webhook(store, server, name="hook", **settings):
    return add_account(
        store, name, "webhook", {"url": f"{server.url}/hook", "timeout": 1, **settings}
    )


def add_sample(store, text):
    [row] = store.add_samples(
        [
            {
                "created_at": "2026-11-01T00:00:00+00:00",
                "origin": "generate",
                "model": "tiny",
                "model_hash": "abc",
                "text": text,
                "seed": 1,
                "temperature": 0.8,
            }
        ]
    )
    return row["id"]


def clock(start=NOW):
    """A clock the test moves by hand: clock.now() and clock.advance(seconds)."""

    class Clock:
        moment = start

        def now(self):
            return self.moment

        def advance(self, seconds):
            self.moment += timedelta(seconds=seconds)

    return Clock()


# slots, lengths and accounts


def test_slots_turn_into_due_times_in_the_timezone(store, server):
    mastodon(store, server)
    set_schedule(store, "09:00,18:30", "Europe/Paris", NOW)
    ids = add_to_queue(store, [Entry(f"post {i}") for i in range(3)], now=NOW)
    pinned = add_to_queue(store, [Entry("pinned")], at=NOW + timedelta(days=30), now=NOW)
    due = [store.queue_item(i).due_at for i in ids]
    # 13:00 in Paris (UTC+1 in November): today 18:30, tomorrow 09:00 and 18:30
    assert due == [
        "2026-11-20T17:30:00+00:00",
        "2026-11-21T08:00:00+00:00",
        "2026-11-21T17:30:00+00:00",
    ]
    # a new schedule moves unpinned items to its slots, pinned ones stay
    set_schedule(store, "07:15", "UTC", NOW)
    assert [store.queue_item(i).due_at[:16] for i in ids] == [
        "2026-11-21T07:15",
        "2026-11-22T07:15",
        "2026-11-23T07:15",
    ]
    assert store.queue_item(pinned[0]).due_at == "2026-12-20T12:00:00+00:00"
    # without slots, a post is due at once
    set_schedule(store, None, "UTC", NOW)
    assert store.queue_item(ids[2]).due_at == "2026-11-20T12:00:00+00:00"


def test_slots_follow_daylight_saving_time(store, server):
    mastodon(store, server)
    set_schedule(store, "09:00", "Europe/Paris", NOW)
    march = datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc)  # clocks go forward on the 29th
    ids = add_to_queue(store, [Entry("a"), Entry("b")], now=march)
    assert [store.queue_item(i).due_at for i in ids] == [
        "2026-03-29T07:00:00+00:00",  # 09:00 CEST
        "2026-03-30T07:00:00+00:00",
    ]


def test_bad_schedules_are_refused(store):
    with pytest.raises(MarinadeError, match="bad slot '25:00'"):
        set_schedule(store, "09:00,25:00", "UTC")
    with pytest.raises(MarinadeError, match="unknown timezone"):
        set_schedule(store, "09:00", "Mars/Olympus")


def test_length_is_checked_with_the_hashtag_before_anything_is_queued(store, server):
    mastodon(store, server, hashtag="shitmygpt2says", max_length=30)
    fits = add_sample(store, "x" * 14)  # 14 + " #shitmygpt2says" (16) = 30
    too_long = add_sample(store, "x" * 15)
    with pytest.raises(MarinadeError, match=f"sample {too_long} is too long .* 31 characters"):
        add_to_queue(store, [Entry("x" * 14, fits), Entry("x" * 15, too_long)], now=NOW)
    assert store.queue_items() == []
    # a person's own text carries no hashtag, so 30 characters fit
    add_to_queue(store, [Entry("y" * 30)], now=NOW)
    with pytest.raises(MarinadeError, match="empty"):
        add_to_queue(store, [Entry("  ")], now=NOW)


def test_bluesky_counts_graphemes(store, server):
    add_account(store, "sky", "bluesky", {"handle": "me", "token_env": "T"})
    add_to_queue(store, [Entry("👍🏽" * 300)], now=NOW)  # 300 graphemes, 600 code points
    with pytest.raises(MarinadeError, match="301 characters"):
        add_to_queue(store, [Entry("👍🏽" * 301)], now=NOW)


def test_which_account_a_post_goes_to(store, server):
    with pytest.raises(MarinadeError, match="no account yet"):
        add_to_queue(store, [Entry("a")], now=NOW)
    mastodon(store, server, "one")
    [first] = add_to_queue(store, [Entry("a")], now=NOW)
    assert store.queue_item(first).account == "one"  # the only account
    webhook(store, server, "two")
    with pytest.raises(MarinadeError, match="none is the default"):
        add_to_queue(store, [Entry("b")], now=NOW)
    add_account(store, "two", "webhook", {"url": f"{server.url}/hook"}, default=True)
    [second] = add_to_queue(store, [Entry("b")], now=NOW)
    assert store.queue_item(second).account == "two"
    both = add_to_queue(store, [Entry("c")], ["one", "two"], now=NOW)
    assert [store.queue_item(i).account for i in both] == ["one", "two"]


def test_accepted_samples_are_queued_once_with_the_raters_edit(store, server):
    mastodon(store, server)
    kept, edited, rejected = (add_sample(store, t) for t in ("kept", "raw", "bad"))
    store.rate_sample(kept, "accept", now="2026-11-01")
    store.rate_sample(edited, "accept", edited_text="edited", now="2026-11-01")
    store.rate_sample(rejected, "reject", now="2026-11-01")
    entries = accepted_entries(store, None, "bot")
    assert [(e.text, e.sample_id) for e in entries] == [("kept", kept), ("edited", edited)]
    add_to_queue(store, entries, now=NOW)
    assert accepted_entries(store, None, "bot") == []


def test_edit_drop_retry_and_mark_posted_respect_the_status(store, server):
    mastodon(store, server, max_length=10)
    [item] = add_to_queue(store, [Entry("first")], now=NOW)
    edit_item(store, item, text="second", at=NOW + timedelta(hours=1))
    row = store.queue_item(item)
    assert (row.text, row.pinned, row.due_at) == ("second", 1, "2026-11-20T13:00:00+00:00")
    with pytest.raises(MarinadeError, match="over mastodon's 10"):
        edit_item(store, item, text="far too long for it")
    assert store.queue_item(item).text == "second"
    with pytest.raises(MarinadeError, match="only failed or unknown"):
        retry_item(store, item)
    store.update_queue_item(item, {"status": "unknown"})
    mark_posted(store, item, "55", "https://example/55")
    assert store.queue_item(item).status == "posted"
    with pytest.raises(MarinadeError, match="it stays in the record"):
        drop_item(store, item)
    with pytest.raises(MarinadeError, match="can't be edited"):
        edit_item(store, item, text="third")


# posting


def test_due_items_are_posted_with_the_hashtag_and_the_remote_id(store, server):
    mastodon(store, server, hashtag="#shitmygpt2says")
    sample = add_sample(store, "The lamps are lit.")
    add_to_queue(store, [Entry("The lamps are lit.", sample), Entry("mine")], now=NOW)
    [later] = add_to_queue(store, [Entry("later")], at=NOW + timedelta(hours=2), now=NOW)
    outcomes = post_due(store, now=lambda: NOW)
    assert [o.status for o in outcomes] == ["posted", "posted"]
    assert [m.text for m in server.state.made] == ["The lamps are lit. #shitmygpt2says", "mine"]
    posted = store.queue_items("posted")
    assert [p.remote_id for p in posted] == [m.remote_id for m in server.state.made]
    assert posted[0].url.startswith("https://mastodon.example/")
    assert store.queue_item(later).status == "queued"
    assert post_due(store, now=lambda: NOW) == []  # nothing is posted twice


def test_clear_refusals_fail_with_the_reason(store, server):
    mastodon(store, server)
    [item] = add_to_queue(store, [Entry("x")], now=NOW)
    server.state.answers.append((422, {"error": "Validation failed: Text is spam"}))
    [outcome] = post_due(store, now=lambda: NOW)
    assert outcome.status == "failed"
    row = store.queue_item(item)
    assert (row.status, row.error) == ("failed", "HTTP 422: Validation failed: Text is spam")
    retry_item(store, item)
    assert [o.status for o in post_due(store, now=lambda: NOW)] == ["posted"]


def test_rate_limits_and_server_errors_back_off_then_give_up(store, server):
    mastodon(store, server)
    time_now = clock()
    [item] = add_to_queue(store, [Entry("x")], now=NOW)
    server.state.answers += [(429, {"error": "Too many requests"}), (503, {"error": "down"})]
    assert [o.status for o in post_due(store, now=time_now.now)] == ["queued"]
    row = store.queue_item(item)
    assert row.retry_at == "2026-11-20T12:01:00+00:00"  # 60 s, then doubling
    assert post_due(store, now=time_now.now) == []  # not before retry_at
    time_now.advance(60)
    assert [o.status for o in post_due(store, now=time_now.now)] == ["queued"]
    assert store.queue_item(item).retry_at == "2026-11-20T12:03:00+00:00"
    time_now.advance(120)
    assert [o.status for o in post_due(store, now=time_now.now)] == ["posted"]
    assert len(server.state.made) == 1

    [other] = add_to_queue(store, [Entry("y")], now=time_now.now())
    server.state.answers += [(503, {"error": "down"})] * MAX_ATTEMPTS
    for _ in range(MAX_ATTEMPTS):
        post_due(store, now=time_now.now)
        time_now.advance(3600)
    row = store.queue_item(other)
    assert row.status == "failed"
    assert row.error.startswith(f"gave up after {MAX_ATTEMPTS} attempts")


def test_a_rate_limit_retries_when_the_server_says_not_on_the_backoff(store, server):
    mastodon(store, server)
    time_now = clock()
    [item] = add_to_queue(store, [Entry("x")], now=NOW)
    reset = (datetime.now(timezone.utc) + timedelta(minutes=10)).isoformat()
    server.state.answers.append((429, {"error": "Too many requests"}, {"X-RateLimit-Reset": reset}))
    assert [o.status for o in post_due(store, now=time_now.now)] == ["queued"]
    retry_at = datetime.fromisoformat(store.queue_item(item).retry_at)
    assert abs((retry_at - NOW).total_seconds() - 600) <= 2  # not the backoff's 60 s
    time_now.advance(300)
    assert post_due(store, now=time_now.now) == []  # still inside the server's window
    server.state.answers.append((429, {"error": "slow down"}, {"Retry-After": "86400"}))
    time_now.advance(300)
    assert [o.status for o in post_due(store, now=time_now.now)] == ["queued"]
    retry_at = datetime.fromisoformat(store.queue_item(item).retry_at)
    assert retry_at - time_now.now() == timedelta(hours=1)  # a day asked: an hour at most
    time_now.advance(3600)
    assert [o.status for o in post_due(store, now=time_now.now)] == ["posted"]


def test_unknown_outcomes_are_retried_only_where_the_platform_deduplicates(store, server):
    mastodon(store, server)
    webhook(store, server)
    add_to_queue(store, [Entry("to mastodon")], ["bot"], now=NOW)
    add_to_queue(store, [Entry("to the hook")], ["hook"], now=NOW)
    server.state.delay = 1.5  # posted, but the answer comes after the 1 s timeout
    outcomes = post_due(store, now=lambda: NOW)
    assert [o.status for o in outcomes] == ["unknown", "unknown"]
    assert len(server.state.made) == 2
    server.state.delay = 0
    # the next pass sends the Mastodon one again with the same key: the server de-duplicates
    [again] = post_due(store, now=lambda: NOW + timedelta(minutes=1))
    assert (again.account, again.status) == ("bot", "posted")
    assert len(server.state.creates("mastodon")) == 1
    assert again.remote_id == server.state.creates("mastodon")[0].remote_id
    # the webhook's waits for the user; so would a Mastodon one after the key has expired
    assert store.queue_items("unknown")[0].account == "hook"
    assert post_due(store, now=lambda: NOW + timedelta(hours=2)) == []
    assert len(server.state.made) == 2


def test_a_missing_token_skips_the_account_and_keeps_its_items(store, server, monkeypatch):
    mastodon(store, server)
    webhook(store, server)
    [kept] = add_to_queue(store, [Entry("needs a token")], ["bot"], now=NOW)
    add_to_queue(store, [Entry("needs none")], ["hook"], now=NOW)
    monkeypatch.delenv("MASTODON_TOKEN")
    outcomes = post_due(store, now=lambda: NOW)
    assert [(o.account, o.status) for o in outcomes] == [("bot", "skipped"), ("hook", "posted")]
    assert "MASTODON_TOKEN is not set" in outcomes[0].error
    row = store.queue_item(kept)
    assert (row.status, row.attempts, row.sent_at) == ("queued", 0, None)


def test_a_missing_token_leaves_an_unknown_item_unknown(store, server, monkeypatch):
    mastodon(store, server)
    [item] = add_to_queue(store, [Entry("maybe posted")], now=NOW)
    server.state.delay = 1.5
    assert [o.status for o in post_due(store, now=lambda: NOW)] == ["unknown"]
    server.state.delay = 0
    monkeypatch.delenv("MASTODON_TOKEN")
    later = NOW + timedelta(minutes=2)
    assert [o.status for o in post_due(store, now=lambda: later)] == ["skipped"]
    assert store.queue_item(item).status == "unknown"  # not `queued`: it may be posted
    monkeypatch.setenv("MASTODON_TOKEN", MASTODON_TOKEN)
    assert post_due(store, now=lambda: NOW + timedelta(hours=2)) == []  # the key expired
    assert len(server.state.made) == 1


# crashes and races


CLAIM_AND_DIE = """
import os, sys
from marinade.store import Store
store = Store(sys.argv[1])
claim = store.claim_next_due("2026-11-20T12:00:00+00:00", f"{os.uname().nodename}:{os.getpid()}:1")
print(claim.item.id, flush=True)
os._exit(9)  # dies after the claim, before sending or recording anything
"""


def test_a_crash_between_claim_and_post_leaves_the_item_unknown(store, server, tmp_path):
    webhook(store, server)
    mastodon(store, server)
    [hook_item] = add_to_queue(store, [Entry("hook")], ["hook"], now=NOW)
    [bot_item] = add_to_queue(store, [Entry("bot")], ["bot"], now=NOW)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for expected in (hook_item, bot_item):
        result = subprocess.run(
            [sys.executable, "-c", CLAIM_AND_DIE, str(store.path)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 9
        assert int(result.stdout) == expected
        assert store.queue_item(expected).status == "posting"
    # the next pass finds the claimers dead: both unknown, never queued again blindly;
    # the Mastodon item is sent again with its idempotency key
    outcomes = post_due(store, now=lambda: NOW)
    assert [(o.item_id, o.status) for o in outcomes] == [(bot_item, "posted")]
    assert store.queue_item(hook_item).status == "unknown"
    assert "stopped before recording" in store.queue_item(hook_item).error
    assert [m.text for m in server.state.made] == ["bot"]


def test_a_scheduler_killed_while_waiting_for_the_answer(store, server, home_dir):
    mastodon(store, server, timeout=30)
    [item] = add_to_queue(store, [Entry("killed mid-post")], now=datetime.now(timezone.utc))
    server.state.delay = 30  # Mastodon makes the post, then the answer never comes
    process = subprocess.Popen(
        [sys.executable, "-m", "marinade", "--home", str(home_dir), "post", "--due"],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not server.state.made and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.state.made) == 1
        assert store.queue_item(item).status == "posting"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    server.state.delay = 0
    [outcome] = post_due(store)
    assert outcome.status == "posted"  # resent with the same key: the server's own post
    assert outcome.remote_id == server.state.made[0].remote_id
    assert len(server.state.made) == 1


def test_racing_schedulers_never_post_an_item_twice(store, server, home_dir):
    webhook(store, server)
    mastodon(store, server)
    count = 40
    add_to_queue(store, [Entry(f"hook {i}") for i in range(count)], ["hook"], now=NOW)
    add_to_queue(store, [Entry(f"bot {i}") for i in range(count)], ["bot"], now=NOW)
    results: list[list] = [[] for _ in range(4)]
    start = threading.Barrier(len(results))

    def run(index):
        own = Store(store.path)  # each scheduler has its own connection
        start.wait()
        try:
            results[index] = post_due(own, now=lambda: NOW)
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    posted = [o.item_id for result in results for o in result]
    assert sorted(posted) == sorted(set(posted)) and len(posted) == 2 * count
    assert sum(1 for result in results if result) > 1  # they really raced
    texts = [m.text for m in server.state.made]
    assert len(texts) == len(set(texts)) == 2 * count
    assert {i.status for i in store.queue_items()} == {"posted"}


def test_two_scheduler_processes_on_one_database(store, server, home_dir):
    webhook(store, server)
    add_to_queue(store, [Entry(f"item {i}") for i in range(30)], now=NOW)
    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "post", "--due"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE) for _ in range(2)]
    for process in processes:
        process.wait()
        assert process.returncode == 0
    texts = [m.text for m in server.state.made]
    assert len(texts) == len(set(texts)) == 30
    assert len(store.queue_items("posted")) == 30


def test_an_unknown_item_refused_by_a_rate_limit_stays_unknown(store, server):
    mastodon(store, server)
    [item] = add_to_queue(store, [Entry("maybe posted")], now=NOW)
    server.state.delay = 1.5
    assert [o.status for o in post_due(store, now=lambda: NOW)] == ["unknown"]
    server.state.delay = 0
    server.state.answers.append((429, {"error": "Too many requests"}))
    later = NOW + timedelta(minutes=2)
    assert [o.status for o in post_due(store, now=lambda: later)] == ["unknown"]
    row = store.queue_item(item)
    assert (row.status, row.sent_at) == ("unknown", "2026-11-20T12:00:00+00:00")
    # never `queued`: once the key's hour is over it must not be sent blindly
    assert post_due(store, now=lambda: NOW + timedelta(hours=2)) == []
    assert len(server.state.made) == 1


def test_an_unexpected_error_while_posting_is_unknown(store, server, monkeypatch):
    from dataclasses import replace

    from marinade.publishing.adapters import webhook as webhook_module

    def boom(account, post):
        raise ValueError("the library tripped")

    monkeypatch.setattr(webhook_module, "ADAPTER", replace(webhook_module.ADAPTER, post=boom))
    webhook(store, server)
    [item] = add_to_queue(store, [Entry("x")], now=NOW)
    [outcome] = post_due(store, now=lambda: NOW)
    assert outcome.status == "unknown"
    assert store.queue_item(item).error == "unexpected ValueError: the library tripped"
