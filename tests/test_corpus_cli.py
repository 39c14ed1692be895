"""`marinade corpus ...` end to end: import, re-import, bad input, stats, export, rm."""

from __future__ import annotations

import json

from conftest import json_lines

POSTS = [
    "I like tea, toast, and the sound of rain on a tin roof.",
    "The lamplighter came along the quay and lit the lamps one by one.",
    "Mail me at someone@example.org about the tin roof.",
    "How does one become free? By walking out of the door and never looking back at all.",
    "How does one become free? By walking out of the door and never looking back at all!!",
]


def write_csv(path, rows, header=("id", "date", "text")):
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def posts_csv(tmp_path, name="queue.csv"):
    rows = [(i + 1, f"2024-01-0{i + 1} 09:00", text) for i, text in enumerate(POSTS)]
    return write_csv(tmp_path / name, rows)


def test_import_csv_then_reimport_adds_nothing(cli, tmp_path, store):
    path = posts_csv(tmp_path)
    result = cli("corpus", "import", str(path), "--name", "queue", "--column", "text", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["format"], report["kept"], report["duplicates"]) == ("csv", 5, 0)
    again = json.loads(
        cli("corpus", "import", str(path), "--name", "queue", "--column", "text", "--json").stdout
    )
    assert (again["kept"], again["duplicates"]) == (0, 5)
    assert [c["documents"] for c in json_lines(cli("corpus", "list", "--json").stdout)] == [5]
    exported = json_lines(cli("corpus", "export", "queue").stdout)
    assert [d["text"] for d in exported][:2] == POSTS[:2]
    assert exported[2]["text"] == "Mail me at <email> about the tin roof."
    assert exported[0]["created_at"] == "2024-01-01T09:00:00+00:00"
    assert exported[0]["source"].startswith("csv:")
    assert {"text", "created_at", "source"} <= set(exported[0])
    text = cli("corpus", "export", "queue", "--format", "txt").stdout
    assert text.split("\n\n")[0] == POSTS[0]
    assert len(text.strip().split("\n\n")) == 5
    assert store.search_documents("lamplighter", corpus="queue")[0]["text"] == POSTS[1]


def test_bad_record_leaves_an_existing_corpus_as_it_was(cli, tmp_path, store):
    assert (
        cli(
            "corpus", "import", str(posts_csv(tmp_path)), "--name", "queue", "--column", "text"
        ).exit_code
        == 0
    )
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            (1, "2024-02-01", "a brand new post"),
            (2, "2024-02-02", "another new post"),
            (3, "the day after never", "a third new post"),
        ],
    )
    result = cli("corpus", "import", str(bad), "--name", "queue", "--column", "text")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.csv" in lines[0] and "3" in lines[0]
    assert store.corpus("queue")["documents"] == 5
    assert len(store.imports("queue")) == 1
    # and a new corpus is not left behind half-made
    assert cli("corpus", "import", str(bad), "--name", "fresh", "--column", "text").exit_code == 1
    assert [c["name"] for c in store.corpora()] == ["queue"]


def test_bad_inputs_give_one_line(cli, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02garbage\x00" * 100)
    cases = [
        (("corpus", "import", str(empty), "--name", "x"), "empty file"),
        (("corpus", "import", str(binary), "--name", "x"), "unknown format"),
        (("corpus", "import", str(tmp_path / "nope.zip"), "--name", "x"), "no such file"),
        (("corpus", "import", str(posts_csv(tmp_path)), "--name", "x", "--column", "body"), "body"),
        (
            ("corpus", "import", str(posts_csv(tmp_path)), "--name", "x", "--format", "nope"),
            "unknown --format",
        ),
        (("corpus", "import", str(posts_csv(tmp_path)), "--name", "bad/name"), "bad corpus name"),
        (("corpus", "show", "missing"), "no corpus named 'missing'"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_stats_show_rm(cli, tmp_path, tiny_model):
    cli("corpus", "import", str(posts_csv(tmp_path)), "--name", "queue", "--column", "text")
    result = cli("corpus", "stats", "queue", "--json", "--tokenizer", str(tiny_model))
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["documents"] == 5
    assert stats["words"] == sum(len(p.split()) for p in POSTS)  # the e-mail is one placeholder
    assert stats["tokens"] > stats["words"] // 2
    assert (stats["first"], stats["last"]) == (
        "2024-01-01T09:00:00+00:00",
        "2024-01-05T09:00:00+00:00",
    )
    assert sum(stats["lengths"].values()) == 5
    pairs = stats["near_duplicates"]
    assert len(pairs) == 1 and pairs[0]["first_text"].startswith("How does one become free?")
    plain = cli("corpus", "stats", "queue", "--no-tokens").stdout
    assert "near-duplicates" in plain and "1 pairs" in plain
    shown = cli("corpus", "show", "queue", "--limit", "2")
    assert POSTS[0] in shown.stdout and "kept 5" in shown.stdout
    assert cli("corpus", "rm", "queue", "--yes").exit_code == 0
    assert json_lines(cli("corpus", "list", "--json").stdout) == []


def test_truncated_archive_and_unknown_json(cli, tmp_path, store):
    import zipfile

    archive = tmp_path / "twitter.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("data/tweets.js", "window.YTD.tweets.part0 = []" + " " * 5000)
    archive.write_bytes(archive.read_bytes()[:200])
    result = cli("corpus", "import", str(archive), "--name", "x")
    assert result.exit_code == 1
    assert "a zip archive that cannot be read: truncated or corrupt" in result.stderr
    other = tmp_path / "instagram.json"
    other.write_text('{"media": [{"caption": "not a format marinade knows"}]}')
    result = cli("corpus", "import", str(other), "--name", "x")
    assert result.exit_code == 1 and "unknown format" in result.stderr
    assert store.corpora() == []


def test_split_on_import_and_an_unknown_split_changes_nothing(cli, tmp_path, store):
    path = tmp_path / "story.txt"
    path.write_text("The lamps came on.\n\nThe quay was quiet.\n\nThe tide went out.\n")
    result = cli("corpus", "import", str(path), "--name", "story", "--json")
    assert json.loads(result.stdout)["kept"] == 1  # no separators: one document
    result = cli("corpus", "import", str(path), "--name", "story", "--split", "paragraphs")
    assert result.exit_code == 0, result.stderr
    assert store.corpus("story")["documents"] == 4
    result = cli("corpus", "import", str(path), "--name", "story", "--split", "lines")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: unknown --split 'lines': use one of separators, paragraphs, none"
    ]
    assert store.corpus("story")["documents"] == 4
    assert len(store.imports("story")) == 2


def test_formats_explains_how_plain_text_is_split(cli):
    result = cli("corpus", "formats")
    assert result.exit_code == 0
    for split in ("--split separators", "--split paragraphs", "--split none"):
        assert split in result.stdout
    assert 'lines of only "%"' in result.stdout and '"---" after a blank line' in result.stdout


def test_a_book_without_its_end_line_warns_on_one_line_and_imports(cli, tmp_path, store):
    path = tmp_path / "quay10.txt"
    path.write_text(
        "The Project Gutenberg Etext of Quay Songs\n\n"
        "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
        "The lamplighter came along the quay at dusk and lit the lamps, one by one, "
        "as he had done every evening for forty years.\n"
    )
    result = cli("corpus", "import", str(path), "--name", "books")
    assert result.exit_code == 0, result.stderr
    [warning] = result.stderr.strip().splitlines()
    assert warning.startswith("warning: ") and "quay10.txt" in warning and "END" in warning
    assert store.corpus("books")["documents"] == 1
    report = json.loads(cli("corpus", "import", str(path), "--name", "books", "--json").stdout)
    assert len(report["warnings"]) == 1 and report["duplicates"] == 1


def test_a_one_column_sheet_imports_without_format_or_column(cli, tmp_path, store):
    path = tmp_path / "queue.csv"
    path.write_text('text\n"Tea, toast, and rain."\nThe lamps along the quay.\n')
    result = cli("corpus", "import", str(path), "--name", "queue", "--json")
    assert result.exit_code == 0, result.stderr
    assert (json.loads(result.stdout)["format"], store.corpus("queue")["documents"]) == ("csv", 2)
