"""`marinade generate` and `marinade compare`, driven through the CLI against a real store."""

from __future__ import annotations

import pytest

from conftest import json_lines

SAMPLE_KEYS = {
    "id",
    "model",
    "model_hash",
    "prompt",
    "text",
    "seed",
    "temperature",
    "top_k",
    "top_p",
    "max_new_tokens",
    "created_at",
    "stop",
    "new_tokens",
    "finish_reason",
    "device",
}


def test_generate_json_shape_and_logging(cli, tiny_model, store):
    result = cli(
        "generate",
        "The lamp",
        "--model",
        str(tiny_model),
        "-n",
        "2",
        "--seed",
        "7",
        "--max-new-tokens",
        "12",
        "--top-k",
        "50",
        "--top-p",
        "0.95",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    rows = json_lines(result.stdout)
    assert len(rows) == 2
    for row in rows:
        assert SAMPLE_KEYS <= set(row)
        assert row["prompt"] == "The lamp"
        assert not row["text"].startswith("The lamp")  # completion only
        assert row["model"] == str(tiny_model.resolve())
        assert len(row["model_hash"]) == 64
        assert (row["top_k"], row["top_p"], row["max_new_tokens"]) == (50, 0.95, 12)
        assert row["created_at"].endswith("+00:00")
    assert [row["seed"] for row in rows] == [7, 8]
    logged = {row["id"]: row for row in store.samples()}
    assert {row["id"] for row in rows} == set(logged)
    assert logged[rows[0]["id"]]["text"] == rows[0]["text"]


def test_same_command_same_seed_same_texts(cli, tiny_model):
    args = (
        "generate",
        "--model",
        str(tiny_model),
        "-n",
        "3",
        "--seed",
        "42",
        "--json",
        "--max-new-tokens",
        "15",
    )
    first = [row["text"] for row in json_lines(cli(*args).stdout)]
    second = [row["text"] for row in json_lines(cli(*args).stdout)]
    assert first == second
    one = json_lines(
        cli(
            "generate",
            "--model",
            str(tiny_model),
            "-n",
            "1",
            "--seed",
            "44",
            "--json",
            "--max-new-tokens",
            "15",
        ).stdout
    )
    assert one[0]["text"] == first[2]  # the recorded seed alone reproduces the sample


def test_unconditional_without_seed_records_a_seed(cli, tiny_model):
    rows = json_lines(
        cli(
            "generate", "--model", str(tiny_model), "-n", "2", "--json", "--max-new-tokens", "5"
        ).stdout
    )
    assert rows[0]["prompt"] is None
    assert rows[1]["seed"] == rows[0]["seed"] + 1


def test_several_temperatures_in_one_call(cli, tiny_model):
    rows = json_lines(
        cli(
            "generate",
            "I like",
            "--model",
            str(tiny_model),
            "-n",
            "3",
            "--seed",
            "1",
            "--temperature",
            "0.5",
            "--temperature",
            "1.3",
            "--json",
            "--max-new-tokens",
            "8",
        ).stdout
    )
    assert [(r["temperature"], r["seed"]) for r in rows] == [
        (0.5, 1),
        (0.5, 2),
        (0.5, 3),
        (1.3, 1),
        (1.3, 2),
        (1.3, 3),
    ]


def test_plain_output_shows_prompt_and_text(cli, tiny_model):
    result = cli(
        "generate", "The lamp", "--model", str(tiny_model), "--seed", "3", "--max-new-tokens", "8"
    )
    assert result.exit_code == 0
    assert "seed 3" in result.stdout and "The lamp" in result.stdout


def test_stop_string_from_the_cli(cli, tiny_model):
    base = (
        "generate",
        "The",
        "--model",
        str(tiny_model),
        "--seed",
        "5",
        "--json",
        "--max-new-tokens",
        "40",
    )
    text = json_lines(cli(*base).stdout)[0]["text"]
    stop = text[6:9]
    row = json_lines(cli(*base, "--stop", stop).stdout)[0]
    assert row["text"] == text[: text.index(stop)]
    assert (row["stop"], row["finish_reason"]) == (stop, "stop")
    # shells pass "\n" through as backslash and n: --stop turns it into a newline
    row = json_lines(cli(*base, "--stop", "\\n").stdout)[0]
    assert row["stop"] == "\n"
    assert "\n" not in row["text"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--temperature", "-0.5"), "--temperature must be 0 (greedy) or more"),
        (("--top-p", "0"), "--top-p must be in (0, 1]"),
        (("--top-p", "1.2"), "--top-p must be in (0, 1]"),
        (("--top-k", "-3"), "--top-k"),
        (("-n", "0"), "-n must be at least 1"),
        (("--batch-size", "0"), "--batch-size"),
        (("--seed", "-1"), "--seed"),
        (("--stop", ""), "--stop"),
        (("--quantize", "int4"), "--quantize must be one of int8"),
        (("--device", "cuda"), "no CUDA GPU"),
        (("--device", "toaster"), "unknown device"),
    ],
)
def test_bad_options_give_one_line_and_store_nothing(cli, tiny_model, store, args, message):
    result = cli("generate", "The", "--model", str(tiny_model), *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert store.count_samples() == 0


def test_prompt_longer_than_context_window(cli, tiny_model, store):
    result = cli("generate", "tea and toast " * 100, "--model", str(tiny_model))
    assert result.exit_code == 1
    assert "context window of 128 tokens" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert store.count_samples() == 0


def test_unknown_model_name(cli, store):
    result = cli("generate", "x", "--model", "no such model!")
    assert result.exit_code == 1
    assert "unknown model 'no such model!'" in result.stderr
    assert store.count_samples() == 0


def test_missing_local_folder_and_folder_without_config(cli, tmp_path):
    result = cli("generate", "x", "--model", "./definitely/not/here")
    assert result.exit_code == 1 and "no model folder at" in result.stderr
    (tmp_path / "empty").mkdir()
    result = cli("generate", "x", "--model", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "has no config.json" in result.stderr


def test_hub_model_offline_says_how_to_get_the_weights(cli, store):
    for name in ("gpt2", "someone/some-model"):
        result = cli("generate", "x", "--model", name)
        assert result.exit_code == 1
        assert f"{name}: the weights are not in the Hugging Face cache" in result.stderr
        assert f"hf download {name}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert store.count_samples() == 0


def test_home_that_cannot_be_written(tmp_path, tiny_model):
    from typer.testing import CliRunner

    from marinade.cli import app

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(
        app, ["--home", str(blocker / "home"), "generate", "x", "--model", str(tiny_model)]
    )
    assert result.exit_code == 1
    assert "cannot create the home folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_marinade_home_environment_variable(tmp_path, tiny_model, monkeypatch):
    from typer.testing import CliRunner

    from marinade.cli import app

    monkeypatch.setenv("MARINADE_HOME", str(tmp_path / "env-home"))
    result = CliRunner().invoke(
        app, ["generate", "--model", str(tiny_model), "--max-new-tokens", "3"]
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "env-home" / "marinade.db").exists()


def test_compare_two_models_same_seeds(cli, tiny_model, other_tiny_model, store):
    result = cli(
        "compare",
        "The lamp",
        "--seed",
        "42",
        "-n",
        "2",
        "--max-new-tokens",
        "10",
        "--model",
        str(tiny_model),
        "--model",
        str(other_tiny_model),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    rows = json_lines(result.stdout)
    assert [(r["model"], r["seed"]) for r in rows] == [
        (str(tiny_model.resolve()), 42),
        (str(tiny_model.resolve()), 43),
        (str(other_tiny_model.resolve()), 42),
        (str(other_tiny_model.resolve()), 43),
    ]
    assert rows[0]["model_hash"] != rows[2]["model_hash"]
    assert rows[0]["text"] != rows[2]["text"]
    assert {r["origin"] for r in rows} == {"compare"}
    assert len({r["batch_id"] for r in rows}) == 1
    assert store.count_samples() == 4


def test_compare_table_and_needs_two_models(cli, tiny_model, other_tiny_model):
    result = cli(
        "compare",
        "The lamp",
        "--seed",
        "1",
        "--max-new-tokens",
        "5",
        "--model",
        str(tiny_model),
        "--model",
        str(other_tiny_model),
    )
    assert result.exit_code == 0
    assert tiny_model.name in result.stdout and other_tiny_model.name in result.stdout
    result = cli("compare", "The lamp", "--model", str(tiny_model))
    assert result.exit_code == 1 and "two or more --model" in result.stderr


def test_texts_are_printed_as_they_are(cli, tiny_model):
    prompt = "I :smile: [bold]tea[/bold]"
    row = json_lines(
        cli(
            "generate", prompt, "--model", str(tiny_model), "--json", "--max-new-tokens", "3"
        ).stdout
    )[0]
    assert row["prompt"] == prompt
    plain = cli("generate", prompt, "--model", str(tiny_model), "--max-new-tokens", "3").stdout
    assert prompt in plain


def test_compare_stores_nothing_when_a_model_is_missing(cli, tiny_model, store):
    result = cli("compare", "x", "--model", str(tiny_model), "--model", "./not-there")
    assert result.exit_code == 1 and "no model folder" in result.stderr
    assert store.count_samples() == 0
