"""Tokens and webhook URLs kept out of every output and file: checked when an account is
added and when read, blanked in every form a message can hold, a webhook URL masked."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from conftest import json_lines
from marinade.publishing.redaction import mask_url, redact
from platform_server import MASTODON_TOKEN, PlatformServer


@pytest.fixture
def server():
    with PlatformServer() as running:
        yield running


def all_text_in(results, paths):
    """Everything the commands printed, and every file under `paths` (the home: the
    database, its WAL, logs), as one string."""
    texts = [result.stdout + result.stderr for result in results]
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        texts += [file.read_bytes().decode("utf-8", "replace") for file in files]
    return "\n".join(texts)


def private_file(path, text):
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_a_token_a_header_cannot_carry_is_refused_when_the_account_is_added(
    cli, server, tmp_path, monkeypatch, store
):
    secret_half = "second-half-of-the-token-9f3a"
    for bad in (f"first-half\n{secret_half}", f"tok\ten-{secret_half}", f"tök-{secret_half}"):
        token = private_file(tmp_path / "token", bad)
        result = cli(
            "accounts", "add", "mastodon", "--name", "bot", "--instance", server.url,
            "--token-file", str(token),
        )  # fmt: skip
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
        assert "a request header cannot carry" in result.stderr
        assert secret_half not in result.output and "first-half" not in result.output
        monkeypatch.setenv("BOT_TOKEN", bad)
        result = cli(
            "accounts", "add", "mastodon", "--name", "bot", "--instance", server.url,
            "--token-env", "BOT_TOKEN",
        )  # fmt: skip
        assert result.exit_code == 1 and "$BOT_TOKEN has a" in result.stderr
        assert secret_half not in result.output
    assert store.accounts() == []
    # a missing token file is refused at once too
    result = cli(
        "accounts", "add", "mastodon", "--name", "bot", "--instance", server.url,
        "--token-file", str(tmp_path / "nowhere"),
    )  # fmt: skip
    assert result.exit_code == 1 and "not found" in result.stderr


def test_a_token_broken_after_it_was_added_sends_nothing_and_leaves_the_item_queued(
    cli, server, tmp_path, home_dir, monkeypatch
):
    token = private_file(tmp_path / "token", MASTODON_TOKEN)
    hook_token = private_file(tmp_path / "hook-token", "hook-token-7d1e")
    add = ("accounts", "add", "mastodon", "--name", "bot", "--instance", server.url)
    assert cli(*add, "--token-file", str(token)).exit_code == 0
    hook = ("accounts", "add", "webhook", "--name", "hook", "--url", server.url + "/hook")
    assert cli(*hook, "--token-file", str(hook_token)).exit_code == 0
    cli("queue", "add", "--text", "to mastodon", "--account", "bot")
    cli("queue", "add", "--text", "to the hook", "--account", "hook")
    secret_half = "the-rest-of-it-c0ffee"
    token.write_text(f"{MASTODON_TOKEN}\n{secret_half}")  # a second line crept in
    hook_token.write_text(f"hook-token-7d1e\r\n{secret_half}")
    outputs = [cli("post", "--due")]
    items = json_lines(cli("queue", "list", "--json").stdout)
    assert [item["status"] for item in items] == ["queued", "queued"]  # not unknown
    assert all("a request header cannot carry" in item["error"] for item in items)
    assert server.state.made == [] and ("POST", "/hook") not in server.state.requests
    outputs += [cli("queue", "list"), cli("queue", "list", "--json"), cli("accounts", "list")]
    outputs.append(cli("queue", "export", str(tmp_path / "queue.csv")))
    shown = all_text_in(outputs, [home_dir, tmp_path / "queue.csv"])
    assert "a request header cannot carry" in shown
    assert secret_half not in shown and "hook-token-7d1e" not in shown
    # the token mended, the items go out
    token.write_text(MASTODON_TOKEN)
    hook_token.write_text("hook-token-7d1e")
    assert cli("post", "--due").exit_code == 0
    assert sorted(made.text for made in server.state.made) == ["to mastodon", "to the hook"]


def test_an_echoed_token_is_blanked_in_every_form(cli, server, tmp_path, home_dir):
    # a token with characters that quoting, escaping and URL-encoding each change
    secret = 'hook"to\\ken+with/odd=chars%41&more'
    token = private_file(tmp_path / "token", secret)
    url = server.url + "/hook?key=slack-style-url-secret-42"
    add = ("accounts", "add", "webhook", "--name", "hook", "--url", url)
    assert cli(*add, "--token-file", str(token)).exit_code == 0
    forms = [secret, repr(secret), json.dumps(secret), quote(secret, safe=""), quote_plus(secret)]
    echoes = [f"bad token {form}" for form in forms] + [f"unknown hook {url}"]
    outputs = []
    for echo in echoes:  # each a refusal whose text carries the secret in one form
        server.state.answers.append((401, {"error": echo}))
        outputs.append(cli("queue", "add", "--text", f"post {len(outputs)}"))
        outputs.append(cli("post", "--due"))
    outputs += [cli("queue", "list"), cli("queue", "list", "--json")]
    outputs += [cli("accounts", "list"), cli("accounts", "list", "--json")]
    outputs.append(cli("queue", "export", str(tmp_path / "queue.csv")))
    failed = json_lines(cli("queue", "list", "--json").stdout)
    assert len(failed) == len(echoes) and all(item["status"] == "failed" for item in failed)
    assert all("[secret]" in item["error"] for item in failed)
    everything = all_text_in(outputs, [home_dir, tmp_path / "queue.csv"])
    for form in [*forms, "odd=chars", "to\\ken"]:
        assert form not in everything, form
    # the URL is stored (it is where to post) but never shown
    assert "slack-style-url-secret-42" not in all_text_in(outputs, [tmp_path / "queue.csv"])
    listed = json.loads(cli("accounts", "list", "--json").stdout)
    assert listed["url"] == f"{server.url}/***"


def test_redaction_covers_repr_json_url_and_byte_forms():
    secret = "abc'def\"ghi/jkl mno\npqrstu"
    message = " | ".join(
        [
            repr(secret),
            json.dumps(secret),
            quote(secret, safe=""),
            quote_plus(secret),
            repr(secret.encode()),
            "pqrstu",
        ]
    )
    cleaned = redact(message, [secret])
    for piece in ("abc'def", "ghi/jkl", "pqrstu", 'def\\"ghi', "%2F"):
        assert piece not in cleaned, piece
    assert redact("nothing here", [None, ""]) == "nothing here"


def test_webhook_urls_are_shown_masked():
    assert mask_url("https://hooks.slack.com/services/T0/B0/XyZ") == "https://hooks.slack.com/***"
    assert mask_url("https://discord.com/api/webhooks/1/abc?wait=true") == "https://discord.com/***"
    assert mask_url("http://user:pw@127.0.0.1:8080/hook") == "http://127.0.0.1:8080/***"
    assert mask_url("https://example.com/") == "https://example.com/"
