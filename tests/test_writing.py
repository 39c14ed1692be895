"""Co-writing (`marinade write`): the story tree in the store, driven through the CLI,
through a pipe of commands and through a real pseudo-terminal."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pexpect
import pytest

from marinade.cli.write import printable
from marinade.writing import WriteSettings, fit_context, load_story, sentence_end

SRC = Path(__file__).resolve().parent.parent / "src"
OPENING = "The lamplighter came along the quay"


def write_args(tiny_model: Path, *extra: str) -> list[str]:
    return ["write", "--model", str(tiny_model), "--max-new-tokens", "10", *extra]


def auto_args(tiny_model: Path, seed: int, steps: int, opening: str) -> list[str]:
    """Write `steps` steps taking the first proposal each time."""
    return write_args(
        tiny_model, "--seed", str(seed), "--auto-pick", "1", "--steps", str(steps), opening
    )


def nodes_by_parent(store, story_id: int) -> dict[int | None, list[dict]]:
    children: dict[int | None, list[dict]] = {}
    for node in store.story_nodes(story_id):
        children.setdefault(node["parent_id"], []).append(node)
    return children


def chosen_path(store, story_id: int) -> list[dict]:
    """The chosen nodes from the root down, checked to form one chain ending at the cursor."""
    children = nodes_by_parent(store, story_id)
    path = [children[None][0]]
    while True:
        chosen = [node for node in children.get(path[-1]["id"], []) if node["chosen"]]
        assert len(chosen) <= 1
        if not chosen:
            break
        path.append(chosen[0])
    assert store.story(story_id)["current_node_id"] == path[-1]["id"]
    assert sum(node["chosen"] for node in store.story_nodes(story_id)) == len(path)
    return path


@pytest.mark.parametrize(
    ("text", "end"),
    [
        (" and lit the lamps. Then he", len(" and lit the lamps.")),
        (' "Stop!" she said. And', len(' "Stop!" she said.')),  # one sentence, as sampled
        (" Dr. Lamb came at six. Then", len(" Dr. Lamb came at six.")),  # an abbreviation
        (" it rained 🌧️ again! 😀 Later", len(" it rained 🌧️ again! 😀")),  # emoji after the end
        ("夜が来た。灯りがともる", len("夜が来た。")),  # no space after a CJK full stop
        (" no end in sight", None),
        ("\n\nA new paragraph. More", len("\n\nA new paragraph.")),
        (" one line\nanother", len(" one line")),
        (" a sentence ending the text.", len(" a sentence ending the text.")),
        (" version 2.5 of it. Yes", len(" version 2.5 of it.")),
    ],
)
def test_sentence_end(text, end):
    assert sentence_end(text) == end


def test_auto_pick_takes_the_first_proposal_each_step_and_keeps_the_tree(cli, tiny_model, store):
    result = cli(*auto_args(tiny_model, 1, 2, OPENING))
    assert result.exit_code == 0, result.stderr
    [story] = store.stories()
    children = nodes_by_parent(store, story["id"])
    model_nodes = [node for node in store.story_nodes(story["id"]) if node["author"] == "model"]
    assert sorted(node["seed"] for node in model_nodes) == list(range(1, 11))  # 2 steps x 5
    path = chosen_path(store, story["id"])
    assert [node["author"] for node in path] == ["user", "model", "model"]
    assert path[0]["text"] == OPENING
    for parent, node in zip(path, path[1:], strict=False):
        assert node["id"] == children[parent["id"]][0]["id"]  # the first proposal was taken
    assert [node["seed"] for node in path[1:]] == [1, 6]
    story_text = "".join(node["text"] for node in path)
    assert printable(story_text) in result.stdout  # control characters shown as pictures
    exported = cli("write", "export", str(story["id"]), "--format", "txt")
    assert exported.stdout == story_text + "\n"

    # the same seed makes the same story
    again = cli(*auto_args(tiny_model, 1, 2, OPENING))
    second = max(row["id"] for row in store.stories())
    assert load_story(store, second).text() == story_text, again.stderr


def test_commands_from_a_pipe(cli, tiny_model, store):
    """Without a terminal, commands are read one a line from standard input."""
    result = cli(
        *write_args(tiny_model, "--seed", "20", OPENING),
        input="m\n7\nt Her own words.\nb\ne 2\nA line of mine.\nq\n",
    )
    assert result.exit_code == 0, result.stderr
    for number, seed in ((1, 20), (7, 26), (10, 29)):  # each proposal shows its seed
        assert re.search(rf"\n +{number}  .* · seed {seed}\n", result.stdout)
    story = load_story(store, 1)
    root_children = story.children(story.path()[0].id)
    assert len(root_children) == 10  # 5, then 5 more
    assert [node.seed for node in root_children] == list(range(20, 30))
    seventh = root_children[6]
    path = story.path()
    assert path[1].id == seventh.id and path[1].seed == 26
    own = [node for node in story.nodes.values() if node.author == "user" and node.parent_id]
    assert len(own) == 1 and not own[0].chosen  # went back: a branch not taken
    assert own[0].text.strip() == "Her own words."
    # at the seventh, after going back, proposal 2 is the second child made there
    second = story.children(seventh.id)[1]
    assert path[2].id == second.id
    assert path[2].text == "A line of mine." and path[2].edited
    assert path[2].proposed_text != "A line of mine."
    assert path == story.path() and story.current_id == path[-1].id
    chosen_path(store, 1)

    tree = cli("write", "export", "1", "--format", "md", "--tree").stdout
    assert tree.startswith(f"# {OPENING}\n\n{story.text()}")
    assert "Her own words." in tree.split("Branches not taken")[1]
    assert "*(you)*" in tree and "edited" not in tree.split("Branches not taken")[1]
    plain = cli("write", "export", "1", "--format", "txt").stdout
    assert "Her own words." not in plain and plain.endswith("A line of mine.\n")


def test_resume_goes_on_from_the_cursor(cli, tiny_model, store):
    cli(*auto_args(tiny_model, 5, 1, OPENING))
    before = load_story(store, 1)
    result = cli(
        "write", "--resume", "1", "--auto-pick", "2", "--steps", "1", "--max-new-tokens", "8"
    )
    assert result.exit_code == 0, result.stderr
    after = load_story(store, 1)
    assert after.model == before.model
    assert after.settings.max_new_tokens == 8 and after.settings.seed == 5  # flag wins, rest kept
    assert after.text().startswith(before.text())
    assert after.path()[-1].parent_id == before.current_id
    assert after.path()[-1].seed == 5 + 5 + 1  # the story's 7th proposal, the second of step 2
    listing = cli("write", "list").stdout  # 80 columns: the long model path and title fold
    assert re.search(r"^ 1 +\d{4}-\d\d-\d\d \d\d:\d\d +…\S+ +2 +11 +The ", listing, re.M)
    assert "lamplighter" in listing and str(tiny_model) not in listing

    cli(*auto_args(tiny_model, 9, 1, "Another story"))  # story 2, the newest
    result = cli("write", "--resume", "last", "--auto-pick", "1", "--steps", "1")
    assert result.exit_code == 0, result.stderr
    assert len(load_story(store, 2).path()) == 3 and load_story(store, 1).text() == after.text()
    bad = cli("write", "--resume", "two")
    assert bad.exit_code == 1 and "a story must be a number or `last`, not 'two'" in bad.stderr


def test_long_story_keeps_to_the_context_window(cli, tiny_model, store):
    opening = " ".join([OPENING] * 40)  # far more than the tiny model's 128 positions
    result = cli(*auto_args(tiny_model, 1, 1, opening))
    assert result.exit_code == 0, result.stderr
    assert load_story(store, 1).text().startswith(opening)


def test_fit_context_keeps_the_end(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text = " ".join(f"word{index}" for index in range(200))
    kept = fit_context(tokenizer, text, 50)
    assert text.endswith(kept)
    assert len(tokenizer(kept)["input_ids"]) <= 50
    assert fit_context(tokenizer, "short", 50) == "short"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--auto-pick", "1", OPENING], "--auto-pick N and --steps S go together"),
        (["--auto-pick", "6", "--steps", "1", OPENING], "between 1 and --count (5)"),
        (["--resume", "9"], "no story with id 9"),
        (["--count", "0", OPENING], "--count must be at least 1"),
    ],
)
def test_bad_requests_are_one_line_errors(cli, tiny_model, args, message):
    result = cli(*write_args(tiny_model, *args))
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_interactive_session_in_a_terminal(tiny_model, home_dir, store):
    """The real program in a pseudo-terminal: more, pick, edit in place, own text, back, quit."""
    env = dict(os.environ, PYTHONPATH=str(SRC), TERM="dumb", COLUMNS="200")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "marinade", "--home", str(home_dir)]
        + write_args(tiny_model, "--seed", "3", OPENING),
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(50, 200),
    )
    try:
        child.expect(r"\n\s+5  ")
        child.expect("write> ")
        child.sendline("m")
        child.expect(r"\n\s+10  ")  # the five more are numbered on
        child.expect("write> ")
        child.sendline("2")
        child.expect("write> ")
        child.sendline("e 1")
        child.expect("edit> ")
        child.send("\x05 Then he left.\r")  # readline: end of the pre-filled line, type, enter
        child.expect("write> ")
        child.sendline("t She waved.")
        child.expect("write> ")
        child.sendline("b")
        child.expect(r"6  She waved\. \(you\)")
        child.expect("write> ")
        child.sendline("q")
        child.expect("marinade write --resume 1")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0

    story = load_story(store, 1)
    path = story.path()
    assert [node.seed for node in path] == [None, 4, 13]  # proposal 2 of 10; 1 of the next 5
    edited = path[2]
    assert edited.proposed_text and edited.text == edited.proposed_text + " Then he left."
    waved = [node for node in story.children(edited.id) if node.author == "user"]
    assert [node.text for node in waved] == [" She waved."] and not waved[0].chosen
    assert len(story.children(edited.id)) == 6


def test_the_demo_lines_on_a_tiny_model(cli, tiny_model, store, tmp_path):
    """The Makefile demo's write and glyphs lines, with the tiny model in place of demo-run."""
    model = str(tiny_model)
    made = cli("compare", "Every evening", "--seed", "7", "-n", "2", "--max-new-tokens", "12",
               "--model", model, "--model", model)  # fmt: skip
    assert made.exit_code == 0, made.stderr
    wrote = cli("write", "--model", model, "--seed", "1", "--auto-pick", "1", "--steps", "2",
                "--max-new-tokens", "30", OPENING)  # fmt: skip
    assert wrote.exit_code == 0, wrote.stderr
    exported = cli("write", "export", "last", "--format", "md", "--tree")
    assert exported.exit_code == 0, exported.stderr
    assert exported.stdout.startswith(f"# {OPENING}\n\n{load_story(store, 1).text().strip()}")
    shown = cli("glyphs", "--sample", "last")
    assert shown.exit_code == 0, shown.stderr
    page = tmp_path / "demo-glyphs.html"
    result = cli("glyphs", "--sample", "last", "--reveal", "-o", str(page))
    assert result.exit_code == 0, result.stderr
    newest = max(row["id"] for row in store.samples())
    assert f"Sample {newest}" in page.read_text(encoding="utf-8")


def test_a_proposal_is_never_empty_and_old_stories_propose_as_they_did(tiny_model, store):
    """Co-writing wants continuations: the end-of-text token is held back for the first
    token (the demo's model, trained on short posts, ended every second proposal at once)."""
    from marinade.home import open_home
    from marinade.models import load_model
    from marinade.writing import WriteSettings, propose, start_story

    loaded = load_model(str(tiny_model), open_home(store.path.parent))
    settings = WriteSettings(count=1000, max_new_tokens=1, sentence=False)
    story = start_story(store, "The", str(tiny_model), settings)
    assert all(node.text for node in propose(store, story, loaded))

    old = WriteSettings.from_json('{"count": 1000, "max_new_tokens": 1, "sentence": false}')
    assert old.min_new_tokens == 0  # a story begun before the setting existed
    story = start_story(store, "The", str(tiny_model), old)
    assert any(not node.text for node in propose(store, story, loaded))  # this can happen


def test_proposals_sample_on_a_little_to_reach_a_sentence_end():
    on = WriteSettings(max_new_tokens=20).sample_settings()
    assert on.whole_sentences and on.token_cap() > 20
    off = WriteSettings(max_new_tokens=20, sentence=False).sample_settings()
    assert not off.whole_sentences and off.token_cap() == 20
