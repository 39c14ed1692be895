"""Hostile inputs to `corpus import`: links out of a folder, FIFOs and devices, compressed
bombs under a memory limit, endless lines, huge and deeply nested records, UTF-16 without
a BOM, XML entities. Each is skipped and counted or one line naming the file and record,
and nothing already stored is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import json_lines

GiB = 1 << 30


def _documents(store, corpus):
    return [d["text"] for d in store.documents(corpus)]


def _one_line_error(result, *fragments):
    assert result.exit_code == 1, result.stdout
    lines = result.stderr.strip().splitlines()  # the progress spinner leaves a blank line
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_links_out_of_the_folder_and_special_files_are_skipped_and_counted(cli, store, tmp_path):
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / "mine.txt").write_text("A post of my own.\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0 someone else's file\n")
    (folder / "passwd.txt").symlink_to(secret)
    (folder / "etc").symlink_to(tmp_path, target_is_directory=True)
    (folder / "again.txt").symlink_to(folder / "mine.txt")  # inside the folder: fine
    os.mkfifo(folder / "pipe.txt")
    result = cli("corpus", "import", str(folder), "--name", "posts", "--json")
    assert result.exit_code == 0, result.stderr
    report = json_lines(result.stdout)[0]
    assert report["skipped"]["link out of the folder"] == 2
    assert report["skipped"]["not a regular file"] == 1
    texts = _documents(store, "posts")
    assert texts == ["A post of my own."]  # the inside link is the same text: a duplicate
    assert not any("root:x" in text for text in texts)


def test_a_fifo_or_a_device_given_as_the_input_is_one_line(cli, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        result = cli("corpus", "import", str(path), "--name", "never", "--format", "text")
        _one_line_error(result, str(path), "not a regular file")


def _zip_of(path: Path, member: str, chunk: bytes, total: int) -> Path:
    """A zip whose one member is `chunk` repeated to `total` bytes, written as a stream."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(member, "w", force_zip64=True) as handle:
            for _ in range(total // len(chunk)):
                handle.write(chunk)
    return path


PEAK_RSS = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # the old import used 4.3 GB
from marinade.cli import app
try:
    app(sys.argv[1:])
    code = 0
except SystemExit as stop:
    code = stop.code
except MemoryError:
    code = "MemoryError"
# VmHWM is this program's own peak; ru_maxrss would include the parent's size at the
# fork (Linux carries it over exec), a whole pytest process with torch loaded
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
peak = int(status["VmHWM"].split()[0]) * 1024
print(json.dumps({"peak": peak, "code": code}))
"""


def _import_measured(home: Path, *args: str) -> tuple[dict, str]:
    """`marinade corpus import ARGS` in a process of its own under a 3 GiB address-space
    limit; its peak resident memory and exit code, and its stderr."""
    command = [sys.executable, "-c", PEAK_RSS, "--home", str(home), "corpus", "import", *args]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.stdout.strip(), finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1]), finished.stderr


@pytest.mark.parametrize(
    "member, chunk",
    [
        ("words.txt", b"spam " * 200),  # one endless line
        ("lines.txt", b"spam and eggs\n" * 100),  # one endless document
        ("data/tweets.js", None),  # one endless tweet
    ],
)
def test_a_compressed_bomb_is_one_line_in_bounded_memory(tmp_path, member, chunk):
    if chunk is None:  # a tweets.js whose first record never ends
        bomb = tmp_path / "bomb.zip"
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("data/manifest.js", 'window.__THAR_CONFIG = {"userInfo": {}}')
            with archive.open(member, "w", force_zip64=True) as handle:
                handle.write(b'window.YTD.tweets.part0 = [{"tweet": {"full_text": "')
                for _ in range(GiB // (1 << 20)):
                    handle.write(b"a" * (1 << 20))
    else:
        bomb = _zip_of(tmp_path / "bomb.zip", member, chunk, GiB)
    assert bomb.stat().st_size < 8 << 20  # a few MB holding a GiB
    result, stderr = _import_measured(tmp_path / "home", str(bomb), "--name", "bomb")
    assert result["code"] == 1, stderr[-2000:]
    assert result["peak"] < 500 << 20, f"peak {result['peak'] >> 20} MiB"
    [line] = stderr.strip().splitlines()
    assert "bomb.zip:" in line and "--max-record-size" in line and "16 MiB" in line


def test_a_member_past_the_file_limit_stops_there(cli, store, tmp_path):
    posts = b"".join(b"post number %d\n%%\n" % i for i in range(1000))
    bomb = _zip_of(tmp_path / "many.zip", "posts.txt", posts, 40 << 20)
    result = cli("corpus", "import", str(bomb), "--name", "many", "--max-file-size", "8M")
    _one_line_error(result, "many.zip:posts.txt", "larger than 8 MiB", "--max-file-size")
    assert store.corpora() == []  # all or nothing: no half-made corpus


def test_a_huge_one_line_file_names_the_line_and_keeps_the_corpus(cli, store, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("Already here.\n")
    assert cli("corpus", "import", str(small), "--name", "mine").exit_code == 0
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        for _ in range(20):
            handle.write(b"x" * (1 << 20))
    result = cli("corpus", "import", str(huge), "--name", "mine")
    _one_line_error(result, "huge.txt, record line 1", "larger than 16 MiB", "--max-record-size")
    assert _documents(store, "mine") == ["Already here."]
    raised = cli("corpus", "import", str(huge), "--name", "mine", "--max-record-size", "32M")
    assert raised.exit_code == 0, raised.stderr
    assert len(_documents(store, "mine")) == 2


def _tweets_zip(path: Path, records_js: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data/manifest.js", 'window.__THAR_CONFIG = {"userInfo": {}}')
        archive.writestr("data/tweets.js", "window.YTD.tweets.part0 = " + records_js)
    return path


def _tweet(tweet_id: str, text: str) -> dict:
    return {
        "tweet": {
            "id_str": tweet_id,
            "full_text": text,
            "created_at": "Sat Feb 18 12:33:11 +0000 2023",
            "entities": {"urls": []},
        }
    }


def test_a_20_mb_record_is_too_big_not_invalid_json(cli, store, tmp_path):
    big = json.dumps([_tweet("1", "short"), _tweet("2", "word " * (4 << 20))])
    archive = _tweets_zip(tmp_path / "archive.zip", big)
    result = cli("corpus", "import", str(archive), "--name", "tweets")
    _one_line_error(result, "tweets.js, record #2", "larger than 16 MiB", "--max-record-size")
    assert "not valid JSON" not in result.stderr
    raised = cli("corpus", "import", str(archive), "--name", "tweets", "--max-record-size", "64M")
    assert raised.exit_code == 0, raised.stderr
    assert len(_documents(store, "tweets")) == 2


def test_deeply_nested_json_is_one_line(cli, tmp_path):
    nested = "[" * 100_000 + "]" * 100_000
    tweets = _tweets_zip(tmp_path / "tweets.zip", f"[{json.dumps(_tweet('1', 'ok'))}, {nested}]")
    _one_line_error(cli("corpus", "import", str(tweets), "--name", "t"), "#2", "nested too deeply")

    telegram = tmp_path / "result.json"
    telegram.write_text(
        '{"personal_information": {"user_id": 1}, "chats": {"list": [' + nested + "]}}"
    )
    result = cli("corpus", "import", str(telegram), "--name", "tg", "--format", "telegram")
    _one_line_error(result, "result.json", "nested too deeply")

    discord = tmp_path / "package"
    (discord / "messages" / "c1").mkdir(parents=True)
    (discord / "messages" / "c1" / "messages.json").write_text(
        '[{"ID": 1, "Timestamp": "2023-01-01 10:00:00", "Contents": "hi"}, ' + nested + "]"
    )
    result = cli("corpus", "import", str(discord), "--name", "dc", "--format", "discord")
    _one_line_error(result, "messages.json", "#2", "nested too deeply")


def test_a_mail_of_2000_nested_multiparts_is_one_line(cli, tmp_path):
    lines = ["From me@example.org Sat Feb 18 12:33:11 2023", "From: me@example.org",
             "Subject: nested", "Message-ID: <deep@example.org>", "MIME-Version: 1.0"]  # fmt: skip
    for depth in range(2000):
        lines += [f'Content-Type: multipart/mixed; boundary="b{depth}"', "", f"--b{depth}"]
    lines += ["Content-Type: text/plain", "", "the words at the bottom"]
    lines += [f"--b{depth}--" for depth in reversed(range(2000))]
    mbox = tmp_path / "mail.mbox"
    mbox.write_text("\n".join(lines) + "\n")
    result = cli("corpus", "import", str(mbox), "--name", "mail", "--me", "me@example.org")
    _one_line_error(result, "mail.mbox", "<deep@example.org>", "nested too deeply")


def test_utf16_without_a_bom_is_read_as_text(cli, store, tmp_path):
    for encoding in ("utf-16-le", "utf-16-be"):
        path = tmp_path / f"notes-{encoding}.txt"
        path.write_bytes("héllo from the quay\n%\nsecond note, ünïcode\n".encode(encoding))
        result = cli("corpus", "import", str(path), "--name", encoding)
        assert result.exit_code == 0, result.stderr
        assert _documents(store, encoding) == ["héllo from the quay", "second note, ünïcode"]


def test_a_binary_file_forced_as_text_is_refused(cli, tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 10)
    result = cli("corpus", "import", str(path), "--name", "png", "--format", "text")
    _one_line_error(result, "image.txt", "NUL bytes")


WXR = """<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE rss SYSTEM "https://example.org/rss.dtd" [<!ENTITY secret SYSTEM "file://{secret}">]>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:wp="http://wordpress.org/export/1.2/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Blog</title><wp:wxr_version>1.2</wp:wxr_version>
<item><title>Caf&eacute; notes</title>
<content:encoded>Tea at the caf&eacute; &amp; toast; then &secret; and the rest
of the post.</content:encoded>
<wp:post_id>1</wp:post_id><wp:post_date_gmt>2019-03-02 10:11:12</wp:post_date_gmt>
<wp:status>publish</wp:status><wp:post_type>post</wp:post_type></item>
</channel></rss>
"""


def test_text_around_an_unresolved_xml_entity_is_kept(cli, store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    export = tmp_path / "blog.xml"
    export.write_text(textwrap.dedent(WXR.format(secret=secret)))
    result = cli("corpus", "import", str(export), "--name", "blog", "--format", "wordpress")
    assert result.exit_code == 0, result.stderr
    [text] = _documents(store, "blog")
    flat = " ".join(text.split())
    assert flat.startswith("Café notes")  # the title: é resolved, the words after it kept
    assert "Tea at the café & toast; then &secret" in flat  # (HTML then reads "&secret;")
    assert flat.endswith("and the rest of the post.")
    assert "TOP SECRET" not in text  # an external entity is never fetched
