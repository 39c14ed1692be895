"""Chat (`marinade chat`): the dialog convention of `corpus import --dialog`, the history kept
within the context window, conversations in the store; driven through a pipe and a terminal."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest
from transformers import AutoTokenizer

from marinade.chat import ChatSettings, Turn, build_prompt
from marinade.cli.write import printable
from marinade.corpus.document import format_dialog
from marinade.errors import MarinadeError

SRC = Path(__file__).resolve().parent.parent / "src"
EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def chat_args(tiny_model: Path, *extra: str) -> list[str]:
    return ["chat", "--model", str(tiny_model), "--max-new-tokens", "12", *extra]


TURNS = [Turn("user", "Hello"), Turn("model", "Hi  there\n"), Turn("user", "How are you?")]


def test_prompt_is_a_dialog_document_ending_with_the_models_prefix(tokenizer):
    prompt, kept = build_prompt(tokenizer, TURNS, ChatSettings(), 1000)
    # by default the user is the other side (">") and the model answers as the owner ("-")
    assert prompt == f"{EOT}> Hello\n- Hi there\n> How are you?\n-"
    assert (
        prompt
        == EOT
        + format_dialog([(False, "Hello"), (True, "Hi there"), (False, "How are you?")])
        + "\n-"
    )
    assert kept == 3
    swapped, _ = build_prompt(tokenizer, TURNS, ChatSettings(me="-"), 1000)
    assert swapped == f"{EOT}- Hello\n> Hi there\n- How are you?\n>"


def test_history_drops_the_oldest_turns_to_fit_the_window(tokenizer):
    turns = [
        Turn("user" if index % 2 == 0 else "model", f"turn number {index} says something")
        for index in range(31)
    ]
    settings = ChatSettings(max_new_tokens=20)
    prompt, kept = build_prompt(tokenizer, turns, settings, 128)
    assert 1 <= kept < 31
    assert len(tokenizer(prompt)["input_ids"]) <= 128 - 20
    assert prompt.endswith("- turn number 29 says something\n> turn number 30 says something\n-")
    assert "turn number 0 " not in prompt
    assert f"turn number {31 - kept} says" in prompt and f"number {30 - kept} says" not in prompt
    with pytest.raises(MarinadeError, match="does not fit the model's context window"):
        build_prompt(tokenizer, [Turn("user", "word " * 400)], settings, 128)


def test_chat_from_a_pipe_stores_the_conversation(cli, tiny_model, store):
    result = cli(*chat_args(tiny_model, "--seed", "5"), input="Hello there\nHow are you?\n")
    assert result.exit_code == 0, result.stderr
    [conversation] = store.conversations()
    turns = store.chat_turns(conversation["id"])
    assert [turn["speaker"] for turn in turns] == ["user", "model", "user", "model"]
    assert [turn["text"] for turn in turns[::2]] == ["Hello there", "How are you?"]
    answers = turns[1::2]
    assert [turn["seed"] for turn in answers] == [5, 6]
    assert [turn["context_turns"] for turn in answers] == [0, 2]
    assert all("\n" not in turn["text"] for turn in answers)
    assert conversation["me"] == ">" and conversation["model"] == str(tiny_model.resolve())
    for answer in answers:
        assert f"- {printable(answer['text'])}\n" in result.stdout
    shown = cli("chat", "show", "1").stdout
    assert shown.startswith("> Hello there\n")
    assert (
        shown
        == format_dialog([(turn["speaker"] == "model", turn["text"]) for turn in turns]) + "\n"
    )
    assert "Hello there" in cli("chat", "list").stdout

    assert cli("chat", "show", "last").stdout == shown
    resumed = cli("chat", "--resume", "last", input="And then?\n")
    assert resumed.exit_code == 0, resumed.stderr
    turns = store.chat_turns(1)
    assert len(turns) == 6 and turns[5]["seed"] == 7 and turns[5]["context_turns"] == 4
    refused = cli("chat", "--resume", "1", "--me", "-", input="")
    assert refused.exit_code == 1 and "start a new one" in refused.stderr


def test_long_chat_keeps_to_the_context_window(cli, tiny_model, store):
    lines = "".join(f"this is my message number {index} and it is long\n" for index in range(8))
    result = cli(*chat_args(tiny_model, "--seed", "1", "--max-new-tokens", "40"), input=lines)
    assert result.exit_code == 0, result.stderr
    answers = [turn for turn in store.chat_turns(1) if turn["speaker"] == "model"]
    assert len(answers) == 8
    seen = [turn["context_turns"] for turn in answers]
    assert seen[0] == 0 and seen[-1] < 14  # the oldest turns were left out of the prompt


def test_me_must_be_a_dialog_prefix(cli, tiny_model):
    result = cli(*chat_args(tiny_model, "--me", "#"), input="hi\n")
    assert result.exit_code == 1
    assert "--me must be '>'" in result.stderr


def test_chat_in_a_terminal_as_the_owner(tiny_model, home_dir, store):
    """The real program in a pseudo-terminal, the user on the owner's side ('-')."""
    env = dict(os.environ, PYTHONPATH=str(SRC), TERM="dumb", COLUMNS="200")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "marinade", "--home", str(home_dir)]
        + chat_args(tiny_model, "--seed", "9", "--me", "-"),
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(50, 200),
    )
    try:
        child.expect("you write as '-'")
        child.expect("- ")
        child.sendline("Good evening")
        child.expect(r"\r\n> ")  # the model's answer, on the other side
        child.expect("- ")
        child.sendline("Tell me more")
        child.expect(r"\r\n> ")
        child.expect("- ")
        child.sendeof()
        child.expect("marinade chat --resume 1")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    turns = store.chat_turns(1)
    assert [(turn["speaker"], turn["seed"]) for turn in turns] == [
        ("user", None),
        ("model", 9),
        ("user", None),
        ("model", 10),
    ]
    assert turns[2]["text"] == "Tell me more"
    assert store.conversation(1)["me"] == "-"


def test_an_empty_answer_is_said_so_and_stored(cli, tiny_model, tokenizer, store):
    """A model may end its turn at once (end of text or a line break first): the user is
    told so rather than shown a bare prefix, and the empty turn is stored as it came."""
    from transformers import AutoModelForCausalLM

    from marinade.sampling import sample

    settings = ChatSettings(max_new_tokens=12)
    prompt, _ = build_prompt(tokenizer, [Turn("user", "Hello there")], settings, 128)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    completions = sample(model, tokenizer, prompt, range(1000), [0.8], settings.sample_settings())
    silent = next(c.seed for c in completions if not " ".join(c.text.split()))
    result = cli(*chat_args(tiny_model, "--seed", str(silent)), input="Hello there\n")
    assert result.exit_code == 0, result.stderr
    assert "- (no answer: it ended its turn)" in result.stdout
    answer = store.chat_turns(1)[1]
    assert (answer["speaker"], answer["text"], answer["seed"]) == ("model", "", silent)
