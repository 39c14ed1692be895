"""Learning from ratings, shown: a scripted rater, a ratings phase, and a fresh cell rated again.

    python benchmarks/ratings.py [--home HOME] [--samples 100] [--steps 60] [--lr LR]

A scripted rater stands in for a person: it accepts exactly the samples that begin
cleanly and end at a sentence end (sentences.py), and rejects the rest. In a copy of
HOME (or a fresh home, which converts the embedded model first, about 30 s), a run
`bot` is trained briefly on a small corpus (examples/short-posts.txt); `--samples`
unconditional samples of it (temperature 1, up to 40 new tokens, not trimmed to whole
sentences) are rated by the rule; then `bot-2` trains one ratings phase from `bot`
(`--phase ratings:STEPS`) and a fresh cell of as many samples, with other seeds, is
rated by the same rule. Printed: both accept rates with 95% Wilson intervals, the
ratings' held-out preference accuracy and KL, the held-out loss of the corpus before
and after, and the time each part took.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from marinade.corpus.importing import import_corpus
from marinade.generation import generate_samples
from marinade.home import Home
from marinade.models import load_model
from marinade.sample_settings import SampleSettings
from marinade.sentences import begins_cleanly, ends_cleanly
from marinade.store import Store
from marinade.training.loop import train
from marinade.training.recipe import build_recipe
from scratch import scratch_home

ROOT = Path(__file__).resolve().parent.parent


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a share."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - spread, centre + spread


def rule(text: str) -> bool:
    """The scripted rater's rule."""
    return begins_cleanly(text) and ends_cleanly(text)


def rate_cell(store: Store, home: Home, model: str, seeds: range, max_new: int) -> tuple[int, int]:
    """Sample `model` once per seed, rate each sample by the rule; (accepted, samples)."""
    loaded = load_model(model, home, device="cpu")
    rows = generate_samples(
        store, loaded, None, list(seeds), [1.0], SampleSettings(max_new_tokens=max_new)
    )
    accepted = 0
    for row in rows:
        good = rule(row["text"])
        accepted += good
        store.rate_sample(row["id"], "accept" if good else "reject", now=time_now())
    return accepted, len(rows)


def time_now() -> str:
    from marinade.timestamps import now_iso

    return now_iso()


def final_loss(store: Store, run: str, corpus: str) -> float:
    return [e.loss for e in store.evals(run) if e.corpus == corpus][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--corpus", type=Path, default=ROOT / "examples" / "short-posts.txt")
    parser.add_argument("--base-steps", type=int, default=15)
    parser.add_argument("--steps", type=int, default=60, help="of the ratings phase")
    parser.add_argument("--lr", type=float, help="of the ratings phase (default: the run's)")
    parser.add_argument("--method", default="full")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args()

    with scratch_home(args.home) as (home, store):
        import_corpus(store, args.corpus, "posts")
        settings = {"block_size": 128, "batch_size": 8, "save_every": 0, "eval_every": 0}

        began = time.monotonic()
        train(store, home, build_recipe("bot", "smollm2", [f"posts:{args.base_steps}"],
                                        None, None, settings))  # fmt: skip
        print(f"bot: posts:{args.base_steps}, in {time.monotonic() - began:.0f} s", flush=True)

        began = time.monotonic()
        before, total = rate_cell(store, home, "bot", range(args.samples), args.max_new_tokens)
        low, high = wilson(before, total)
        print(f"bot   accepts {before}/{total} = {before / total:.0%} [{low:.0%}, {high:.0%}]"
              f"  ({time.monotonic() - began:.0f} s to sample and rate)", flush=True)  # fmt: skip

        phase = f"ratings:{args.steps}" + (f":{args.lr:g}" if args.lr else "")
        tuned = {**settings, "method": args.method, "eval_every": max(1, args.steps // 4)}
        began = time.monotonic()
        train(store, home, build_recipe("bot-2", "smollm2", [phase], "bot", None, tuned))
        trained_in = time.monotonic() - began
        measured = store.rating_evals("bot-2")
        curve = ", ".join(
            f"step {m.step}: {m.accuracy:.2f}" if m.accuracy is not None else f"step {m.step}: -"
            for m in measured
        )
        print(f"bot-2: {phase} ({args.method}) in {trained_in:.0f} s; held-out preference "
              f"accuracy {curve}; KL {measured[-1].kl:.3f}", flush=True)  # fmt: skip

        seeds = range(10_000, 10_000 + args.samples)
        after, total_after = rate_cell(store, home, "bot-2", seeds, args.max_new_tokens)
        low2, high2 = wilson(after, total_after)
        print(f"bot-2 accepts {after}/{total_after} = {after / total_after:.0%} "
              f"[{low2:.0%}, {high2:.0%}]")  # fmt: skip
        loss_before, loss_after = (
            final_loss(store, "bot", "posts"),
            final_loss(store, "bot-2", "posts"),
        )
        change = (loss_after - loss_before) / loss_before
        print(f"held-out loss of posts: {loss_before:.3f} -> {loss_after:.3f} ({change:+.1%})")
        rose = low2 > before / total
        verdict = "rose significantly" if rose else "did NOT rise significantly"
        print(
            f"the accept rate {verdict} (new lower bound {low2:.0%}, old rate {before / total:.0%})"
        )


if __name__ == "__main__":
    main()
