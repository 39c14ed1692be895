"""Does marinating then searing keep more of A than merging, and learn B as well?

    python benchmarks/forgetting.py [--home HOME] [--seeds 0,1] [--grid examples/forgetting.toml]

HOME, a marinade home with the embedded model already converted, is copied (never
changed); without it a fresh home converts the model first. "admired"
(examples/shakespeare-speeches.txt) and "mine" (examples/short-posts.txt) are imported
into the copy, then the grid (marinade = admired then mine, merged = admired+mine, mine
only, and the base model) runs once per seed, the training seed changed, one sample per
cell (the losses are what is measured here, not the samples). Printed: each recipe's
final held-out loss on both corpora, the mean over the seeds and (min-max), as
`experiment report` computes them (curation/losses.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

from marinade.corpus.importing import import_corpus
from marinade.curation.experiment import run_experiment
from marinade.curation.losses import experiment_losses, recipe_losses
from marinade.curation.spec import load_experiment
from scratch import scratch_home

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--grid", type=Path, default=ROOT / "examples" / "forgetting.toml")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    grid = load_experiment(args.grid)

    with scratch_home(args.home) as (home, store):
        import_corpus(store, ROOT / "examples" / "shakespeare-speeches.txt", "admired")
        import_corpus(store, ROOT / "examples" / "short-posts.txt", "mine")
        for name in ("admired", "mine"):
            print(f"corpus {name}: {store.corpus(name)}", flush=True)
        found: dict[str, dict[str, list[float]]] = {}
        for seed in seeds:
            spec = replace(
                grid,
                name=f"{grid.name}-seed{seed}",
                samples_per_cell=1,
                max_new_tokens=8,
                training={**grid.training, "seed": seed},
            )
            began = time.monotonic()
            run_experiment(store, home, spec, device="cpu")
            _, curves = experiment_losses(store, spec.name)
            for row in recipe_losses(curves):
                for corpus, loss in row.held_out_loss.items():
                    found.setdefault(row.recipe, {}).setdefault(corpus, []).append(loss)
                shown = ", ".join(f"{c} {loss:.3f}" for c, loss in row.held_out_loss.items())
                print(f"seed {seed} {row.recipe:<10} step {row.held_out_step}: {shown}", flush=True)
            print(f"seed {seed}: {time.monotonic() - began:.0f} s", flush=True)
        print(f"\nheld-out loss at the end, mean (min-max) over seeds {args.seeds}:")
        for recipe, by_corpus in found.items():
            cells = [
                f"{corpus} {statistics.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})"
                for corpus, v in by_corpus.items()
            ]
            print(f"  {recipe:<10} " + "  ".join(cells))


if __name__ == "__main__":
    main()
