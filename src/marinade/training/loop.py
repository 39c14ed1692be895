"""The training loop: phases in order, held-out loss per corpus, checkpoints, exact resume.

Reads top to bottom like nanoGPT's train.py: load the base model (or the run's `last`
checkpoint when resuming), tokenise the corpora, build the optimizer and schedule, then
for each optimizer step draw a batch (a pure function of seed and step), step, and now
and then evaluate, sample and save. A checkpoint (training/checkpoints.py) holds the
weights (or LoRA adapter), optimizer, schedule, RNG state, step and recipe, so `resume`
continues exactly where it stopped. The run's row in the store says how far it got and
how it ended: running, finished, interrupted (Ctrl-C saves `last` first, as does
--max-minutes) or failed, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.models import (
    LoadedModel,
    load_causal_lm,
    load_model,
    loading_errors,
    pick_device,
    quiet_transformers,
)
from marinade.sampling import context_window
from marinade.store import Run, RunStatus, Store
from marinade.timestamps import now_iso
from marinade.training import ratings as rated
from marinade.training.allocator import keep_freed_memory
from marinade.training.checkpoints import (
    LAST,
    TrainingState,
    phase_checkpoint,
    restore_state,
    resumable_checkpoint,
    run_folder,
    save_checkpoint,
    tidy_checkpoints,
)
from marinade.training.data import (
    CorpusStreams,
    draw_batch,
    held_out_blocks,
    load_streams,
    phase_weights,
)
from marinade.training.loss import (
    LossFunction,
    check_compiler,
    compiled,
    pick_loss,
    standard_loss,
)
from marinade.training.recipe import (
    Recipe,
    TrainSettings,
    automatic_warmup,
    describe_automatic_steps,
    phase_ends,
    phase_of,
    with_automatic_steps,
)
from marinade.training.run_lock import training_lock
from marinade.training.runs import record_checkpoint, resumable_recipe
from marinade.training.split import describe_split
from marinade.training.workers import Workers


@dataclass
class StepReport:
    step: int  # optimizer steps done
    total: int
    phase: int  # 1-based
    loss: float
    tokens_per_second: float
    seconds_left: float | None


Listener = Callable[[StepReport], None]


def lr_factor(recipe: Recipe, step: int) -> float:
    """Multiplier of the base LR at optimizer step `step`: warm-up, then the schedule,
    times the phase's own LR relative to the run's."""
    settings = recipe.settings
    total = recipe.total_steps()
    warmup = automatic_warmup(total) if settings.warmup is None else settings.warmup
    if step < warmup:
        factor = (step + 1) / warmup
    else:
        progress = (step - warmup) / max(1, total - warmup)
        if settings.schedule == "cosine":
            factor = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        elif settings.schedule == "linear":
            factor = max(0.0, 1 - progress)
        else:
            factor = 1.0
    phase = recipe.phases[phase_of(recipe, step) - 1]
    if phase.lr is not None:
        factor *= phase.lr / settings.peak_lr
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
        blocks = held_out_blocks(corpus.held_out, block_size, corpus.split).to(device)
        total = 0.0
        for row in blocks.split(8):
            total += float(loss_of(model, row)) * len(row)
        losses[name] = total / len(blocks)
    model.train(was_training)
    return losses


def dropout_seed(seed: int, micro_batch: int) -> int:
    """The global generator's seed for one micro-batch's forward and backward pass.

    Dropout (LoRA's, GPT-2's) draws from torch's global generator, and so may anything
    else between steps (an evaluation, samples during training). Seeding it afresh for
    every micro-batch makes each one's randomness a function of (seed, micro-batch), as
    the batch itself is: two runs with one seed match, and a run resumed after any
    interruption, even one in the middle of a step, draws what it would have drawn.
    The offset keeps these draws apart from the batch generator's, seeded nearby."""
    return (1 << 40) + seed * 1_000_003 + micro_batch


def _recipe_to_train(store: Store, recipe: Recipe, resume: bool) -> tuple[Recipe, Run | None]:
    """The recipe to train (the stored one when resuming) and the run's row, if it has one.

    A new run needs a free name; a resumed one must exist and not be finished."""
    existing = store.run(recipe.name)
    if resume:
        recipe = resumable_recipe(store, recipe.name)
    elif existing is not None:
        raise MarinadeError(
            f"a run named {recipe.name} exists ({existing.status}); "
            "use --resume to continue it, or another name"
        )
    recipe.check()
    return recipe, existing


def _trainable_model(loaded: LoadedModel, settings: TrainSettings, resume_from: Path | None) -> Any:
    """The model to train, in training mode: the loaded one itself (full fine-tuning) or
    with a new LoRA adapter; when resuming, the weights or adapter of `resume_from`."""
    model: Any = loaded.model
    if settings.method == "lora":
        from peft import LoraConfig, PeftModel, get_peft_model

        if resume_from is not None:
            with loading_errors(resume_from, "the checkpoint's adapter"):
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
        with loading_errors(resume_from, "the checkpoint"):
            model = load_causal_lm(resume_from)
        model.to(loaded.device)
    model.train()
    return model


def _log_samples(store: Store, home: Home, device: str, state: TrainingState) -> None:
    """A few samples from the model as it is now, logged with origin "training"."""
    from marinade.generation import generate_samples
    from marinade.sample_settings import SampleSettings

    recipe, settings = state.recipe, state.recipe.settings
    current = LoadedModel(
        name=f"{recipe.name}@step{state.step}",
        model=state.model,
        tokenizer=state.tokenizer,
        weights_hash=f"training-step-{state.step}",
        device=device,
        folder=run_folder(home, recipe.name),
        document_start=settings.document_start,
    )
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


@quiet_transformers
def train(
    store: Store,
    home: Home,
    recipe: Recipe,
    resume: bool = False,
    device: str | None = None,
    on_step: Listener | None = None,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    resume_with: dict[str, Any] | None = None,
    ratings_filter: rated.RatingsFilter | None = None,
) -> Run:
    """Train (or resume) the run `recipe.name`; returns its final store record.

    `ratings_filter`: which ratings a bare `ratings` phase takes (retrain's: those since
    the last retrain); a resumed run keeps the ratings it froze when it started.

    `resume_with`: settings that only watch a run (training/runs.py's WATCH_ONLY),
    applied to the resumed part; the run's stored recipe keeps its own.

    Launched as several processes (`accelerate launch -m marinade train ...`), every
    process runs this; only the main one writes the store and checkpoints, and holds
    the run's training lock (training/run_lock.py) from the first check to the last
    record, so that a killed run reads as interrupted and two processes never train
    one run at once. Holding it, the main process first tidies what a killed save left
    in the checkpoints (a `.old-last` put back, partial folders removed)."""
    workers = Workers.from_environment()
    recipe, existing = _recipe_to_train(store, recipe, resume)
    if not workers.is_main:
        return _train(store, home, recipe, existing, workers, resume, device,
                      on_step, on_eval, on_status, resume_with, ratings_filter)  # fmt: skip
    with training_lock(home, recipe.name):
        for line in tidy_checkpoints(home, recipe.name):
            if on_status:
                on_status(f"{recipe.name}: {line} (left by a run that was killed)")
        return _train(store, home, recipe, existing, workers, resume, device,
                      on_step, on_eval, on_status, resume_with, ratings_filter)  # fmt: skip


def training_autocast(dtype: str, device: str) -> torch.autocast:
    """bfloat16: the forward pass (and so the backward) under autocast, weights and
    optimizer state staying float32; float32: autocast off."""
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")


def _with_training_dtype(
    recipe: Recipe, resume: bool, device: str | None
) -> tuple[Recipe, str | None]:
    """The recipe with its dtype settled, and a line to show once the model loads.

    When a run starts, "auto" or an asked dtype is checked against the hardware (a
    one-line error before anything is stored); a resumed run keeps the dtype it trained
    in, slower where this machine emulates bf16."""
    from marinade.precision import choose_precision, native_bf16

    torch_device = pick_device(device)
    dtype = recipe.settings.dtype
    if resume:
        if dtype == "bfloat16" and native_bf16(torch_device) is None:
            return recipe, (
                f"{recipe.name} trained in bfloat16 and resumes in it; this "
                f"{torch_device.type} has no native bf16, so it is slower here"
            )
        return recipe, None
    precision = choose_precision(dtype, torch_device)
    note = None
    if precision.dtype == torch.bfloat16:  # float32 is what it always was: no line
        note = f"training in bfloat16 autocast over float32 weights ({precision.reason})"
    return replace(recipe, settings=replace(recipe.settings, dtype=precision.name)), note


def _ratings_phases(
    store: Store,
    home: Home,
    recipe: Recipe,
    settings: TrainSettings,
    resume: bool,
    selection: rated.RatingsFilter,
) -> dict[int, rated.RatingsData | list[rated.RatedExample]]:
    """Each ratings phase's examples, checked before anything slow: frozen in the run
    folder when the run starts (and read back from there on resume), so that it trains
    on the same ratings throughout. New ones come as examples, to be tokenised."""
    phases: dict[int, rated.RatingsData | list[rated.RatedExample]] = {}
    folder = run_folder(home, recipe.name)
    for number in recipe.ratings_phases():
        data = rated.load_data(folder, number) if resume else None
        if data is not None:
            phases[number] = data
            continue
        source = recipe.phases[number - 1].ratings_source()
        assert source is not None
        examples = rated.select_examples(store, source, rated.lineage(store, recipe), selection)
        rated.check_examples(source, examples)
        phases[number] = examples
    return phases


def _train(
    store: Store,
    home: Home,
    recipe: Recipe,
    existing: Run | None,
    workers: Workers,
    resume: bool,
    device: str | None,
    on_step: Listener | None,
    on_eval: Callable[[int, dict[str, float]], None] | None,
    on_status: Callable[[str], None] | None,
    resume_with: dict[str, Any] | None,
    ratings_filter: rated.RatingsFilter | None = None,
) -> Run:
    """The training itself, once train() has the recipe (and, in the main process, the lock)."""
    settings = replace(recipe.settings, **(resume_with or {}))
    for corpus in [*recipe.corpora(), *settings.measure]:  # a typo fails at once
        store.corpus(corpus)
    selection = ratings_filter or rated.RatingsFilter()
    chosen = _ratings_phases(store, home, recipe, settings, resume, selection)
    # a ratings phase is also measured on the corpora its lineage trained on
    measured = rated.lineage_corpora(store, recipe) if recipe.ratings_phases() else []

    resume_from = resumable_checkpoint(home, recipe.name) if resume else None
    chosen_device = workers.device(device)
    recipe, dtype_note = _with_training_dtype(recipe, resume, chosen_device)
    settings = replace(settings, dtype=recipe.settings.dtype)  # "auto" settled
    if settings.compile and pick_device(chosen_device).type == "cpu":
        check_compiler()
    # float32 master weights and optimizer state; bfloat16 computes under autocast (below)
    loaded = load_model(
        recipe.start_from or recipe.model, home, device=chosen_device, dtype="float32"
    )
    if settings.block_size > context_window(loaded.model):
        raise MarinadeError(
            f"--block-size {settings.block_size} is beyond {recipe.model}'s context window "
            f"of {context_window(loaded.model)} tokens"
        )
    streams = {
        name: load_streams(
            store,
            home.corpora,
            name,
            loaded.tokenizer,
            tokenizer_id(loaded),
            settings.held_out,
            settings.held_out_split,
            settings.block_size,
            settings.document_start,
        )
        for name in dict.fromkeys([*recipe.corpora(), *measured, *settings.measure])
    }
    if on_status and workers.is_main:
        if dtype_note:
            on_status(dtype_note)
        for name, streamed in streams.items():
            on_status(describe_split(name, streamed.summary()))
    ratings = {
        number: found
        if isinstance(found, rated.RatingsData)
        else rated.tokenize_examples(
            recipe.phases[number - 1].ratings_source() or "",
            found,
            loaded.tokenizer,
            settings.document_start,
            settings.block_size,
            selection,
        )  # fmt: skip
        for number, found in chosen.items()
    }
    if on_status and workers.is_main:
        for number, data in ratings.items():
            on_status(rated.describe(data, number))
    if not recipe.steps_picked():
        train_tokens = {name: len(streamed.train) for name, streamed in streams.items()}
        for number, data in ratings.items():  # a rated sample counts as a block: passes
            source = recipe.phases[number - 1].ratings_source() or ""
            train_tokens[source] = len(data.train) * settings.block_size
        recipe = with_automatic_steps(recipe, train_tokens)
        if on_status and workers.is_main:
            for line in describe_automatic_steps(recipe, train_tokens):
                on_status(line)
    torch.manual_seed(settings.seed)  # LoRA's initial weights are drawn here
    model = _trainable_model(loaded, settings, resume_from)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters,
        lr=settings.peak_lr,
        weight_decay=settings.weight_decay,
        fused=True,  # one kernel for all parameters, on the CPU too (torch >= 2.4)
    )
    model, optimizer = workers.prepare(model, optimizer)
    loss_of = pick_loss(model)
    train_loss_of = compiled(loss_of, model) if settings.compile else loss_of
    if settings.compile and on_status and workers.is_main:
        on_status("compiling the model (--compile): the first step takes minutes")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(recipe, s))
    state = TrainingState(recipe, workers.unwrap(model), loaded.tokenizer, optimizer, scheduler)
    if resume_from is not None:
        restore_state(resume_from, state)
        if on_status and workers.is_main:
            on_status(f"resuming {recipe.name} at step {state.step} of {recipe.total_steps()}")

    row = Run(
        name=recipe.name,
        model=recipe.start_from or recipe.model,
        recipe=json.dumps(recipe.to_dict()),
        status=RunStatus.RUNNING,
        steps_done=state.step,
        total_steps=recipe.total_steps(),
        corpus_versions=json.dumps({n: s.version for n, s in streams.items()}),
        message=None,
        created_at=existing.created_at if existing else now_iso(),
        updated_at=None,
        corpus_split=json.dumps({n: s.summary() for n, s in streams.items()}),
        # on a CPU two runs with one seed were measured identical (tests on SmolLM2);
        # on a GPU that has not been shown (cuBLAS and atomics may reorder sums)
        deterministic=loaded.device == "cpu",
        dtype=settings.dtype,
    )

    def record(status: RunStatus, step: int, message: str | None = None) -> Run:
        """The run's row with how far it got and how it stands (the main process writes it)."""
        written = replace(
            row, status=status, steps_done=step, message=message, updated_at=now_iso()
        )
        if workers.is_main:
            store.save_run(written)
        return written

    def evaluate_ratings() -> None:
        """Each started ratings phase, measured on its held-out ratings."""
        for number, data in ratings.items():
            if data.reference is not None:
                with autocast:
                    measured = rated.rating_eval(
                        state.step, number, data, state.model, loaded.device
                    )
                store.add_rating_eval(recipe.name, measured)

    def evaluate_now() -> None:
        if workers.is_main:
            losses = evaluate(state.model, streams, settings.block_size, loaded.device, loss_of)
            at = state.step
            store.add_evals(recipe.name, at, phase_of(recipe, max(0, at - 1)), losses)
            evaluate_ratings()
            if on_eval:
                on_eval(at, losses)
        workers.wait()

    def start_ratings_phase(number: int) -> None:
        """The reference's log-probabilities, from the model as the phase starts, frozen
        with the phase's examples before its first step (every process computes them)."""
        data = ratings[number]
        if data.reference is None:
            with autocast:  # the policy's log-probs are taken in the same dtype
                rated.compute_reference(state.model, data, loaded.device)
            if workers.is_main:
                rated.save_data(data, run_folder(home, recipe.name), number)
                with autocast:
                    measured = rated.rating_eval(
                        state.step, number, data, state.model, loaded.device
                    )
                store.add_rating_eval(recipe.name, measured)
        workers.wait()

    def checkpoint(name: str, wait: bool = True) -> None:
        if workers.is_main:
            folder = save_checkpoint(home, name, state)
            record_checkpoint(store, recipe, name, state.step, folder)
        if wait:
            workers.wait()

    def sample_now() -> None:
        model.eval()
        if workers.is_main:
            _log_samples(store, home, loaded.device, state)
        model.train()
        workers.wait()

    workers.wait()  # every process has checked the run is new before the main one records it
    first_step = state.step
    record(RunStatus.RUNNING, first_step)
    if workers.is_main:  # the examples frozen now: a resumed run reads them back
        for number, data in ratings.items():
            rated.save_data(data, run_folder(home, recipe.name), number)
    starts = [0, *phase_ends(recipe)[:-1]]
    total, ends = recipe.total_steps(), phase_ends(recipe)
    autocast = training_autocast(settings.dtype, loaded.device)
    started, tokens_done = time.monotonic(), 0
    restore_memory = keep_freed_memory(enabled=loaded.device == "cpu")
    try:
        if state.step == 0:
            evaluate_now()  # the base model, before any training
        while state.step < total:
            number = phase_of(recipe, state.step)
            phase = recipe.phases[number - 1]
            if number in ratings and state.step == starts[number - 1]:
                start_ratings_phase(number)
            weights = phase_weights(phase, streams)
            ratings_weight = dict(phase.corpora).get(phase.ratings_source() or "", 0.0)
            loss_sum = 0.0
            for micro in range(settings.grad_accum):
                # each process its own micro-batches; one process: 0, 1, 2, ...
                index = (state.step * settings.grad_accum + micro) * workers.count + workers.rank
                torch.manual_seed(dropout_seed(settings.seed, index))
                loss = torch.zeros((), device=loaded.device)
                if weights:
                    batch = draw_batch(
                        streams, weights, settings.batch_size, settings.block_size,
                        settings.seed, index,
                    ).to(loaded.device)  # fmt: skip
                    with autocast:
                        loss = loss + (1 - ratings_weight) * train_loss_of(model, batch)
                    tokens_done += batch.numel()
                if ratings_weight:
                    data = ratings[number]
                    picks = rated.pick_examples(data, settings.seed, index, settings.batch_size)
                    with autocast:
                        loss = loss + ratings_weight * rated.ratings_loss(
                            model, data, picks, loaded.device
                        )
                    tokens_done += sum(
                        len(data.contexts[i]) + len(data.completions[i]) for i in picks
                    )
                loss = loss / settings.grad_accum
                workers.backward(loss)
                loss_sum += loss.detach().item()
            workers.clip_grad_norm(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            step = state.step
            elapsed = time.monotonic() - started
            loss_sum = workers.mean(loss_sum)
            if on_step and workers.is_main:
                rate = tokens_done / elapsed if elapsed else 0.0
                left = elapsed / max(1, step - first_step) * (total - step)
                on_step(StepReport(step, total, phase_of(recipe, step - 1), loss_sum, rate, left))
            if step in ends:
                evaluate_now()
                checkpoint(phase_checkpoint(ends.index(step) + 1))
                checkpoint(LAST)
            else:
                if settings.eval_every and step % settings.eval_every == 0:
                    evaluate_now()
                if settings.save_every and step % settings.save_every == 0:
                    checkpoint(LAST)
            if settings.sample_every and step % settings.sample_every == 0:
                sample_now()
            record(RunStatus.RUNNING, step)
            limit = settings.max_minutes
            out_of_time = limit is not None and limit > 0 and elapsed > limit * 60
            if workers.any(out_of_time) and step < total:
                checkpoint(LAST)
                stopped = record(RunStatus.INTERRUPTED, step, f"stopped after {limit} minutes")
                return store.run(recipe.name) or stopped
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM/SIGHUP as Stopped
        checkpoint(LAST, wait=False)  # the other processes were interrupted too
        record(RunStatus.INTERRUPTED, state.step, getattr(stop, "signal_name", "Ctrl-C"))
        raise
    except Exception as error:
        record(RunStatus.FAILED, state.step, str(error)[:500])
        raise
    finally:
        restore_memory()
    finished = record(RunStatus.FINISHED, state.step)
    return store.run(recipe.name) or finished
