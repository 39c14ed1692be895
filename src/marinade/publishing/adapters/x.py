"""X (Twitter), through tweepy. X's API is paid (pay-per-use credits since February 2026).

The token is an OAuth 2.0 user access token with the tweet.write scope. X has no
idempotency key, so an item whose outcome is unknown waits for the user. tweepy
hard-codes https://api.twitter.com; an account's --api-url rewrites it (tests point
it at a local server).
"""

from __future__ import annotations

from typing import Any

from marinade.publishing.account import Account
from marinade.publishing.adapters import (
    Adapter,
    Post,
    Posted,
    exception_outcome,
    http_outcome,
    server_wait,
    timeout,
    with_short_links,
)

API = "https://api.twitter.com"


def weighted_length(text: str) -> int:
    """twitter-text's count: most Latin, Greek, Cyrillic ... characters 1, others (CJK,
    emoji) 2, each link 23 (t.co)."""
    light = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
    text = with_short_links(text)
    return sum(1 if any(lo <= ord(c) <= hi for lo, hi in light) else 2 for c in text)


def client(account: Account, token: str) -> Any:
    import tweepy

    api = tweepy.Client(bearer_token=token, wait_on_rate_limit=False)
    base, seconds = account.setting("api_url", API), timeout(account)
    send = api.session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", seconds)  # tweepy sets none: it would wait forever
        return send(method, url.replace(API, base, 1), *args, **kwargs)

    api.session.request = request  # type: ignore[method-assign]
    return api


def post(account: Account, item: Post) -> Posted:
    import requests
    import tweepy

    api = client(account, account.secret() or "")
    try:
        response = api.create_tweet(text=item.text, user_auth=False)
    except tweepy.HTTPException as error:  # a 429 included: x-rate-limit-reset, epoch seconds
        wait = server_wait(error.response.headers, "x-rate-limit-reset")
        raise http_outcome(error.response.status_code, str(error), wait) from None
    except requests.RequestException as error:
        raise exception_outcome(error) from None
    tweet_id = str(response.data["id"])
    return Posted(remote_id=tweet_id, url=f"https://x.com/i/web/status/{tweet_id}")


ADAPTER = Adapter(
    name="x",
    description="X/Twitter (tweepy; X's API is paid); an OAuth 2.0 user token",
    post=post,
    max_length=280,
    length=weighted_length,
)
