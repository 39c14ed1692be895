"""Long writers and the busy timeout, with a real second process: a big import commits a
batch at a time (another writer gets in meanwhile, and sees none of it until it is done),
a failed, stopped or killed import leaves the store as it was, every command names a busy
store in one line, and the review page answers 503 (so its script sends again)."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from conftest import json_lines
from lock_holder import write_lock_held
from marinade.corpus.document import CorpusFormatError, Document
from marinade.corpus.importing import BATCH, import_records
from marinade.review.app import create_app
from marinade.review.server import running_server
from review_helpers import add_grid, http_requests

DOCUMENTS = 3 * BATCH + 500


def document(number: int) -> Document:
    return Document(text=f"post number {number} about tea", created_at=None, source="test")


def run_marinade(home, *args, timeout_s="2"):
    """`marinade --home HOME ARGS` in a process of its own."""
    environment = {**os.environ, "MARINADE_BUSY_TIMEOUT": timeout_s}
    return subprocess.run(
        [sys.executable, "-m", "marinade", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def document_count(store, corpus):
    rows = store.corpora(corpus)
    return rows[0]["documents"] if rows else None


def test_a_big_import_lets_another_writer_in_and_shows_nothing_half_done(store, home_dir, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("a short note\n%\nanother short note\n")
    seen = {}

    def records():
        for number in range(DOCUMENTS):
            if number == 2 * BATCH + 10:  # two batches stored, the import still running
                importing = ("corpus", "import", str(small), "--name", "notes")
                seen["writer"] = run_marinade(home_dir, *importing)
                listed = json_lines(run_marinade(home_dir, "corpus", "list", "--json").stdout)
                seen["listed"] = {row["name"]: row["documents"] for row in listed}
                seen["mid"] = document_count(store, "big")
            yield document(number)

    report = import_records(store, records(), "big", "generated", "test")
    writer = seen["writer"]
    assert writer.returncode == 0, writer.stderr  # it did not wait for the whole import
    assert seen["listed"]["notes"] == 2
    assert seen["listed"]["big"] == 0 and seen["mid"] == 0  # half an import is not shown
    assert report.kept == DOCUMENTS and document_count(store, "big") == DOCUMENTS
    assert [row["kept"] for row in store.imports("big")] == [DOCUMENTS]


STOPS = [CorpusFormatError("feed.json", 7, "bad record"), KeyboardInterrupt()]


@pytest.mark.parametrize("stop", STOPS)
def test_a_failed_or_stopped_import_leaves_the_store_as_it_was(store, stop):
    import_records(store, (document(n) for n in range(10)), "mine", "first", "test")
    before = (list(store.documents("mine")), store.imports("mine"))

    def records(corpus_offset):
        for number in range(DOCUMENTS):
            if number == 2 * BATCH + 10:
                raise stop
            yield document(corpus_offset + number)

    for corpus in ("mine", "new-one"):
        with pytest.raises(type(stop)):
            import_records(store, records(5), corpus, "second", "test")
    assert (list(store.documents("mine")), store.imports("mine")) == before
    assert store.corpora("new-one") == []  # no new, empty corpus either
    [count] = store.db.execute("select count(*) from documents").fetchone()
    assert count == 10


KILLED_IMPORT = """
import os, signal, sys
from marinade.corpus.document import Document
from marinade.corpus.importing import BATCH, import_records
from marinade.store import Store

def records():
    for number in range(10 * BATCH):
        if number == 2 * BATCH + 10:
            os.kill(os.getpid(), signal.SIGKILL)  # a power cut, kill -9
        yield Document(text=f"post number {number} about tea", created_at=None, source="t")

import_records(Store(sys.argv[1]), records(), "big", "generated", "test")
"""


def test_an_import_killed_part_way_is_taken_out_by_the_next(store, home_dir, tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_IMPORT, str(store.path)], timeout=120)
    assert killed.returncode == -9
    assert document_count(store, "big") == 0  # its two stored batches are not shown
    [count] = store.db.execute("select count(*) from documents").fetchone()
    assert count == 2 * BATCH
    feed = tmp_path / "posts.txt"
    feed.write_text("\n%\n".join(f"post number {n} about tea" for n in range(5)))
    result = run_marinade(home_dir, "corpus", "import", str(feed), "--name", "big")
    assert result.returncode == 0, result.stderr
    # the killed import's documents went: these five are new, not duplicates of its ones
    [row] = store.imports("big")
    assert (row["kept"], row["duplicates"]) == (5, 0) and document_count(store, "big") == 5
    [count] = store.db.execute("select count(*) from documents").fetchone()
    assert count == 5


def test_a_second_import_into_a_corpus_being_imported_waits_its_turn(store, home_dir, tmp_path):
    feed = tmp_path / "posts.txt"
    feed.write_text("one post\n%\nanother post\n")
    seen = {}

    def records():
        for number in range(2 * BATCH):
            if number == BATCH + 10:
                importing = ("corpus", "import", str(feed), "--name", "big")
                seen["second"] = run_marinade(home_dir, *importing)
            yield document(number)

    import_records(store, records(), "big", "generated", "test")
    second = seen["second"]
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert "is being imported into by another process" in second.stderr
    assert document_count(store, "big") == 2 * BATCH


def test_every_writing_command_names_a_busy_store_in_one_line(cli, store, tmp_path, monkeypatch):
    cli("accounts", "add", "outbox", "--name", "box", "--path", str(tmp_path / "out.jsonl"))
    feed = tmp_path / "posts.txt"
    feed.write_text("one post\n\nanother post\n")
    sheet = tmp_path / "q.csv"
    sheet.write_text("text\nfrom a sheet\n")
    monkeypatch.setenv("MARINADE_BUSY_TIMEOUT", "0.3")
    commands = [
        ("queue", "add", "--text", "hello"),
        ("queue", "import", str(sheet)),
        ("corpus", "import", str(feed), "--name", "mine"),
        ("accounts", "add", "outbox", "--name", "other", "--path", str(tmp_path / "o.jsonl")),
        ("post", "--due"),
    ]
    with write_lock_held(store.path):
        for command in commands:
            result = cli(*command)
            assert result.exit_code == 1, command
            [line] = result.stderr.strip().splitlines()
            assert "is busy" in line and "database is locked" in line, command
    assert store.queue_items() == [] and store.corpora() == []
    assert [row["name"] for row in store.accounts()] == ["box"]


def test_the_review_page_answers_503_while_the_store_is_busy_and_loses_nothing(store, monkeypatch):
    [sample] = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=1)
    monkeypatch.setenv("MARINADE_BUSY_TIMEOUT", "0.3")  # the server's stores wait this long
    with running_server(create_app(store.path, "grid")) as url:
        request = http_requests(url)
        body = {"session": "s", "action": "accept", "sample_id": sample["id"]}
        with write_lock_held(store.path):
            response, text = request("POST", "/rate", body)
            assert response.status == 503 and response.getheader("Retry-After") == "1"
            assert "busy" in text and store.rating(sample["id"]) is None
        response, _ = request("POST", "/rate", body)  # what review.js does next
        assert response.status == 200 and store.rating(sample["id"])["rating"] == "accept"
    assert urlsplit(url).hostname == "127.0.0.1"
