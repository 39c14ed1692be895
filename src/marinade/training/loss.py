"""The training loss, with the output layer and cross-entropy fused and taken in chunks.

A causal LM's loss goes through a logits matrix of tokens x vocabulary: for
SmolLM2 at block 256 x batch 8 that is 2048 x 49152 floats, 400 MB, plus as
much again for its gradient, and log-softmax passes over both. Here each chunk
of rows gets its logits, its share of the loss and, at once, its gradients
(softmax minus one-hot is the gradient of cross-entropy), so no full logits
matrix is ever held and the log-softmax and its backward pass disappear. The
idea is Liger Kernel's fused linear cross-entropy, in plain torch for the CPU.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from marinade.errors import MarinadeError

CHUNK_BYTES = 2**27  # 128 MB of logits at a time


def chunked_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    gradients: bool,
    scale: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Summed cross-entropy of `hidden @ weight.T` against `targets` (-100: no target),
    and with `gradients` the gradients of the sum times `scale` for hidden and weight, a
    chunk of rows at a time. `scale` goes on the small operands (hidden's rows): a pass
    over a vocabulary-sized gradient costs a tenth of a second on a 2-core CPU."""
    grad_hidden = torch.empty_like(hidden) if gradients and hidden.requires_grad else None
    wants_weight = gradients and weight.requires_grad
    grad_weight: torch.Tensor | None = None
    compute = compute_dtype(hidden.device.type, weight.dtype)
    computing_weight = weight.to(compute)  # under bf16 autocast: one cast, three bf16 matmuls
    rows = max(1, CHUNK_BYTES // (weight.shape[0] * compute.itemsize))
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], rows):
        chunk, wanted = hidden[start : start + rows].to(compute), targets[start : start + rows]
        logits = chunk @ computing_weight.t()
        valid = wanted != -100
        picked = wanted.clamp(min=0)
        if grad_hidden is None and not wants_weight:
            total += (_token_losses(logits.float(), picked) * valid).sum()
            continue
        # the softmax is the gradient: one kernel over the logits in the compute dtype
        # (it sums in float32), where float32 logits, logsumexp and exp took 4x as long
        # on a CPU at bf16 (~10% of a SmolLM2 step)
        gradient = torch.softmax(logits, dim=-1)
        at_targets = (torch.arange(len(picked), device=picked.device), picked)
        losses = -gradient[at_targets].float().log()
        if not bool(torch.isfinite(losses).all()):  # a probability under ~1e-38 came out 0
            losses = _token_losses(logits.float(), picked)
        total += (losses * valid).sum()
        gradient[at_targets] -= 1
        if not bool(valid.all()):  # those rows only (a boolean mask would pass over all)
            gradient[(~valid).nonzero().squeeze(1)] = 0
        if grad_hidden is not None:
            part = grad_hidden[start : start + rows]
            if compute == grad_hidden.dtype:
                torch.mm(gradient, computing_weight, out=part)
            else:
                part.copy_(gradient @ computing_weight)
            part.mul_(scale)
        if wants_weight:
            scaled_chunk = chunk * scale
            if grad_weight is None:  # the first share: no zeros to add it to
                grad_weight = (gradient.t() @ scaled_chunk).to(weight.dtype)
            elif compute == grad_weight.dtype:
                grad_weight.addmm_(gradient.t(), scaled_chunk)
            else:  # each chunk's share rounded to bf16, the sum kept in float32
                grad_weight += gradient.t() @ scaled_chunk
    if wants_weight and grad_weight is None:  # no rows at all
        grad_weight = torch.zeros_like(weight)
    return total, grad_hidden, grad_weight


def _token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each row's cross-entropy: log of the sum of exp(logits), less the target's logit."""
    return torch.logsumexp(logits, dim=-1) - logits.gather(1, targets[:, None]).squeeze(1)


def compute_dtype(device_type: str, weight_dtype: torch.dtype) -> torch.dtype:
    """What the matmuls compute in: autocast's dtype when it is on (out= and in-place
    matmuls would otherwise stay in float32), else the weight's."""
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return weight_dtype


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy whose gradients are worked out during the forward pass."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        count = (targets != -100).sum().clamp(min=1)
        total, grad_hidden, grad_weight = chunked_cross_entropy(
            hidden, weight, targets, gradients=True, scale=1 / count
        )  # the mean's gradients, made once
        ctx.gradients = (grad_hidden, grad_weight)
        return total / count

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple:  # type: ignore[override]
        grad_hidden, grad_weight = ctx.gradients
        ctx.gradients = None  # one backward pass: the buffers are scaled in place
        if not bool(grad_output == 1):  # a weighted loss; a plain one is used as it is
            for made in (grad_hidden, grad_weight):
                if made is not None:
                    made.mul_(grad_output.to(made.dtype))
        return grad_hidden, grad_weight, None


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of `hidden @ weight.T`; gradients only where autograd wants them."""
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        return LinearCrossEntropy.apply(hidden, weight, targets)
    total, _, _ = chunked_cross_entropy(hidden, weight, targets, gradients=False)
    return total / (targets != -100).sum().clamp(min=1)


def shifted_targets(batch: torch.Tensor) -> torch.Tensor:
    """Each position's target is the next token; the last position has none."""
    targets = torch.full_like(batch, -100)
    targets[:, :-1] = batch[:, 1:]
    return targets


LossFunction = Callable[[Any, torch.Tensor], torch.Tensor]


def unwrapped(model: Any) -> Any:
    """The transformers model inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def standard_loss(model: Any, batch: torch.Tensor) -> torch.Tensor:
    """The model's own loss: full logits, then cross-entropy."""
    return model(input_ids=batch, labels=batch).loss


def fused_loss(model: Any, batch: torch.Tensor) -> torch.Tensor:
    """The same loss through the model's body and `LinearCrossEntropy`."""
    base = unwrapped(model)
    return _fused_through(base.get_decoder(), base, batch)


def _fused_through(body: Any, base: Any, batch: torch.Tensor) -> torch.Tensor:
    hidden = body(input_ids=batch).last_hidden_state
    weight = base.get_output_embeddings().weight
    return linear_cross_entropy(hidden.flatten(0, 1), weight, shifted_targets(batch).flatten())


def compiled(loss_of: LossFunction, model: Any) -> LossFunction:
    """`loss_of` with the model's body compiled by torch.compile (`train --compile`).

    The body only: the fused loss stays as it is. Measured on SmolLM2, block 256 x
    batch 8, bf16 autocast, 2-core EPYC: 190 against 170 tokens/s, after a first step
    of ~2.5 minutes, so it pays from ~100 steps on. Only training steps use it:
    evaluation (float32, no gradients) would compile a second graph."""
    if loss_of is fused_loss:
        base = unwrapped(model)
        body = torch.compile(base.get_decoder())
        return _compile_failures_in_one_line(
            lambda _model, batch: _fused_through(body, base, batch)
        )
    whole = torch.compile(model)
    return _compile_failures_in_one_line(lambda _model, batch: loss_of(whole, batch))


def _compile_failures_in_one_line(loss_of: LossFunction) -> LossFunction:
    """torch.compile builds at the first step; when that fails (a full disk, a broken
    compiler), one line with the compiler's own error, not pages of traceback."""

    def guarded(model: Any, batch: torch.Tensor) -> torch.Tensor:
        from torch._dynamo.exc import BackendCompilerFailed  # 1.6 s to import: here

        try:
            return loss_of(model, batch)
        except BackendCompilerFailed as error:
            raise MarinadeError(
                f"--compile: torch.compile failed: {compile_error_gist(str(error))}; "
                "train without --compile"
            ) from error

    return guarded


def compile_error_gist(message: str) -> str:
    """The line that says what went wrong: a C++ compiler's `error:`, else the first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    return (errors or lines or ["no message"])[-1 if errors else 0][:300]


def check_compiler() -> None:
    """torch.compile on a CPU builds C++ (inductor: $CXX, else g++): say so up front,
    not as a traceback at the first step."""
    if not any(shutil.which(name) for name in (os.environ.get("CXX"), "g++", "clang++") if name):
        raise MarinadeError(
            "--compile needs a C++ compiler on the PATH (g++ or clang++, or $CXX) for "
            "torch.compile on a CPU: install one, or train without --compile"
        )


def pick_loss(model: Any) -> LossFunction:
    """`fused_loss` where it gives the model's own loss, else `standard_loss`.

    Some heads do more than a bias-free linear layer (a bias, soft-capping, scaled
    logits, LoRA on the head), so the two are compared once, on a few tokens, in
    eval mode (no dropout, no random numbers drawn). Only on the CPU, where it was
    measured; a model wrapped for several processes must be called as a whole.
    """
    base = unwrapped(model)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if type(head) is not nn.Linear or head.bias is not None or head.weight.device.type != "cpu":
        return standard_loss
    was_training = model.training
    model.eval()
    tokens = torch.arange(32)[None]
    try:
        with torch.no_grad():
            same = torch.allclose(
                fused_loss(model, tokens), standard_loss(model, tokens), rtol=1e-4, atol=1e-5
            )
    except (AttributeError, TypeError, ValueError, RuntimeError):  # a body of another shape
        return standard_loss
    finally:
        model.train(was_training)
    return fused_loss if same else standard_loss
