"""The accounts in the store: add one (checked against its platform's adapter), list
them, find one by name, pick the default, remove one.

What one account is, and how its secret is read, is account.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from marinade.errors import MarinadeError
from marinade.names import is_name
from marinade.publishing.account import Account
from marinade.publishing.adapters import adapter_named
from marinade.store import Store
from marinade.timestamps import now_iso

# Settings an account may carry; which ones a platform needs is in its adapter.
SETTINGS = (
    "instance",  # Mastodon: https://mastodon.social
    "service",  # Bluesky: the PDS, https://bsky.social by default
    "handle",  # Bluesky: you.bsky.social
    "api_url",  # X, Tumblr: https://api.twitter.com, https://api.tumblr.com by default
    "blog",  # Tumblr: the blog's name (myblog for myblog.tumblr.com) or custom domain
    "url",  # webhook: where to POST
    "path",  # outbox: the JSON-lines file
    "token_env",
    "token_file",
    "hashtag",  # appended to model-written posts, e.g. #shitmygpt2says
    "visibility",  # Mastodon: public, unlisted, private
    "max_length",  # overrides the platform's limit (instances differ)
    "timeout",  # seconds to wait for an answer before the outcome is unknown
)

VISIBILITIES = ("public", "unlisted", "private", "direct")  # Mastodon's


def add_account(
    store: Store, name: str, platform: str, settings: dict[str, Any], default: bool = False
) -> Account:
    """Check and store an account (replacing one of the same name)."""
    if not is_name(name):
        raise MarinadeError(f"bad account name {name!r}: use letters, digits, '_', '-' and '.'")
    adapter = adapter_named(platform)
    settings = {key: value for key, value in settings.items() if value not in (None, "")}
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise MarinadeError(f"unknown account settings: {', '.join(sorted(unknown))}")
    missing = [key for key in adapter.required if key not in settings]
    if missing:
        flags = ", ".join("--" + key.replace("_", "-") for key in missing)
        raise MarinadeError(f"a {platform} account needs {flags}")
    if adapter.needs_secret and not ("token_env" in settings or "token_file" in settings):
        raise MarinadeError(
            f"a {platform} account needs --token-env VAR or --token-file FILE for its token"
        )
    if "token_env" in settings and "token_file" in settings:
        raise MarinadeError("give --token-env or --token-file, not both")
    if "token_file" in settings:
        settings["token_file"] = str(Path(settings["token_file"]).expanduser().resolve())
    for key in ("instance", "service", "api_url", "url"):
        if key in settings and not re.match(r"^https?://", settings[key]):
            raise MarinadeError(f"--{key.replace('_', '-')} must start with https:// or http://")
        if key in settings:
            settings[key] = settings[key].rstrip("/") if key != "url" else settings[key]
    visibility = settings.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise MarinadeError(
            f"bad --visibility {visibility!r}: use one of {', '.join(VISIBILITIES)}"
        )
    hashtag = settings.get("hashtag")
    if hashtag is not None and not hashtag.startswith("#"):
        settings["hashtag"] = "#" + hashtag
    if adapter.check_settings is not None:
        settings = adapter.check_settings(settings)
    account = Account(name, platform, settings, default)
    check_token_now(account)
    store.save_account(
        {
            "name": name,
            "platform": platform,
            "settings": json.dumps(settings),
            "is_default": int(default),
            "created_at": now_iso(),
        }
    )
    return account


def check_token_now(account: Account) -> None:
    """Refuse, when the account is added, a token that posting would refuse: a token file
    others can read, or that is missing, empty or holds a character a header cannot
    carry; so too a token in an environment variable that is set now (one that is not
    may be set where the scheduler runs)."""
    if account.setting("token_file"):
        account.secret()
    elif account.setting("token_env") and os.environ.get(account.setting("token_env"), "").strip():
        account.secret()


def accounts(store: Store) -> list[Account]:
    return [Account.from_row(row) for row in store.accounts()]


def get_account(store: Store, name: str) -> Account:
    row = store.account(name)
    if row is None:
        raise MarinadeError(f"no account named {name}; see `marinade accounts list`")
    return Account.from_row(row)


def target_account(store: Store, name: str | None) -> Account:
    """The account named, else the only one, else the one marked default."""
    if name:
        return get_account(store, name)
    every = accounts(store)
    if not every:
        raise MarinadeError("no account yet: add one with `marinade accounts add`")
    if len(every) == 1:
        return every[0]
    defaults = [account for account in every if account.is_default]
    if defaults:
        return defaults[0]
    names = ", ".join(account.name for account in every)
    raise MarinadeError(
        f"several accounts ({names}) and none is the default: give --account NAME, "
        "or mark one with `marinade accounts add ... --default`"
    )


def remove_account(store: Store, name: str) -> None:
    if not store.delete_account(name):
        raise MarinadeError(f"no account named {name}; see `marinade accounts list`")
