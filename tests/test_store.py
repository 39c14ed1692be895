"""The SQLite store: migrations, WAL, samples list/show/export through the CLI."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from conftest import json_lines
from marinade.errors import MarinadeError
from marinade.store import SAMPLE_COLUMNS, Store
from marinade.store.migrations import MIGRATIONS


def test_migrations_from_an_empty_database(tmp_path):
    path = tmp_path / "marinade.db"
    Store(path).close()
    connection = sqlite3.connect(path)
    applied = [row[0] for row in connection.execute("select name from _migrations order by name")]
    assert applied == [m.__name__ for m in MIGRATIONS]
    assert connection.execute("pragma journal_mode").fetchone()[0] == "wal"
    columns = {row[1] for row in connection.execute("pragma table_info(samples)")}
    assert {"model", "model_hash", "seed", "temperature", "prompt", "text"} <= columns
    connection.close()
    # opening again applies nothing twice and keeps what is there
    store = Store(path)
    store.add_samples(
        [
            {
                "created_at": "2026-01-01T00:00:00+00:00",
                "origin": "generate",
                "model": "m",
                "model_hash": "h",
                "text": "t",
                "seed": 1,
                "temperature": 1.0,
            }
        ]
    )
    store.close()
    store = Store(path)
    assert store.count_samples() == 1
    assert store.db["_migrations"].count == len(MIGRATIONS)


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "marinade.db"
    path.write_text("this is not sqlite " * 100)
    try:
        Store(path)
    except Exception as error:  # MarinadeError
        assert "cannot open the store" in str(error)
    else:
        raise AssertionError("expected an error")


def make_samples(cli, tiny_model, count=3):
    return json_lines(
        cli(
            "generate",
            "The",
            "--model",
            str(tiny_model),
            "-n",
            str(count),
            "--seed",
            "1",
            "--json",
            "--max-new-tokens",
            "6",
        ).stdout
    )


def test_samples_list_show_export(cli, tiny_model):
    rows = make_samples(cli, tiny_model)
    listed = json_lines(cli("samples", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [r["id"] for r in reversed(rows)]  # newest first
    assert (
        json_lines(cli("samples", "list", "--json", "--limit", "1").stdout)[0]["id"]
        == rows[-1]["id"]
    )
    shown = json.loads(cli("samples", "show", str(rows[1]["id"]), "--json").stdout)
    assert shown == rows[1]
    table_lines = cli("samples", "list").stdout.splitlines()  # 80 columns, long model path
    assert table_lines[0].split() == ["id", "created", "model", "seed", "temp", "text"]
    for row, line in zip(reversed(rows), table_lines[1:], strict=True):
        assert line.split()[0] == str(row["id"]) and len(line) <= 80  # ids never squeezed
    plain = cli("samples", "show", str(rows[1]["id"])).stdout
    assert "model_hash" in plain and rows[1]["text"].strip()[:5] in plain
    exported = json_lines(cli("samples", "export", "--format", "jsonl").stdout)
    assert [{k: row[k] for k in SAMPLE_COLUMNS} for row in exported] == rows  # oldest first
    assert {row["rating"] for row in exported} == {None}  # with their ratings
    table = list(csv.DictReader(io.StringIO(cli("samples", "export", "--format", "csv").stdout)))
    assert [row["text"] for row in table] == [r["text"] for r in rows]


def test_samples_export_to_file_and_filters(cli, tiny_model, other_tiny_model, tmp_path):
    make_samples(cli, tiny_model, 2)
    make_samples(cli, other_tiny_model, 1)
    out = tmp_path / "out.jsonl"
    assert (
        cli(
            "samples", "export", "-o", str(out), "--model", str(other_tiny_model.resolve())
        ).exit_code
        == 0
    )
    assert len(out.read_text().splitlines()) == 1
    assert len(json_lines(cli("samples", "list", "--json").stdout)) == 3


def test_samples_errors(cli):
    result = cli("samples", "show", "999")
    assert result.exit_code == 1 and "no sample with id 999" in result.stderr
    result = cli("samples", "export", "--format", "xml")
    assert result.exit_code == 1 and "--format must be jsonl or csv" in result.stderr


def test_ratings_latest_wins_and_accepted_samples_carry_the_edit(store):
    sample = dict(origin="generate", model="m", model_hash="h", seed=1, temperature=0.8)
    first, second = store.add_samples(
        [
            {**sample, "created_at": "t", "text": "one", "experiment": "grid"},
            {**sample, "created_at": "t", "text": "two", "experiment": "other"},
        ]
    )
    store.rate_sample(first["id"], "reject", now="n1")
    store.rate_sample(first["id"], "accept", edited_text="one, edited", tags=["funny"], now="n2")
    store.rate_sample(second["id"], "accept", now="n3")
    assert store.rating(first["id"])["tags"] == ["funny"]
    assert [row["text"] for row in store.accepted_samples()] == ["one, edited", "two"]
    assert [row["original_text"] for row in store.accepted_samples("grid")] == ["one"]
    store.rate_sample(second["id"], None, now="n4")
    assert store.rating(second["id"]) is None
    with pytest.raises(MarinadeError):
        store.rate_sample(first["id"], "maybe", now="n5")
