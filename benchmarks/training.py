"""Training speed: marinade's loop against transformers' Trainer, same model, data and shapes.

    python benchmarks/training.py [--steps 8] [--block-size 256] [--batch-size 8] [--rounds 3]

Each configuration runs in its own process (so its peak memory is its own):
  - baseline: transformers `Trainer` (AdamW, same block and batch, no eval/saving);
  - marinade full fine-tuning (`marinade.training.loop.train`);
  - marinade LoRA (r=16, peft's default target modules).
Tokens per second come from the median time between optimizer steps, the
first two steps left out (warm-up; evaluation and checkpointing are off). The
configurations run one after another, `--rounds` times, the order turned each
round. On a shared machine a burst of other work can slow one run by half, so
the ratios are taken within a round (runs minutes apart) and the median round's
ratio is the result; every round is printed. Also printed: model-FLOPs
utilisation (6 x parameters x tokens/s over the float32 matmul FLOP/s that the
same process measured, the better of before and after training) and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TEXT = (
    "The lamplighter came along the quay at dusk and lit the lamps one by one, "
    "from the harbour master's office to the end of the pier, while the children "
    "counted them aloud and the fishermen mending their nets looked up and nodded."
)


def matmul_flops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    began = time.perf_counter()
    for _ in range(10):
        torch.mm(a, b)
    return 10 * 2 * 2048**3 / (time.perf_counter() - began)


def peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def tokens_per_second(stamps: list[float], tokens_per_step: int) -> float:
    """From the times at which optimizer steps ended: the median step, warm-up left out."""
    steps = [later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False)]
    return tokens_per_step / statistics.median(steps[1:] if len(steps) > 2 else steps)


def prepare(home_dir: Path) -> None:
    """A corpus of 200 short documents in a fresh home, and the default model converted."""
    from marinade.corpus.importing import import_corpus
    from marinade.home import open_home
    from marinade.models import model_folder
    from marinade.store import Store

    folder = home_dir.parent / "texts"
    folder.mkdir(exist_ok=True)
    for i in range(200):
        (folder / f"{i}.txt").write_text(f"{TEXT} Evening number {i}.")
    home = open_home(home_dir)
    import_corpus(Store(home.database), folder, "bench")
    model_folder("smollm2", home)


def run_marinade(home_dir: Path, method: str, steps: int, block: int, batch: int) -> dict:
    from marinade.home import open_home
    from marinade.store import Store
    from marinade.training.loop import train
    from marinade.training.recipe import build_recipe

    home = open_home(home_dir)
    recipe = build_recipe(
        f"bench-{method}-{os.getpid()}",  # a new run each round
        "smollm2",
        [f"bench:{steps}"],
        None,
        None,
        {
            "method": method,
            "block_size": block,
            "batch_size": batch,
            "eval_every": 0,
            "save_every": 0,
            "warmup": 1,
        },
    )
    stamps: list[float] = []
    train(
        Store(home.database),
        home,
        recipe,
        on_step=lambda report: stamps.append(time.perf_counter()),
    )
    return {"tokens_per_second": tokens_per_second(stamps, block * batch)}


def run_trainer(home_dir: Path, steps: int, block: int, batch: int) -> dict:
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from marinade.home import open_home
    from marinade.models import model_folder

    folder, _ = model_folder("smollm2", open_home(home_dir))
    model = AutoModelForCausalLM.from_pretrained(folder)
    generator = torch.Generator().manual_seed(0)
    rows = [
        torch.randint(0, model.config.vocab_size, (block,), generator=generator)
        for _ in range(steps * batch)
    ]
    dataset = [{"input_ids": row, "labels": row} for row in rows]
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            stamps.append(time.perf_counter())

    arguments = TrainingArguments(
        output_dir=str(home_dir.parent / "trainer"),
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=5e-5,
        warmup_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        logging_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    Trainer(model=model, args=arguments, train_dataset=dataset, callbacks=[Stamp()]).train()
    return {"tokens_per_second": tokens_per_second(stamps, block * batch)}


def child(args: argparse.Namespace) -> None:
    home_dir = Path(args.home)
    flops = matmul_flops()
    if args.only == "trainer":
        result = run_trainer(home_dir, args.steps, args.block_size, args.batch_size)
    else:
        result = run_marinade(home_dir, args.only, args.steps, args.block_size, args.batch_size)
    result["peak_gb"] = peak_memory_gb()
    result["matmul_flops"] = max(flops, matmul_flops())  # before and after: the quieter one
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        child(args)
        return
    home_dir = Path(tempfile.mkdtemp(prefix="marinade-bench-train-")) / "home"
    prepare(home_dir)
    parameters = 134_515_008  # SmolLM2-135M
    print(
        f"SmolLM2-135M, block {args.block_size} x batch {args.batch_size}, "
        f"{args.steps} steps a run, {args.rounds} rounds\n"
    )
    names = ["trainer", "full", "lora"]
    rounds: list[dict[str, dict]] = []
    for number in range(args.rounds):
        order = names[number % 3 :] + names[: number % 3]  # no configuration always first
        rounds.append({name: run_child(name, home_dir, args) for name in order})
        rates = {name: result["tokens_per_second"] for name, result in rounds[-1].items()}
        print(
            f"round {number + 1}: Trainer {rates['trainer']:.1f}, full {rates['full']:.1f} "
            f"(x{rates['full'] / rates['trainer']:.2f}), LoRA {rates['lora']:.1f} "
            f"(x{rates['lora'] / rates['trainer']:.2f}) tokens/s",
            flush=True,
        )
    labels = {
        "trainer": "baseline: transformers Trainer",
        "full": "marinade, full fine-tuning",
        "lora": "marinade, LoRA r=16",
    }
    print()
    for name in names:
        runs = [each[name] for each in rounds]
        rate = statistics.median(run["tokens_per_second"] for run in runs)
        ratio = statistics.median(
            run["tokens_per_second"] / each["trainer"]["tokens_per_second"]
            for run, each in zip(runs, rounds, strict=True)
        )
        mfu = statistics.median(
            6 * parameters * run["tokens_per_second"] / run["matmul_flops"] for run in runs
        )
        peak = max(run["peak_gb"] for run in runs)
        print(
            f"{labels[name]:<32} {rate:7.1f} tok/s   x{ratio:.2f} vs Trainer   "
            f"MFU {mfu:5.1%}   peak {peak:.1f} GB"
        )
    lora_vs_full = statistics.median(
        each["lora"]["tokens_per_second"] / each["full"]["tokens_per_second"] for each in rounds
    )
    print(f"\nLoRA against full fine-tuning: x{lora_vs_full:.2f} tokens/s (median round)")


def run_child(name: str, home_dir: Path, args: argparse.Namespace) -> dict:
    """One configuration in a fresh process, so its peak memory is its own."""
    command = [sys.executable, __file__, "--only", name, "--home", str(home_dir)]
    for option in ("steps", "block_size", "batch_size"):
        command += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


if __name__ == "__main__":
    main()
