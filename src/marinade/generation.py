"""Sample from a loaded model and log every sample in the store: the Python API
behind `marinade generate` and `marinade compare`."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from marinade.sample_settings import SampleSettings, SamplingError, check_seed, check_temperature
from marinade.store import Store
from marinade.timestamps import now_iso

if TYPE_CHECKING:
    from marinade.models import LoadedModel


def choose_seeds(seed: int | None, count: int) -> list[int]:
    """Seeds for `count` samples: seed, seed+1, ...; a random start when none is given.

    Sample i's seed alone reproduces it (with the same model, prompt and settings).
    """
    start = seed if seed is not None else secrets.randbelow(2**31)
    seeds = [start + offset for offset in range(count)]
    for value in (seeds[0], seeds[-1]) if seeds else ():
        check_seed(value)
    return seeds


def check_request(temperatures: Sequence[float], count: int, batch_size: int | None) -> None:
    """Reject a bad request before a model is loaded or anything is stored (SampleSettings
    check themselves when they are made)."""
    if count < 1:
        raise SamplingError(f"-n must be at least 1, not {count}")
    if batch_size is not None and batch_size < 1:
        raise SamplingError(f"--batch-size must be at least 1, not {batch_size}")
    for temperature in temperatures:
        check_temperature(temperature)


def generate_samples(
    store: Store,
    loaded: LoadedModel,
    prompt: str | None,
    seeds: Sequence[int],
    temperatures: Sequence[float],
    settings: SampleSettings,
    batch_size: int | None = None,
    origin: str = "generate",
    batch_id: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    labels: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Sample one text per (temperature, seed) and log them all; returns the stored rows.

    With whole sentences, a sample without a sentence end is dropped, not stored: there
    are fewer rows than seeds x temperatures, and the difference is the count dropped.
    `labels` are more columns for every row (an experiment's `experiment`, `recipe`)."""
    from marinade.sampling import sample  # imports torch: only when sampling

    completions = sample(
        loaded.model,
        loaded.tokenizer,
        prompt,
        seeds,
        temperatures,
        settings,
        batch_size=batch_size,
        on_progress=on_progress,
        document_start=loaded.document_start,
    )
    created_at = now_iso()
    batch_id = batch_id or uuid.uuid4().hex
    return store.add_samples(
        {
            "created_at": created_at,
            "origin": origin,
            "batch_id": batch_id,
            "model": loaded.name,
            "model_hash": loaded.weights_hash,
            "device": loaded.device,
            "quantize": loaded.quantize,
            "prompt": prompt or None,
            "text": completion.text,
            "seed": completion.seed,
            "temperature": completion.temperature,
            "top_k": settings.top_k,
            "top_p": settings.top_p,
            "max_new_tokens": settings.max_new_tokens,
            "stop": settings.stop,
            "new_tokens": completion.new_tokens,
            "finish_reason": completion.finish_reason,
            "batch_size": completion.batch_size,
            "dtype": loaded.dtype,
            "sentence_cut": completion.sentence_cut,
            "batch_dropped": json.dumps(completion.batch_dropped)
            if completion.batch_dropped
            else None,
            **(labels or {}),
        }
        for completion in completions
        if not completion.dropped
    )
