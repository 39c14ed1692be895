"""The adapter registry: one module per platform, found automatically.

Each module in this package defines `ADAPTER = Adapter(...)`. An adapter's `post`
sends one text and returns a `Posted`, or raises one of three exceptions that say
what the queue should do next:

- `Rejected`: the platform answered no (401, 403, 422 ...), or the request could not be
  made (a header or URL it cannot carry): the item is `failed`.
- `NotSent`: nothing was posted (a rate limit, a 5xx answer, no connection): retry later.
- `OutcomeUnknown`: the request may have been posted (a timeout after sending, a
  dropped connection): the item is `unknown`, retried only where `dedupes` is true.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from marinade.errors import MarinadeError
from marinade.publishing.account import Account
from marinade.registry import defined_in_modules

DEFAULT_TIMEOUT = 30.0  # seconds before a sent request's outcome is unknown
MAX_SERVER_WAIT = 3600.0  # a server asking for a longer wait is asked again after an hour


@dataclass(frozen=True)
class Post:
    """What an adapter sends: one queue item, its final text and its idempotency key."""

    item_id: int
    text: str
    idempotency_key: str
    model_written: bool = False


@dataclass(frozen=True)
class Posted:
    remote_id: str
    url: str | None = None


class PublishError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Rejected(PublishError):
    """The platform refused the post, or the request could not even be made; sending it
    again would be refused again."""


class NotSent(PublishError):
    """Nothing was posted; try again after `retry_after` seconds (None: the queue's backoff)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class OutcomeUnknown(PublishError):
    """The request may have reached the platform; whether it posted is not known."""


@dataclass(frozen=True)
class Adapter:
    name: str  # what `accounts add PLATFORM` takes
    description: str
    post: Callable[[Account, Post], Posted]
    max_length: int | None  # None: no limit
    length: Callable[[str], int] = len  # how the platform counts a text's length
    dedupes: bool = False  # sending the same item again never makes a second post
    required: tuple[str, ...] = ()  # account settings it needs
    needs_secret: bool = True
    hashtag_as_tag: bool = False  # the hashtag goes in the post's tags, not its text
    # checks and normalises an account's settings at `accounts add` (raises MarinadeError)
    check_settings: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def all_adapters() -> list[Adapter]:
    found = defined_in_modules(__name__, __path__, "ADAPTER", Adapter)
    return sorted(found, key=lambda adapter: adapter.name)


def adapter_named(name: str) -> Adapter:
    adapters = all_adapters()
    for adapter in adapters:
        if adapter.name == name:
            return adapter
    names = ", ".join(adapter.name for adapter in adapters)
    raise MarinadeError(f"unknown platform {name!r}; use one of {names}")


def length_limit(adapter: Adapter, account: Account) -> int | None:
    limit = account.setting("max_length")
    return int(limit) if limit is not None else adapter.max_length


def timeout(account: Account) -> float:
    return float(account.setting("timeout", DEFAULT_TIMEOUT))


def graphemes(text: str) -> int:
    """User-perceived characters (Bluesky counts these): an emoji with modifiers is one."""
    import regex

    return len(regex.findall(r"\X", unicodedata.normalize("NFC", text)))


LINK = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")
LINK_LENGTH = 23  # Mastodon and X count every link as 23 characters, however long


def with_short_links(text: str) -> str:
    """The text with each link as 23 placeholder characters, as Mastodon and X count it."""
    return LINK.sub("x" * LINK_LENGTH, text)


def http_outcome(status: int, reason: str, retry_after: float | None = None) -> PublishError:
    """What an HTTP error answer means for the queue.

    429 and 500/503 say the post was not made: retry with backoff. 502 and 504 come
    from a gateway that may have passed the request on: the outcome is unknown. Other
    answers (400, 401, 403, 404, 413, 422 ...) are refusals.
    """
    text = f"HTTP {status}: {reason}".strip().rstrip(":")
    if status == 429 or status in (500, 503):
        return NotSent(text, retry_after)
    if status in (502, 504):
        return OutcomeUnknown(text)
    return Rejected(text)


def server_wait(
    headers: Mapping[str, str] | None, reset_header: str | None = None, now: float | None = None
) -> float | None:
    """Seconds the server asks us to wait before sending again, at most an hour; None when
    it says nothing usable (the queue's own backoff applies then).

    `Retry-After` (seconds, or an HTTP date) comes first, then the platform's reset header
    (`reset_header`: epoch seconds, or an ISO time as Mastodon sends it). Times are taken
    against the answer's `Date` header where there is one, so a skewed clock here does not
    matter. A time already past says nothing.
    """
    if not headers:
        return None
    lower = {key.lower(): value.strip() for key, value in headers.items()}
    sent_at = _moment(lower.get("date", ""))
    clock = sent_at if sent_at is not None else (time.time() if now is None else now)
    wait = None
    retry_after = lower.get("retry-after", "")
    if retry_after:
        seconds = _number(retry_after)
        if seconds is not None:
            wait = seconds
        else:
            moment = _moment(retry_after)
            wait = None if moment is None else moment - clock
    if (wait is None or wait <= 0) and reset_header and lower.get(reset_header.lower()):
        moment = _moment(lower[reset_header.lower()])
        wait = None if moment is None else moment - clock
    if wait is None or wait <= 0:
        return None
    return min(wait, MAX_SERVER_WAIT)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _moment(text: str) -> float | None:
    """Epoch seconds from epoch seconds, an ISO 8601 time or an HTTP date; None if none."""
    if not text:
        return None
    number = _number(text)
    if number is not None:
        return number
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def exception_outcome(error: BaseException) -> PublishError:
    """A transport error: the request could not be made (a header or URL it cannot
    carry: nothing sent, and it never will be), connecting failed (nothing sent), or the
    answer never came."""
    import httpx
    import requests

    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    cannot_be_made = (
        httpx.LocalProtocolError,
        httpx.UnsupportedProtocol,
        httpx.InvalidURL,
        requests.exceptions.InvalidHeader,
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        UnicodeEncodeError,  # a header value that is not ASCII
    )
    for link in chain:
        if isinstance(link, cannot_be_made):
            return Rejected(f"the request could not be made, nothing was sent: {link}")
    not_sent = (
        requests.exceptions.ConnectTimeout,
        httpx.ConnectError,
        httpx.ConnectTimeout,
    )
    for link in chain:
        if isinstance(link, not_sent):
            return NotSent(f"cannot connect: {link}")
        if isinstance(link, requests.exceptions.ConnectionError) and not isinstance(
            link, requests.exceptions.ReadTimeout
        ):
            text = str(link)
            if "NewConnectionError" in text or "Connection refused" in text:
                return NotSent(f"cannot connect: {text}")
    return OutcomeUnknown(f"no answer: {chain[-1].__class__.__name__}: {chain[-1]}")
