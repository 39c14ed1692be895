"""Recipes: phase syntax, settings checks, recipe files, and defaults < file < flags."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from marinade.errors import MarinadeError
from marinade.training.recipe import (
    Phase,
    Recipe,
    TrainSettings,
    build_recipe,
    load_recipe,
    parse_phase,
)

GOOD_RECIPE = """
name = "tweetbot"
model = "gpt2-medium"
from = "base-run@1"
phases = ["admired:1500", "mine:100:2e-5"]

[training]
method = "lora"
lora_rank = 8
block_size = 128
lr = 1e-4
max_minutes = 30
sample_prompts = ["How does one become free?"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- phases ---------------------------------------------------------------


def test_single_corpus_phase_has_weight_one():
    assert parse_phase("admired:1500") == Phase((("admired", 1.0),), 1500)


def test_merged_phase_pools_corpora_with_weights_left_to_sizes():
    phase = parse_phase("admired+mine:1600")
    assert phase == Phase((("admired", 0.0), ("mine", 0.0)), 1600, merge=True)
    assert phase.names() == ["admired", "mine"]


def test_weighted_phase_keeps_weights_in_order():
    phase = parse_phase("admired=0.3,mine=0.7:1000")
    assert phase.corpora == (("admired", 0.3), ("mine", 0.7))
    assert phase.merge is False
    assert phase.steps == 1000


def test_phase_learning_rate_and_names_with_dots_and_dashes():
    phase = parse_phase(" my.corpus-2 : 100 : 2e-5 ")
    assert phase == Phase((("my.corpus-2", 1.0),), 100, lr=2e-5)


def test_weights_within_tolerance_of_one_are_accepted():
    phase = parse_phase("a=0.1,b=0.2,c=0.7:10")  # floats add to 0.9999999999999999
    assert [weight for _, weight in phase.corpora] == [0.1, 0.2, 0.7]


@pytest.mark.parametrize(
    "text, label",
    [
        ("admired:1500", "admired:1500"),
        ("admired+mine:1600", "admired+mine:1600"),
        ("admired=0.3,mine=0.7:1000", "admired=0.3,mine=0.7:1000"),
        ("mine:100:2e-5", "mine:100:2e-05"),
        ("a+b+c:7:0.001", "a+b+c:7:0.001"),
        ("solo=1:5", "solo:5"),
    ],
)
def test_label_round_trips_through_parse_phase(text, label):
    phase = parse_phase(text)
    assert phase.label() == label
    assert parse_phase(phase.label()) == phase


@pytest.mark.parametrize(
    "text, problem",
    [
        ("a:0", "steps must be a positive whole number, not 0"),
        ("a:-5", "steps '-5' is not a positive whole number"),
        ("a:1.5", "steps '1.5' is not a positive whole number or auto"),
        ("a:automatic", "steps 'automatic' is not a positive whole number or auto"),
        ("a:", "steps '' is not a positive whole number"),
        ("a:1:2:3", "too many ':'"),
        (":10", "a corpus name is empty"),
        ("a+:10", "a corpus name is empty"),
        ("a b:10", "corpus name 'a b' must be"),
        ("a+a:10", "a corpus is named twice"),
        ("a=0.5:10", "weights add up to 0.5, not 1"),
        ("a=0.5,b=0.6:10", "weights add up to 1.1, not 1"),
        ("a=0.5,b:10", "'b' needs a positive weight"),
        ("a=-0.5,b=1.5:10", "'a=-0.5' needs a positive weight"),
        ("a=x,b=1:10", "'a=x' needs a positive weight"),
        ("a:10:fast", "learning rate 'fast' is not a positive number"),
        ("a:10:0", "learning rate '0' is not a positive number"),
        ("a:10:-1e-5", "learning rate '-1e-5' is not a positive number"),
        ("a:10:nan", "learning rate 'nan' is not a positive number"),
    ],
)
def test_bad_phase_is_a_one_line_error_quoting_the_text_and_the_syntax(text, problem):
    with pytest.raises(MarinadeError) as caught:
        parse_phase(text)
    message = str(caught.value)
    assert message.startswith(f"bad phase {text!r}: {problem}")
    assert "CORPUS[:STEPS[:LR]]" in message
    assert "\n" not in message


# --- settings -------------------------------------------------------------


def test_default_settings_pass_their_check():
    TrainSettings().check()
    TrainSettings(method="lora", schedule="constant", max_minutes=0.5, held_out=0.5).check()


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"method": "qlora"}, "method must be 'full' or 'lora', not 'qlora'"),
        ({"schedule": "step"}, "schedule must be 'cosine', 'linear' or 'constant'"),
        ({"lr": 0.0}, "lr must be positive, not 0.0"),
        ({"lr": -1e-4}, "lr must be positive"),
        ({"batch_size": 0}, "batch_size must be at least 1, not 0"),
        ({"block_size": -8}, "block_size must be at least 1, not -8"),
        ({"lora_rank": 0}, "lora_rank must be at least 1, not 0"),
        ({"grad_accum": 0}, "grad_accum must be at least 1"),
        ({"warmup": -1}, "warmup must be 0 or more, not -1"),
        ({"eval_every": -1}, "eval_every must be 0 or more"),
        ({"save_every": -1}, "save_every must be 0 or more"),
        ({"sample_every": -1}, "sample_every must be 0 or more"),
        ({"held_out": 0.0}, "held_out must be in (0, 0.5], not 0.0"),
        ({"held_out": 0.6}, "held_out must be in (0, 0.5], not 0.6"),
        ({"max_minutes": 0.0}, "max_minutes must be positive, not 0.0"),
        ({"lora_dropout": 1.0}, "lora_dropout must be in [0, 1)"),
        ({"sample_temperature": -0.1}, "sample_temperature must be 0 (greedy) or more"),
    ],
)
def test_bad_settings_are_refused(changes, problem):
    with pytest.raises(MarinadeError) as caught:
        replace(TrainSettings(), **changes).check()
    assert str(caught.value).startswith(problem)


# --- recipes --------------------------------------------------------------


def make_recipe(**changes) -> Recipe:
    recipe = Recipe(
        name="tweetbot",
        model="gpt2",
        phases=(parse_phase("admired:1500"), parse_phase("admired=0.3,mine=0.7:100:2e-5")),
        settings=TrainSettings(method="lora", sample_prompts=("Hello",), max_minutes=5.0),
    )
    return replace(recipe, **changes)


def test_recipe_lists_corpora_in_first_seen_order_and_sums_steps():
    recipe = make_recipe(phases=(parse_phase("b:10"), parse_phase("a+b:5"), parse_phase("c:1")))
    assert recipe.corpora() == ["b", "a", "c"]
    assert recipe.total_steps() == 16


@pytest.mark.parametrize("start_from", [None, "run", "run@2", "base-run.v1@1"])
def test_good_start_from_passes(start_from):
    make_recipe(start_from=start_from).check()


@pytest.mark.parametrize("start_from", ["run@0", "run@x", "run@", "@2", "run@-1", "a b"])
def test_bad_start_from_is_refused(start_from):
    with pytest.raises(MarinadeError, match=f"bad start '{start_from}': expected RUN@PHASE"):
        make_recipe(start_from=start_from).check()


def test_recipe_check_refuses_no_phases_bad_names_and_bad_settings():
    with pytest.raises(MarinadeError, match="at least one phase"):
        make_recipe(phases=()).check()
    with pytest.raises(MarinadeError, match="run name 'my run' must be"):
        make_recipe(name="my run").check()
    with pytest.raises(MarinadeError, match="batch_size must be at least 1"):
        make_recipe(settings=TrainSettings(batch_size=0)).check()
    with pytest.raises(MarinadeError, match="bad phase 'a=0.5,b=0.6:10': weights add up"):
        make_recipe(phases=(Phase((("a", 0.5), ("b", 0.6)), 10),)).check()


def test_to_dict_is_plain_json_and_from_dict_restores_the_recipe():
    recipe = make_recipe(start_from="base@1")
    data = recipe.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert [phase["label"] for phase in data["phases"]] == [
        "admired:1500",
        "admired=0.3,mine=0.7:100:2e-05",
    ]
    assert data["phases"][1]["corpora"] == [["admired", 0.3], ["mine", 0.7]]
    assert data["settings"]["sample_prompts"] == ["Hello"]
    restored = Recipe.from_dict(json.loads(json.dumps(data)))
    assert restored == recipe
    assert restored.settings.sample_prompts == ("Hello",)


# --- recipe files ---------------------------------------------------------


def test_load_recipe_reads_every_section_with_the_fields_types(tmp_path):
    values = load_recipe(write(tmp_path, GOOD_RECIPE))
    assert values == {
        "name": "tweetbot",
        "model": "gpt2-medium",
        "start_from": "base-run@1",
        "phases": ["admired:1500", "mine:100:2e-5"],
        "training": {
            "method": "lora",
            "lora_rank": 8,
            "block_size": 128,
            "lr": 1e-4,
            "max_minutes": 30.0,
            "sample_prompts": ("How does one become free?",),
        },
    }
    assert isinstance(values["training"]["max_minutes"], float)


def test_a_yes_or_no_setting_is_true_or_false(tmp_path):
    """`compile = true` in a recipe file or a grid's [training] is `train --compile`."""
    values = load_recipe(write(tmp_path, "[training]\ncompile = true\n"))
    assert values["training"] == {"compile": True}
    assert TrainSettings(**values["training"]).compile is True


def test_unknown_top_level_key_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, 'name = "x"\nphase = ["a:10"]\n')
    with pytest.raises(MarinadeError, match="unknown key 'phase'") as caught:
        load_recipe(path)
    assert str(path) in str(caught.value)


def test_unknown_training_key_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "[training]\nblocksize = 128\n")
    with pytest.raises(MarinadeError, match=r"unknown key 'blocksize' in \[training\]") as caught:
        load_recipe(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "text, problem",
    [
        ('[training]\nblock_size = "big"\n', "block_size in [training] must be a whole number"),
        ("[training]\nblock_size = 128.0\n", "block_size in [training] must be a whole number"),
        ("[training]\nlr = true\n", "lr in [training] must be a number"),
        ('[training]\nlr = "5e-5"\n', "lr in [training] must be a number"),
        ("[training]\nmethod = 1\n", "method in [training] must be a string"),
        ('[training]\nsample_prompts = "hi"\n', "sample_prompts in [training] must be a list"),
        ('[training]\ncompile = "yes"\n', "compile in [training] must be true or false"),
        ("[training]\ncompile = 1\n", "compile in [training] must be true or false"),
        ("name = 3\n", "name must be a string"),
        ('phases = "a:10"\n', "phases must be a list of strings"),
        ("training = 3\n", "training must be a [training] table"),
    ],
)
def test_wrong_type_names_the_key(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(MarinadeError) as caught:
        load_recipe(path)
    assert str(caught.value).startswith(f"{path}: {problem}")


def test_bad_phase_or_setting_in_a_file_names_the_file(tmp_path):
    path = write(tmp_path, 'phases = ["a:0"]\n')
    with pytest.raises(MarinadeError, match="bad phase 'a:0'") as caught:
        load_recipe(path)
    assert str(caught.value).startswith(f"{path}: ")
    path = write(tmp_path, '[training]\nschedule = "steps"\n')
    with pytest.raises(MarinadeError, match="schedule must be") as caught:
        load_recipe(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_bad_toml_syntax_names_the_file_on_one_line(tmp_path):
    path = write(tmp_path, "name = \n")
    with pytest.raises(MarinadeError, match="not valid TOML") as caught:
        load_recipe(path)
    assert str(path) in str(caught.value)
    assert "line 1" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_recipe_file_is_named(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(MarinadeError, match=f"recipe file {path} not found"):
        load_recipe(path)


# --- resolution -----------------------------------------------------------


def test_defaults_then_file_then_flags(tmp_path):
    file_values = load_recipe(write(tmp_path, GOOD_RECIPE))
    recipe = build_recipe(None, None, [], None, file_values, {"lr": 3e-4, "seed": 7})
    assert recipe.name == "tweetbot"
    assert recipe.model == "gpt2-medium"
    assert recipe.start_from == "base-run@1"
    assert [phase.label() for phase in recipe.phases] == ["admired:1500", "mine:100:2e-05"]
    settings = recipe.settings
    assert settings.lr == 3e-4  # flag beats file
    assert settings.seed == 7  # flag beats default
    assert settings.block_size == 128  # file beats default
    assert settings.method == "lora"
    assert settings.batch_size == 8  # default
    assert settings.sample_prompts == ("How does one become free?",)


def test_command_line_name_model_phases_and_start_replace_the_files(tmp_path):
    file_values = load_recipe(write(tmp_path, GOOD_RECIPE))
    recipe = build_recipe(
        "other", "gpt2", ["mine:300"], "tweetbot@2", file_values, {"sample_prompts": ["Yo"]}
    )
    assert (recipe.name, recipe.model, recipe.start_from) == ("other", "gpt2", "tweetbot@2")
    assert recipe.phases == (Phase((("mine", 1.0),), 300),)
    assert recipe.settings.sample_prompts == ("Yo",)
    assert recipe.settings.block_size == 128


def test_without_a_file_the_model_defaults_to_smollm2():
    recipe = build_recipe("tweetbot", None, ["admired:1500", "mine:100"], None, None, {})
    assert recipe.model == "smollm2"
    assert recipe.settings == TrainSettings()
    assert recipe.total_steps() == 1600


def test_missing_name_or_phases_is_an_error():
    with pytest.raises(MarinadeError, match="a run needs a name"):
        build_recipe(None, None, ["a:10"], None, None, {})
    with pytest.raises(MarinadeError, match="at least one phase"):
        build_recipe("run", None, [], None, {"model": "gpt2"}, {})


def test_bad_flag_values_are_checked_after_resolution():
    with pytest.raises(MarinadeError, match="lr must be positive"):
        build_recipe("run", None, ["a:10"], None, None, {"lr": -1.0})
    with pytest.raises(MarinadeError, match="bad start 'run@0'"):
        build_recipe("run", None, ["a:10"], "run@0", None, {})


# --- first-run defaults: automatic steps, lr by method, warm-up -------------


@pytest.mark.parametrize("text", ["mine", "mine:auto", "mine:AUTO"])
def test_a_phase_without_steps_is_automatic(text):
    phase = parse_phase(text)
    assert phase == Phase((("mine", 1.0),), None, auto=True)
    assert phase.label() == "mine:auto" and phase.request() == "mine:auto"


def test_automatic_steps_keep_lr_and_merges():
    phase = parse_phase("a+b:auto:2e-5")
    assert phase.merge and phase.steps is None and phase.lr == 2e-5
    assert parse_phase(phase.label()) == phase


def test_automatic_steps_are_passes_over_the_training_tokens_within_bounds():
    from marinade.training.recipe import AUTO_MAX_STEPS, AUTO_MIN_STEPS, automatic_steps

    settings = TrainSettings(batch_size=8, block_size=256)  # 2048 tokens a step
    assert automatic_steps(4_000, settings) == AUTO_MIN_STEPS  # a few posts: the floor
    assert automatic_steps(100 * 2048, settings) == 200  # two passes
    assert automatic_steps(10**8, settings) == AUTO_MAX_STEPS  # a library: the ceiling
    assert automatic_steps(100 * 2048, replace(settings, grad_accum=2)) == 100


def test_a_run_picks_its_automatic_steps_and_remembers_it_asked_for_them():
    from marinade.training.recipe import describe_automatic_steps, with_automatic_steps

    recipe = build_recipe("r", None, ["big", "big+small:auto", "small:7"], None, None, {})
    assert not recipe.steps_picked()
    with pytest.raises(MarinadeError, match="picked when the run starts"):
        recipe.total_steps()
    picked = with_automatic_steps(recipe, {"big": 300 * 2048, "small": 2048})
    assert [p.steps for p in picked.phases] == [300, 300, 7]
    assert picked.total_steps() == 607
    assert [p.label() for p in picked.phases] == ["big:300", "big+small:300", "small:7"]
    assert [p.request() for p in picked.phases] == ["big:auto", "big+small:auto", "small:7"]
    again = Recipe.from_dict(json.loads(json.dumps(picked.to_dict())))
    assert again == picked
    lines = describe_automatic_steps(picked, {"big": 300 * 2048, "small": 2048})
    assert lines[0] == (
        "phase 1 (big:auto): 300 steps, about 1.0 passes over its 614,400 training tokens"
    )
    assert len(lines) == 2


def test_the_learning_rate_default_follows_the_method():
    from marinade.training.recipe import DEFAULT_LR

    assert TrainSettings(method="lora").lr == DEFAULT_LR["lora"]
    assert TrainSettings(method="full").lr == DEFAULT_LR["full"]
    assert DEFAULT_LR["lora"] > DEFAULT_LR["full"]
    assert TrainSettings(method="lora", lr=3e-4).lr == 3e-4
    # a file's method and the flags' absence of an lr: the lr of the file's method
    recipe = build_recipe("r", None, ["a:1"], None, {"training": {"method": "lora"}}, {})
    assert recipe.settings.lr == DEFAULT_LR["lora"]
    recipe = build_recipe(
        "r", None, ["a:1"], None, {"training": {"method": "lora"}}, {"method": "full"}
    )
    assert recipe.settings.lr == DEFAULT_LR["full"]


def test_warmup_defaults_to_a_tenth_of_the_run_at_most_twenty():
    from marinade.training.loop import lr_factor
    from marinade.training.recipe import automatic_warmup

    assert [automatic_warmup(n) for n in (5, 30, 100, 1000)] == [1, 3, 10, 20]
    recipe = build_recipe("r", None, ["a:30"], None, None, {"schedule": "constant"})
    assert recipe.settings.warmup is None
    assert [lr_factor(recipe, s) for s in range(4)] == [1 / 3, 2 / 3, 1.0, 1.0]


def test_a_recipe_stored_before_first_run_defaults_reads_as_it_trained():
    old = build_recipe("r", None, ["a:10"], None, None, {"lr": 5e-5, "warmup": 20}).to_dict()
    for key in ("lr", "warmup"):
        del old["settings"][key]
    del old["phases"][0]["auto"]
    recipe = Recipe.from_dict(old)
    assert recipe.settings.lr == 5e-5 and recipe.settings.warmup == 20
    assert recipe.phases[0].auto is False
