"""Two changes that make bfloat16 sampling on a CPU about 1.5x faster (DESIGN.md, Speed).

Measured on a 2-core AMD EPYC with AVX512_BF16, SmolLM2-135M, batch 64:
  - Decode attention. PyTorch's CPU flash-attention kernel takes ~2.6 ms for one new
    token against 50 cached ones; the same attention as two small matmuls and a
    float32 softmax takes ~0.5 ms, and it is as close to a float32 reference (it
    computes in float32, as the flash kernel accumulates). A step's 30 layers paid
    ~25% of the step for it.
  - Prepacked weights. oneDNN reorders a plain bfloat16 weight into its blocked
    layout on every call; packing it once (the layout torch.compile's CPU freezing
    uses) makes the same matmuls 20-30% faster with bit-identical results.

Only bfloat16 models on a CPU get them: float32 keeps PyTorch's own kernels, so
float32 samples stored before stay reproducible. bfloat16 texts sampled before
this module existed (stop 27) differ from today's in rounding.
The model is changed in place and is for inference only afterwards: its linear
layers no longer hold trainable weights.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.pytorch_utils import Conv1D

ATTENTION = "marinade_decode"


def decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention interface: one new token per row by hand, anything
    else (a prompt, training, soft-capping, a position bias) by SDPA as before.

    query [b, heads, 1, d]; key, value [b, kv_heads, length, d]. The query heads that
    share a key/value head are grouped, so keys and values are never repeated."""
    rows, heads, new, dim = query.shape
    if new != 1 or kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    kv_heads, length = key.shape[1], key.shape[2]
    grouped = query.view(rows, kv_heads, heads // kv_heads, dim).float()
    scores = torch.matmul(grouped, key.float().transpose(-1, -2))
    scores.mul_(scaling if scaling is not None else dim**-0.5)
    if attention_mask is not None:  # [b, 1, 1, length]: bool (True: attend) or additive
        mask = attention_mask[:, :, -1:, :length]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.float()
    probs = torch.softmax(scores, dim=-1)
    output = torch.matmul(probs, value.float()).to(query.dtype)  # [b, kv_heads, group, d]
    return output.view(rows, 1, heads, dim), None  # [b, new, heads, d], as SDPA's


AttentionInterface.register(ATTENTION, decode_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


class PackedLinear(torch.nn.Module):
    """y = x W^T + b with W packed once into oneDNN's blocked bfloat16 layout."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_features = weight.shape[0]
        # the batch size is only a hint for the layout; any number of rows works
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), 64)
        self.bias = None if bias is None else bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        y = torch.ops.mkldnn._linear_pointwise(rows, self.packed, self.bias, "none", [], "")
        return y.view(*x.shape[:-1], self.out_features)


def available() -> bool:
    """Whether this CPU build of PyTorch can pack bfloat16 weights for oneDNN."""
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def speed_up(model: PreTrainedModel) -> None:
    """Give a bfloat16 model on the CPU the decode attention and packed weights, in place."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(ATTENTION)
    else:  # transformers 4.x
        model.config._attn_implementation = ATTENTION
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, PackedLinear(child.weight, child.bias))
            elif type(child) is Conv1D:  # GPT-2's linear layers keep W as [in, out]
                setattr(parent, name, PackedLinear(child.weight.t(), child.bias))
