"""The fused, chunked training loss gives the model's own loss and the same gradients."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

from marinade.training import loss as training_loss
from marinade.training.loss import (
    fused_loss,
    linear_cross_entropy,
    pick_loss,
    shifted_targets,
    standard_loss,
)

VOCAB = 300


def tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=64, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config)  # the head is tied to the token embeddings


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=VOCAB, bos_token_id=0, eos_token_id=0,
        pad_token_id=0, tie_word_embeddings=False,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 7 rows, so a batch spans several and the last one is short."""
    monkeypatch.setattr(training_loss, "CHUNK_BYTES", 7 * VOCAB * 4)


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama], ids=["gpt2-tied", "llama"])
def test_fused_loss_equals_the_models_own_loss_and_gradients(build, small_chunks):
    model = build()
    batch = torch.randint(0, VOCAB, (3, 20), generator=torch.Generator().manual_seed(1))
    results = []
    for loss_of in (standard_loss, fused_loss):
        model.zero_grad(set_to_none=True)
        loss = loss_of(model, batch)
        loss.backward()
        results.append((loss.item(), gradients(model)))
    (standard, standard_grads), (fused, fused_grads) = results
    assert fused == pytest.approx(standard, rel=1e-6)
    assert standard_grads.keys() == fused_grads.keys() and len(fused_grads) > 10
    for name, gradient in standard_grads.items():
        torch.testing.assert_close(fused_grads[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_rows_without_a_target_add_nothing(small_chunks):
    torch.manual_seed(0)
    hidden = torch.randn(12, 16, requires_grad=True)
    weight = torch.randn(VOCAB, 16, requires_grad=True)
    targets = torch.randint(0, VOCAB, (12,))
    targets[[0, 5, 11]] = -100
    loss = linear_cross_entropy(hidden, weight, targets)
    loss.backward()
    reference_hidden = hidden.detach().clone().requires_grad_()
    reference_weight = weight.detach().clone().requires_grad_()
    expected = torch.nn.functional.cross_entropy(reference_hidden @ reference_weight.t(), targets)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    torch.testing.assert_close(hidden.grad, reference_hidden.grad)
    torch.testing.assert_close(weight.grad, reference_weight.grad)
    assert hidden.grad[[0, 5, 11]].abs().sum() == 0


def test_without_autograd_no_gradients_are_made(monkeypatch):
    hidden, weight = torch.randn(4, 8, requires_grad=True), torch.randn(VOCAB, 8)
    made = []
    real = training_loss.chunked_cross_entropy

    def spy(*args, gradients, **kwargs):
        made.append(gradients)
        return real(*args, gradients=gradients, **kwargs)

    monkeypatch.setattr(training_loss, "chunked_cross_entropy", spy)
    with torch.inference_mode():
        linear_cross_entropy(hidden, weight, torch.zeros(4, dtype=torch.long))
    linear_cross_entropy(hidden, weight, torch.zeros(4, dtype=torch.long))
    assert made == [False, True]


def test_targets_are_the_next_tokens():
    assert shifted_targets(torch.tensor([[5, 6, 7]])).tolist() == [[6, 7, -100]]


def test_lora_uses_the_fused_loss_and_gets_the_same_adapter_gradients(small_chunks):
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; give the adapters something to pass on
            torch.nn.init.normal_(parameter, std=0.1)
    assert pick_loss(model) is fused_loss
    batch = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(2))
    results = []
    for loss_of in (standard_loss, fused_loss):
        model.zero_grad(set_to_none=True)
        loss_of(model, batch).backward()
        results.append(gradients(model))
    assert results[0].keys() == results[1].keys() and all("lora" in n for n in results[0])
    for name, gradient in results[0].items():
        torch.testing.assert_close(results[1][name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_heads_that_do_more_than_a_linear_layer_keep_the_models_own_loss():
    assert pick_loss(tiny_gpt2()) is fused_loss
    assert pick_loss(tiny_llama()) is fused_loss

    with_bias = tiny_llama()
    with_bias.lm_head = torch.nn.Linear(32, VOCAB, bias=True)
    assert pick_loss(with_bias) is standard_loss

    torch.manual_seed(0)
    capped = Gemma2Config(
        num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, vocab_size=VOCAB, final_logit_softcapping=0.5,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip
    soft_capped = Gemma2ForCausalLM(capped)
    assert pick_loss(soft_capped) is standard_loss  # caught by comparing the two losses

    lora_on_head = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["lm_head"]))
    assert pick_loss(lora_on_head) is standard_loss


def test_a_wrapped_model_is_called_as_a_whole():
    """DistributedDataParallel syncs gradients in its own forward: going around it would
    leave the processes apart."""

    class Wrapper(torch.nn.Module):
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

        def forward(self, **inputs):  # type: ignore[no-untyped-def]
            return self.module(**inputs)

    assert pick_loss(Wrapper(tiny_llama())) is standard_loss


@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
def test_a_target_too_unlikely_for_a_float_still_gets_its_exact_loss(autocast):
    """The loss comes from the softmax's probability at the target; when that rounds to
    0 (a loss over ~87 nats) it is worked out from the logits instead, never infinite."""
    hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    weight = torch.zeros(VOCAB, 2)
    weight[1, 0], weight[2, 1] = 150.0, -150.0  # row 0: token 1 at +150; row 1: token 2 at -150
    targets = torch.tensor([0, 2])  # row 0 misses by 150 nats, row 1 by 150 + log(VOCAB - 1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = linear_cross_entropy(hidden, weight.requires_grad_(), targets)
    expected = torch.nn.functional.cross_entropy(hidden.detach() @ weight.detach().t(), targets)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected.item(), rel=1e-2)
    loss.backward()
    assert torch.isfinite(hidden.grad).all() and torch.isfinite(weight.grad).all()


def test_a_weighted_loss_gets_weighted_gradients(small_chunks):
    """The mean's gradients are made in the forward pass; a loss scaled afterwards (grad
    accumulation, a ratings mix) scales them in the backward."""
    torch.manual_seed(0)
    hidden = torch.randn(12, 16, requires_grad=True)
    weight = torch.randn(VOCAB, 16, requires_grad=True)
    targets = torch.randint(0, VOCAB, (12,))
    (0.25 * linear_cross_entropy(hidden, weight, targets)).backward()
    reference_hidden = hidden.detach().clone().requires_grad_()
    reference_weight = weight.detach().clone().requires_grad_()
    expected = torch.nn.functional.cross_entropy(reference_hidden @ reference_weight.t(), targets)
    (0.25 * expected).backward()
    torch.testing.assert_close(hidden.grad, reference_hidden.grad)
    torch.testing.assert_close(weight.grad, reference_weight.grad)
