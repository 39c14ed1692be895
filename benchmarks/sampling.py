"""Sampling speed of marinade's sampler against transformers' generate, in one run.

    python benchmarks/sampling.py [--home DIR] [--samples 64] [--new-tokens 48]

Prints tokens per second (tokens generated, counting the end-of-text token
where a sample stops early) for:
  - baseline A: transformers `model.generate`, one sample at a time (timed on
    a few samples: it is a rate, and 64 would take minutes);
  - baseline B: transformers `model.generate`, all samples in one batch;
  - marinade's sampler at batch sizes 8, 32 and 64, and with --quantize int8;
and the ratios against the baselines. Then the time for one 200-sample
experiment cell of tweet-length texts, and what int8 does to the model's loss
on a test paragraph. Same settings everywhere: unconditional, temperature 1.0,
no top-k, no top-p.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from marinade.home import open_home
from marinade.models import load_model
from marinade.sample_settings import SampleSettings
from marinade.sampling import end_token_ids, sample, start_token_id

PARAGRAPH = (
    "The lamplighter came along the quay at dusk, as he had every evening for thirty years. "
    "He carried a long pole with a hook at one end and a small flame at the other, and he "
    "lit the lamps one by one, from the harbour master's office to the end of the pier. "
    "Children followed him sometimes, counting the lamps aloud, and the fishermen mending "
    "their nets looked up and nodded as the light reached them."
)


def generated_tokens(sequences: torch.Tensor, start: int, end_ids: set[int]) -> int:
    """Tokens each row generated, up to and including its first end token."""
    total = 0
    for row in sequences[:, start:].tolist():
        count = 0
        for token in row:
            count += 1
            if token in end_ids:
                break
        total += count
    return total


def hf_generate(loaded, rows: int, new_tokens: int, batch: int) -> float:
    """Tokens per second of transformers' generate on `rows` samples, `batch` at a time."""
    tokenizer, model = loaded.tokenizer, loaded.model
    start_id = start_token_id(tokenizer)
    end_ids = end_token_ids(tokenizer)
    torch.manual_seed(0)
    tokens, began = 0, time.perf_counter()
    for first in range(0, rows, batch):
        size = min(batch, rows - first)
        prompt = torch.full((size, 1), start_id)
        with torch.inference_mode():
            out = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=new_tokens,
                eos_token_id=sorted(end_ids),
                pad_token_id=sorted(end_ids)[0],
            )
        tokens += generated_tokens(out, 1, end_ids)
    return tokens / (time.perf_counter() - began)


def marinade_rate(loaded, rows: int, new_tokens: int, batch: int | None) -> tuple[float, float]:
    """(tokens per second, seconds) of marinade's sampler."""
    settings = SampleSettings(max_new_tokens=new_tokens)
    began = time.perf_counter()
    out = sample(loaded.model, loaded.tokenizer, None, range(rows), [1.0], settings, batch)
    seconds = time.perf_counter() - began
    tokens = sum(c.new_tokens + (c.finish_reason == "end_of_text") for c in out)
    return tokens / seconds, seconds


@torch.inference_mode()
def paragraph_loss(loaded) -> float:
    ids = loaded.tokenizer(PARAGRAPH, return_tensors="pt")["input_ids"]
    return float(loaded.model(input_ids=ids, labels=ids).loss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="marinade home with the cached model (default: a temp dir)")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--one-at-a-time", type=int, default=6, help="samples timed for baseline A")
    args = parser.parse_args()
    home = open_home(args.home or tempfile.mkdtemp(prefix="marinade-bench-"))
    loaded = load_model(args.model, home)
    n, t = args.samples, args.new_tokens
    print(f"model {loaded.name} on {loaded.device}, torch threads {torch.get_num_threads()}")
    print(f"{n} unconditional samples, up to {t} new tokens, temperature 1.0\n")

    marinade_rate(loaded, 4, 4, 4)  # warm-up
    hf_generate(loaded, 2, 4, 2)

    def report(label: str, rate: float, versus: bool = True) -> None:
        ratios = f"   x{rate / batched:.2f} vs B   x{rate / one:.1f} vs A" if versus else ""
        print(f"{label:<52}{rate:7.1f} tok/s{ratios}")

    one = hf_generate(loaded, args.one_at_a_time, t, 1)
    report(f"A  transformers generate, one at a time ({args.one_at_a_time} samples)", one, False)
    batched = hf_generate(loaded, n, t, n)
    report(f"B  transformers generate, batch {n}", batched, False)
    for batch in (8, 32, n):
        report(f"   marinade, batch {batch}", marinade_rate(loaded, n, t, batch)[0])

    loss = paragraph_loss(loaded)
    quantized = load_model(args.model, home, quantize="int8")
    report(f"   marinade --quantize int8, batch {n}", marinade_rate(quantized, n, t, n)[0])
    print(f"   loss on a test paragraph: float32 {loss:.2f}, int8 {paragraph_loss(quantized):.2f}")
    del quantized

    print("\none experiment cell: 200 samples of up to 60 tokens (tweet length)")
    for batch in (64, None):
        rate, seconds = marinade_rate(loaded, 200, 60, batch)
        label = f"batch {batch}" if batch else "automatic batch size (the default)"
        print(f"   marinade, {label:<40}{seconds:6.1f} s  ({rate:.0f} tok/s)")


if __name__ == "__main__":
    main()
