"""The training loop: phases in order, held-out loss per corpus, checkpoints, exact resume.

Reads top to bottom like nanoGPT's train.py: load the base model, tokenise the
corpora, build the optimizer and schedule, then for each optimizer step draw a
batch (a pure function of seed and step), step, and now and then evaluate,
sample and save. A checkpoint holds the weights (or LoRA adapter), optimizer,
schedule, RNG state, step and recipe, so `resume` continues exactly where it
stopped. Ctrl-C saves one and marks the run interrupted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.models import LoadedModel, load_model
from marinade.sampling import context_window
from marinade.store import Store
from marinade.training.allocator import keep_freed_memory
from marinade.training.data import (
    CorpusStreams,
    draw_batch,
    held_out_blocks,
    load_streams,
    phase_weights,
)
from marinade.training.loss import LossFunction, pick_loss, standard_loss
from marinade.training.recipe import Recipe
from marinade.training.workers import Workers

STATE_FILE = "training-state.pt"


@dataclass
class StepReport:
    step: int  # optimizer steps done
    total: int
    phase: int  # 1-based
    loss: float
    tokens_per_second: float
    seconds_left: float | None


Listener = Callable[[StepReport], None]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_folder(home: Home, name: str) -> Path:
    return home.runs / name


def checkpoint_folder(home: Home, run: str, checkpoint: str) -> Path:
    return run_folder(home, run) / "checkpoints" / checkpoint


def phase_of(recipe: Recipe, step: int) -> int:
    """The 1-based phase that optimizer step `step` (0-based) belongs to."""
    end = 0
    for index, phase in enumerate(recipe.phases, 1):
        end += phase.steps
        if step < end:
            return index
    return len(recipe.phases)


def phase_ends(recipe: Recipe) -> list[int]:
    ends, total = [], 0
    for phase in recipe.phases:
        total += phase.steps
        ends.append(total)
    return ends


def lr_factor(recipe: Recipe, step: int) -> float:
    """Multiplier of the base LR at optimizer step `step`: warm-up, then the schedule,
    times the phase's own LR relative to the run's."""
    settings = recipe.settings
    total = recipe.total_steps()
    if step < settings.warmup:
        factor = (step + 1) / settings.warmup
    else:
        progress = (step - settings.warmup) / max(1, total - settings.warmup)
        if settings.schedule == "cosine":
            factor = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        elif settings.schedule == "linear":
            factor = max(0.0, 1 - progress)
        else:
            factor = 1.0
    phase = recipe.phases[phase_of(recipe, step) - 1]
    if phase.lr is not None:
        factor *= phase.lr / settings.lr
    return factor


def tokenizer_id(loaded: LoadedModel) -> str:
    vocab = sorted(loaded.tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    streams: dict[str, CorpusStreams],
    block_size: int,
    device: str,
    loss_of: LossFunction = standard_loss,
) -> dict[str, float]:
    """Mean held-out loss of each corpus (the same blocks every time)."""
    was_training = model.training
    model.eval()
    losses = {}
    for name, corpus in streams.items():
        blocks = held_out_blocks(corpus.held_out, block_size).to(device)
        total = 0.0
        for row in blocks.split(8):
            total += float(loss_of(model, row)) * len(row)
        losses[name] = total / len(blocks)
    model.train(was_training)
    return losses


def save_checkpoint(
    store: Store,
    home: Home,
    recipe: Recipe,
    name: str,
    model: Any,
    loaded: LoadedModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    resumable: bool = True,
) -> Path:
    """Write a checkpoint beside its final place and rename it in: never half-written.

    Only a resumable checkpoint ("last") carries the optimizer and schedule: for full
    fine-tuning that is twice the model's size again, and a phase's checkpoint is
    only ever a starting point for a new run (--from RUN@PHASE) or a model to sample.
    """
    target = checkpoint_folder(home, recipe.name, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        model.save_pretrained(partial)
        loaded.tokenizer.save_pretrained(partial)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict() if resumable else None,
            "scheduler": scheduler.state_dict() if resumable else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "recipe": recipe.to_dict(),
        }
        torch.save(state, partial / STATE_FILE)
        if target.exists():
            retired = target.with_name(f".old-{name}")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(target, retired)
            os.replace(partial, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(partial, target)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise MarinadeError(f"cannot save checkpoint {target}: {error.strerror or error}") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    store.save_checkpoint_record(
        {
            "run": recipe.name,
            "name": name,
            "step": step,
            "phase": phase_of(recipe, max(0, step - 1)),
            "path": str(target),
            "saved_at": now(),
        }
    )
    return target


def _starting_model(store: Store, home: Home, recipe: Recipe, device: str | None) -> LoadedModel:
    """The base model, or the checkpoint of another run that --from names."""
    if recipe.start_from:
        return load_model(recipe.start_from, home, device=device)
    return load_model(recipe.model, home, device=device)


def resumable_recipe(store: Store, name: str) -> Recipe:
    """The recipe stored with run `name`, which must exist and not be finished."""
    existing = store.run(name)
    if existing is None:
        raise MarinadeError(f"no run named {name} to resume; see `marinade runs list`")
    if existing["status"] == "finished":
        raise MarinadeError(f"run {name} is finished; nothing to resume")
    return Recipe.from_dict(json.loads(existing["recipe"]))


def train(
    store: Store,
    home: Home,
    recipe: Recipe,
    resume: bool = False,
    device: str | None = None,
    on_step: Listener | None = None,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run `recipe.name`; returns its final store record.

    Launched as several processes (`accelerate launch -m marinade train ...`), every
    process runs this; only the main one writes the store and checkpoints."""
    workers = Workers.from_environment()
    existing = store.run(recipe.name)
    if resume:
        recipe = resumable_recipe(store, recipe.name)
    elif existing is not None:
        raise MarinadeError(
            f"a run named {recipe.name} exists ({existing['status']}); "
            "use --resume to continue it, or another name"
        )
    recipe.check()
    settings = recipe.settings
    for corpus in recipe.corpora():  # before the slow part: a typo fails at once
        store.corpus(corpus)

    resume_from = checkpoint_folder(home, recipe.name, "last") if resume else None
    if resume_from is not None and not (resume_from / STATE_FILE).exists():
        resume_from = None  # stopped before its first checkpoint: start again
    loaded = _starting_model(store, home, recipe, workers.device(device))
    if settings.block_size > context_window(loaded.model):
        raise MarinadeError(
            f"--block-size {settings.block_size} is beyond {recipe.model}'s context window "
            f"of {context_window(loaded.model)} tokens"
        )
    streams = {
        name: load_streams(
            store, home.corpora, name, loaded.tokenizer, tokenizer_id(loaded), settings.held_out
        )
        for name in recipe.corpora()
    }
    model: Any = loaded.model
    if settings.method == "lora":
        from peft import LoraConfig, PeftModel, get_peft_model

        if resume_from is not None:
            model = PeftModel.from_pretrained(model, resume_from, is_trainable=True)
        else:
            config = LoraConfig(
                r=settings.lora_rank,
                lora_alpha=settings.lora_alpha,
                lora_dropout=settings.lora_dropout,
                target_modules=list(settings.lora_targets) or None,
                task_type="CAUSAL_LM",
            )
            model = get_peft_model(model, config)
    elif resume_from is not None:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(resume_from)
        model.to(loaded.device)
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        fused=True,  # one kernel for all parameters, on the CPU too (torch >= 2.4)
    )
    model, optimizer = workers.prepare(model, optimizer)
    loss_of = pick_loss(model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(recipe, s))
    step = 0
    if resume_from is not None:
        state = torch.load(resume_from / STATE_FILE, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        step = int(state["step"])
        if on_status and workers.is_main:
            on_status(f"resuming {recipe.name} at step {step} of {recipe.total_steps()}")
    else:
        torch.manual_seed(settings.seed)

    def save_run(row: dict[str, Any]) -> None:
        if workers.is_main:
            store.save_run(row)

    workers.wait()  # every process has checked the run is new before the main one records it
    record = existing or {"name": recipe.name, "created_at": now()}
    record.update(
        model=recipe.start_from or recipe.model,
        recipe=json.dumps(recipe.to_dict()),
        status="running",
        steps_done=step,
        total_steps=recipe.total_steps(),
        corpus_versions=json.dumps({n: s.version for n, s in streams.items()}),
        message=None,
        updated_at=now(),
    )
    save_run(record)

    def evaluate_now(at: int) -> None:
        if workers.is_main:
            losses = evaluate(
                workers.unwrap(model), streams, settings.block_size, loaded.device, loss_of
            )
            store.add_evals(recipe.name, at, phase_of(recipe, max(0, at - 1)), losses)
            if on_eval:
                on_eval(at, losses)
        workers.wait()

    def checkpoint(name: str, at: int, wait: bool = True) -> None:
        if workers.is_main:
            resumable = name == "last"
            unwrapped = workers.unwrap(model)
            save_checkpoint(
                store, home, recipe, name, unwrapped, loaded, optimizer, scheduler, at, resumable
            )
        if wait:
            workers.wait()

    def sample_now(at: int) -> None:
        """A few samples from the model as it is now, logged with origin "training"."""
        from marinade.generation import generate_samples
        from marinade.sample_settings import SampleSettings

        current = LoadedModel(
            name=f"{recipe.name}@step{at}",
            model=workers.unwrap(model),
            tokenizer=loaded.tokenizer,
            weights_hash=f"training-step-{at}",
            device=loaded.device,
            folder=run_folder(home, recipe.name),
        )
        model.eval()
        if workers.is_main:
            for prompt in settings.sample_prompts or (None,):
                generate_samples(
                    store,
                    current,
                    prompt,
                    [settings.seed],
                    [settings.sample_temperature],
                    SampleSettings(max_new_tokens=60),
                    origin="training",
                )
        model.train()
        workers.wait()

    total = recipe.total_steps()
    ends = phase_ends(recipe)
    autocast = torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=loaded.device.startswith("cuda")
    )
    started = time.monotonic()
    tokens_done = 0
    restore_memory = keep_freed_memory(enabled=loaded.device == "cpu")
    try:
        if step == 0:
            evaluate_now(0)  # the base model, before any training
        while step < total:
            weights = phase_weights(recipe.phases[phase_of(recipe, step) - 1], streams)
            loss_sum = 0.0
            for micro in range(settings.grad_accum):
                batch = draw_batch(
                    streams,
                    weights,
                    settings.batch_size,
                    settings.block_size,
                    settings.seed,
                    # each process its own micro-batches; one process: 0, 1, 2, ...
                    (step * settings.grad_accum + micro) * workers.count + workers.rank,
                ).to(loaded.device)
                with autocast:
                    loss = loss_of(model, batch) / settings.grad_accum
                workers.backward(loss)
                loss_sum += loss.detach().item()
                tokens_done += batch.numel()
            workers.clip_grad_norm(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            elapsed = time.monotonic() - started
            loss_sum = workers.mean(loss_sum)
            if on_step and workers.is_main:
                rate = tokens_done / elapsed if elapsed else 0.0
                left = elapsed / max(1, step - record["steps_done"]) * (total - step)
                on_step(StepReport(step, total, phase_of(recipe, step - 1), loss_sum, rate, left))
            if step in ends:
                evaluate_now(step)
                checkpoint(f"phase-{ends.index(step) + 1}", step)
                checkpoint("last", step)
            else:
                if settings.eval_every and step % settings.eval_every == 0:
                    evaluate_now(step)
                if settings.save_every and step % settings.save_every == 0:
                    checkpoint("last", step)
            if settings.sample_every and step % settings.sample_every == 0:
                sample_now(step)
            save_run({**record, "steps_done": step, "updated_at": now()})
            limit = settings.max_minutes
            out_of_time = limit is not None and limit > 0 and elapsed > limit * 60
            if workers.any(out_of_time) and step < total:
                checkpoint("last", step)
                record.update(
                    status="interrupted", message=f"stopped after {settings.max_minutes} minutes"
                )
                save_run({**record, "steps_done": step, "updated_at": now()})
                return store.run(recipe.name) or record
    except KeyboardInterrupt:
        checkpoint("last", step, wait=False)  # the other processes were interrupted too
        save_run(
            {
                **record,
                "status": "interrupted",
                "steps_done": step,
                "message": "Ctrl-C",
                "updated_at": now(),
            }
        )
        raise
    except Exception as error:
        save_run(
            {
                **record,
                "status": "failed",
                "steps_done": step,
                "message": str(error)[:500],
                "updated_at": now(),
            }
        )
        raise
    finally:
        restore_memory()
    save_run({**record, "status": "finished", "steps_done": step, "updated_at": now()})
    return store.run(recipe.name) or record
