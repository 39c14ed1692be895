"""What bfloat16 changes, measured: samples, a test text's loss, and a 200-step run.

    python benchmarks/precision.py [--home DIR] [--samples 200] [--steps 200]

On SmolLM2-135M, in float32 and in bfloat16 (it needs a CPU or GPU that computes bf16
natively, as `--dtype bfloat16` does):
  1. tweet-length samples (up to 60 tokens, temperature 1, the default batch) for the
     same seeds: how many texts differ, and from which character on, on average;
  2. the loss of a test paragraph and of the held-out Shakespeare passages, each dtype;
  3. two runs of `--steps` steps of full fine-tuning on examples/shakespeare-speeches.txt
     (block 64 x batch 4, one seed), one per dtype, evaluated in float32 on the same
     held-out passages every 50 steps: the bf16 run's held-out loss against the float32
     run's (the issue's bar: within 1%), and each run's tokens per second.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from marinade.corpus.importing import import_corpus
from marinade.models import load_model, pick_device
from marinade.precision import choose_precision
from marinade.sample_settings import SampleSettings
from marinade.sampling import sample
from marinade.training.loop import train
from marinade.training.recipe import build_recipe
from scratch import scratch_home

SPEECHES = Path(__file__).parent.parent / "examples" / "shakespeare-speeches.txt"
PARAGRAPH = (
    "The lamplighter came along the quay at dusk, as he had every evening for thirty years. "
    "He carried a long pole with a hook at one end and a small flame at the other, and he "
    "lit the lamps one by one, from the harbour master's office to the end of the pier."
)


def first_difference(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def compare_samples(home, count: int) -> None:
    settings = SampleSettings(max_new_tokens=60)
    texts = {}
    for dtype in ("float32", "bfloat16"):
        loaded = load_model("smollm2", home, dtype=dtype)
        began = time.perf_counter()
        out = sample(loaded.model, loaded.tokenizer, None, range(count), [1.0], settings)
        seconds = time.perf_counter() - began
        texts[dtype] = [c.text for c in out]
        print(f"   {dtype:<9} {count} samples in {seconds:5.1f} s (batch {out[0].batch_size})")
    pairs = list(zip(texts["float32"], texts["bfloat16"], strict=True))
    differ = [(a, b) for a, b in pairs if a != b]
    where = [first_difference(a, b) for a, b in differ]
    average = sum(where) / len(where) if where else 0
    print(
        f"   {len(differ)} of {count} texts differ between float32 and bfloat16 for the same "
        f"seeds; where they do, from character {average:.0f} on average"
    )


@torch.inference_mode()
def text_losses(home) -> None:
    passages = [p for p in SPEECHES.read_text().split("\n%\n") if p.strip()][-30:]
    for dtype in ("float32", "bfloat16"):
        loaded = load_model("smollm2", home, dtype=dtype)
        tokenizer, model = loaded.tokenizer, loaded.model
        ids = tokenizer(PARAGRAPH, return_tensors="pt")["input_ids"]
        paragraph = float(model(input_ids=ids, labels=ids).loss)
        total = 0.0
        for passage in passages:
            ids = tokenizer(passage, return_tensors="pt")["input_ids"][:, :256]
            total += float(model(input_ids=ids, labels=ids).loss)
        print(
            f"   {dtype:<9} paragraph loss {paragraph:.4f}   "
            f"mean loss of {len(passages)} passages {total / len(passages):.4f}"
        )


def compare_runs(home, store, steps: int) -> None:
    import_corpus(store, SPEECHES, "speeches")
    results = {}
    for dtype in ("float32", "bfloat16"):
        recipe = build_recipe(
            f"precision-{dtype}",
            "smollm2",
            [f"speeches:{steps}"],
            None,
            None,
            {"block_size": 64, "batch_size": 4, "eval_every": 50, "save_every": 0, "dtype": dtype},
        )
        reports: list = []
        train(store, home, recipe, on_step=reports.append)
        results[dtype] = {e.step: e.loss for e in store.evals(recipe.name)}
        print(
            f"   {dtype:<9} trained {steps} steps at {reports[-1].tokens_per_second:.0f} tokens/s"
        )
    print("   step   float32  bfloat16  difference")
    worst = 0.0
    for step, wide in sorted(results["float32"].items()):
        narrow = results["bfloat16"][step]
        change = (narrow - wide) / wide
        worst = max(worst, abs(change))
        print(f"   {step:>4}   {wide:.4f}   {narrow:.4f}   {change:+.2%}")
    print(f"   largest difference {worst:.2%} ({'within' if worst <= 0.01 else 'beyond'} 1%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a home with SmolLM2 converted (copied)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--parts", default="1,2,3", help="which measurements, e.g. 2 or 1,3")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"--dtype auto here: {choose_precision('auto', pick_device()).reason}")
    print(f"torch threads {torch.get_num_threads()}\n")
    with scratch_home(args.home) as (home, store):
        if "1" in parts:
            print(f"1. {args.samples} tweet-length samples, same seeds")
            compare_samples(home, args.samples)
        if "2" in parts:
            print("\n2. loss on test texts (evaluated in each dtype)")
            text_losses(home)
        if "3" in parts:
            print(f"\n3. {args.steps} steps of full fine-tuning, held-out loss (in float32)")
            compare_runs(home, store, args.steps)


if __name__ == "__main__":
    main()
