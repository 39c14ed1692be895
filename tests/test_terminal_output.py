"""Model and imported text reaches the terminal through printable(): an escape sequence in
a sample, a prompt, a document or a file name is shown, never obeyed."""

from __future__ import annotations

from conftest import json_lines

ESCAPE = "\x1b[2J\x1b]0;owned\x07"  # clear the screen, retitle the window, ring the bell


def _rewrite_text(store, sample_id: int, text: str) -> None:
    """What a model could have written: the stored sample's text, escapes and all."""
    with store.db.conn:
        store.db.conn.execute("update samples set text = ? where id = ?", [text, sample_id])


def _assert_shown_not_obeyed(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output
    assert "\u241b[2J" in output  # the escape's picture, then the rest of the sequence


def test_generate_and_samples_show_print_escapes_as_pictures(cli, tiny_model, store):
    model = ["--model", str(tiny_model)]
    result = cli("generate", f"{ESCAPE}The lamp", *model, "--seed", "1", "--max-new-tokens", "4")
    assert result.exit_code == 0, result.stderr
    _assert_shown_not_obeyed(result.stdout)

    sample_id = json_lines(cli("samples", "list", "--json").stdout)[0]["id"]
    _rewrite_text(store, sample_id, f" lit {ESCAPE} the lamps\x9b2J")
    shown = cli("samples", "show", str(sample_id))
    assert shown.exit_code == 0
    _assert_shown_not_obeyed(shown.stdout)
    assert "\x9b" not in shown.stdout and "lit " in shown.stdout and "the lamps" in shown.stdout
    listed = cli("samples", "list")
    assert "\x1b" not in listed.stdout and "\x9b" not in listed.stdout

    # data stays exact: JSON escapes every control character, which reads back the same
    exported = cli("samples", "export", "--format", "jsonl")
    assert "\x1b" not in exported.stdout and "\x9b" not in exported.stdout
    assert json_lines(exported.stdout)[0]["text"] == f" lit {ESCAPE} the lamps\x9b2J"


def test_compare_prints_escapes_as_pictures(cli, tiny_model, other_tiny_model):
    models = ["--model", str(tiny_model), "--model", str(other_tiny_model)]
    result = cli(
        "compare", f"{ESCAPE}Every evening", *models, "--seed", "3", "--max-new-tokens", "4"
    )
    assert result.exit_code == 0, result.stderr
    _assert_shown_not_obeyed(result.stdout)


def test_imported_text_and_file_names_print_as_pictures(cli, tmp_path):
    posts = tmp_path / "posts.txt"
    posts.write_text(f"first post {ESCAPE}\n%\nsecond post\n", encoding="utf-8")
    imported = cli("corpus", "import", str(posts), "--name", "mine")
    assert imported.exit_code == 0, imported.stderr
    shown = cli("corpus", "show", "mine")
    _assert_shown_not_obeyed(shown.stdout)
    assert "first post" in shown.stdout

    hostile_name = tmp_path / "bad\x1b[2J.txt"
    hostile_name.write_bytes(b"")  # an empty file given on its own is an error naming it
    failed = cli("corpus", "import", str(hostile_name), "--name", "other")
    assert failed.exit_code == 1
    assert "\x1b" not in failed.stderr and "bad\u241b[2J.txt" in failed.stderr
