"""The publishing commands end to end: accounts, queue, post, against a local server."""

from __future__ import annotations

import json

import pytest

from conftest import json_lines
from marinade.publishing.accounts import get_account
from platform_server import MASTODON_TOKEN, PlatformServer


@pytest.fixture
def server():
    with PlatformServer() as running:
        yield running


def test_the_issue_workflow(cli, server, monkeypatch, home_dir, store):
    monkeypatch.setenv("MASTODON_TOKEN", MASTODON_TOKEN)
    added = cli(
        "accounts", "add", "mastodon", "--name", "bot", "--instance", server.url,
        "--token-env", "MASTODON_TOKEN", "--hashtag", "shitmygpt2says",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert (
        cli("accounts", "add", "webhook", "--name", "hook", "--url", server.url + "/hook").exit_code
        == 0
    )
    listed = json_lines(cli("accounts", "list", "--json").stdout)
    assert [a["name"] for a in listed] == ["bot", "hook"]
    assert listed[0]["hashtag"] == "#shitmygpt2says"

    result = cli("queue", "add", "--text", "from a person", "--account", "bot")
    assert result.exit_code == 0, result.output
    assert cli("queue", "add", "--text", "no account").exit_code == 1  # two, no default
    assert (
        cli(
            "queue", "add", "--text", "later", "--account", "hook", "--at", "2099-01-01T09:00:00Z"
        ).exit_code
        == 0
    )
    items = json_lines(cli("queue", "list", "--json").stdout)
    assert [(i["id"], i["account"], i["status"]) for i in items] == [
        (1, "bot", "queued"),
        (2, "hook", "queued"),
    ]
    assert {"id", "text", "account", "status", "due_at", "remote_id"} <= set(items[0])
    rows = [line.split() for line in cli("queue", "list").stdout.splitlines()[1:]]
    assert [row[:3] for row in rows] == [["1", "queued,", "due"], ["2", "queued", "2099-01-01"]]

    dry = cli("post", "--due", "--dry-run")
    assert dry.exit_code == 0 and "would post 1 to bot: from a person" in dry.stdout
    assert server.state.made == []
    assert json.loads((home_dir / "outbox.jsonl").read_text())["text"] == "from a person"

    posted = cli("post", "--due")
    assert posted.exit_code == 0, posted.output
    [made] = server.state.made
    items = json_lines(cli("queue", "list", "--json", "--status", "posted").stdout)
    assert [(i["id"], i["remote_id"]) for i in items] == [(1, made.remote_id)]
    table = cli("queue", "list").stdout
    assert "posted" in table and "queued" in table

    assert cli("queue", "drop", "1").exit_code == 1  # posted: stays in the record
    assert cli("queue", "drop", "2").exit_code == 0
    # the token itself is nowhere in the database
    assert MASTODON_TOKEN.encode() not in store.path.read_bytes()


def test_failures_exit_1_and_show_the_reason(cli, server, monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", "revoked")
    cli(
        "accounts",
        "add",
        "mastodon",
        "--name",
        "bot",
        "--instance",
        server.url,
        "--token-env",
        "MASTODON_TOKEN",
    )
    cli("queue", "add", "--text", "hello")
    result = cli("post", "--due")
    assert result.exit_code == 1
    assert "failed 1 (bot): HTTP 401" in result.stderr
    [item] = json_lines(cli("queue", "list", "--json").stdout)
    assert item["status"] == "failed" and "401" in item["error"]
    assert "revoked" not in result.output


def test_token_files_must_be_private(cli, server, tmp_path, store):
    token = tmp_path / "token"
    token.write_text(MASTODON_TOKEN + "\n")
    token.chmod(0o644)
    add = ("accounts", "add", "mastodon", "--name", "bot", "--instance", server.url)
    result = cli(*add, "--token-file", str(token))
    assert result.exit_code == 1  # at once, not at the first post
    assert "can be read by others (mode 644); run `chmod 600" in result.stderr
    assert store.account("bot") is None
    token.chmod(0o600)
    assert cli(*add, "--token-file", str(token)).exit_code == 0
    cli("queue", "add", "--text", "hello")
    token.chmod(0o640)  # loosened later: refused when read, and nothing is sent
    result = cli("post", "--due")
    assert result.exit_code == 1
    assert "can be read by others (mode 640); run `chmod 600" in result.stderr
    assert server.state.made == []
    token.chmod(0o600)
    assert get_account(store, "bot").secret() == MASTODON_TOKEN
    assert cli("post", "--due").exit_code == 0
    assert len(server.state.made) == 1


def test_accounts_need_what_their_platform_needs(cli):
    result = cli("accounts", "add", "mastodon", "--name", "bot", "--instance", "https://m.example")
    assert result.exit_code == 1 and "--token-env VAR or --token-file FILE" in result.stderr
    result = cli("accounts", "add", "bluesky", "--name", "sky", "--token-env", "T")
    assert "a bluesky account needs --handle" in result.stderr
    result = cli("accounts", "add", "myspace", "--name", "old")
    assert "unknown platform 'myspace'" in result.stderr
    result = cli("accounts", "add", "mastodon", "--name", "bot", "--instance", "https://m.example",
                 "--token-env", "T", "--visibility", "friends")  # fmt: skip
    assert result.exit_code == 1 and "bad --visibility 'friends'" in result.stderr
    assert cli("accounts", "rm", "nobody").exit_code == 1


def test_queue_schedule_and_accepted_samples(cli, store, tmp_path):
    cli("accounts", "add", "outbox", "--name", "box", "--path", str(tmp_path / "out.jsonl"))
    [sample] = store.add_samples(
        [{"created_at": "2026-01-01", "origin": "generate", "model": "m", "model_hash": "h",
          "text": "a sample", "seed": 1, "temperature": 0.8}]
    )  # fmt: skip
    store.rate_sample(sample["id"], "accept", edited_text="an edited sample", now="2026-01-01")
    assert (
        cli("queue", "schedule", "--slots", "09:00,18:30", "--timezone", "Europe/Paris").exit_code
        == 0
    )
    assert "09:00,18:30 (Europe/Paris)" in cli("queue", "schedule").stdout
    assert cli("queue", "schedule", "--slots", "09:00,18:30").exit_code == 0
    assert "09:00,18:30 (Europe/Paris)" in cli("queue", "schedule").stdout  # the zone stays
    result = cli("queue", "add", "--accepted")
    assert result.exit_code == 0, result.output
    [item] = json_lines(cli("queue", "list", "--json").stdout)
    assert item["text"] == "an edited sample" and item["sample_id"] == sample["id"]
    assert item["due_at"][11:16] in ("08:00", "17:30", "07:00", "16:30")  # a Paris slot
    assert "nothing to queue" in cli("queue", "add", "--accepted").stdout
    result = cli("queue", "add", "--accepted", "--experiment", "nosuch")
    assert result.exit_code == 1 and "no experiment named 'nosuch'" in result.stderr
    path = tmp_path / "q.csv"
    assert cli("queue", "export", str(path)).exit_code == 0
    assert "0 added, 0 updated, 1 unchanged" in cli("queue", "import", str(path)).stdout
    assert cli("queue", "edit", str(item["id"]), "--text", "changed").exit_code == 0
    assert json_lines(cli("queue", "list", "--json").stdout)[0]["text"] == "changed"


def test_a_sample_queued_or_posted_is_not_queued_again_without_again(cli, store, tmp_path):
    cli("accounts", "add", "outbox", "--name", "a", "--path", str(tmp_path / "a"), "--default")
    cli("accounts", "add", "outbox", "--name", "b", "--path", str(tmp_path / "b"))
    [sample] = store.add_samples(
        [{"created_at": "2026-01-01", "origin": "generate", "model": "m", "model_hash": "h",
          "text": "only once", "seed": 1, "temperature": 0.8}]
    )  # fmt: skip
    number = str(sample["id"])
    assert cli("queue", "add", number).exit_code == 0
    refused = cli("queue", "add", number)
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        f"Error: sample {number} is already in the queue for account a: item 1, queued; "
        "nothing was queued (--again queues it once more)"
    ]
    for status in ("posting", "posted", "unknown"):
        store.update_queue_item(1, {"status": status})
        assert f"item 1, {status}" in cli("queue", "add", number).stderr
    assert len(store.queue_items()) == 1
    # another account may have it; one of several already having it queues nothing
    assert cli("queue", "add", number, "--account", "b").exit_code == 0
    both = cli("queue", "add", number, "--account", "a", "--account", "b")
    assert both.exit_code == 1 and len(store.queue_items()) == 2
    assert cli("queue", "add", "--text", "x", "--again").exit_code == 1  # only with an ID
    again = cli("queue", "add", number, "--again")
    assert again.exit_code == 0, again.output
    store.update_queue_item(2, {"status": "failed"})  # a failed one may be queued anew
    assert cli("queue", "add", number, "--account", "b").exit_code == 0
    assert [(i.account, i.status) for i in store.queue_items()] == [
        ("a", "unknown"), ("b", "failed"), ("a", "queued"), ("b", "queued"),
    ]  # fmt: skip

    # the spreadsheet round trip is the same items, not the same samples queued again
    path = tmp_path / "q.csv"
    assert cli("queue", "export", str(path)).exit_code == 0
    edited = path.read_text(encoding="utf-8-sig").replace("only once", "only once (edited)")
    path.write_text(edited, encoding="utf-8-sig")
    result = cli("queue", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "0 added, 4 updated, 0 unchanged" in result.stdout
    assert len(store.queue_items()) == 4


def test_the_scheduler_posts_and_fetches_on_its_period(cli, server, store):
    from datetime import datetime, timedelta, timezone

    from marinade.home import open_home
    from marinade.loop_back.fetch import fetch_posts
    from marinade.publishing.scheduler import Plan, scheduler_pass

    cli("accounts", "add", "webhook", "--name", "hook", "--url", server.url + "/hook")
    cli("queue", "add", "--text", "one")
    result = cli("scheduler", "--passes", "1", "--every", "0")
    assert result.exit_code == 0, result.output
    assert [m.text for m in server.state.made] == ["one"]

    first = {"id": "1", "created_at": "2026-11-01T00:00:00Z", "content": "<p>admired</p>"}
    server.state.mastodon_statuses = [first]
    fetch_posts(store, "mastodon", "@someone", "admired", server.url)
    server.state.mastodon_statuses.append({**first, "id": "2", "content": "<p>newer</p>"})
    plan = Plan(fetch_every=timedelta(hours=6))
    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    home = open_home(store.path.parent)
    assert scheduler_pass(store, home, plan, now=lambda: start).fetched == 1
    later = start + timedelta(hours=1)
    assert scheduler_pass(store, home, plan, now=lambda: later).fetched is None  # not yet
    with pytest.raises(Exception, match="go together"):
        Plan(retrain_name="bot").check()


def test_accepted_samples_too_long_stop_everything_unless_skipped(cli, store, tmp_path):
    cli("accounts", "add", "outbox", "--name", "a", "--path", str(tmp_path / "a"), "--default")
    cli("accounts", "add", "outbox", "--name", "b", "--path", str(tmp_path / "b"),
        "--max-length", "10")  # fmt: skip
    rows = store.add_samples(
        [
            {"created_at": "2026-01-01", "origin": "generate", "model": "m", "model_hash": "h",
             "text": text, "seed": 1, "temperature": 0.8}
            for text in ("short", "far too long for b")
        ]
    )  # fmt: skip
    for row in rows:
        store.rate_sample(row["id"], "accept", now="2026-01-01")
    result = cli("queue", "add", "--accepted", "--account", "a", "--account", "b")
    assert result.exit_code == 1
    assert f"sample {rows[1]['id']} is too long for account b" in result.stderr
    assert store.queue_items() == []
    result = cli("queue", "add", "--accepted", "--account", "a", "--account", "b", "--skip-long")
    assert result.exit_code == 0
    assert [(i.account, i.text) for i in store.queue_items()] == [
        ("a", "short"),
        ("a", "far too long for b"),
        ("b", "short"),
    ]
    # the default account (a) has every accepted sample already
    assert "nothing to queue" in cli("queue", "add", "--accepted", "--skip-long").stdout


def test_tokens_are_never_printed_nor_stored(cli, server, monkeypatch, home_dir, tmp_path):
    from platform_server import BLUESKY_PASSWORD, X_TOKEN

    hook_token = "hook-secret-5f1c"
    token_file = tmp_path / "hook-token"
    token_file.write_text(hook_token)
    token_file.chmod(0o600)
    monkeypatch.setenv("MASTODON_TOKEN", MASTODON_TOKEN)
    monkeypatch.setenv("BSKY_PASSWORD", BLUESKY_PASSWORD)
    monkeypatch.setenv("X_TOKEN", X_TOKEN)
    secrets = (MASTODON_TOKEN, BLUESKY_PASSWORD, X_TOKEN, hook_token)
    outputs = [
        cli("accounts", "add", "mastodon", "--name", "m", "--instance", server.url,
            "--token-env", "MASTODON_TOKEN", "--timeout", "1"),
        cli("accounts", "add", "bluesky", "--name", "b", "--service", server.url,
            "--handle", "me.bsky.social", "--token-env", "BSKY_PASSWORD", "--timeout", "1"),
        cli("accounts", "add", "x", "--name", "x", "--api-url", server.url,
            "--token-env", "X_TOKEN", "--timeout", "1"),
        cli("accounts", "add", "webhook", "--name", "w", "--url", server.url + "/hook",
            "--token-file", str(token_file), "--timeout", "1"),
    ]  # fmt: skip
    for account in ("m", "b", "x", "w"):
        outputs.append(cli("queue", "add", "--text", f"to {account}", "--account", account))
    # servers that echo the token back in their error answers, one refusal, one 5xx each
    server.state.answers += [(401, {"error": f"bad token {secret}"}) for secret in secrets]
    outputs.append(cli("post", "--due"))
    for account in ("m", "b", "x", "w"):
        outputs.append(cli("queue", "add", "--text", f"again {account}", "--account", account))
    server.state.answers += [(503, {"error": f"down, {secret}"}) for secret in secrets]
    outputs += [cli("scheduler", "--passes", "1", "--every", "0")]
    outputs += [cli("queue", "list"), cli("queue", "list", "--json"), cli("accounts", "list")]
    outputs += [cli("accounts", "list", "--json"), cli("post", "--due", "--dry-run")]
    outputs.append(cli("queue", "export", str(tmp_path / "q.csv")))
    failed = json_lines(cli("queue", "list", "--json", "--status", "failed").stdout)
    assert [item["account"] for item in failed] == ["m", "b", "x", "w"]
    assert all("[secret]" in item["error"] for item in failed)
    shown = "".join(result.stdout + result.stderr for result in outputs)
    assert "HTTP 401" in shown and "HTTP 503" in shown
    files = [path for path in home_dir.rglob("*") if path.is_file()] + [tmp_path / "q.csv"]
    assert any(path.name.endswith("-wal") for path in files)  # recent writes live there
    stored = b"".join(path.read_bytes() for path in files)
    for secret in secrets:
        assert secret not in shown
        assert secret.encode() not in stored


def test_queue_edit_opens_the_editor(cli, tmp_path, monkeypatch):
    import sys

    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "path.write_text(path.read_text().replace('draft', 'final'))\n"
    )
    monkeypatch.setenv("VISUAL", f"{sys.executable} {editor}")
    cli("accounts", "add", "outbox", "--name", "box", "--path", str(tmp_path / "out.jsonl"))
    cli("queue", "add", "--text", "a draft text")
    result = cli("queue", "edit", "1")
    assert result.exit_code == 0, result.output
    [item] = json_lines(cli("queue", "list", "--json").stdout)
    assert item["text"] == "a final text"
    assert "not changed" in cli("queue", "edit", "1").stdout  # nothing left to replace
    monkeypatch.setenv("VISUAL", "false")
    result = cli("queue", "edit", "1")
    assert result.exit_code == 1 and "the editor 'false' failed" in result.stderr


def test_a_busy_database_makes_the_scheduler_wait_not_stop(cli, server, store):
    import sqlite3
    from datetime import datetime, timezone

    from marinade.home import open_home
    from marinade.publishing.scheduler import Plan, scheduler_pass

    cli("accounts", "add", "webhook", "--name", "hook", "--url", server.url + "/hook")
    cli("queue", "add", "--text", "one")
    other = sqlite3.connect(store.path, isolation_level=None)  # a long import elsewhere
    other.execute("begin immediate")
    home = open_home(store.path.parent)
    now = datetime.now(timezone.utc)
    report = scheduler_pass(store, home, Plan(), now=lambda: now)
    assert "the database is busy" in report.errors[0] and server.state.made == []
    result = cli("post", "--due")
    assert result.exit_code == 1 and "is busy (database is locked)" in result.stderr
    other.execute("rollback")
    other.close()
    assert [o.status for o in scheduler_pass(store, home, Plan(), now=lambda: now).posted] == [
        "posted"
    ]


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["queue", "add"], "[default: the one]"),
        (["queue", "schedule"], "as before"),
        (["post"], "HOME/outbox.jsonl"),
        (["accounts", "add"], "https://api.twitter.com"),
        (["corpus", "fetch"], "your Mastodon"),
    ],
)
def test_help_shows_the_defaults(cli, command, shown):
    # rich reads "[default: ...]" as a markup tag and drops it unless escaped
    result = cli(*command, "--help")
    assert shown in " ".join(result.stdout.replace("│", " ").split())
