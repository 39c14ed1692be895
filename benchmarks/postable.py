"""Samples a person would post: clean beginnings and sentence ends, base model against runs.

    python benchmarks/postable.py [--home HOME] [--samples 100]
        [--corpus examples/short-posts.txt] [--starts end-of-text,bos,marker --steps 24]

HOME, a marinade home with the embedded model already converted, is copied (never
changed); without it a fresh home converts the model first (about 30 s). The corpus
(200 short posts by default) is imported into the copy; then two runs: `train`'s
defaults as a first run gets them (`--phase posts`, nothing else: LoRA, its learning
rate, automatic steps, the marker start), and the same number of steps with the defaults
from before (full fine-tuning at lr 5e-5, warm-up 20, documents after end-of-text).
With `--starts`, instead, one LoRA run per document-start convention (document_start.py)
with the short recipe of `--steps`, `--lr`, `--batch-size`, `--block-size`. Then
`--samples` unconditional samples from the base model and from each run, same seeds.
Printed per model: the share of samples that begin cleanly (sentences.py's
begins_cleanly: a capital, a digit, a quote...) and that end at a sentence end as
sampled ("today"), and with whole sentences on (sampling.py: trimmed to the last sentence
end, a little past the limit to reach one, dropped without one): the share kept, and the
share of all samples that are kept and begin cleanly ("postable").
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from marinade.corpus.importing import import_corpus
from marinade.home import Home
from marinade.models import load_model
from marinade.sample_settings import SampleSettings
from marinade.sampling import sample
from marinade.sentences import begins_cleanly, ends_cleanly
from marinade.store import Store
from marinade.training.loop import train
from marinade.training.recipe import build_recipe
from scratch import scratch_home

ROOT = Path(__file__).resolve().parent.parent


def shares(texts: list[str], total: int) -> tuple[float, float, float]:
    """Of `total` samples: the share of `texts` beginning cleanly, ending cleanly, both."""
    begin = sum(begins_cleanly(text) for text in texts) / total
    end = sum(ends_cleanly(text) for text in texts) / total
    both = sum(begins_cleanly(text) and ends_cleanly(text) for text in texts) / total
    return begin, end, both


def measure(home: Home, model: str, start: str | None, count: int, max_new: int) -> str:
    """One line of figures for `model` (its own convention, or `start` when given)."""
    loaded = load_model(model, home, device="cpu")
    convention = start or loaded.document_start
    seeds = list(range(count))
    began = time.monotonic()
    rows = []
    for whole in (False, True):
        settings = SampleSettings(max_new_tokens=max_new, whole_sentences=whole)
        completions = sample(
            loaded.model,
            loaded.tokenizer,
            None,
            seeds,
            [0.8],
            settings,
            document_start=convention,
        )
        kept = [c.text for c in completions if not c.dropped]
        rows.append(shares(kept, count) + (len(kept) / count,))
    (b0, e0, both0, _), (b1, e1, both1, kept1) = rows
    seconds = time.monotonic() - began
    return (
        f"{model:<14} {convention:<12} today: begin {b0:4.0%} end {e0:4.0%} both {both0:4.0%}"
        f" | whole sentences: kept {kept1:4.0%} begin {b1:4.0%} postable {both1:4.0%}"
        f"  ({seconds:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--corpus", type=Path, default=ROOT / "examples" / "short-posts.txt")
    parser.add_argument("--steps", type=int, default=24, help="with --starts")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--starts", help="e.g. end-of-text,bos,marker; default: the default run")
    args = parser.parse_args()

    with scratch_home(args.home) as (home, store):
        import_corpus(store, args.corpus, "posts")
        print(f"corpus {args.corpus.name}: {store.corpus('posts')}")
        print(measure(home, "smollm2", "end-of-text", args.samples, args.max_new_tokens))
        if args.starts:
            compare_starts(store, home, args)
        else:
            compare_defaults(store, home, args)


def timed_train(store: Store, home: Home, name: str, phases: list[str], given: dict) -> None:
    recipe = build_recipe(name, "smollm2", phases, None, None, {"save_every": 0, **given})
    began = time.monotonic()
    run = train(store, home, recipe)
    evals = [row for row in store.evals(name) if row.corpus == "posts"]
    losses = f"held-out loss {evals[0].loss:.3f} -> {evals[-1].loss:.3f}"
    settings = recipe.settings
    print(
        f"trained {name}: {settings.method}, lr {settings.peak_lr:g}, {run.total_steps} steps "
        f"of {settings.batch_size} x {settings.block_size} tokens, {losses}, "
        f"in {time.monotonic() - began:.0f} s",
        flush=True,
    )


def compare_defaults(store: Store, home: Home, args: argparse.Namespace) -> None:
    """The first run a user gets today against the same steps with the defaults before."""
    timed_train(store, home, "run-default", ["posts"], {"eval_every": 0})
    steps = store.run("run-default").total_steps
    print(measure(home, "run-default", None, args.samples, args.max_new_tokens), flush=True)
    before = {"method": "full", "lr": 5e-5, "warmup": 20, "document_start": "end-of-text"}
    timed_train(store, home, "run-before", [f"posts:{steps}"], {"eval_every": 0, **before})
    print(measure(home, "run-before", None, args.samples, args.max_new_tokens), flush=True)


def compare_starts(store: Store, home: Home, args: argparse.Namespace) -> None:
    print(
        f"runs: LoRA, {args.steps} steps, lr {args.lr}, batch {args.batch_size} x block "
        f"{args.block_size}; {args.samples} samples each, temperature 0.8, "
        f"max_new_tokens {args.max_new_tokens}"
    )
    for start in args.starts.split(","):
        given = {
            "method": "lora",
            "lr": args.lr,
            "batch_size": args.batch_size,
            "block_size": args.block_size,
            "warmup": min(5, args.steps // 4),
            "eval_every": 0,
            "document_start": start,
        }
        timed_train(store, home, f"run-{start}", [f"posts:{args.steps}"], given)
        print(measure(home, f"run-{start}", None, args.samples, args.max_new_tokens), flush=True)


if __name__ == "__main__":
    main()
