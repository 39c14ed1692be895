"""Tumblr: NPF text posts signed with OAuth 1.0a against a local server that checks the
signature, the hashtag as a tag, Tumblr's limits, exactly-once posting (racing posters,
a poster killed while waiting), and `corpus fetch tumblr` paging through a blog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import json_lines
from marinade.errors import MarinadeError
from marinade.loop_back.fetch import fetch_all, fetch_posts
from marinade.publishing.account import Account
from marinade.publishing.accounts import add_account, get_account
from marinade.publishing.adapters import NotSent, Post, Rejected, adapter_named
from marinade.publishing.adapters.tumblr import blog_identifier, keys, parse_keys
from marinade.publishing.posting import post_due
from marinade.publishing.queue import Entry, add_to_queue, length_problem
from marinade.store import Store
from platform_server import TUMBLR_KEYS, PlatformServer

SRC = Path(__file__).resolve().parents[1] / "src"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
KEYS_JSON = json.dumps(TUMBLR_KEYS)


@pytest.fixture
def server():
    with PlatformServer() as running:
        yield running


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("TUMBLR_KEYS", KEYS_JSON)
    for variable in ("TUMBLR_API_KEY", "TUMBLR_CONSUMER_KEY"):
        monkeypatch.delenv(variable, raising=False)


def tumblr(store, server, name="blog", **settings):
    values = {"blog": "bot", "api_url": server.url, "token_env": "TUMBLR_KEYS", "timeout": 1}
    return add_account(store, name, "tumblr", values | settings)


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


# posting


def test_a_model_written_post_carries_the_hashtag_as_a_tag_not_in_the_text(store, server):
    tumblr(store, server, hashtag="shitmygpt2says")
    sample = add_sample(store, "The moon is a lamp\nthat nobody lit")
    [from_model] = add_to_queue(store, [Entry("The moon is a lamp\n\nthat nobody lit", sample)])
    [from_person] = add_to_queue(store, [Entry("written by hand")])
    outcomes = post_due(store)
    assert [o.status for o in outcomes] == ["posted", "posted"]
    model_post, person_post = server.state.creates("tumblr")
    assert model_post.body["content"] == [
        {"type": "text", "text": "The moon is a lamp"},
        {"type": "text", "text": "that nobody lit"},
    ]
    assert model_post.body["state"] == "published"
    assert model_post.tags == ["shitmygpt2says"]
    assert "#" not in model_post.text and "shitmygpt2says" not in model_post.text
    assert person_post.tags == [] and "tags" not in person_post.body
    item = store.queue_item(from_model)
    assert item.posted_text == "The moon is a lamp\n\nthat nobody lit"  # no hashtag added
    assert item.remote_id == f"7{model_post.remote_id:0>15}"
    assert item.url == f"https://www.tumblr.com/bot/{item.remote_id}"
    assert store.queue_item(from_person).status == "posted"


def test_tumblrs_limit_is_4096_code_points_a_paragraph_and_the_tag_costs_nothing(store, server):
    account = tumblr(store, server, hashtag="#a-long-tag-that-would-not-fit-in-the-text")
    paragraph = "x" * 4096
    assert length_problem(f"{paragraph}\n{paragraph}", account, model_written=True) is None
    assert "4097 characters, over tumblr's 4096" in length_problem("y" * 4097, account, False)
    assert adapter_named("tumblr").length("🌳" * 10) == 10  # code points, as Tumblr counts
    with pytest.raises(MarinadeError, match="too long for account blog"):
        add_to_queue(store, [Entry("z" * 5000)])


def test_a_bad_signature_is_refused_and_nothing_secret_is_kept(store, server, monkeypatch):
    wrong = TUMBLR_KEYS | {"oauth_token_secret": "not-the-secret"}
    monkeypatch.setenv("TUMBLR_KEYS", json.dumps(wrong))
    tumblr(store, server)
    [item] = add_to_queue(store, [Entry("refused")])
    [outcome] = post_due(store)
    assert outcome.status == "failed"
    assert "HTTP 401" in outcome.error and "oauth_signature" in outcome.error
    assert server.state.creates("tumblr") == []
    dump = "\n".join(store.db.conn.iterdump())
    for value in wrong.values():
        assert value not in dump
    assert store.queue_item(item).status == "failed"


def test_a_server_quoting_the_keys_in_its_error_does_not_get_them_stored(store, server):
    tumblr(store, server)
    echo = f"bad request from {TUMBLR_KEYS['consumer_key']} with {TUMBLR_KEYS['oauth_token']}"
    server.state.answers.append((400, {"meta": {"status": 400, "msg": echo}}))
    add_to_queue(store, [Entry("echoed")])
    [outcome] = post_due(store)
    assert outcome.status == "failed" and "[secret]" in outcome.error
    dump = "\n".join(store.db.conn.iterdump())
    assert all(value not in dump for value in TUMBLR_KEYS.values())


def test_a_429_waits_for_the_limit_that_is_used_up(store, server):
    tumblr(store, server)
    [item] = add_to_queue(store, [Entry("rate limited")], now=NOW)
    headers = {
        "X-Ratelimit-Perhour-Limit": "1000",
        "X-Ratelimit-Perhour-Remaining": "0",
        "X-Ratelimit-Perhour-Reset": "1800",
        "X-Ratelimit-Perday-Limit": "5000",
        "X-Ratelimit-Perday-Remaining": "4000",
        "X-Ratelimit-Perday-Reset": "40000",
    }
    server.state.answers.append((429, {"meta": {"status": 429, "msg": "Limit Exceeded"}}, headers))
    [outcome] = post_due(store, now=lambda: NOW)
    assert outcome.status == "queued" and "429" in outcome.error
    queued = store.queue_item(item)
    assert queued.retry_at == (NOW + timedelta(seconds=1800)).isoformat()
    assert post_due(store, now=lambda: NOW + timedelta(seconds=1799)) == []
    [later] = post_due(store, now=lambda: NOW + timedelta(seconds=1800))
    assert later.status == "posted"
    assert len(server.state.creates("tumblr")) == 1


def test_the_daily_post_limit_is_not_a_refusal(store, server):
    account = tumblr(store, server)
    limit = {"title": "Forbidden", "code": 8023, "detail": "You've hit your daily post limit"}
    headers = {"X-Ratelimit-Perday-Remaining": "0", "X-Ratelimit-Perday-Reset": "3000"}
    server.state.answers.append((403, {"meta": {"status": 403}, "errors": [limit]}, headers))
    with pytest.raises(NotSent) as raised:
        adapter_named("tumblr").post(account, Post(1, "one too many", "k"))
    assert raised.value.retry_after == 3000 and "daily post limit" in raised.value.reason
    server.state.answers.append((403, {"meta": {"status": 403, "msg": "Forbidden"}}))
    with pytest.raises(Rejected):
        adapter_named("tumblr").post(account, Post(1, "not allowed", "k"))


def test_a_timeout_after_sending_is_unknown_and_never_sent_again(store, server):
    tumblr(store, server, timeout=0.3)
    [item] = add_to_queue(store, [Entry("slow answer")], now=NOW)
    server.state.delay = 1.0
    [outcome] = post_due(store, now=lambda: NOW)
    assert outcome.status == "unknown"
    server.state.delay = 0
    assert post_due(store, now=lambda: NOW + timedelta(hours=3)) == []  # no idempotency key
    assert len(server.state.creates("tumblr")) == 1
    assert store.queue_item(item).status == "unknown"


def test_racing_posters_post_each_item_once(store, server):
    tumblr(store, server)
    count = 30
    add_to_queue(store, [Entry(f"race {i}") for i in range(count)], now=NOW)
    results: list[list] = [[] for _ in range(3)]
    start = threading.Barrier(len(results))

    def run(index):
        own = Store(store.path)
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
    texts = [made.text for made in server.state.creates("tumblr")]
    assert sorted(texts) == sorted(f"race {i}" for i in range(count))
    assert sum(1 for result in results if result) > 1
    assert {item.status for item in store.queue_items()} == {"posted"}


def test_a_poster_killed_while_waiting_leaves_the_item_unknown(store, server, home_dir):
    tumblr(store, server, timeout=30)
    [item] = add_to_queue(store, [Entry("killed mid-post")], now=datetime.now(timezone.utc))
    server.state.delay = 30  # the post is made, the answer never comes
    process = subprocess.Popen(
        [sys.executable, "-m", "marinade", "--home", str(home_dir), "post", "--due"],
        env={**os.environ, "PYTHONPATH": str(SRC), "TUMBLR_KEYS": KEYS_JSON},
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
    assert post_due(store) == []  # found abandoned: unknown, not sent a second time
    assert store.queue_item(item).status == "unknown"
    assert len(server.state.made) == 1


# the secret and the account


@pytest.mark.parametrize(
    "text",
    [
        KEYS_JSON,
        json.dumps({**TUMBLR_KEYS, "token": TUMBLR_KEYS["oauth_token"]} | {"oauth_token": ""}),
        "\n".join(f"{name}: {value}" for name, value in TUMBLR_KEYS.items()),  # ~/.tumblr
        "\n".join(f"{name.upper()}={value}" for name, value in TUMBLR_KEYS.items()),
        " ".join(TUMBLR_KEYS.values()),
    ],
)
def test_the_four_oauth_values_in_each_form(text):
    assert parse_keys(text, "here").values() == list(TUMBLR_KEYS.values())


def test_missing_values_are_named_without_showing_the_rest():
    with pytest.raises(MarinadeError, match="missing oauth_token_secret") as raised:
        parse_keys(json.dumps(TUMBLR_KEYS | {"oauth_token_secret": ""}), "account blog ($T)")
    assert TUMBLR_KEYS["consumer_secret"] not in str(raised.value)
    assert str(raised.value).startswith("account blog ($T):")


def test_secrets_from_prefixed_variables_or_a_private_file(monkeypatch, tmp_path):
    for name, value in TUMBLR_KEYS.items():
        monkeypatch.setenv(f"MYBLOG_{name.upper()}", value)
    account = Account("blog", "tumblr", {"blog": "bot", "token_env": "MYBLOG"})
    assert keys(account).values() == list(TUMBLR_KEYS.values())
    monkeypatch.delenv("MYBLOG_OAUTH_TOKEN")
    with pytest.raises(MarinadeError, match="MYBLOG_OAUTH_TOKEN not set"):
        keys(account)
    file = tmp_path / "tumblr.json"
    file.write_text(KEYS_JSON)
    file.chmod(0o644)
    readable = Account("blog", "tumblr", {"blog": "bot", "token_file": str(file)})
    with pytest.raises(MarinadeError, match="can be read by others"):
        keys(readable)
    file.chmod(0o600)
    assert keys(readable).oauth_token == TUMBLR_KEYS["oauth_token"]


@pytest.mark.parametrize(
    "given, expected",
    [
        ("bot", "bot"),
        ("bot.tumblr.com", "bot"),
        ("https://bot.tumblr.com/", "bot"),
        ("https://www.tumblr.com/bot", "bot"),
        ("https://www.tumblr.com/blog/bot", "bot"),
        ("www.mydomain.example", "www.mydomain.example"),
        ("t:0aY0xL2Fi1OFJg4YxpmegQ", "t:0aY0xL2Fi1OFJg4YxpmegQ"),
    ],
)
def test_blog_identifiers(given, expected):
    assert blog_identifier(given) == expected


def test_accounts_add_tumblr_from_the_command_line(cli, store, server):
    added = cli(
        "accounts", "add", "tumblr", "--name", "blog", "--blog", "https://bot.tumblr.com/",
        "--token-env", "TUMBLR_KEYS", "--hashtag", "shitmygpt2says", "--api-url", server.url,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    [listed] = json_lines(cli("accounts", "list", "--json").stdout)
    assert listed["blog"] == "bot" and listed["hashtag"] == "#shitmygpt2says"
    assert cli("queue", "add", "--text", "hello tumblr").exit_code == 0
    posted = cli("post", "--due")
    assert posted.exit_code == 0, posted.output
    assert "https://www.tumblr.com/bot/7" in posted.stdout
    assert get_account(store, "blog").setting("token_env") == "TUMBLR_KEYS"
    assert all(value not in "\n".join(store.db.conn.iterdump()) for value in TUMBLR_KEYS.values())
    bad = cli("accounts", "add", "tumblr", "--name", "b2", "--token-env", "TUMBLR_KEYS")
    assert bad.exit_code == 1 and "needs --blog" in bad.output
    comma = cli(
        "accounts", "add", "tumblr", "--name", "b3", "--blog", "bot", "--token-env", "T",
        "--hashtag", "one,two",
    )  # fmt: skip
    assert comma.exit_code == 1 and "no commas" in comma.output


# corpus fetch tumblr


def npf_post(number, text, reblog=False, kind="text"):
    post = {
        "type": "blocks",
        "original_type": kind,
        "blog_name": "staff",
        "id": 7000000000000000 + number,
        "id_string": str(7000000000000000 + number),
        "post_url": f"https://www.tumblr.com/staff/{7000000000000000 + number}",
        "timestamp": 1700000000 + number * 3600,
        "date": "2023-11-14 22:13:20 GMT",
        "state": "published",
        "tags": ["marinade"],
        "content": [{"type": "text", "text": text}],
        "layout": [],
        "trail": [],
    }
    if reblog:
        post["parent_post_url"] = "https://www.tumblr.com/someone/1"
        post["trail"] = [{"post": {"id": "1"}, "content": [{"type": "text", "text": "theirs"}]}]
    return post


@pytest.mark.parametrize("paging", ["links", "offset", "before"])
def test_a_blogs_text_posts_are_fetched_page_by_page_then_only_the_new(store, server, paging):
    server.state.tumblr_links = paging == "links"
    server.state.tumblr_paging = "before" if paging == "before" else "offset"
    server.state.tumblr_posts = [npf_post(i, f"Tumblr post {i}") for i in range(45, 0, -1)]
    server.state.tumblr_posts.insert(3, npf_post(100, "a reblog", reblog=True))
    server.state.tumblr_posts.insert(5, npf_post(101, "[photo]", kind="photo"))
    os.environ["TUMBLR_API_KEY"] = TUMBLR_KEYS["consumer_key"]
    try:
        first = fetch_posts(store, "tumblr", "staff.tumblr.com", "staff", server.url)
        assert first.fetched == 46  # 45 text posts and the reblog; the photo post is not asked
        assert (first.import_report.kept, first.import_report.skipped["repost"]) == (45, 1)
        pages = [path for method, path in server.state.requests if "/v2/blog/" in path]
        # 20 a page; by time, one more to find the server ignores offset and one to see the end
        assert len(pages) == (5 if paging == "before" else 3)
        documents = list(store.documents("staff"))
        assert documents[0]["text"] == "Tumblr post 1"
        assert documents[0]["source"] == "tumblr-api:staff"
        assert documents[0]["created_at"] == "2023-11-14T23:13:20+00:00"
        server.state.tumblr_posts.insert(0, npf_post(200, "A newer one"))
        [again] = fetch_all(store)
        assert (again.fetched, again.import_report.kept) == (1, 1)
        assert [d["text"] for d in store.documents("staff")][-1] == "A newer one"
    finally:
        del os.environ["TUMBLR_API_KEY"]


def test_fetch_reads_the_api_key_from_your_tumblr_account_and_never_stores_it(cli, store, server):
    server.state.tumblr_posts = [npf_post(1, "one post")]
    nothing = cli("corpus", "fetch", "tumblr", "--blog", "staff", "--instance", server.url)
    assert nothing.exit_code == 1 and "TUMBLR_API_KEY" in nothing.output
    tumblr(store, server)
    fetched = cli("corpus", "fetch", "tumblr", "--blog", "staff", "--instance", server.url)
    assert fetched.exit_code == 0, fetched.output
    assert "1 new posts -> corpus staff" in fetched.stdout  # named after the blog
    assert [d["text"] for d in store.documents("staff")] == ["one post"]
    assert TUMBLR_KEYS["consumer_key"] not in "\n".join(store.db.conn.iterdump())


def test_fetch_errors_name_the_blog_and_hide_the_key(store, server, monkeypatch):
    monkeypatch.setenv("TUMBLR_API_KEY", "a-wrong-key")
    with pytest.raises(MarinadeError, match="Tumblr blog staff.*HTTP 401") as raised:
        fetch_posts(store, "tumblr", "staff", "c", server.url)
    assert "a-wrong-key" not in str(raised.value)
    monkeypatch.setenv("TUMBLR_API_KEY", TUMBLR_KEYS["consumer_key"])
    with pytest.raises(MarinadeError, match="nobody.*no such blog"):
        fetch_posts(store, "tumblr", "nobody", "c", server.url)
    assert store.corpora("c") == []
