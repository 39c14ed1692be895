"""Bluesky, through atproto: log in with an app password, then one post per item.

Bluesky has no idempotency key, so an item whose outcome is unknown waits for the user.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from marinade.publishing.account import Account
from marinade.publishing.adapters import (
    Adapter,
    NotSent,
    Post,
    Posted,
    PublishError,
    Rejected,
    exception_outcome,
    graphemes,
    http_outcome,
    server_wait,
    timeout,
)

DEFAULT_SERVICE = "https://bsky.social"


def client(account: Account) -> Any:
    from atproto import Client
    from atproto_client.request import Request

    service = account.setting("service", DEFAULT_SERVICE)
    return Client(base_url=service, request=Request(timeout=timeout(account)))


def request_error(error: Exception) -> PublishError:
    from atproto_client.exceptions import RequestErrorBase

    response = getattr(error, "response", None) if isinstance(error, RequestErrorBase) else None
    if response is not None:
        wait = server_wait(response.headers, "ratelimit-reset")  # epoch seconds
        return http_outcome(response.status_code, str(error), wait)
    return exception_outcome(error)


def logged_in(account: Account) -> Any:
    """A client logged in as the account, reused within the process: Bluesky allows 30
    logins in 5 minutes, and a pass may post many items."""
    from atproto_client.exceptions import AtProtocolError

    handle, secret = account.setting("handle"), account.secret() or ""
    digest = hashlib.sha256(secret.encode()).hexdigest()
    cache_key = (account.setting("service", DEFAULT_SERVICE), handle, digest, threading.get_ident())
    api = _sessions.get(cache_key)
    if api is not None:
        return api
    api = client(account)
    try:
        api.login(handle, secret)
    except AtProtocolError as error:
        outcome = request_error(error)
        if isinstance(outcome, Rejected):
            raise Rejected(f"login as {handle} refused: {outcome.reason}") from None
        wait = outcome.retry_after if isinstance(outcome, NotSent) else None
        raise NotSent(f"login: {outcome.reason}", wait) from None  # before anything was sent
    _sessions[cache_key] = api
    return api


_sessions: dict[tuple[str, str, str, int], Any] = {}  # one per thread: clients keep state


def post(account: Account, item: Post) -> Posted:
    from atproto_client.exceptions import AtProtocolError

    api = logged_in(account)
    handle = account.setting("handle")
    try:
        created = api.send_post(text=item.text)  # atproto labels it English (langs=["en"])
    except AtProtocolError as error:
        outcome = request_error(error)
        if isinstance(outcome, Rejected):
            _sessions.clear()  # a revoked session must not be reused
        raise outcome from None
    rkey = created.uri.rsplit("/", 1)[-1]
    return Posted(remote_id=created.uri, url=f"https://bsky.app/profile/{handle}/post/{rkey}")


ADAPTER = Adapter(
    name="bluesky",
    description="Bluesky (atproto); --handle, an app password, --service for another PDS",
    post=post,
    max_length=300,
    length=graphemes,
    required=("handle",),
)
