"""`corpus fetch`: public posts from the Mastodon and Bluesky APIs of a local server,
cleaned like imported archives, and only the new ones the second time."""

from __future__ import annotations

import pytest

from conftest import json_lines
from marinade.errors import MarinadeError
from marinade.loop_back.fetch import fetch_all, fetch_posts, mastodon_instance
from platform_server import PlatformServer


@pytest.fixture
def server():
    with PlatformServer() as running:
        yield running


def status(number, html, **extra):
    return {
        "id": str(number),
        "created_at": f"2026-11-{number:02d}T10:00:00.000Z",
        "content": html,
        "visibility": "public",
        "language": "en",
        "in_reply_to_id": None,
        "reblog": None,
        "url": f"https://mastodon.example/@someone/{number}",
        "account": {"id": "7", "username": "someone", "acct": "someone"},
        **extra,
    }


def feed_item(number, text, handle="someone.bsky.social", reposted=False):
    item = {
        "post": {
            "uri": f"at://did:plc:someone/app.bsky.feed.post/3k{number}",
            "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
            "author": {"did": "did:plc:someone", "handle": handle},
            "record": {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": f"2026-11-{number:02d}T10:00:00.000Z",
            },
            "indexedAt": f"2026-11-{number:02d}T10:00:01.000Z",
        }
    }
    if reposted:
        item["reason"] = {
            "$type": "app.bsky.feed.defs#reasonRepost",
            "by": {"did": "did:plc:someone", "handle": "someone.bsky.social"},
            "indexedAt": f"2026-11-{number:02d}T10:00:01.000Z",
        }
    return item


def test_mastodon_posts_are_fetched_incrementally(store, server):
    server.state.mastodon_statuses = [
        status(i, f"<p>Admired post number {i}, with <a href='https://x.example'>a link</a></p>")
        for i in range(1, 51)
    ] + [status(51, "<p>a boost</p>", reblog={"id": "9"})]
    first = fetch_posts(store, "mastodon", "@someone", "admired", server.url)
    assert first.fetched == 51
    assert (first.import_report.kept, first.import_report.skipped["repost"]) == (50, 1)
    documents = list(store.documents("admired"))
    assert documents[0]["text"] == "Admired post number 1, with a link"
    assert documents[0]["created_at"] == "2026-11-01T10:00:00+00:00"
    assert documents[0]["source"] == "mastodon-api:@someone"
    # the second fetch asks only for what is newer
    server.state.mastodon_statuses.append(status(52, "<p>A brand new post</p>"))
    second = fetch_posts(store, "mastodon", "@someone", "admired", server.url)
    assert (second.fetched, second.import_report.kept) == (1, 1)
    assert fetch_all(store)[0].fetched == 0
    assert store.corpus("admired")["documents"] == 51


def test_bluesky_posts_are_fetched_incrementally(store, server):
    server.state.bluesky_feed = [feed_item(i, f"Sky post number {i}") for i in range(45, 0, -1)] + [
        feed_item(46, "someone else's, reposted", "other.bsky.social", reposted=True)
    ]
    first = fetch_posts(store, "bluesky", "someone.bsky.social", "sky", server.url)
    assert first.fetched == 46 and first.import_report.kept == 45
    assert list(store.documents("sky", limit=1))[0]["text"] == "Sky post number 1"
    server.state.bluesky_feed.insert(0, feed_item(47, "The newest one"))
    second = fetch_posts(store, "bluesky", "someone.bsky.social", "sky", server.url)
    assert (second.fetched, second.import_report.kept) == (1, 1)


def test_fetch_errors_are_one_line(store, cli, server):
    with pytest.raises(MarinadeError, match="which instance"):
        fetch_posts(store, "mastodon", "someone", "x")
    with pytest.raises(MarinadeError, match="not 'x'"):
        fetch_posts(store, "x", "someone", "x")
    assert mastodon_instance("@me@mastodon.social", None) == ("me", "https://mastodon.social")
    with PlatformServer() as gone:
        url = gone.url
    result = cli("corpus", "fetch", "mastodon", "--account", "@a", "--name", "c", "--instance", url)
    assert result.exit_code == 1 and result.stderr.startswith("Error: fetching a from")


def test_corpus_fetch_command(cli, server):
    server.state.mastodon_statuses = [status(1, "<p>one</p>"), status(2, "<p>two</p>")]
    result = cli(
        "corpus", "fetch", "mastodon", "--account", "@someone", "--name", "admired",
        "--instance", server.url, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [report] = json_lines(result.stdout)
    assert (report["fetched"], report["kept"]) == (2, 2)


def test_a_bare_mastodon_name_is_looked_up_on_your_own_instance(cli, server, monkeypatch):
    server.state.mastodon_statuses = [status(1, "<p>one</p>")]
    cli("accounts", "add", "mastodon", "--name", "bot", "--instance", server.url,
        "--token-env", "MASTODON_TOKEN")  # fmt: skip
    result = cli("corpus", "fetch", "mastodon", "--account", "@someone", "--name", "admired")
    assert result.exit_code == 0, result.output
    assert "someone: 1 new posts" in result.stdout
    assert ("GET", "/api/v1/accounts/lookup") in server.state.requests


def test_a_fetch_that_finds_nothing_makes_no_corpus_and_leaves_one_as_it_was(cli, store, server):
    def fetch():
        result = cli(
            "corpus", "fetch", "mastodon", "--account", "@someone", "--name", "admired",
            "--instance", server.url,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    assert fetch() == "@someone: nothing new; corpus admired not created"
    server.state.mastodon_statuses = [status(1, "<p>a boost</p>", reblog={"id": "9"})]
    assert fetch() == "@someone: nothing new to keep (1 repost skipped); corpus admired not created"
    assert store.corpora("admired") == [] and store.fetch_sources() == []
    assert "admired" not in cli("corpus", "list").stdout

    server.state.mastodon_statuses.append(status(2, "<p>A post worth keeping</p>"))
    assert fetch().startswith("@someone: 2 new posts -> corpus admired: kept 1")
    before = (store.corpus("admired"), store.imports("admired"), store.fetch_sources())
    assert fetch() == "@someone: nothing new"
    assert (store.corpus("admired"), store.imports("admired"), store.fetch_sources()) == before
    report = fetch_posts(store, "mastodon", "@someone", "admired", server.url)
    assert (report.fetched, report.stored) == (0, False)
    # a new account with nothing yet is remembered in an existing corpus, for fetch_all
    server.state.mastodon_statuses = []
    other = fetch_posts(store, "mastodon", "@other", "admired", server.url)
    assert (other.fetched, other.stored) == (0, False)
    assert sorted(s["account"] for s in store.fetch_sources()) == ["@other", "@someone"]
    assert (store.corpus("admired"), store.imports("admired")) == before[:2]
