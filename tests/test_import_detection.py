"""Detection across all importers: each format's typical archive, built with the builders
of that importer's own tests, is claimed by the right importer in the registry (no
higher-priority importer takes it first) and imports end to end without --format."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import test_import_blogger as blogger
import test_import_bluesky as bluesky
import test_import_csv_table as csv_table
import test_import_discord as discord
import test_import_facebook as facebook
import test_import_gutenberg as gutenberg
import test_import_mastodon as mastodon
import test_import_mbox as mbox
import test_import_reddit as reddit
import test_import_telegram as telegram
import test_import_tumblr as tumblr
import test_import_twitter as twitter
import test_import_whatsapp as whatsapp
import test_import_wordpress as wordpress
from conftest import json_lines
from marinade.corpus.archive import Archive
from marinade.corpus.importers import all_importers, detect_importer

Builder = Callable[[Path], Path]


def twitter_archive(tmp_path: Path) -> Path:
    return twitter.write_zip(
        tmp_path / "twitter-2023-02-20-abc.zip",
        {
            "Your archive.html": "<html></html>",
            "data/manifest.js": 'window.__THAR_CONFIG = {"userInfo": {}}',
            "data/tweets.js": twitter.ytd("tweets.part0", twitter.TWEETS),
        },
    )


def mastodon_archive(tmp_path: Path) -> Path:
    path = tmp_path / "archive-20240301093000-0123abcd.tar.gz"
    return mastodon.write_tar(path, mastodon.member_files(mastodon.ITEMS))


def bluesky_archive(tmp_path: Path) -> Path:
    return bluesky.write_repo(tmp_path / "repo.car")


def facebook_archive(tmp_path: Path) -> Path:
    parts = [facebook.facebook_json(facebook.PART_1), facebook.facebook_json(facebook.PART_2)]
    return facebook.write_zip(tmp_path / "facebook-me.zip", parts)


def reddit_archive(tmp_path: Path) -> Path:
    return reddit.write_zip(tmp_path / "export.zip")


def wordpress_archive(tmp_path: Path) -> Path:
    items = [
        wordpress.item(12, "The lamplighter", wordpress.GUTENBERG),
        wordpress.item(13, "Tea &amp; toast", wordpress.CLASSIC),
    ]
    return wordpress.write_wxr(tmp_path / "quay.WordPress.2024-01-05.xml", items)


def blogger_archive(tmp_path: Path) -> Path:
    html = "<p>I like the sound of rain.</p><div><br></div><p>Tea too.</p>"
    return blogger.write_takeout(tmp_path, [blogger.takeout_entry("1", "Rain & tin roofs", html)])


def tumblr_archive(tmp_path: Path) -> Path:
    posts = {"123": tumblr.OWN, "126": tumblr.WITH_TIME, "127": tumblr.NO_DATE}
    return tumblr.official_zip(tmp_path / "lamplight.zip", posts)


def discord_archive(tmp_path: Path) -> Path:
    return discord.json_package(tmp_path)


def mbox_archive(tmp_path: Path) -> Path:
    return mbox.write_mbox(tmp_path / "Inbox.mbox", mbox.everyday_messages())


def telegram_archive(tmp_path: Path) -> Path:
    return telegram.write_zip(tmp_path, telegram.full_export([telegram.chat_with_bob()]))


def whatsapp_archive(tmp_path: Path) -> Path:
    return whatsapp.write_zip(tmp_path, "WhatsApp Chat with Bob.txt", whatsapp.ANDROID)


def gutenberg_archive(tmp_path: Path) -> Path:
    return gutenberg.write_book(
        tmp_path / "pg99999.txt", gutenberg.book_text(gutenberg.standard_body())
    )


def text_archive(tmp_path: Path) -> Path:
    # The plain-text tests write their files inline; this is their first one.
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffI like tea.\r\n\r\nAnd toast, and rain on a tin roof.\r\n".encode())
    return path


def csv_archive(tmp_path: Path) -> Path:
    return csv_table.write_table(tmp_path / "queue.csv", csv_table.QUEUE, bom=True)


# format (the importer's name and the `source` prefix), builder, extra CLI options
CASES: list[tuple[str, Builder, tuple[str, ...]]] = [
    ("twitter", twitter_archive, ()),
    ("mastodon", mastodon_archive, ()),
    ("bluesky", bluesky_archive, ()),
    ("facebook", facebook_archive, ()),
    ("reddit", reddit_archive, ()),
    ("wordpress", wordpress_archive, ()),
    ("blogger", blogger_archive, ()),
    ("tumblr", tumblr_archive, ()),
    ("discord", discord_archive, ()),
    ("mbox", mbox_archive, ()),
    ("telegram", telegram_archive, ()),
    ("whatsapp", whatsapp_archive, ("--me", "Alice")),
    ("gutenberg", gutenberg_archive, ()),
    ("text", text_archive, ()),
    ("csv", csv_archive, ("--column", "post")),
]
PARAMS = [pytest.param(fmt, build, options, id=fmt) for fmt, build, options in CASES]


def test_every_importer_has_a_case() -> None:
    assert sorted(i.name for i in all_importers()) == sorted(fmt for fmt, _, _ in CASES)


@pytest.mark.parametrize(("fmt", "build", "options"), PARAMS)
def test_registry_picks_the_right_importer(
    tmp_path: Path, fmt: str, build: Builder, options: tuple[str, ...]
) -> None:
    archive = Archive(build(tmp_path))
    try:
        claims = [i.name for i in all_importers() if i.detect(archive)]
        assert detect_importer(archive).name == fmt, f"claimed by, in order: {claims}"
    finally:
        archive.close()


@pytest.mark.parametrize(("fmt", "build", "options"), PARAMS)
def test_cli_imports_without_format(
    cli, tmp_path: Path, fmt: str, build: Builder, options: tuple[str, ...]
) -> None:
    path = build(tmp_path)
    result = cli("corpus", "import", str(path), "--name", fmt, "--json", *options)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["format"] == fmt
    assert report["kept"] > 0
    exported = json_lines(cli("corpus", "export", fmt).stdout)
    assert len(exported) == report["kept"]
    assert all(d["source"].startswith(f"{fmt}:") for d in exported), [d["source"] for d in exported]
