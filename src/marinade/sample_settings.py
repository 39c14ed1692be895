"""Settings of a sampling call and their checks; light to import (no torch).

SampleSettings checks itself when it is made, so a sampler never holds bad settings; the
temperature and seed are per sample, so they have checks of their own."""

from __future__ import annotations

from dataclasses import dataclass

from marinade.errors import MarinadeError

DEFAULT_TEMPERATURE = 0.8
MAX_SEED = 2**63 - 1


class SamplingError(MarinadeError):
    """Settings or a prompt that cannot be sampled; the message is for the user."""


@dataclass(frozen=True)
class SampleSettings:
    """Settings shared by every sample of one call (temperature is per sample)."""

    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1.0: off
    max_new_tokens: int = 60
    stop: str | None = None  # a sample also ends at the end-of-text token
    min_new_tokens: int = 0  # end-of-text is held back until this many tokens are drawn
    # end each sample at its last sentence end (sentences.py), sampling up to
    # overrun_tokens() past max_new_tokens to reach one; a sample with none is dropped
    whole_sentences: bool = False

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """A SamplingError naming the first bad option; run when the settings are made."""
        if self.top_k < 0:
            raise SamplingError(f"--top-k must be 0 (off) or positive, not {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise SamplingError(f"--top-p must be in (0, 1], not {self.top_p}")
        if self.max_new_tokens < 1:
            raise SamplingError(f"--max-new-tokens must be at least 1, not {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise SamplingError(
                f"--min-new-tokens must be between 0 and --max-new-tokens "
                f"({self.max_new_tokens}), not {self.min_new_tokens}"
            )
        if self.stop == "":
            raise SamplingError("--stop must not be empty")

    def overrun_tokens(self) -> int:
        """How far past max_new_tokens whole sentences may sample to reach a sentence end:
        a quarter more, at least 8 tokens (the hard cap is max_new_tokens plus this)."""
        return max(8, self.max_new_tokens // 4) if self.whole_sentences else 0

    def token_cap(self) -> int:
        """The most tokens a sample may have."""
        return self.max_new_tokens + self.overrun_tokens()


@dataclass(frozen=True)
class Completion:
    """One sampled text: the completion only, without the prompt."""

    text: str
    seed: int
    temperature: float
    new_tokens: int
    finish_reason: str  # "end_of_text", "stop", "length" or "sentence" (past the limit)
    batch_size: int  # rows sampled together; with the seeds it pins the float rounding
    # whole sentences: "whole", "extended" or "trimmed" (see sampling.py); None when off
    sentence_cut: str | None = None
    dropped: bool = False  # whole sentences found no sentence end: not a sample to keep
    # (position, seed, temperature) of the rows of its batch that were dropped: they are
    # not stored, and the batch is sampled again with them (marinade.reproduce)
    batch_dropped: tuple[tuple[int, int, float], ...] = ()


def check_temperature(temperature: float) -> None:
    if not temperature >= 0:  # also catches nan
        raise SamplingError(f"--temperature must be 0 (greedy) or more, not {temperature}")


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise SamplingError(f"--seed must be between 0 and {MAX_SEED}, not {seed}")
