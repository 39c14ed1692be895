"""Bluesky, through atproto: log in with an app password, then one post per item.

Bluesky has no idempotency key, so an item whose outcome is unknown waits for the user.
"""

from __future__ import annotations

from typing import Any

from marinade.publishing.accounts import Account
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
        return http_outcome(response.status_code, str(error))
    return exception_outcome(error)


def post(account: Account, item: Post) -> Posted:
    from atproto_client.exceptions import AtProtocolError

    api = client(account)
    handle = account.setting("handle")
    try:
        api.login(handle, account.secret())
    except AtProtocolError as error:
        outcome = request_error(error)
        if isinstance(outcome, Rejected):
            raise Rejected(f"login as {handle} refused: {outcome.reason}") from None
        raise NotSent(f"login: {outcome.reason}") from None  # before anything was sent
    try:
        created = api.send_post(text=item.text)  # atproto labels it English (langs=["en"])
    except AtProtocolError as error:
        raise request_error(error) from None
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
