"""`samples rate`, `samples export --experiment`, and `marinade review` serving a page."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import urllib.request

from conftest import json_lines
from marinade.curation.spec import parse_experiment
from review_helpers import add_check, add_grid


def test_samples_rate_accept_reject_tag_note_clear(cli, store):
    first, second, *_ = add_grid(store, seeds=1)
    result = cli(
        "samples",
        "rate",
        str(first["id"]),
        "accept",
        "--tag",
        "funny",
        "--tag",
        "odd",
        "--note",
        "keep it",
        "--edit",
        "edited",
    )
    assert result.exit_code == 0 and "accepted" in result.stdout
    rating = store.rating(first["id"])
    assert (rating["rating"], rating["tags"], rating["note"]) == (
        "accept",
        ["funny", "odd"],
        "keep it",
    )
    assert rating["edited_text"] == "edited" and store.get_sample(first["id"])["text"] != "edited"
    assert cli("samples", "rate", str(first["id"]), "reject").exit_code == 0
    assert store.rating(first["id"])["rating"] == "reject"  # the latest wins
    assert cli("samples", "rate", str(first["id"]), "--clear").exit_code == 0
    assert store.rating(first["id"]) is None
    for args, message in (
        ((str(second["id"]), "maybe"), "give a rating, accept or reject, or --clear (not 'maybe')"),
        ((str(second["id"]),), "give a rating, accept or reject, or --clear"),
        ((str(second["id"]), "accept", "--clear"), "--clear takes no rating"),
        (("999", "accept"), "no sample with id 999"),
    ):
        result = cli("samples", "rate", *args)
        assert result.exit_code == 1 and f"Error: {message}" in result.stderr, args
    assert store.rating(second["id"]) is None


def test_export_one_experiment_with_ratings(cli, store):
    grid = add_grid(store, seeds=1)
    add_grid(store, seeds=1, experiment="other")
    store.rate_sample(grid[0]["id"], "accept", tags=["funny"], edited_text="better", now="t")
    store.rate_sample(grid[1]["id"], "reject", now="t")
    rows = json_lines(cli("samples", "export", "--experiment", "grid", "--format", "jsonl").stdout)
    assert [row["id"] for row in rows] == [row["id"] for row in grid]
    assert [row["rating"] for row in rows] == ["accept", "reject", None, None]
    for row in rows:
        for field in ("id", "text", "experiment", "recipe", "temperature", "rating"):
            assert field in row
        assert row["experiment"] == "grid"
    assert rows[0]["text"] == grid[0]["text"] and rows[0]["edited_text"] == "better"
    assert rows[0]["rating_tags"] == ["funny"]
    table = list(csv.DictReader(io.StringIO(cli("samples", "export", "--format", "csv").stdout)))
    assert len(table) == 8 and table[0]["rating"] == "accept" and table[2]["rating"] == ""
    result = cli("samples", "export", "--experiment", "nope")
    assert result.exit_code == 1 and "no samples in experiment 'nope'" in result.stderr


def test_review_command_serves_one_experiment_without_a_browser(store, home_dir):
    add_grid(store, seeds=1, text="grid sample")
    add_grid(store, seeds=1, experiment="other", text="other sample")
    command = [
        sys.executable,
        "-m",
        "marinade",
        "--home",
        str(home_dir),
        "review",
        "--experiment",
        "other",
        "--port",
        "0",
        "--no-open",
    ]
    environment = {**os.environ, "BROWSER": "false"}  # in case a browser were opened anyway
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    ) as process:
        try:
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
            html = urllib.request.urlopen(url, timeout=10).read().decode()
            assert "other sample" in html and "grid sample" not in html
            assert "0 / 4 rated" in html
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_review_command_errors(cli, store):
    add_grid(store, seeds=1)
    result = cli("review", "--experiment", "nope", "--no-open")
    assert result.exit_code == 1 and "no samples in experiment 'nope'" in result.stderr
    assert "same as `marinade review`" in cli("--help").stdout


def test_report_names_the_top_p_of_the_best_cell(cli, store):
    rows = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=2, top_p=0.9)
    grid = {"name": "grid", "recipes": [{"name": "a"}], "temperatures": [0.7], "top_p": [0.9, 1]}
    spec = parse_experiment(grid, "grid.toml")
    store.save_experiment({"name": "grid", "spec": json.dumps(spec.to_dict()), "status": "done"})
    store.rate_sample(rows[0]["id"], "accept", now="t")
    result = cli("experiment", "report", "grid")
    assert "best cell: a at temperature 0.7, top-p 0.9 (1/1 accepted" in result.stdout


def test_review_skip_tag_must_be_an_automatic_tag(cli, store):
    add_grid(store, seeds=1)
    result = cli("review", "--skip-tag", "empty", "--skip-tag", "emtpy", "--no-open")
    assert result.exit_code == 1
    assert "--skip-tag 'emtpy' is not an automatic tag (empty, short, too-long" in result.stderr


def test_review_skip_tag_reaches_the_page(store, home_dir):
    copied, kept = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=2, text="s{seed}")
    add_check(store, copied["id"], "a training document", ["copied"])
    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "review"]
    command += ["--skip-tag", "copied", "--port", "0", "--no-open"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            url = process.stdout.readline().strip()
            html = urllib.request.urlopen(url, timeout=10).read().decode()
            assert f'data-sample-id="{kept["id"]}"' in html
            assert "1 unrated sample tagged copied left out" in html
        finally:
            process.terminate()
            process.wait(timeout=10)
