"""bfloat16 sampling kernels on a CPU (marinade/cpu_bf16.py): the decode attention agrees
with SDPA, packed weights give the same numbers, a sped-up model agrees with the plain one,
and float32 models are left alone."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

import marinade.precision
from marinade import cpu_bf16
from marinade.home import open_home
from marinade.models import load_model
from marinade.sample_settings import SampleSettings
from marinade.sampling import sample

needs_packing = pytest.mark.skipif(
    not cpu_bf16.available(), reason="this PyTorch build cannot pack bfloat16 weights"
)


class Grouped(torch.nn.Module):
    num_key_value_groups = 3


def sdpa_reference(query, key, value, mask=None):
    """float32 SDPA with the key/value heads repeated for their query heads."""
    groups = query.shape[1] // key.shape[1]
    key, value = (t.float().repeat_interleave(groups, dim=1) for t in (key, value))
    out = torch.nn.functional.scaled_dot_product_attention(
        query.float(), key, value, attn_mask=mask
    )
    return out.transpose(1, 2)  # [b, new, heads, d]


@pytest.mark.parametrize("length", [1, 7, 50])
def test_decode_attention_matches_sdpa_for_grouped_heads(length):
    torch.manual_seed(length)
    query = torch.randn(5, 9, 1, 64).bfloat16()
    key, value = torch.randn(2, 5, 3, length, 64).bfloat16()
    out, weights = cpu_bf16.decode_attention(Grouped(), query, key, value, None)
    assert weights is None and out.shape == (5, 1, 9, 64) and out.dtype == torch.bfloat16
    reference = sdpa_reference(query, key, value)
    assert (out.float() - reference).abs().max() < 0.02
    # and as close to float32 as SDPA's own bfloat16 kernel is
    groups = (t.repeat_interleave(3, dim=1) for t in (key, value))
    flash = torch.nn.functional.scaled_dot_product_attention(query, *groups).transpose(1, 2)
    ours, theirs = (out.float() - reference).abs().mean(), (flash.float() - reference).abs().mean()
    assert ours <= theirs * 1.5


def test_decode_attention_honours_a_mask():
    torch.manual_seed(0)
    query = torch.randn(2, 4, 1, 16)
    key, value = torch.randn(2, 2, 4, 6, 16)
    attend = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    attend[0, :, :, :3] = False  # row 0 is left-padded
    out, _ = cpu_bf16.decode_attention(Grouped(), query, key, value, attend)
    assert torch.allclose(out, sdpa_reference(query, key, value, attend), atol=1e-5)
    additive = torch.zeros(2, 1, 1, 6).masked_fill(~attend, float("-inf"))
    again, _ = cpu_bf16.decode_attention(Grouped(), query, key, value, additive)
    assert torch.allclose(again, out, atol=1e-6)


def test_a_prompt_goes_to_sdpa_unchanged():
    torch.manual_seed(0)
    query, key, value = torch.randn(3, 2, 4, 5, 8)
    out, _ = cpu_bf16.decode_attention(Grouped(), query, key, value, None, is_causal=True)
    expected = torch.nn.functional.scaled_dot_product_attention(query, key, value, is_causal=True)
    assert torch.equal(out, expected.transpose(1, 2).contiguous())


@needs_packing
@pytest.mark.parametrize("rows", [1, 3, 64, 200])
def test_packed_weights_give_the_same_numbers(rows):
    torch.manual_seed(rows)
    linear = torch.nn.Linear(96, 40).bfloat16()
    x = torch.randn(rows, 7, 96).bfloat16()
    packed = cpu_bf16.PackedLinear(linear.weight, linear.bias)
    assert torch.equal(packed(x), linear(x))


def tiny_llama() -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=300, hidden_size=96, intermediate_size=192, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def greedy_tokens(model, prompt: torch.Tensor, steps: int) -> tuple[list[list[int]], torch.Tensor]:
    """Tokens picked greedily through the model's cache, and the last step's logits."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    ids, picked = prompt, []
    with torch.inference_mode():
        for _ in range(steps):
            logits = model(input_ids=ids, past_key_values=cache, use_cache=True).logits[:, -1]
            ids = logits.argmax(-1, keepdim=True)
            picked.append(ids.squeeze(1).tolist())
    return picked, logits.float()


@needs_packing
@pytest.mark.parametrize("build", ["llama", "gpt2"])
def test_a_sped_up_model_agrees_with_the_plain_one(build, tiny_model):
    def plain():
        if build == "llama":
            return tiny_llama().bfloat16()
        return AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16).eval()

    fast = plain()
    cpu_bf16.speed_up(fast)
    assert any(isinstance(m, cpu_bf16.PackedLinear) for m in fast.modules())
    assert not any(type(m) is torch.nn.Linear for m in fast.modules())
    prompt = torch.randint(0, 300, (4, 9))
    expected, expected_logits = greedy_tokens(plain(), prompt, 12)
    got, got_logits = greedy_tokens(fast, prompt, 12)
    scale = expected_logits.abs().max()
    assert (got_logits - expected_logits).abs().max() < 0.05 * scale
    pairs = zip(sum(got, []), sum(expected, []), strict=True)
    agree = sum(a == b for a, b in pairs)
    assert agree >= 0.8 * 4 * 12


@needs_packing
def test_bf16_loading_speeds_up_and_samples_reproduce(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: "AVX512_BF16")
    home = open_home(tmp_path / "home")
    loaded = load_model(str(tiny_model), home, dtype="bfloat16")
    assert loaded.model.config._attn_implementation == cpu_bf16.ATTENTION
    settings = SampleSettings(max_new_tokens=20)

    def texts():
        return [
            c.text
            for c in sample(loaded.model, loaded.tokenizer, None, range(6), [1.0], settings, 3)
        ]

    first = texts()
    assert first == texts() and len(set(first)) > 1


def test_float32_models_keep_pytorchs_kernels(tiny_model, tmp_path):
    loaded = load_model(str(tiny_model), open_home(tmp_path / "home"))
    assert loaded.model.dtype == torch.float32
    assert loaded.model.config._attn_implementation != cpu_bf16.ATTENTION
    assert not any(isinstance(m, cpu_bf16.PackedLinear) for m in loaded.model.modules())
