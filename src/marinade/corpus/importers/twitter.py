"""X/Twitter archive (zip or extracted folder): `data/tweets.js` and friends.

The files are JavaScript, not JSON: `window.YTD.tweets.part0 = [ {"tweet": {...}}, ... ]`.
Old archives call the file `tweet.js`, big ones split it into `tweets-part1.js`, ...,
and posts longer than 280 characters keep their full text in `note-tweet.js` while
`tweets.js` holds a truncated copy. Tweets are decoded one at a time
(`iter_json_array`), so a 100,000-tweet archive never sits in memory whole.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.jsonstream import iter_json_array
from marinade.timestamps import utc_iso

# The JavaScript assignment in front of the array; plain JSON (no prefix) is read too.
YTD_OPENING = re.compile(r"\A\s*(?:window\.YTD\.\w+\.part\d+\s*=\s*)?\[")
YTD_TWEETS_HEAD = re.compile(r"\s*window\.YTD\.(?:tweets?|community_tweet)\.part\d+\s*=")
# tweets.js, tweet.js (old), tweets-part1.js ... (split); community-tweet.js holds
# posts to communities. deleted-tweets.js is left out: its owner deleted those.
TWEET_FILE = re.compile(r"(?P<kind>community-tweet|tweets?)(?:-part(?P<part>\d+))?\.js")
CREATED_AT = re.compile(
    r"[A-Z][a-z]{2} (?P<month>[A-Z][a-z]{2}) (?P<day>\d\d) (?P<time>\d\d:\d\d:\d\d) "
    r"(?P<tz_hours>[+-]\d\d)(?P<tz_minutes>\d\d) (?P<year>\d{4})"
)
MONTHS = {
    name: n for n, name in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
}
# Twitter's own "language" codes for posts without words: media, hashtags, mentions only.
NO_LANGUAGE = {"und", "zxx", "qme", "qht", "qam", "qct", "qst", "qtm"}
URL_TEXT = re.compile(r"https?://\S+")


def tweet_files(archive: Archive) -> list[str]:
    """Community posts first, then tweets.js and its parts in part order."""

    def order(name: str) -> tuple[bool, int, str]:
        match = TWEET_FILE.fullmatch(name.rsplit("/", 1)[-1].lower())
        assert match is not None
        return match["kind"] != "community-tweet", int(match["part"] or 0), name

    found = archive.matching(lambda n: TWEET_FILE.fullmatch(n.rsplit("/", 1)[-1]) is not None)
    return sorted(found, key=order)


def detect(archive: Archive) -> bool:
    """A tweets.js (or tweet.js, or a part) that starts with `window.YTD.tweets.partN =`."""
    try:
        names = tweet_files(archive) if archive.is_container else archive.names
        for name in names[:1]:
            head = archive.head(name, 256).decode("utf-8", "ignore").lstrip("\ufeff")
            return YTD_TWEETS_HEAD.match(head) is not None
    except CorpusFormatError:
        pass
    return False


def read(archive: Archive, options: ImportOptions) -> Records:
    circle = _circle_tweet_ids(archive)
    long_posts = _read_long_posts(archive)
    community_ids: set[str] = set()
    names = tweet_files(archive) if archive.is_container else archive.names
    for name in names:
        is_community = name.rsplit("/", 1)[-1].lower().startswith("community-")
        label = archive.label(name)
        with archive.open(name) as handle:
            for index, item in enumerate(
                iter_json_array(handle, label, YTD_OPENING, archive.max_record_bytes), 1
            ):
                tweet = item.get("tweet", item) if isinstance(item, dict) else None
                if not isinstance(tweet, dict):
                    yield Skipped("not a tweet record", f"{label} #{index}")
                    continue
                tweet_id = str(tweet.get("id_str") or tweet.get("id") or "") or None
                if tweet_id is not None and is_community:
                    community_ids.add(tweet_id)
                elif tweet_id in community_ids:
                    continue  # already read from community-tweet.js
                yield _tweet(tweet, tweet_id, f"twitter:{name}", label, index, long_posts, circle)
    for post in long_posts.unused():
        yield Skipped("long post whose tweet is not in the archive", post.note_id)


def _tweet(
    tweet: dict[str, Any],
    tweet_id: str | None,
    source: str,
    label: str,
    index: int,
    long_posts: LongPosts,
    circle: set[str],
) -> Document | Skipped:
    record = tweet_id or f"#{index}"
    text = tweet.get("full_text") or tweet.get("text") or ""
    if not isinstance(text, str):
        return Skipped("text is not a string", record)
    created_at = _tweet_date(tweet.get("created_at"), label, record)
    entities = tweet.get("entities") or {}
    links = {u["url"]: u["expanded_url"] for u in entities.get("urls") or [] if _is_link(u)}
    long_post = long_posts.find(tweet_id, created_at, text)
    if long_post is not None:
        text, links = long_post.text, {**links, **long_post.links}
    # A photo or video is a bare t.co link at the end: an attachment, not a link the user wrote.
    media = (entities.get("media") or []) + (
        (tweet.get("extended_entities") or {}).get("media") or []
    )
    for item in media:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            text = text.replace(item["url"], "")
    if not text.strip():
        return Skipped("no text (media only)", record)
    language = tweet.get("lang")
    return Document(
        text=text,
        created_at=created_at,
        source=source,
        record_id=tweet_id,
        # `retweeted` is false even for retweets in archives; the text is the marker.
        is_repost=text.startswith("RT @") or "retweeted_status" in tweet,
        is_reply=bool(tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id")),
        language=language if isinstance(language, str) and language not in NO_LANGUAGE else None,
        visibility="private" if tweet_id in circle else "public",
        link_targets=links,
    )


def _is_link(url: object) -> bool:
    return (
        isinstance(url, dict)
        and isinstance(url.get("url"), str)
        and isinstance(url.get("expanded_url"), str)
    )


def _tweet_date(value: object, label: str, record: str) -> str | None:
    """`Sat Feb 18 12:33:11 +0000 2023` as ISO 8601 UTC (by hand: strptime is 4x slower)."""
    if value is None:
        return None
    match = CREATED_AT.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None or match["month"] not in MONTHS:
            raise ValueError
        moment = datetime.fromisoformat(
            f"{match['year']}-{MONTHS[match['month']]:02d}-{match['day']}T{match['time']}"
            f"{match['tz_hours']}:{match['tz_minutes']}"
        )
    except ValueError:
        raise CorpusFormatError(label, record, f"invalid date {value!r}") from None
    return utc_iso(moment)


def _iso_date(value: object, label: str, record: str) -> datetime | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        # Python 3.10's fromisoformat does not take the "Z" suffix.
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CorpusFormatError(label, record, f"invalid date {value!r}") from None


@dataclass
class LongPost:
    note_id: str | None
    text: str
    links: dict[str, str]
    used: bool = False


@dataclass
class LongPosts:
    """note-tweet.js, to put the full text of long posts back in place of the truncated one.

    Real archives give a note no tweet id, only its creation time: a tweet takes the
    note created within a second of it whose text starts the way the tweet's does
    (a thread's next post can be sent in the same second).
    """

    by_tweet_id: dict[str, LongPost] = field(default_factory=dict)
    by_second: dict[int, list[LongPost]] = field(default_factory=dict)
    unmatched: list[LongPost] = field(default_factory=list)  # neither tweet id nor date

    def find(self, tweet_id: str | None, created_at: str | None, text: str) -> LongPost | None:
        post = self.by_tweet_id.get(tweet_id) if tweet_id else None
        if post is None and created_at is not None and self.by_second:
            second = int(datetime.fromisoformat(created_at).timestamp())
            start = _comparable(text.removesuffix("…"))[:30]
            candidates = [
                p for s in (second, second - 1, second + 1) for p in self.by_second.get(s, [])
            ]
            post = next(
                (p for p in candidates if start and _comparable(p.text).startswith(start)), None
            )
        if post is not None:
            post.used = True
        return post

    def unused(self) -> list[LongPost]:
        posts = [*self.by_tweet_id.values(), *self.unmatched]
        posts += [p for ps in self.by_second.values() for p in ps]
        return [p for p in posts if not p.used]


def _comparable(text: str) -> str:
    return " ".join(URL_TEXT.sub(" ", html.unescape(text)).split()).rstrip("…")


def _read_long_posts(archive: Archive) -> LongPosts:
    posts = LongPosts()
    for name in archive.find("note-tweet.js") if archive.is_container else []:
        label = archive.label(name)
        with archive.open(name) as handle:
            for index, item in enumerate(
                iter_json_array(handle, label, YTD_OPENING, archive.max_record_bytes), 1
            ):
                note = item.get("noteTweet") if isinstance(item, dict) else None
                if not isinstance(note, dict):
                    continue
                note_id = str(note.get("noteTweetId") or "") or None
                # Real archives: core.{text, urls[].shortUrl/expandedUrl}; some
                # documented samples: noteTweetResults.{text, entitySet.urls}, tweetId.
                body = note.get("core") or note.get("noteTweetResults") or {}
                text = body.get("text") if isinstance(body, dict) else None
                if not isinstance(text, str) or not text.strip():
                    continue
                post = LongPost(note_id, text, _note_links(body))
                created = _iso_date(note.get("createdAt"), label, note_id or f"#{index}")
                if note.get("tweetId"):
                    posts.by_tweet_id[str(note["tweetId"])] = post
                elif created is not None:
                    posts.by_second.setdefault(int(created.timestamp()), []).append(post)
                else:
                    posts.unmatched.append(post)
    return posts


def _note_links(body: dict[str, Any]) -> dict[str, str]:
    urls = body.get("urls") or (body.get("entitySet") or {}).get("urls") or []
    links = {}
    for url in urls:
        if isinstance(url, dict):
            short = url.get("shortUrl") or url.get("url")
            target = url.get("expandedUrl") or url.get("expanded_url")
            if isinstance(short, str) and isinstance(target, str):
                links[short] = target
    return links


def _circle_tweet_ids(archive: Archive) -> set[str]:
    """Twitter Circle posts (seen only by a chosen circle) also appear in tweets.js."""
    ids = set()
    for name in archive.find("twitter-circle-tweet.js") if archive.is_container else []:
        with archive.open(name) as handle:
            for item in iter_json_array(
                handle, archive.label(name), YTD_OPENING, archive.max_record_bytes
            ):
                tweet = item.get("tweet", item) if isinstance(item, dict) else None
                if isinstance(tweet, dict) and (tweet.get("id_str") or tweet.get("id")):
                    ids.add(str(tweet.get("id_str") or tweet.get("id")))
    return ids


IMPORTER = Importer(
    name="twitter",
    description="X/Twitter archive (zip or folder with data/tweets.js)",
    detect=detect,
    read=read,
    priority=80,
)
