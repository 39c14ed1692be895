"""Tumblr, through its API v2 (requests, signed with requests-oauthlib's OAuth1): one
text post per item in the Neue Post Format, the account's hashtag as a tag.

Why not pytumblr2: it sends without a timeout (a post whose answer never comes would
hang the scheduler instead of becoming `unknown`), returns HTTP errors as the answer's
JSON instead of raising them, and pulls in `future`.
Posting is one signed POST, so this file speaks the API itself.

The account's secret (an environment variable or a 0600 file, never the database) holds
the four OAuth 1.0a values: consumer key and secret (the app's), token and token secret
(the user's), as JSON, as `name: value` lines (pytumblr's ~/.tumblr file) or as four
values in that order; or `--token-env PREFIX` names PREFIX_CONSUMER_KEY,
PREFIX_CONSUMER_SECRET, PREFIX_OAUTH_TOKEN and PREFIX_OAUTH_TOKEN_SECRET.

Each line of the text is one NPF text block (a paragraph); Tumblr allows 4,096 code
points a block, so the longest line is what counts. The hashtag goes in `tags`, without
its `#`, on model-written posts (the rule the other platforms follow for the text).
Tumblr has no idempotency key, so an item whose outcome is unknown waits for the user.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from marinade.errors import MarinadeError
from marinade.publishing.account import Account
from marinade.publishing.adapters import (
    MAX_SERVER_WAIT,
    Adapter,
    NotSent,
    OutcomeUnknown,
    Post,
    Posted,
    PublishError,
    exception_outcome,
    http_outcome,
    server_wait,
    timeout,
)

API = "https://api.tumblr.com"
BLOCK_LIMIT = 4096  # code points in one NPF text block
TAG_LIMIT = 140  # characters in one tag
NOT_TODAY = (8022, 8023)  # 403 subcodes: the blog's queue or daily posting limit is reached
FIELDS = ("consumer_key", "consumer_secret", "oauth_token", "oauth_token_secret")
ALIASES = {"token": "oauth_token", "token_secret": "oauth_token_secret"}


@dataclass(frozen=True)
class Keys:
    """The four OAuth 1.0a values; `values()` lists them to keep out of error texts."""

    consumer_key: str
    consumer_secret: str
    oauth_token: str
    oauth_token_secret: str

    def values(self) -> list[str]:
        return [self.consumer_key, self.consumer_secret, self.oauth_token, self.oauth_token_secret]


def parse_keys(text: str, where: str) -> Keys:
    """The four values from JSON, `name: value` (or `name=value`) lines, or four words."""
    found: dict[str, str] = {}
    text = text.strip()
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    if isinstance(loaded, dict):
        found = {str(key).lower(): str(value).strip() for key, value in loaded.items()}
    elif re.search(r"^\s*\w+\s*[:=]", text, re.MULTILINE):
        for line in text.splitlines():
            match = re.match(r"\s*(\w+)\s*[:=]\s*(.*)", line)
            if match:
                found[match[1].lower()] = match[2].strip().strip("'\"")
    else:
        words = re.split(r"[\s,]+", text)
        if len(words) == len(FIELDS):
            found = dict(zip(FIELDS, words, strict=True))
    found = {ALIASES.get(key, key): value for key, value in found.items()}
    missing = [name for name in FIELDS if not found.get(name)]
    if missing:
        raise MarinadeError(
            f"{where}: the Tumblr secret needs {', '.join(FIELDS)} (missing {', '.join(missing)}):"
            " JSON, `name: value` lines, or the four values in that order"
        )
    return Keys(*(found[name] for name in FIELDS))


def keys(account: Account) -> Keys:
    """The account's OAuth values: from its variable or file, or PREFIX_* variables."""
    env = account.setting("token_env")
    if env and not os.environ.get(env, "").strip():
        prefixed = {name: os.environ.get(f"{env}_{name.upper()}", "").strip() for name in FIELDS}
        if all(prefixed.values()):
            return Keys(**prefixed)
        if any(prefixed.values()):
            missing = [f"{env}_{name.upper()}" for name, value in prefixed.items() if not value]
            raise MarinadeError(f"account {account.name}: {', '.join(missing)} not set")
    secret = account.secret() or ""
    source = f"${env}" if env else account.setting("token_file")
    where = f"account {account.name} ({source})"
    return parse_keys(secret, where)


def blog_identifier(text: str) -> str:
    """A blog as the API names it: `name` for name.tumblr.com and tumblr.com/name, else
    the custom hostname (or a `t:` unique id, as given)."""
    value = text.strip()
    if value.startswith("t:"):
        return value
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    path = [part for part in parts.path.split("/") if part]
    if host in ("tumblr.com", "www.tumblr.com") and path:
        name = path[1] if path[0] == "blog" and len(path) > 1 else path[0]
    elif host.endswith(".tumblr.com") and host.count(".") == 2:
        name = host.removesuffix(".tumblr.com")
    else:
        name = host
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name):
        raise MarinadeError(
            f"bad Tumblr blog {text!r}: give its name, as in myblog or myblog.tumblr.com"
        )
    return name


def post_url(blog: str, post_id: str) -> str:
    if "." in blog:  # a custom domain
        return f"https://{blog}/post/{post_id}"
    return f"https://www.tumblr.com/{blog}/{post_id}"


def blocks(text: str) -> list[dict[str, str]]:
    """One NPF text block per line (a paragraph); blank lines make no block."""
    return [{"type": "text", "text": line} for line in text.splitlines() if line.strip()]


def tumblr_length(text: str) -> int:
    """The longest block's length in code points: what Tumblr's 4,096 limit counts."""
    return max((len(block["text"]) for block in blocks(text)), default=0)


def tag(hashtag: str) -> str:
    return hashtag.lstrip("#").strip()


def tags(account: Account, item: Post) -> list[str]:
    hashtag = account.setting("hashtag")
    return [tag(hashtag)] if hashtag and item.model_written else []


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`accounts add tumblr`: the blog in the API's form, a tag Tumblr takes."""
    settings["blog"] = blog_identifier(settings["blog"])
    hashtag = settings.get("hashtag")
    if hashtag is not None:
        name = tag(hashtag)
        if not name or "," in name or len(name) > TAG_LIMIT:
            raise MarinadeError(
                f"bad --hashtag {hashtag!r} for Tumblr: one tag, no commas, at most {TAG_LIMIT}"
                " characters"
            )
    return settings


def without(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return text


def scrubbed(outcome: PublishError, secrets: list[str]) -> PublishError:
    """The outcome with the OAuth values blanked: an error text may quote the request."""
    outcome.reason = without(outcome.reason, secrets)
    outcome.args = (outcome.reason,)
    return outcome


def wait_asked(headers: Any) -> float | None:
    """Retry-After, else the reset (seconds from now) of the hourly or daily limit that is
    used up: Tumblr sends X-Ratelimit-Perhour-Reset and X-Ratelimit-Perday-Reset."""
    asked = server_wait(headers)
    if asked is not None:
        return asked
    lower = {key.lower(): str(value).strip() for key, value in (headers or {}).items()}
    waits = []
    for period in ("perhour", "perday"):
        reset = lower.get(f"x-ratelimit-{period}-reset", "")
        remaining = lower.get(f"x-ratelimit-{period}-remaining", "0")
        if reset.replace(".", "", 1).isdigit() and remaining.lstrip("-").isdigit():
            if int(remaining) <= 0 and float(reset) > 0:
                waits.append(float(reset))
    return min(max(waits), MAX_SERVER_WAIT) if waits else None


def answer_error(response: Any) -> PublishError:
    """What a non-2xx answer means: Tumblr's `meta.msg` and `errors[]` give the reason."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    details = "; ".join(str(e.get("detail") or e.get("title") or "") for e in errors)
    meta = body["meta"] if isinstance(body.get("meta"), dict) else {}
    reason = details or str(meta.get("msg") or response.reason or "")
    codes = {e.get("code") for e in errors}
    wait = wait_asked(response.headers)
    if response.status_code == 403 and codes & set(NOT_TODAY):
        return NotSent(f"HTTP 403: {reason}", wait)  # posting works again tomorrow
    return http_outcome(response.status_code, reason, wait)


def post(account: Account, item: Post) -> Posted:
    import requests
    from requests_oauthlib import OAuth1

    credentials = keys(account)
    blog = account.setting("blog")
    body: dict[str, Any] = {"content": blocks(item.text), "state": "published"}
    post_tags = tags(account, item)
    if post_tags:
        body["tags"] = ",".join(post_tags)  # the API takes a comma-separated string
    url = f"{account.setting('api_url', API)}/v2/blog/{quote(blog, safe='')}/posts"
    auth = OAuth1(
        credentials.consumer_key,
        client_secret=credentials.consumer_secret,
        resource_owner_key=credentials.oauth_token,
        resource_owner_secret=credentials.oauth_token_secret,
    )
    secrets = credentials.values()
    try:
        response = requests.post(url, json=body, auth=auth, timeout=timeout(account))
    except requests.RequestException as error:
        raise scrubbed(exception_outcome(error), secrets) from None
    if not 200 <= response.status_code < 300:
        raise scrubbed(answer_error(response), secrets)
    try:
        post_id = str(response.json()["response"]["id"])
    except (ValueError, KeyError, TypeError):
        raise OutcomeUnknown(
            f"HTTP {response.status_code} without a post id: {response.text[:200]}"
        ) from None
    return Posted(remote_id=post_id, url=post_url(blog, post_id))


ADAPTER = Adapter(
    name="tumblr",
    description="Tumblr (API v2, NPF text posts); --blog NAME, OAuth 1.0a keys; hashtag as a tag",
    post=post,
    max_length=BLOCK_LIMIT,
    length=tumblr_length,
    required=("blog",),
    hashtag_as_tag=True,
    check_settings=check_settings,
)
