"""Samples a person would post: the document start convention on both sides (training
streams and unconditional sampling), recorded with a run so old runs sample as they did;
whole sentences that trim, extend and drop (and count what they drop)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import json_lines
from marinade.curation.spec import parse_experiment
from marinade.document_start import (
    CONVENTION_FILE,
    LEGACY,
    MARKER,
    sample_start_ids,
    start_ids,
)
from marinade.errors import MarinadeError
from marinade.generation import generate_samples
from marinade.home import open_home
from marinade.models import load_model
from marinade.sample_settings import Completion, SampleSettings
from marinade.sampling import encode_prompt, sample, whole_sentences
from marinade.training.data import load_streams
from marinade.training.loop import train
from marinade.training.recipe import Recipe, build_recipe
from test_training_split import _add

POSTS = [f"Post number {i} is about tea and rain." for i in range(12)]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def documents_in(stream: torch.Tensor, end: int) -> list[list[int]]:
    """The stream cut at each end-of-text: what precedes and makes up each document."""
    pieces, current = [], []
    for token in stream.tolist():
        if token == end:
            pieces.append(current)
            current = []
        else:
            current.append(token)
    return pieces


@pytest.mark.parametrize("split", ["spans", "documents"])
def test_the_marker_starts_every_document_of_a_training_stream(store, tmp_path, tokenizer, split):
    _add(store, "posts", POSTS)
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    marker = start_ids(tokenizer, "marker")
    assert marker and tokenizer.decode(marker) == MARKER
    streams = load_streams(store, tmp_path, "posts", tokenizer, "t", 0.1, split, 8, "marker")
    pieces = documents_in(torch.cat([streams.train, streams.held_out]), end)
    assert len(pieces) == len(POSTS)
    for piece in pieces:
        assert piece[: len(marker)] == marker
        assert tokenizer.decode(piece[len(marker) :]) in POSTS
    # the legacy streams (cached under another name) have no marker
    legacy = load_streams(store, tmp_path, "posts", tokenizer, "t", 0.1, split, 8)
    for piece in documents_in(legacy.train, end):
        assert tokenizer.decode(piece) in POSTS
    assert len(list((tmp_path / "posts").glob("tokens-*.pt"))) == 2


def test_unconditional_sampling_starts_where_a_training_document_starts(tiny_model, tokenizer):
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model = load_model(str(tiny_model), open_home(tiny_model.parent / "h")).model
    assert encode_prompt(tokenizer, model, None, 10) == [end]  # today's, for base models
    marked = encode_prompt(tokenizer, model, None, 10, "marker")
    assert marked == [end, *start_ids(tokenizer, "marker")] == sample_start_ids(tokenizer, "marker")
    assert encode_prompt(tokenizer, model, "Tea", 10, "marker") == tokenizer("Tea")["input_ids"]


def test_bos_needs_a_bos_distinct_from_end_of_text(tokenizer):
    with pytest.raises(MarinadeError, match="no BOS token distinct") as caught:
        start_ids(tokenizer, "bos")
    assert "\n" not in str(caught.value)
    with pytest.raises(MarinadeError, match="document_start must be one of"):
        build_recipe("r", "m", ["posts:1"], None, None, {"document_start": "nope"})


def test_a_run_records_its_convention_and_samples_with_it(store, tmp_path, tiny_model):
    home = open_home(tmp_path / "home")
    _add(store, "posts", POSTS)
    settings = {"batch_size": 2, "block_size": 16, "warmup": 0, "eval_every": 0}
    recipe = build_recipe("marked", str(tiny_model), ["posts:2"], None, None, settings)
    assert recipe.settings.document_start == "marker"  # the measured default (DESIGN.md)
    train(store, home, recipe)
    loaded = load_model("marked", home)
    assert loaded.document_start == "marker"
    stored = json.loads(store.run("marked").recipe)
    assert stored["settings"]["document_start"] == "marker"
    rows = generate_samples(store, loaded, None, [1, 2], [1.0], SampleSettings(max_new_tokens=4))
    marker = start_ids(loaded.tokenizer, "marker")
    # the run's convention was the prompt: with the marker in front, the rows differ
    # from what the same seeds give from end-of-text alone
    legacy = load_model("marked", home)
    legacy.document_start = LEGACY
    before = generate_samples(store, legacy, None, [1, 2], [1.0], SampleSettings(max_new_tokens=4))
    assert marker and [r["text"] for r in rows] != [r["text"] for r in before]


def test_old_runs_and_base_models_keep_end_of_text(store, tmp_path, tiny_model):
    home = open_home(tmp_path / "home")
    _add(store, "posts", POSTS)
    settings = {"batch_size": 2, "block_size": 16, "warmup": 0, "eval_every": 0}
    recipe = build_recipe("old", str(tiny_model), ["posts:1"], None, None, settings)
    train(store, home, recipe)
    for folder in (home.runs / "old" / "checkpoints").iterdir():
        (folder / CONVENTION_FILE).unlink()  # as a checkpoint from before conventions
    assert load_model("old", home).document_start == LEGACY
    assert load_model(str(tiny_model), home).document_start == LEGACY
    data = recipe.to_dict()
    del data["settings"]["document_start"]  # a recipe stored before conventions
    assert Recipe.from_dict(data).settings.document_start == LEGACY


def completion(text: str, reason: str = "length") -> Completion:
    return Completion(
        text, seed=1, temperature=1.0, new_tokens=9, finish_reason=reason, batch_size=1
    )


def test_whole_sentences_trim_mark_and_drop():
    assert whole_sentences(completion("Tea is hot. And the")).text == "Tea is hot."
    assert whole_sentences(completion("Tea is hot. And the")).sentence_cut == "trimmed"
    assert whole_sentences(completion("Tea is hot. ")).sentence_cut == "whole"
    assert whole_sentences(completion("Tea is hot!", "sentence")).sentence_cut == "extended"
    dropped = whole_sentences(completion(", and the"))
    assert dropped.dropped and dropped.sentence_cut == "dropped"


def test_whole_sentences_sample_past_the_limit_up_to_the_cap(loaded_tiny):
    from marinade.sampling import sample

    settings = SampleSettings(max_new_tokens=8, whole_sentences=True)
    assert settings.token_cap() == 16
    completions = sample(
        loaded_tiny.model, loaded_tiny.tokenizer, "Tea", range(20), [1.0], settings
    )
    assert all(c.new_tokens <= 16 for c in completions)
    for c in completions:
        if c.sentence_cut == "extended":
            assert c.new_tokens > 8 and c.finish_reason == "sentence"
        if not c.dropped:
            assert c.text.rstrip()[-1] in ".!?…"


@pytest.fixture
def loaded_tiny(tiny_model, tmp_path):
    return load_model(str(tiny_model), open_home(tmp_path / "h"))


def test_dropped_samples_are_not_stored_and_generate_counts_them(cli, tiny_model):
    result = cli(
        "generate",
        "--model",
        str(tiny_model),
        "-n",
        "6",
        "--seed",
        "3",
        "--max-new-tokens",
        "6",
        "--whole-sentences",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    rows = json_lines(result.stdout)
    assert all(row["sentence_cut"] in ("whole", "extended", "trimmed") for row in rows)
    dropped = 6 - len(rows)
    assert dropped > 0  # random weights rarely reach a sentence end
    assert f"dropped {dropped} of 6 samples: no sentence end" in result.stderr


def test_grids_without_prompts_end_at_whole_sentences_by_default():
    base = {"name": "g", "recipes": [{"name": "base", "model": "m"}]}
    assert parse_experiment(base, "g.toml").whole_sentences is True
    assert parse_experiment({**base, "prompts": ["I"]}, "g.toml").whole_sentences is False
    spec = parse_experiment({**base, "whole_sentences": False}, "g.toml")
    assert spec.whole_sentences is False
    with pytest.raises(MarinadeError, match="whole_sentences must be true or false"):
        parse_experiment({**base, "whole_sentences": 1}, "g.toml")


def test_the_report_shows_fragment_and_cut_shares_and_what_was_dropped():
    from marinade.curation.report import cells

    spec = {
        "recipes": [{"name": "a"}],
        "temperatures": [0.8],
        "top_p": [1.0],
        "samples_per_cell": 5,
        "prompts": [None],
        "whole_sentences": True,
    }
    row = {"recipe": "a", "temperature": 0.8, "top_p": 1.0, "rating": None}
    rows = [
        {**row, "tags": '["fragment"]'},
        {**row, "tags": '["fragment", "cut"]'},
        {**row, "tags": "[]"},
        {**row, "tags": None},
    ]
    [cell] = cells(spec, rows)
    assert (cell.fragment_rate, cell.cut_rate, cell.dropped) == (0.5, 0.25, 1)
    [raw] = cells({**spec, "whole_sentences": False}, rows)
    assert raw.dropped == 0


def test_a_sample_ends_where_the_model_starts_the_next_document(tiny_model, tmp_path):
    """A model trained with a start mark may begin the next document (the mark) without
    ending this one: the sample ends there, the mark not in its text. The model here is
    a real GPT-2 whose weights make it a bigram chain: prompt -> q -> mark."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    marks = start_ids(tokenizer, "marker")
    config = GPT2Config.from_pretrained(tiny_model, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    prompt = tokenizer("tea", add_special_tokens=False)["input_ids"]
    q = tokenizer(" rain", add_special_tokens=False)["input_ids"][0]
    chain = [prompt[-1], q, *marks]
    with torch.no_grad():
        model.transformer.wpe.weight.zero_()
        for block in model.transformer.h:  # every block adds nothing to the residual
            for layer in (block.attn.c_proj, block.mlp.c_proj):
                layer.weight.zero_()
                layer.bias.zero_()
        hidden = model.transformer.ln_f(model.transformer.wte.weight)
        model.lm_head.weight.zero_()
        for before, after in zip(chain, chain[1:], strict=False):
            model.lm_head.weight[after] = 4 * hidden[before]
    settings = SampleSettings(max_new_tokens=8)
    legacy = sample(model, tokenizer, "tea", [0], [1.0], settings)[0]
    assert MARKER in legacy.text  # sampled as before: the mark is just text
    [ended] = sample(model, tokenizer, "tea", [0], [1.0], settings, document_start="marker")
    assert ended.text == " rain" and ended.finish_reason == "end_of_text"
    assert ended.new_tokens == 1
