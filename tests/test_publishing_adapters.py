"""Each adapter against a real local server speaking its platform's API."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from marinade.publishing.account import Account
from marinade.publishing.adapters import (
    NotSent,
    OutcomeUnknown,
    Post,
    Rejected,
    adapter_named,
    all_adapters,
    server_wait,
)
from marinade.publishing.adapters.x import weighted_length
from platform_server import BLUESKY_PASSWORD, MASTODON_TOKEN, X_TOKEN, PlatformServer


@pytest.fixture
def server():
    with PlatformServer() as running:
        yield running


@pytest.fixture(autouse=True)
def tokens(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", MASTODON_TOKEN)
    monkeypatch.setenv("BSKY_PASSWORD", BLUESKY_PASSWORD)
    monkeypatch.setenv("X_TOKEN", X_TOKEN)


def accounts(url: str) -> dict[str, Account]:
    return {
        "mastodon": Account(
            "m", "mastodon", {"instance": url, "token_env": "MASTODON_TOKEN", "timeout": 0.5}
        ),
        "bluesky": Account(
            "b",
            "bluesky",
            {
                "service": url,
                "handle": "me.bsky.social",
                "token_env": "BSKY_PASSWORD",
                "timeout": 0.5,
            },
        ),
        "x": Account("x", "x", {"api_url": url, "token_env": "X_TOKEN", "timeout": 0.5}),
        "webhook": Account("w", "webhook", {"url": f"{url}/hook", "timeout": 0.5}),
    }


def test_the_registry_has_every_platform():
    assert [a.name for a in all_adapters()] == [
        "bluesky", "mastodon", "outbox", "tumblr", "webhook", "x"
    ]  # fmt: skip
    assert [a.name for a in all_adapters() if a.dedupes] == ["mastodon"]


@pytest.mark.parametrize("platform", ["mastodon", "bluesky", "x", "webhook"])
def test_each_adapter_posts_to_its_api(server, platform):
    account = accounts(server.url)[platform]
    posted = adapter_named(platform).post(account, Post(1, "hello from the queue", "key-1"))
    [made] = server.state.creates(platform)
    assert made.text == "hello from the queue"
    assert made.remote_id in posted.remote_id
    assert posted.url or platform == "webhook"  # a webhook may answer without a URL


def test_mastodon_sends_the_idempotency_key_and_a_repeat_makes_nothing_new(server):
    account = accounts(server.url)["mastodon"]
    first = adapter_named("mastodon").post(account, Post(1, "once", "key-7"))
    again = adapter_named("mastodon").post(account, Post(1, "once", "key-7"))
    assert first == again
    assert [m.key for m in server.state.creates("mastodon")] == ["key-7"]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(401, Rejected), (422, Rejected), (429, NotSent), (503, NotSent), (502, OutcomeUnknown)],
)
@pytest.mark.parametrize("platform", ["mastodon", "bluesky", "x", "webhook"])
def test_error_answers_are_classified(server, platform, status, outcome):
    server.state.answers.append((status, {"error": "Canned", "message": f"canned {status}"}))
    with pytest.raises(outcome):
        adapter_named(platform).post(accounts(server.url)[platform], Post(1, "text", "k"))
    assert server.state.made == []


def in_seconds(seconds: float) -> str:
    return str(int(time.time() + seconds))


def iso_in(seconds: float) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("platform", "headers", "wait"),
    [
        ("mastodon", lambda: {"X-RateLimit-Reset": iso_in(600)}, 600),  # an ISO time
        ("mastodon", lambda: {"Retry-After": "120", "X-RateLimit-Reset": iso_in(600)}, 120),
        ("mastodon", lambda: {"X-RateLimit-Reset": iso_in(86400)}, 3600),  # capped at an hour
        ("mastodon", lambda: {"X-RateLimit-Reset": iso_in(-60)}, None),  # past: the backoff
        ("mastodon", lambda: {}, None),  # nothing said: the queue's own backoff
        ("bluesky", lambda: {"ratelimit-reset": in_seconds(300)}, 300),  # epoch seconds
        ("bluesky", lambda: {"Retry-After": "90"}, 90),
        ("x", lambda: {"x-rate-limit-reset": in_seconds(300)}, 300),  # epoch seconds
        ("x", lambda: {"x-rate-limit-reset": in_seconds(10**6)}, 3600),
        ("webhook", lambda: {"Retry-After": "45"}, 45),
        ("webhook", lambda: {"Retry-After": "soon"}, None),  # unreadable: the backoff
    ],
)
def test_a_rate_limit_waits_as_long_as_the_server_says(server, platform, headers, wait):
    server.state.answers.append((429, {"error": "Too many requests"}, headers()))
    with pytest.raises(NotSent) as raised:
        adapter_named(platform).post(accounts(server.url)[platform], Post(1, "text", "k"))
    if wait is None:
        assert raised.value.retry_after is None
    else:  # the server's Date has whole seconds: up to one more
        assert raised.value.retry_after == pytest.approx(wait, abs=2)
    assert server.state.made == []


def test_server_wait_reads_http_dates_and_the_answers_own_clock():
    date = "Sun, 22 Nov 2026 09:00:00 GMT"  # the server's clock, an hour behind ours
    assert server_wait({"Date": date, "Retry-After": "Sun, 22 Nov 2026 09:05:00 GMT"}) == 300
    epoch = {"date": date, "x-rate-limit-reset": "1795338600"}  # 09:10
    assert server_wait(epoch, "x-rate-limit-reset") == 600
    ours = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc).timestamp()
    reset = {"X-RateLimit-Reset": "2026-11-22T10:02:00.000Z"}
    assert server_wait(reset, "X-RateLimit-Reset", now=ours) == 120  # no Date: our clock
    assert server_wait(reset, None, now=ours) is None  # a reset header not asked about


@pytest.mark.parametrize("platform", ["mastodon", "bluesky", "x", "webhook"])
def test_a_timeout_after_sending_is_unknown(server, platform):
    server.state.delay = 1  # posts, then answers after the client's 0.5 s timeout
    with pytest.raises(OutcomeUnknown):
        adapter_named(platform).post(accounts(server.url)[platform], Post(1, "slow", "k"))
    assert len(server.state.made) == 1


@pytest.mark.parametrize("platform", ["mastodon", "bluesky", "x", "webhook"])
def test_no_connection_is_not_sent(platform):
    with PlatformServer() as gone:
        url = gone.url
    with pytest.raises(NotSent):
        adapter_named(platform).post(accounts(url)[platform], Post(1, "text", "k"))


def test_wrong_credentials_are_refused(server, monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", "wrong")
    monkeypatch.setenv("BSKY_PASSWORD", "wrong")
    monkeypatch.setenv("X_TOKEN", "wrong")
    for platform in ("mastodon", "bluesky", "x"):
        with pytest.raises(Rejected, match="401"):
            adapter_named(platform).post(accounts(server.url)[platform], Post(1, "t", "k"))
    assert server.state.made == []


def test_platform_lengths():
    assert weighted_length("hello") == 5
    assert weighted_length("日本") == 4  # CJK counts double on X
    bluesky = adapter_named("bluesky")
    assert bluesky.length("👍🏽") == 1  # one grapheme, two code points
    link = "https://example.org/" + "a" * 300
    assert weighted_length(f"see {link}") == 4 + 23  # t.co: every link is 23
    mastodon = adapter_named("mastodon")
    assert mastodon.length(f"see {link}.") == 4 + 23 + 1  # the full stop is not the link's
    assert mastodon.length("hi @bob@mastodon.social") == len("hi @bob")  # the user part only
    assert mastodon.length("mail me@example.org 👍🏽") == len("mail me@example.org ") + 1


def test_bluesky_logs_in_once_for_many_posts(server):
    account = accounts(server.url)["bluesky"]
    for number in range(3):
        adapter_named("bluesky").post(account, Post(number, f"post {number}", "k"))
    logins = [r for r in server.state.requests if r[1].endswith("createSession")]
    assert len(logins) == 1 and len(server.state.creates("bluesky")) == 3
