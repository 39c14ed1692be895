"""Mastodon, through Mastodon.py: one status per item, with an Idempotency-Key header.

Mastodon remembers an Idempotency-Key for about an hour and answers a repeated request
with the status it already made, so an item whose outcome is unknown can be sent again
safely within that hour (`dedupes`).
"""

from __future__ import annotations

import re
from typing import Any

from marinade.publishing.account import Account
from marinade.publishing.adapters import (
    Adapter,
    Post,
    Posted,
    PublishError,
    Rejected,
    exception_outcome,
    graphemes,
    http_outcome,
    server_wait,
    timeout,
    with_short_links,
)


def client(account: Account, token: str | None, answers: list[Any] | None = None) -> Any:
    """A Mastodon.py client; each HTTP answer is appended to `answers`, where given (its
    headers say how long a rate limit lasts, which Mastodon.py's errors do not carry)."""
    import requests
    from mastodon import Mastodon

    session = requests.Session()
    if answers is not None:
        session.hooks["response"].append(lambda response, *args, **kwargs: answers.append(response))
    return Mastodon(
        access_token=token,
        api_base_url=account.setting("instance"),
        request_timeout=timeout(account),
        ratelimit_method="throw",  # the queue waits; never sleep inside a post
        session=session,
    )


def post(account: Account, item: Post) -> Posted:
    from mastodon import MastodonAPIError, MastodonNetworkError, MastodonRatelimitError

    answers: list[Any] = []
    api = client(account, account.secret(), answers)
    try:
        status = api.status_post(
            item.text,
            idempotency_key=item.idempotency_key,
            visibility=account.setting("visibility"),
        )
    except MastodonRatelimitError as error:
        raise http_outcome(429, str(error), wait_asked(answers)) from None
    except MastodonAPIError as error:
        raise api_error(error, wait_asked(answers)) from None
    except MastodonNetworkError as error:
        raise exception_outcome(error) from None
    return Posted(remote_id=str(status["id"]), url=status.get("url"))


REMOTE_MENTION = re.compile(r"(?<![\w/])(@\w+)@[\w.-]+\w", re.UNICODE)


def mastodon_length(text: str) -> int:
    """Mastodon's count: graphemes, each link as 23, `@user@host` as `@user`."""
    return graphemes(REMOTE_MENTION.sub(r"\1", with_short_links(text)))


def wait_asked(answers: list[Any]) -> float | None:
    """The wait the last answer asked for: Retry-After, else X-RateLimit-Reset (ISO time)."""
    return server_wait(answers[-1].headers, "X-RateLimit-Reset") if answers else None


def api_error(error: Exception, retry_after: float | None = None) -> PublishError:
    # Mastodon.py's API errors carry (message, status code, reason, error text)
    args = error.args
    if len(args) >= 4 and isinstance(args[1], int):
        return http_outcome(args[1], str(args[3] or args[2]), retry_after)
    return Rejected(str(error))


ADAPTER = Adapter(
    name="mastodon",
    description="Mastodon (Mastodon.py); --instance URL, an access token; de-duplicates",
    post=post,
    max_length=500,  # the default; instances differ (--max-length)
    length=mastodon_length,
    dedupes=True,
    required=("instance",),
)
