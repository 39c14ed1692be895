"""marinade.precision: the dtype `--dtype auto` picks from the hardware, and the bad-input lines."""

from __future__ import annotations

import pytest
import torch

import marinade.precision
from marinade.errors import MarinadeError
from marinade.precision import check_quantize, choose_precision

CPU = torch.device("cpu")


def test_auto_is_bfloat16_on_a_cpu_with_native_bf16(monkeypatch):
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: "AVX512_BF16")
    precision = choose_precision("auto", CPU)
    assert precision.dtype == torch.bfloat16
    assert "AVX512_BF16" in precision.reason


def test_auto_is_float32_on_a_cpu_without_native_bf16(monkeypatch):
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: None)
    precision = choose_precision(None, CPU)
    assert precision.dtype == torch.float32
    assert "neither AVX512_BF16 nor AMX" in precision.reason


def test_bfloat16_without_native_support_is_one_line(monkeypatch):
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: None)
    with pytest.raises(MarinadeError, match="no native bf16"):
        choose_precision("bfloat16", CPU)


def test_float16_on_a_cpu_and_unknown_names_are_refused():
    with pytest.raises(MarinadeError, match="float16 does not run usefully on a CPU"):
        choose_precision("float16", CPU)
    with pytest.raises(MarinadeError, match="--dtype must be one of"):
        choose_precision("fp8", CPU)


def test_quantize_int8_with_bfloat16_is_refused(monkeypatch):
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: "AMX")
    with pytest.raises(MarinadeError, match="cannot be combined"):
        check_quantize(choose_precision("bfloat16", CPU), "int8")
    check_quantize(choose_precision("float32", CPU), "int8")  # the documented combination


def test_generated_samples_record_their_dtype(cli, tiny_model, store):
    result = cli("generate", "--model", str(tiny_model), "--seed", "1", "--max-new-tokens", "4")
    assert result.exit_code == 0, result.output
    assert [row["dtype"] for row in store.samples()] == ["float32"]
