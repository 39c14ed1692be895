"""Each adapter against a real local server speaking its platform's API."""

from __future__ import annotations

import pytest

from marinade.publishing.accounts import Account
from marinade.publishing.adapters import (
    NotSent,
    OutcomeUnknown,
    Post,
    Rejected,
    adapter_named,
    all_adapters,
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
    assert [a.name for a in all_adapters()] == ["bluesky", "mastodon", "outbox", "webhook", "x"]
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
