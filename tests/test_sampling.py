"""The sampler itself: the draw, seeds, temperatures, stopping."""

from __future__ import annotations

import math

import pytest
import torch

from marinade.home import open_home
from marinade.models import load_model
from marinade.sample_settings import SampleSettings, SamplingError
from marinade.sampling import PreallocatedLayer, draw_tokens, sample


@pytest.fixture(scope="module")
def loaded(tiny_model, tmp_path_factory):
    return load_model(str(tiny_model), open_home(tmp_path_factory.mktemp("home")))


def draw_many(logits: torch.Tensor, count: int, temperature: float = 1.0, top_k=0, top_p=1.0):
    rows = logits.expand(count, -1)
    uniforms = torch.rand(count, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    temperatures = torch.full((count,), temperature)
    return draw_tokens(rows, temperatures, uniforms, top_k, top_p)


def test_draw_follows_the_softmax_distribution_over_a_vocabulary_of_odd_size():
    # 1000 is not a multiple of the draw's block size, and the mass sits in several blocks
    logits = torch.full((1, 1000), -30.0)
    expected = {3: 0.5, 300: 0.3, 999: 0.2}
    for token, p in expected.items():
        logits[0, token] = math.log(p)
    tokens = draw_many(logits, 20000)
    for token, p in expected.items():
        share = (tokens == token).float().mean().item()
        assert abs(share - p) < 0.02, (token, share)
    assert set(tokens.tolist()) <= set(expected)


def test_temperature_flattens_and_zero_is_greedy():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]]))
    hot = draw_many(logits, 20000, temperature=5.0)
    assert (hot == 0).float().mean().item() < 0.5  # flatter than 0.7
    greedy = draw_many(logits, 100, temperature=0.0)
    assert greedy.tolist() == [0] * 100


def test_top_k_and_top_p_cut_the_tail():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert set(draw_many(logits, 5000, top_k=2).tolist()) == {0, 1}
    # nucleus 0.7: tokens 0 and 1 (0.5 + 0.3 reaches it), never 2 or 3
    assert set(draw_many(logits, 5000, top_p=0.7).tolist()) == {0, 1}
    assert set(draw_many(logits, 5000, top_p=0.45).tolist()) == {0}
    # the kept mass is renormalised: token 0 gets 0.5 / 0.8 of the draws
    share = (draw_many(logits, 20000, top_p=0.7) == 0).float().mean().item()
    assert abs(share - 0.625) < 0.02


def test_nucleus_wider_than_the_first_top_k_guess():
    # 500 equal tokens: a 0.9 nucleus needs 450 of them, more than the first top-64 try
    logits = torch.zeros((1, 500))
    tokens = draw_many(logits, 20000, top_p=0.9)
    assert 400 < len(set(tokens.tolist())) <= 450


def test_same_seed_same_text_and_a_seed_reproduces_its_sample_alone(loaded):
    settings = SampleSettings(max_new_tokens=20)
    first = sample(loaded.model, loaded.tokenizer, "The lamp", [10, 11, 12, 13], [1.0], settings)
    again = sample(loaded.model, loaded.tokenizer, "The lamp", [10, 11, 12, 13], [1.0], settings)
    assert [c.text for c in first] == [c.text for c in again]
    alone = sample(loaded.model, loaded.tokenizer, "The lamp", [12], [1.0], settings)
    assert alone[0].text == first[2].text
    assert len({c.text for c in first}) > 1  # different seeds, different texts


def test_batch_size_does_not_change_the_samples(loaded):
    settings = SampleSettings(max_new_tokens=20)
    seeds = list(range(6))
    together = sample(loaded.model, loaded.tokenizer, None, seeds, [1.0], settings, batch_size=6)
    apart = sample(loaded.model, loaded.tokenizer, None, seeds, [1.0], settings, batch_size=1)
    assert [c.text for c in together] == [c.text for c in apart]


def test_several_temperatures_share_the_seeds(loaded):
    settings = SampleSettings(max_new_tokens=10)
    out = sample(loaded.model, loaded.tokenizer, "I like", [1, 2], [0.5, 1.5], settings)
    assert [(c.temperature, c.seed) for c in out] == [(0.5, 1), (0.5, 2), (1.5, 1), (1.5, 2)]


def test_samples_end_at_the_end_of_text_token(loaded):
    settings = SampleSettings(max_new_tokens=60)
    out = sample(loaded.model, loaded.tokenizer, None, list(range(64)), [1.5], settings)
    ended = [c for c in out if c.finish_reason == "end_of_text"]
    assert ended, "a random 400-token model emits <|endoftext|> within 60 tokens for some seed"
    assert all("<|endoftext|>" not in c.text for c in out)
    assert all(c.new_tokens < 60 for c in ended)
    assert all(c.new_tokens == 60 for c in out if c.finish_reason == "length")


def test_stop_string_ends_the_sample_before_it(loaded):
    free = sample(
        loaded.model, loaded.tokenizer, "The", [5], [1.0], SampleSettings(max_new_tokens=40)
    )
    text = free[0].text
    stop = text[6:9]
    assert len(stop) == 3
    stopped = sample(
        loaded.model,
        loaded.tokenizer,
        "The",
        [5],
        [1.0],
        SampleSettings(max_new_tokens=40, stop=stop),
    )[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == text[: text.index(stop)]


def test_prompt_longer_than_the_context_window_is_refused(loaded):
    with pytest.raises(SamplingError, match="context window of 128 tokens"):
        sample(loaded.model, loaded.tokenizer, "tea " * 200, [1], [1.0], SampleSettings())


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"top_p": 0.0}, "--top-p"),
        ({"top_p": 1.5}, "--top-p"),
        ({"top_k": -1}, "--top-k"),
        ({"max_new_tokens": 0}, "--max-new-tokens"),
    ],
)
def test_bad_settings_are_refused(loaded, changes, message):
    with pytest.raises(SamplingError, match=message):  # settings check themselves when made
        sample(loaded.model, loaded.tokenizer, None, [1], [1.0], SampleSettings(**changes))


def test_negative_temperature_is_refused_and_zero_is_greedy(loaded):
    with pytest.raises(SamplingError, match="--temperature"):
        sample(loaded.model, loaded.tokenizer, None, [1], [-0.1], SampleSettings())
    greedy = sample(
        loaded.model, loaded.tokenizer, "The", [1, 2, 3], [0.0], SampleSettings(max_new_tokens=10)
    )
    assert len({c.text for c in greedy}) == 1


def test_rows_are_split_into_equal_batches_and_record_their_size(loaded):
    settings = SampleSettings(max_new_tokens=5)
    out = sample(loaded.model, loaded.tokenizer, None, range(6), [1.0], settings, batch_size=4)
    assert [c.batch_size for c in out] == [3] * 6  # 2 x 3, not 4 + 2


def test_automatic_batch_size_follows_the_cache_size(loaded):
    from marinade.sampling import KV_CACHE_BUDGET, MAX_AUTO_BATCH, auto_batch_size

    assert auto_batch_size(loaded.model, 100) == MAX_AUTO_BATCH  # a tiny model: the cap
    # 2 (keys, values) x 2 layers x 32 floats x 4 bytes = 512 bytes per token and row
    assert auto_batch_size(loaded.model, KV_CACHE_BUDGET // 512 // 10) == 10
    out = sample(
        loaded.model, loaded.tokenizer, None, range(3), [1.0], SampleSettings(max_new_tokens=3)
    )
    assert [c.batch_size for c in out] == [3, 3, 3]


def test_progress_reports_every_token_slot_once(loaded):
    reported = []
    settings = SampleSettings(max_new_tokens=60)
    out = sample(
        loaded.model, loaded.tokenizer, None, range(64), [1.5], settings, 16, reported.append
    )
    assert any(c.finish_reason == "end_of_text" for c in out)  # some rows ended early
    assert sum(reported) == 64 * 60


def test_min_new_tokens_holds_back_the_end_of_text(loaded):
    seeds = list(range(800))  # a 400-token vocabulary: some seeds end at once
    free = sample(
        loaded.model, loaded.tokenizer, "The", seeds, [1.0], SampleSettings(max_new_tokens=2)
    )
    assert any(c.new_tokens == 0 and c.finish_reason == "end_of_text" for c in free)
    held = SampleSettings(max_new_tokens=2, min_new_tokens=2)
    kept = sample(loaded.model, loaded.tokenizer, "The", seeds, [1.0], held)
    assert all(c.new_tokens == 2 and c.finish_reason == "length" for c in kept)
    with pytest.raises(SamplingError, match="--min-new-tokens must be between 0 and"):
        SampleSettings(max_new_tokens=2, min_new_tokens=3).check()


def test_the_preallocated_cache_keeps_the_rows_it_is_told_to():
    """Rows leaving the batch keep their keys and values (only the filled positions are
    copied), as in the concatenated cache transformers would build."""
    torch.manual_seed(0)
    layer = PreallocatedLayer(capacity=9)
    steps = [torch.randn(2, 4, 3, 2, 8).bfloat16() for _ in range(3)]
    keys = values = None
    for key, value in steps[:2]:
        keys, values = layer.update(key, value)
    expected_keys = torch.cat([k for k, _ in steps[:2]], dim=2)
    assert torch.equal(keys, expected_keys)
    keep = torch.tensor([3, 1])
    layer.batch_select_indices(keep)
    key, value = steps[2][0][keep], steps[2][1][keep]
    keys, values = layer.update(key, value)
    expected_values = torch.cat([steps[0][1][keep], steps[1][1][keep], value], dim=2)
    assert keys.shape == (2, 3, 6, 8) and layer.key_buffer.shape == (2, 3, 9, 8)
    assert torch.equal(values, expected_values)
    assert torch.equal(keys, torch.cat([expected_keys[keep], key], dim=2))
