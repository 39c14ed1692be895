"""Facebook "Download your information" export in JSON (zip or folder).

Posts live in `your_facebook_activity/posts/your_posts__check_ins__photos_and_videos_1.json`
(`_2`, `_3`... for big accounts); older exports used `your_activity_across_facebook/posts/`
or `posts/your_posts_1.json`, so we match any `your_posts*.json`. Each file is an
array of {timestamp, data: [{post}], attachments, title}. Facebook writes every
non-ASCII string as its UTF-8 bytes escaped one by one (`Rados\\u00c5\\u0082aw`),
which we undo per string.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from marinade.corpus.archive import Archive
from marinade.corpus.document import CorpusFormatError, Document, ImportOptions, Skipped
from marinade.corpus.importers import Importer, Records
from marinade.corpus.jsonstream import iter_json_array
from marinade.timestamps import utc_iso

POSTS_FILE = re.compile(r"your_posts[^/]*\.json")
NUMBER = re.compile(r"(\d+)")
# The posts array: the whole file, or older exports' {"status_updates": [...]}.
POSTS_ARRAY = re.compile(r'\A\s*(?:\{\s*"\w+"\s*:\s*)?\[')


def fix_mojibake(text: str) -> str:
    """Undo Facebook's encoding: UTF-8 bytes stored as latin-1 code points.

    A string that is already right (it holds a character above U+00FF, or its
    bytes are not UTF-8) is returned unchanged.
    """
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _natural(name: str) -> list[Any]:
    """Sort key putting `_2` before `_10`."""
    return [int(part) if part.isdigit() else part for part in NUMBER.split(name.lower())]


def _post_files(archive: Archive) -> list[str]:
    found = archive.matching(lambda name: bool(POSTS_FILE.fullmatch(name.rsplit("/", 1)[-1])))
    return sorted(found, key=_natural)


def detect(archive: Archive) -> bool:
    try:
        files = _post_files(archive)
        if archive.is_container or not files:
            return bool(files)
        # A single file handed over on its own: its name and its first bytes.
        head = archive.head(files[0]).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
        return head.startswith(("[", "{")) and '"timestamp"' in head
    except CorpusFormatError:
        return False


def _created_at(value: Any, label: str, record: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CorpusFormatError(label, record, f"invalid timestamp {value!r}")
    try:
        return utc_iso(datetime.fromtimestamp(value, tz=timezone.utc))
    except (OverflowError, OSError, ValueError):
        raise CorpusFormatError(label, record, f"invalid timestamp {value!r}") from None


def _record(item: Any, record: str, source: str, label: str) -> Document | Skipped:
    if not isinstance(item, dict):
        return Skipped("not a post object", record)
    data = item.get("data")
    texts = []
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("post"), str):
            texts.append(fix_mojibake(entry["post"]))
    created_at = _created_at(item.get("timestamp"), label, record)
    text = "\n\n".join(t for t in texts if t.strip())
    if not text:  # a shared link, photo or check-in with nothing written
        return Skipped("no text", record)
    return Document(text=text, created_at=created_at, source=source)


def read(archive: Archive, options: ImportOptions) -> Records:
    files = _post_files(archive)
    if not files:
        raise CorpusFormatError(str(archive.path), None, "no Facebook your_posts*.json found")
    for name in files:
        label = archive.label(name)
        with archive.open(name) as handle:
            for index, item in enumerate(
                iter_json_array(handle, label, POSTS_ARRAY, archive.max_record_bytes), 1
            ):
                yield _record(item, f"#{index}", f"facebook:{name}", label)


IMPORTER = Importer(
    name="facebook",
    description="Facebook 'Download your information' JSON export (zip or folder)",
    detect=detect,
    read=read,
    priority=80,
)
