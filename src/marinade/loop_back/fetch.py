"""`corpus fetch`: recent public posts of an account (yours, or one you admire) into a
corpus, through the platform's public API, incrementally.

Each (platform, account, corpus) remembers where it stopped: Mastodon the newest status
id seen (the next fetch asks for `since_id`), Bluesky the newest post's `indexedAt`
(its author feed has no "since", so paging stops at the first post already seen), Tumblr
the newest post id (its blog's text posts, in NPF, paged by the answer's `_links.next`
or by offset, stop at the first post already seen; the API key is your app's OAuth
consumer key: $TUMBLR_API_KEY, else your Tumblr account's, and it is never stored). The
mark is stored in the same transaction as the documents, so a failed fetch fetches the
same posts again next time. Posts go through the same cleaning as imported archives.

A fetch that finds nothing new writes nothing: no import record, and a corpus that did
not exist is not made (one where every post was skipped, as replies or reposts, is not
made either). An existing corpus stays as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marinade.corpus.document import Document, ImportOptions, Skipped
from marinade.corpus.importing import ImportReport, import_records
from marinade.errors import MarinadeError
from marinade.names import check_name
from marinade.publishing.account import Account
from marinade.publishing.accounts import accounts
from marinade.store import Store
from marinade.timestamps import now_iso, utc_iso

PLATFORMS = ("mastodon", "bluesky", "tumblr")
BLUESKY_PUBLIC = "https://public.api.bsky.app"  # the public AppView: no login needed
TUMBLR_API = "https://api.tumblr.com"
TUMBLR_KEY_VARIABLES = ("TUMBLR_API_KEY", "TUMBLR_CONSUMER_KEY")
PAGE = 40
TUMBLR_PAGE = 20  # the most Tumblr's /posts answers at once
DEFAULT_LIMIT = 400  # posts per fetch at most (the first fetch of a long timeline)


@dataclass(frozen=True)
class FetchReport:
    platform: str
    account: str
    corpus: str
    fetched: int  # posts the API returned
    import_report: ImportReport
    stored: bool = True  # False: nothing was written (nothing new, or nothing kept)


class _NothingKept(Exception):
    """Raised inside the import's transaction to roll back a new, empty corpus."""

    def __init__(self, report: ImportReport):
        super().__init__("nothing kept")
        self.report = report


def mastodon_instance(
    account: str, instance: str | None, own_instance: str | None = None
) -> tuple[str, str]:
    """(acct to look up, instance URL) from @user@host, or user with --instance, or user
    on `own_instance` (that of your Mastodon account)."""
    match = re.fullmatch(r"@?([\w.-]+)(?:@([\w.-]+\.[\w-]+))?", account.strip())
    if not match:
        raise MarinadeError(f"bad Mastodon account {account!r}: use @user@instance.example")
    user, host = match[1], match[2]
    if instance:
        return (f"{user}@{host}" if host else user), instance.rstrip("/")
    if not host and own_instance:
        return user, own_instance.rstrip("/")
    if not host:
        raise MarinadeError(f"which instance is {account!r} on? use @user@host or --instance URL")
    return user, f"https://{host}"


def own_mastodon_instance(store: Store) -> str | None:
    """The instance of your Mastodon account: the only one, or the default one."""
    mine = [account for account in accounts(store) if account.platform == "mastodon"]
    chosen = mine if len(mine) == 1 else [account for account in mine if account.is_default]
    return chosen[0].setting("instance") if chosen else None


def _mastodon_posts(
    base_url: str, acct: str, since_id: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Statuses newer than since_id, newest first, at most `limit`; and the newest id."""
    from mastodon import Mastodon, MastodonError

    api = Mastodon(api_base_url=base_url, request_timeout=30, ratelimit_method="throw")
    try:
        user = api.account_lookup(acct)
        statuses: list[Any] = []
        max_id = None
        while len(statuses) < limit:
            page = api.account_statuses(
                user["id"], since_id=since_id, max_id=max_id, limit=min(PAGE, limit)
            )
            if not page:
                break
            statuses.extend(page)
            max_id = page[-1]["id"]
    except MastodonError as error:
        raise MarinadeError(f"fetching {acct} from {base_url}: {error}") from None
    statuses = statuses[:limit]
    newest = max((int(s["id"]) for s in statuses), default=None)
    return statuses, str(newest) if newest is not None else since_id


def _mastodon_documents(statuses: list[Any], acct: str) -> Iterator[Document | Skipped]:
    for status in reversed(statuses):  # oldest first, as archives are
        created = status["created_at"]
        yield Document(
            text=status["content"] or "",
            created_at=utc_iso(created) if isinstance(created, datetime) else str(created),
            source=f"mastodon-api:{acct}",
            record_id=str(status["id"]),
            is_reply=status.get("in_reply_to_id") is not None,
            is_repost=status.get("reblog") is not None,
            language=status.get("language"),
            visibility=status.get("visibility") or "public",
            is_html=True,
        )


def _bluesky_posts(
    base_url: str, actor: str, newest_seen: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Feed items newer than newest_seen (indexedAt), newest first, at most `limit`."""
    from atproto import Client
    from atproto_client.exceptions import AtProtocolError

    api = Client(base_url=base_url)
    items: list[Any] = []
    cursor = None
    try:
        while len(items) < limit:
            params: dict[str, Any] = {"actor": actor, "limit": min(PAGE, limit)}
            if cursor:
                params["cursor"] = cursor
            page = api.app.bsky.feed.get_author_feed(params)
            fresh = [i for i in page.feed if not newest_seen or i.post.indexed_at > newest_seen]
            items.extend(fresh)
            cursor = page.cursor
            if not cursor or len(fresh) < len(page.feed) or not page.feed:
                break
    except AtProtocolError as error:
        raise MarinadeError(f"fetching {actor} from {base_url}: {error}") from None
    items = items[:limit]
    newest = max((i.post.indexed_at for i in items), default=newest_seen)
    return items, newest


def _bluesky_documents(items: list[Any], actor: str) -> Iterator[Document | Skipped]:
    for item in reversed(items):
        record = item.post.record
        text = getattr(record, "text", None)
        if text is None:
            yield Skipped("not a post")
            continue
        reposted = item.reason is not None and "Repost" in type(item.reason).__name__
        created = getattr(record, "created_at", None) or item.post.indexed_at
        yield Document(
            text=text,
            created_at=_utc(created),
            source=f"bluesky-api:{actor}",
            record_id=item.post.uri,
            is_reply=getattr(record, "reply", None) is not None,
            is_repost=reposted or item.post.author.handle != actor.lstrip("@"),
            language=(getattr(record, "langs", None) or [None])[0],
        )


def own_tumblr_account(store: Store) -> Account | None:
    """Your Tumblr account: the only one, or the default one."""
    mine = [account for account in accounts(store) if account.platform == "tumblr"]
    chosen = mine if len(mine) == 1 else [account for account in mine if account.is_default]
    return chosen[0] if chosen else None


def tumblr_api_key(store: Store) -> str:
    """The API key a public blog's posts are read with (the app's OAuth consumer key)."""
    for variable in TUMBLR_KEY_VARIABLES:
        if os.environ.get(variable, "").strip():
            return os.environ[variable].strip()
    mine = own_tumblr_account(store)
    if mine is None:
        raise MarinadeError(
            "corpus fetch tumblr needs an API key (your Tumblr app's OAuth consumer key): "
            "set TUMBLR_API_KEY, or add your blog with `marinade accounts add tumblr`"
        )
    from marinade.publishing.adapters.tumblr import keys

    return keys(mine).consumer_key


def _tumblr_posts(
    base_url: str, blog: str, api_key: str, newest_seen: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The blog's text posts newer than the post id newest_seen, newest first, at most
    `limit`; and the newest id."""
    from urllib.parse import quote

    import requests

    url = f"{base_url}/v2/blog/{quote(blog, safe='')}/posts"
    params: dict[str, Any] = {"api_key": api_key, "npf": "true", "type": "text"}
    params["limit"] = min(TUMBLR_PAGE, limit)
    floor = int(newest_seen) if newest_seen and newest_seen.isdigit() else -1
    posts: list[dict[str, Any]] = []
    ids: set[int] = set()
    offset = 0
    where = f"fetching Tumblr blog {blog} from {base_url}"
    while len(posts) < limit:
        try:
            response = requests.get(url, params=params, timeout=30)
            body = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError) as error:
            raise MarinadeError(f"{where}: {error}".replace(api_key, "[api key]")) from None
        if response.status_code == 404:
            raise MarinadeError(f"{where}: no such blog (HTTP 404)")
        answer = body.get("response") if isinstance(body, dict) else None
        if not isinstance(answer, dict):
            reason = f"HTTP {response.status_code} {response.reason}: {response.text[:200]}"
            raise MarinadeError(f"{where}: {reason}".replace(api_key, "[api key]"))
        page = [p for p in answer.get("posts") or [] if isinstance(p, dict)]
        unseen = [p for p in page if _tumblr_id(p) not in ids]
        if page and not unseen and "offset" in params and "before" not in params:
            # a server that pages only by time (`before`, which the docs prefer)
            oldest = min(int(p.get("timestamp") or 0) for p in page)
            params = {key: v for key, v in params.items() if key != "offset"} | {
                "before": oldest + 1  # a post in the same second as the last one is kept
            }
            continue
        fresh = [p for p in unseen if _tumblr_id(p) > floor]
        posts.extend(fresh)
        ids.update(_tumblr_id(p) for p in fresh)
        if not fresh or len(fresh) < len(unseen):
            break  # the end, or posts fetched before (or a server repeating a page)
        offset += len(page)
        following = ((answer.get("_links") or {}).get("next") or {}).get("query_params")
        if isinstance(following, dict) and following:
            params = {**params, **following, "api_key": api_key}
        elif "before" in params:
            oldest = min(int(p.get("timestamp") or 0) for p in page)
            params = {**params, "before": oldest + 1}
        elif isinstance(answer.get("total_posts"), int) and offset >= answer["total_posts"]:
            break
        else:
            params = {**params, "offset": offset}
    posts = posts[:limit]
    newest = max((_tumblr_id(p) for p in posts), default=None)
    return posts, str(newest) if newest is not None else newest_seen


def _tumblr_id(post: dict[str, Any]) -> int:
    value = str(post.get("id_string") or post.get("id") or "")
    return int(value) if value.isdigit() else -1


def _tumblr_documents(
    posts: list[dict[str, Any]], blog: str, base_url: str
) -> Iterator[Document | Skipped]:
    from marinade.corpus.importers.tumblr import post_document

    for post in reversed(posts):  # oldest first, as archives are
        label = f"{base_url} blog {blog}"
        yield post_document(post, f"tumblr-api:{blog}", label)


def _utc(text: str) -> str | None:
    try:
        return utc_iso(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def default_corpus_name(account: str) -> str:
    """The corpus a fetch goes into when none is named: the account, as a name
    (`@user@host` -> `user-host`, `https://staff.tumblr.com` -> `staff.tumblr.com`)."""
    name = re.sub(r"^[a-z]+://", "", account.strip().lower()).strip("/@")
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "fetched"


def fetch_posts(
    store: Store,
    platform: str,
    account: str,
    corpus: str,
    base_url: str | None = None,
    limit: int = DEFAULT_LIMIT,
    options: ImportOptions | None = None,
) -> FetchReport:
    """Fetch `account`'s posts newer than last time into `corpus`."""
    check_name(corpus, "corpus")
    if platform not in PLATFORMS:
        raise MarinadeError(f"corpus fetch reads {' or '.join(PLATFORMS)}, not {platform!r}")
    if limit < 1:
        raise MarinadeError(f"--limit must be at least 1, not {limit}")
    records: list[Document | Skipped]
    if platform == "mastodon":
        acct, url = mastodon_instance(account, base_url, own_mastodon_instance(store))
        key = account.strip()
        source = store.fetch_source(platform, key, corpus)
        posts, cursor = _mastodon_posts(url, acct, source["cursor"] if source else None, limit)
        records = list(_mastodon_documents(posts, key))
    elif platform == "tumblr":
        from marinade.publishing.adapters.tumblr import blog_identifier

        key = blog_identifier(account)
        mine = own_tumblr_account(store)
        url = (base_url or (mine and mine.setting("api_url")) or TUMBLR_API).rstrip("/")
        source = store.fetch_source(platform, key, corpus)
        api_key = tumblr_api_key(store)
        cursor_before = source["cursor"] if source else None
        posts, cursor = _tumblr_posts(url, key, api_key, cursor_before, limit)
        records = list(_tumblr_documents(posts, key, url))
    else:
        url = (base_url or BLUESKY_PUBLIC).rstrip("/")
        key = account.lstrip("@")
        source = store.fetch_source(platform, key, corpus)
        posts, cursor = _bluesky_posts(url, key, source["cursor"] if source else None, limit)
        records = list(_bluesky_documents(posts, key))
    now = now_iso()
    existed = bool(store.corpora(corpus))
    path, source_format = f"{url} {key}", f"{platform}-api"

    def remember(report: ImportReport | None = None) -> None:
        if report is not None and report.kept == 0 and not existed:
            raise _NothingKept(report)  # rolls the import back: no new, empty corpus
        store.save_fetch_source(
            {
                "platform": platform,
                "account": key,
                "corpus": corpus,
                "base_url": url,
                "cursor": cursor,
                "fetched_at": now,
            }
        )

    if not posts:  # nothing new: no import record, and no corpus made
        if existed and source is None:
            with store.transaction():
                remember()  # so that `retrain --fetch` and the scheduler ask again later
        return FetchReport(
            platform, key, corpus, 0, ImportReport(corpus, path, source_format), False
        )
    try:
        report = import_records(
            store, records, corpus, path, source_format, options, also_store=remember
        )
    except _NothingKept as nothing:
        return FetchReport(platform, key, corpus, len(posts), nothing.report, False)
    return FetchReport(platform, key, corpus, len(posts), report)


def fetch_all(store: Store, limit: int = DEFAULT_LIMIT) -> list[FetchReport]:
    """Fetch again every account fetched before (for `retrain --fetch` and the scheduler)."""
    return [
        fetch_posts(store, s["platform"], s["account"], s["corpus"], s["base_url"], limit)
        for s in store.fetch_sources()
    ]
