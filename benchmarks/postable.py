"""Samples a person would post: clean beginnings and sentence ends, base model against runs.

    python benchmarks/postable.py [--home HOME] [--steps 24] [--samples 100]
        [--starts end-of-text,bos,marker] [--corpus examples/short-posts.txt]

HOME, a marinade home with the embedded model already converted, is copied (never
changed); without it a fresh home converts the model first (about 30 s). The corpus
(200 short posts by default) is imported into the copy; then, for each document-start
convention (document_start.py), one LoRA run with the same short
recipe, and `--samples` unconditional samples from the base model and from each run,
same seeds. Printed per model: the share of samples that begin cleanly (sentences.py's
begins_cleanly: a capital, a digit, a quote...) and that end at a sentence end as
sampled ("today"), and with whole sentences on (sampling.py: trimmed to the last sentence
end, a little past the limit to reach one, dropped without one): the share kept, and the
share of all samples that are kept and begin cleanly ("postable").
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from marinade.corpus.importing import import_corpus
from marinade.home import Home, open_home
from marinade.models import load_model
from marinade.sample_settings import SampleSettings
from marinade.sampling import sample
from marinade.sentences import begins_cleanly, ends_cleanly
from marinade.store import Store
from marinade.training.loop import train
from marinade.training.recipe import build_recipe

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
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--starts", default="end-of-text,bos,marker")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        home = Home(Path(folder) / "home")
        if args.home:
            shutil.copytree(args.home, home.path)
        home = open_home(home.path)
        store = Store(home.database)
        import_corpus(store, args.corpus, "posts")
        print(f"corpus {args.corpus.name}: {store.corpus('posts')}")
        print(
            f"runs: LoRA, {args.steps} steps, lr {args.lr}, batch {args.batch_size} x block "
            f"{args.block_size}; {args.samples} samples each, temperature 0.8, "
            f"max_new_tokens {args.max_new_tokens}"
        )
        starts = args.starts.split(",")
        print(measure(home, "smollm2", "end-of-text", args.samples, args.max_new_tokens))
        for start in starts:
            recipe = build_recipe(
                f"run-{start}",
                "smollm2",
                [f"posts:{args.steps}"],
                None,
                None,
                {
                    "method": "lora",
                    "lr": args.lr,
                    "batch_size": args.batch_size,
                    "block_size": args.block_size,
                    "warmup": min(5, args.steps // 4),
                    "eval_every": 0,
                    "save_every": 0,
                    "document_start": start,
                },
            )
            began = time.monotonic()
            train(store, home, recipe)
            print(f"trained run-{start} in {time.monotonic() - began:.0f} s", flush=True)
            print(
                measure(home, f"run-{start}", None, args.samples, args.max_new_tokens), flush=True
            )


if __name__ == "__main__":
    main()
