"""Training speed: marinade's loop against transformers' Trainer, same model, data and shapes.

    python benchmarks/training.py [--steps 8] [--block-size 256] [--batch-size 8] [--rounds 3]

Each configuration runs in its own process (so its peak memory is its own):
  - baselines: transformers `Trainer` (AdamW, same block and batch, no eval/saving), in
    float32 and with `bf16=True` (autocast, as marinade's bf16 is);
  - marinade full fine-tuning (`marinade.training.loop.train`) in float32 and in the dtype
    `--dtype auto` picks here (bfloat16 on a CPU with AVX512_BF16 or AMX);
  - the same in the auto dtype with `--compile` (torch.compile of the model's body; its
    first step, the compile, is printed apart);
  - marinade LoRA (r=16, peft's default target modules) in the auto dtype.
Tokens per second come from the median time between optimizer steps, the
first two steps left out (warm-up; evaluation and checkpointing are off). The
configurations run one after another, `--rounds` times, the order turned each
round. On a shared machine a burst of other work can slow one run by half, so
the ratios are taken within a round (runs minutes apart) and the median round's
ratio is the result; every round is printed. Also printed: the matmul peak this
machine measured per dtype (2048^3, the better of before and after training),
model-FLOPs utilisation (6 x parameters x tokens/s over the peak of the dtype the
run computes in) and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from peaks import matmul_peaks

TEXT = (
    "The lamplighter came along the quay at dusk and lit the lamps one by one, "
    "from the harbour master's office to the end of the pier, while the children "
    "counted them aloud and the fishermen mending their nets looked up and nodded."
)


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


def run_marinade(
    home_dir: Path,
    method: str,
    steps: int,
    block: int,
    batch: int,
    dtype: str,
    compile_body: bool = False,
) -> dict:
    from marinade.home import open_home
    from marinade.store import Store
    from marinade.training.checkpoints import run_folder
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
            "dtype": dtype,
            "compile": compile_body,
        },
    )
    stamps: list[float] = [time.perf_counter()]
    store = Store(home.database)
    record = train(store, home, recipe, on_step=lambda report: stamps.append(time.perf_counter()))
    shutil.rmtree(run_folder(home, recipe.name), ignore_errors=True)  # 1.6 GB of checkpoints
    return {
        "tokens_per_second": tokens_per_second(stamps[1:], block * batch),
        "dtype": record.dtype,
        "first_step_s": stamps[1] - stamps[0],  # loading, the base evaluation, any compile
    }


def run_trainer(home_dir: Path, steps: int, block: int, batch: int, bf16: bool) -> dict:
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
        bf16=bf16,  # autocast over float32 weights
    )
    Trainer(model=model, args=arguments, train_dataset=dataset, callbacks=[Stamp()]).train()
    return {
        "tokens_per_second": tokens_per_second(stamps, block * batch),
        "dtype": "bfloat16" if bf16 else "float32",
    }


# configuration: (what runs, the dtype it asks for); "auto" is what `--dtype auto` picks here
CONFIGURATIONS = {
    "trainer": ("trainer", "float32"),
    "trainer-bf16": ("trainer", "bfloat16"),
    "full-f32": ("full", "float32"),
    "full": ("full", "auto"),
    "full-compile": ("full", "auto+compile"),
    "lora": ("lora", "auto"),
}
LABELS = {
    "trainer": "baseline: transformers Trainer, float32",
    "trainer-bf16": "baseline: Trainer, bf16=True",
    "full-f32": "marinade, full, float32",
    "full": "marinade, full, auto",
    "full-compile": "marinade, full, auto, --compile",
    "lora": "marinade, LoRA r=16, auto",
}


def child(args: argparse.Namespace) -> None:
    home_dir = Path(args.home)
    before = matmul_peaks()
    what, dtype = CONFIGURATIONS[args.only]
    compile_body = dtype.endswith("+compile")
    dtype = dtype.removesuffix("+compile")
    dtype = args.dtype if dtype == "auto" else dtype
    if what == "trainer":
        result = run_trainer(
            home_dir, args.steps, args.block_size, args.batch_size, dtype == "bfloat16"
        )
    else:
        result = run_marinade(
            home_dir, what, args.steps, args.block_size, args.batch_size, dtype, compile_body
        )
    result["peak_gb"] = peak_memory_gb()
    after = matmul_peaks()  # before and after: the quieter one
    result["matmul_flops"] = {name: max(before[name], after[name]) for name in before}
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--dtype", default="auto", help="what marinade's full and LoRA runs ask for (auto)"
    )
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        child(args)
        return
    home_dir = Path(tempfile.mkdtemp(prefix="marinade-bench-train-")) / "home"
    try:
        prepare(home_dir)
        measure(home_dir, args)
    finally:  # the converted model and a Trainer's output: GBs left in /tmp otherwise
        shutil.rmtree(home_dir.parent, ignore_errors=True)


def measure(home_dir: Path, args: argparse.Namespace) -> None:
    """Every configuration, `--rounds` times, then the table."""
    parameters = 134_515_008  # SmolLM2-135M
    print(
        f"SmolLM2-135M, block {args.block_size} x batch {args.batch_size}, "
        f"{args.steps} steps a run, {args.rounds} rounds, torch threads {torch.get_num_threads()}"
    )
    print(f"--dtype auto here: {auto_choice()}\n")
    names = list(CONFIGURATIONS)
    rounds: list[dict[str, dict]] = []
    for number in range(args.rounds):
        turn = number % len(names)
        order = names[turn:] + names[:turn]  # no configuration always first
        rounds.append({name: run_child(name, home_dir, args) for name in order})
        rates = {name: result["tokens_per_second"] for name, result in rounds[-1].items()}
        shown = ", ".join(f"{name} {rate:.1f}" for name, rate in rates.items())
        print(f"round {number + 1} (tokens/s): {shown}", flush=True)
    print()
    flops = {
        dtype: statistics.median(
            run["matmul_flops"][dtype] for each in rounds for run in each.values()
        )
        for dtype in ("float32", "bfloat16")
    }
    print(
        "matmul peak, 2048^3 (median of the runs): "
        + ", ".join(f"{dtype} {value / 1e9:.0f} GFLOP/s" for dtype, value in flops.items())
        + "\n"
    )

    def ratio(name: str, baseline: str) -> float:
        return statistics.median(
            each[name]["tokens_per_second"] / each[baseline]["tokens_per_second"] for each in rounds
        )

    for name in names:
        runs = [each[name] for each in rounds]
        rate = statistics.median(run["tokens_per_second"] for run in runs)
        dtype = runs[0]["dtype"]
        mfu = statistics.median(
            6 * parameters * run["tokens_per_second"] / run["matmul_flops"][dtype] for run in runs
        )
        peak = max(run["peak_gb"] for run in runs)
        print(
            f"{LABELS[name]:<40} {dtype:<9}{rate:7.1f} tok/s   x{ratio(name, 'trainer'):.2f} "
            f"vs Trainer f32   x{ratio(name, 'trainer-bf16'):.2f} vs Trainer bf16   "
            f"MFU {mfu:5.1%}   peak {peak:.1f} GB"
        )
    first = statistics.median(each["full-compile"]["first_step_s"] for each in rounds)
    plain = statistics.median(each["full"]["first_step_s"] for each in rounds)
    print(f"\n--compile: {first:.0f} s to the first step against {plain:.0f} s without")
    print(f"LoRA against full fine-tuning (both auto): x{ratio('lora', 'full'):.2f} tokens/s")
    print(f"full, auto against full, float32: x{ratio('full', 'full-f32'):.2f} tokens/s")


def auto_choice() -> str:
    from marinade.models import pick_device
    from marinade.precision import choose_precision

    return choose_precision("auto", pick_device()).reason


def run_child(name: str, home_dir: Path, args: argparse.Namespace) -> dict:
    """One configuration in a fresh process, so its peak memory is its own."""
    command = [sys.executable, __file__, "--only", name, "--home", str(home_dir)]
    for option in ("steps", "block_size", "batch_size", "dtype"):
        command += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:  # its own last lines say why (a full disk, a missing compiler)
        raise SystemExit(f"{name} failed:\n" + "\n".join(done.stderr.splitlines()[-8:]))
    output = done.stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


if __name__ == "__main__":
    main()
