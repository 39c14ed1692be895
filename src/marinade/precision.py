"""Which floating-point type a model computes in: `--dtype auto|float32|bfloat16`.

bfloat16 halves the bytes every matmul reads and, on hardware with native bf16 (a CUDA GPU
with bf16, a CPU with AVX512_BF16 or AMX), runs 2-5x faster than float32 with a loss within
a few thousandths (README, Precision). On a CPU without it, torch emulates bf16 and it is
slower than float32, so `auto` asks the hardware and keeps float32 there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from marinade.errors import MarinadeError

DTYPE_CHOICES = ("auto", "float32", "bfloat16")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    dtype: torch.dtype
    reason: str  # a sentence: why this dtype on this device

    @property
    def name(self) -> str:
        return dtype_name(self.dtype)


def dtype_name(dtype: torch.dtype) -> str:
    """ "float32" / "bfloat16": how a dtype is written in the store and on the command line."""
    return str(dtype).removeprefix("torch.")


def cpu_bf16_probe() -> str | None:
    """The CPU feature that computes bf16 natively, or None; tests monkeypatch this."""
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX512_BF16"
    return None


def cuda_bf16_probe(device: torch.device) -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def choose_precision(requested: str | None, device: torch.device) -> Precision:
    """The dtype for `requested` ("auto" when None) on `device`, or a one-line error when the
    hardware cannot run it usefully."""
    requested = requested or "auto"
    if requested == "float16":
        if device.type == "cpu":
            raise MarinadeError(
                "--dtype float16 does not run usefully on a CPU; use bfloat16 or float32"
            )
        raise MarinadeError("--dtype float16 is not supported; use bfloat16 or float32")
    if requested not in DTYPE_CHOICES:
        raise MarinadeError(f"--dtype must be one of {', '.join(DTYPE_CHOICES)}, not {requested}")
    native = native_bf16(device)
    if requested == "float32":
        return Precision(torch.float32, "float32, as asked (--dtype float32).")
    if requested == "bfloat16":
        if native is None:
            raise MarinadeError(
                f"--dtype bfloat16: this {device.type} has no native bf16 "
                "(no AVX512_BF16 or AMX, or a GPU without bf16); it would be slower than float32"
            )
        return Precision(torch.bfloat16, f"bfloat16, as asked; {native}.")
    if native is None:
        where = (
            "CPU has neither AVX512_BF16 nor AMX"
            if device.type == "cpu"
            else (f"{device.type} has no native bf16")
        )
        return Precision(torch.float32, f"float32: this {where}, so bf16 would be slower.")
    return Precision(torch.bfloat16, f"bfloat16: {native}.")


def native_bf16(device: torch.device) -> str | None:
    """Why this device computes bf16 natively (a phrase), or None when it does not."""
    if device.type == "cuda":
        return "the CUDA GPU computes bf16 natively" if cuda_bf16_probe(device) else None
    if device.type == "cpu":
        feature = cpu_bf16_probe()
        return f"the CPU has {feature}, which computes bf16 natively" if feature else None
    return None


def check_quantize(precision: Precision, quantize: str | None) -> None:
    """--quantize int8 keeps float activations in float32 (torch's dynamic int8 Linear)."""
    if quantize and precision.dtype != torch.float32:
        raise MarinadeError(
            f"--quantize {quantize} computes in float32; it cannot be combined with "
            f"--dtype {precision.name} (use one or the other)"
        )
