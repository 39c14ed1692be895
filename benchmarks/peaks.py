"""The machine's matmul peak per dtype: what a benchmark's MFU is measured against."""

from __future__ import annotations

import time

import torch

from marinade.precision import DTYPES


def matmul_peak(dtype: torch.dtype, size: int = 2048, tries: int = 5) -> float:
    """FLOP/s of the best of `tries` size^3 matmuls in `dtype`."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(tries):
        began = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 / best


def matmul_peaks() -> dict[str, float]:
    """{"float32": FLOP/s, "bfloat16": FLOP/s}."""
    return {name: matmul_peak(dtype) for name, dtype in DTYPES.items()}
