"""A ratings phase: learn from what the owner accepted and rejected, with KTO.

A phase whose source is `ratings` (the rated samples of the model the run starts from
and of the runs it descends from, and of its base model) or `ratings@EXPERIMENT` (one
experiment's) trains on ratings instead of text. An accepted sample is desirable, a
rejected one undesirable; an accepted sample the rater edited is desirable as edited,
its original undesirable. Votes from the A/B tab are not used: they say which of two
samples is better, not whether either would be posted.

The objective is KTO (Ethayarajh et al. 2024, as TRL's KTOTrainer computes it), which
takes unpaired good and bad examples, exactly what accept/reject gives. For a rated
completion y of context x (the document start, then the prompt) with r = log π(y|x) -
log π_ref(y|x) and z an estimate of KL(π ‖ π_ref) taken from mismatched pairs (x of one
example, y of the next) and not differentiated:

    desirable:    λ_D (1 - σ(β (r - z)))
    undesirable:  λ_U (1 - σ(β (z - r)))

λ_D and λ_U weigh accepted and rejected samples equally, however many there are of each.

The reference π_ref is the model as the phase starts. It is never held in memory:
every log-probability the loss and the measurements need from it is computed once, when
the phase starts, and written beside the run's checkpoints with the rated samples the
phase trains on (both frozen then, so a resumed run trains on the same ratings to the same
losses, whatever was rated meanwhile). With LoRA the same holds, so there is neither a
second copy of the model nor an adapter switched off.

A hash-chosen share of each kind is held out. At every evaluation the run records, on
the held-out ratings, the preference accuracy (over every accepted x rejected pair,
how often the accepted one has the higher r; a tie counts half, so the phase starts at
0.5) and the KL from the reference, KL(π_ref ‖ π) per completion token over the
reference's top TOP_K tokens and the rest as one bin (a lower bound of the full KL).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from marinade.document_start import document_end_id, sample_start_ids
from marinade.errors import MarinadeError
from marinade.files import partial_file
from marinade.store import Store
from marinade.store.runs import RatingEval
from marinade.training.recipe import RATINGS_SOURCE, Recipe

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

BETA = 0.1  # KTO's β, TRL's default
HELD_OUT_SHARE = 0.2
MIN_TO_HOLD_OUT = 5  # accepted or rejected samples a kind needs before any is held out
TOP_K = 64  # reference tokens kept per held-out completion token, for the KL
ROWS = 8  # rows per forward pass when measuring


@dataclass(frozen=True)
class RatingsFilter:
    """Which ratings a bare `ratings` source takes (retrain: those since the last one)."""

    rated_after: str | None = None  # only ratings given later than this time
    rated_until: str | None = None  # ... and not later than this one
    any_model: bool = False  # every model's samples, not only those of the run's lineage


@dataclass(frozen=True)
class RatedExample:
    sample_id: int
    prompt: str
    text: str
    desirable: bool
    kind: str  # accepted, rejected, edited (the edit), edited-original
    held_out: bool = False


@dataclass
class RatingsData:
    """One ratings phase's examples as tokens, and (once the phase started) the reference's
    log-probabilities: what its loss and its measurements need, frozen in the run folder."""

    source: str
    examples: list[RatedExample]
    contexts: list[list[int]]  # document start (+ prompt) token ids, per example
    completions: list[list[int]]  # the text's tokens and the document end, per example
    filter: RatingsFilter = field(default_factory=RatingsFilter)
    reference: torch.Tensor | None = None  # [examples] log π_ref(completion | context)
    pair_reference: torch.Tensor | None = None  # [examples] of the KL pair (train ones)
    top_ids: torch.Tensor | None = None  # [held-out completion tokens, TOP_K]
    top_logprobs: torch.Tensor | None = None

    @property
    def train(self) -> list[int]:
        return [i for i, example in enumerate(self.examples) if not example.held_out]

    @property
    def held_out(self) -> list[int]:
        return [i for i, example in enumerate(self.examples) if example.held_out]

    def pair_of(self, index: int) -> int:
        """The example whose completion goes with `index`'s context in its KL pair: the
        next training example, in a fixed order (TRL shifts by one within a batch)."""
        train = self.train
        return train[(train.index(index) + 1) % len(train)]

    def weights(self) -> tuple[float, float]:
        """λ_D, λ_U: accepted and rejected training examples weigh half the loss each."""
        train = [self.examples[i] for i in self.train]
        good = sum(example.desirable for example in train)
        bad = len(train) - good
        return len(train) / (2 * good), len(train) / (2 * bad)

    def counts(self) -> dict[str, int]:
        """Examples per kind, and those to train on and held out, as `runs show` tells."""
        kinds = Counter(example.kind for example in self.examples)
        return {
            **{kind: kinds.get(kind, 0) for kind in KINDS},
            "train": len(self.train),
            "held_out": len(self.held_out),
        }


KINDS = ("accepted", "rejected", "edited", "edited-original")


def lineage(store: Store, recipe: Recipe) -> list[str]:
    """The models whose samples a bare `ratings` source takes: the run it starts from and
    the runs that one descends from (any checkpoint of each), and the base model."""
    names: list[str] = []
    start = recipe.start_from
    while start:
        run_name = start.split("@")[0]
        if run_name in names:
            break
        names.append(run_name)
        run = store.run(run_name)
        start = run.recipe_dict().get("start_from") if run else None
    return [*names, recipe.model]


def lineage_corpora(store: Store, recipe: Recipe) -> list[str]:
    """The corpora the runs in `recipe`'s lineage trained on that still exist: a ratings
    phase is measured on them too, to show what it costs the text the model learnt."""
    corpora: list[str] = []
    for name in lineage(store, recipe)[:-1]:
        run = store.run(name)
        if run is None:
            continue
        for phase in Recipe.from_dict(run.recipe_dict()).phases:
            corpora += phase.corpus_names()
    known = {row["name"] for row in store.corpora()}
    return [name for name in dict.fromkeys(corpora) if name in known]


def select_examples(
    store: Store, source: str, models: list[str], selection: RatingsFilter
) -> list[RatedExample]:
    """The rated samples `source` names, as desirable or undesirable examples, a
    hash-chosen share of each kind held out."""
    match = RATINGS_SOURCE.fullmatch(source)
    if match is None:
        raise MarinadeError(f"{source!r} is not a ratings source (ratings or ratings@EXPERIMENT)")
    experiment = match["experiment"]
    if experiment is not None:
        store.experiment(experiment)  # one line when there is no such experiment
    rows = store.rated_samples(
        experiment=experiment,
        models=None if experiment is not None or selection.any_model else models,
        rated_after=selection.rated_after,
    )
    if selection.rated_until is not None:
        rows = [row for row in rows if row["rated_at"] <= selection.rated_until]
    examples = []
    for row in rows:
        prompt, text = row["prompt"] or "", row["text"]
        edit = row["edited_text"]
        if row["rating"] == "accept" and edit and edit.strip() != text.strip():
            examples.append(RatedExample(row["id"], prompt, edit, True, "edited"))
            examples.append(RatedExample(row["id"], prompt, text, False, "edited-original"))
        elif row["rating"] == "accept":
            examples.append(RatedExample(row["id"], prompt, text, True, "accepted"))
        else:
            examples.append(RatedExample(row["id"], prompt, text, False, "rejected"))
    return _hold_out(examples)


def _hold_out(examples: list[RatedExample]) -> list[RatedExample]:
    """Hold out HELD_OUT_SHARE of the desirable and of the undesirable examples, those
    whose sample id hashes lowest, so the same ratings are held out in every run."""
    held: set[tuple[int, bool]] = set()
    for desirable in (True, False):
        ids = [e.sample_id for e in examples if e.desirable == desirable]
        if len(ids) < MIN_TO_HOLD_OUT:
            continue
        ranked = sorted(ids, key=lambda i: hashlib.sha256(f"rating:{i}".encode()).digest())
        held |= {(i, desirable) for i in ranked[: max(1, round(len(ids) * HELD_OUT_SHARE))]}
    return [
        RatedExample(**{**asdict(e), "held_out": (e.sample_id, e.desirable) in held})
        for e in examples
    ]


def check_examples(source: str, examples: list[RatedExample]) -> None:
    """One line when a phase cannot learn from these ratings: it needs accepted and
    rejected samples to train on."""
    train = [e for e in examples if not e.held_out]
    if any(e.desirable for e in train) and any(not e.desirable for e in train):
        return
    kinds = Counter(e.kind for e in examples)
    edited = f" ({kinds['edited']} of them edited)" if kinds["edited"] else ""
    raise MarinadeError(
        f"{source}: found {kinds['accepted'] + kinds['edited']} accepted{edited} and "
        f"{kinds['rejected']} rejected samples; a ratings phase needs at least one of each "
        "(rate samples with `marinade review`)"
    )


def tokenize_examples(
    source: str,
    examples: list[RatedExample],
    tokenizer: PreTrainedTokenizerBase,
    document_start: str,
    block_size: int,
    selection: RatingsFilter,
) -> RatingsData:
    """Each example as the model would have written it: the sample's start (and prompt)
    as context, its text and the document end as completion, cut to one block."""
    start = sample_start_ids(tokenizer, document_start)
    end = document_end_id(tokenizer)
    contexts, completions = [], []
    for example in examples:
        prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
        context = (start + list(prompt))[-(block_size // 2) :]
        text = tokenizer(example.text, add_special_tokens=False)["input_ids"]
        completion = (list(text) + [end])[: block_size - len(context)]
        contexts.append(context)
        completions.append(completion)
    return RatingsData(source, examples, contexts, completions, selection)


def ratings_folder(run_folder: Path) -> Path:
    return run_folder / "ratings"


def save_data(data: RatingsData, run_folder: Path, phase: int) -> None:
    """Write the phase's examples (and its reference, once computed) into the run folder."""
    folder = ratings_folder(run_folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "source": data.source,
        "filter": asdict(data.filter),
        "examples": [asdict(e) for e in data.examples],
        "contexts": data.contexts,
        "completions": data.completions,
    }
    with partial_file(folder / f"phase-{phase}.json") as partial:
        partial.write_text(json.dumps(record) + "\n")
    if data.reference is not None:
        tensors = {"reference": data.reference, "pair_reference": data.pair_reference}
        if data.top_ids is not None and data.top_logprobs is not None:
            tensors |= {"top_ids": data.top_ids, "top_logprobs": data.top_logprobs}
        with partial_file(folder / f"phase-{phase}.safetensors") as partial:
            save_file({k: v.contiguous() for k, v in tensors.items() if v is not None}, partial)


def load_data(run_folder: Path, phase: int) -> RatingsData | None:
    """The phase's frozen examples and reference, as save_data left them; None if none."""
    path = ratings_folder(run_folder) / f"phase-{phase}.json"
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        data = RatingsData(
            source=record["source"],
            examples=[RatedExample(**e) for e in record["examples"]],
            contexts=record["contexts"],
            completions=record["completions"],
            filter=RatingsFilter(**record["filter"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise MarinadeError(f"{path}: not a ratings phase's record ({error})") from None
    tensors_path = path.with_suffix(".safetensors")
    if tensors_path.exists():
        tensors = load_file(tensors_path)
        data.reference = tensors["reference"]
        data.pair_reference = tensors["pair_reference"]
        data.top_ids = tensors.get("top_ids")
        data.top_logprobs = tensors.get("top_logprobs")
    return data


def _rows(
    data: RatingsData, pairs: list[tuple[int, int]], device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input ids, attention mask and completion-token targets (-100 elsewhere) for rows
    of (context of example i, completion of example j), padded on the right."""
    sequences = [(data.contexts[i], data.completions[j]) for i, j in pairs]
    length = max(len(c) + len(y) for c, y in sequences)
    ids = torch.zeros((len(pairs), length), dtype=torch.long)
    mask = torch.zeros((len(pairs), length), dtype=torch.long)
    targets = torch.full((len(pairs), length), -100, dtype=torch.long)
    for row, (context, completion) in enumerate(sequences):
        tokens = context + completion
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
        # position p predicts token p + 1: the completion's tokens are the targets
        targets[row, len(context) - 1 : len(tokens) - 1] = torch.tensor(completion)
    return ids.to(device), mask.to(device), targets.to(device)


def _logits(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, attention_mask=mask).logits.float()


def sequence_logprobs(
    model: Any, data: RatingsData, pairs: list[tuple[int, int]], device: str
) -> torch.Tensor:
    """log π(completion j | context i) summed over the completion's tokens, per pair."""
    ids, mask, targets = _rows(data, pairs, device)
    logits = _logits(model, ids, mask)
    token_losses = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), targets, ignore_index=-100, reduction="none"
    )
    return -token_losses.sum(dim=1)


def kto_loss(
    policy: torch.Tensor,
    reference: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    weights: tuple[float, float],
    beta: float = BETA,
) -> torch.Tensor:
    """KTO's loss, mean over the examples (TRL's kto_loss for the "kto" loss type)."""
    ratio = policy - reference
    chosen = 1 - torch.sigmoid(beta * (ratio - kl))
    rejected = 1 - torch.sigmoid(beta * (kl - ratio))
    return torch.where(desirable, weights[0] * chosen, weights[1] * rejected).mean()


def pick_examples(data: RatingsData, seed: int, index: int, batch_size: int) -> list[int]:
    """The training examples of micro-batch `index`: passes over them, each in an order
    drawn from (seed, pass), so a batch is a pure function of seed and index."""
    train = data.train
    picks = []
    for position in range(index * batch_size, (index + 1) * batch_size):
        number, offset = divmod(position, len(train))
        generator = torch.Generator().manual_seed((1 << 41) + seed * 1_000_003 + number)
        order = torch.randperm(len(train), generator=generator)
        picks.append(train[int(order[offset])])
    return picks


def ratings_loss(
    model: Any, data: RatingsData, picks: list[int], device: str, beta: float = BETA
) -> torch.Tensor:
    """KTO's loss on the picked examples, against the frozen reference."""
    assert data.reference is not None and data.pair_reference is not None
    policy = sequence_logprobs(model, data, [(i, i) for i in picks], device)
    with torch.no_grad():  # the KL estimate only shifts the loss (as in TRL)
        pair = sequence_logprobs(model, data, [(i, data.pair_of(i)) for i in picks], device)
        kl = (pair - data.pair_reference[picks].to(device)).mean().clamp(min=0)
    desirable = torch.tensor([data.examples[i].desirable for i in picks], device=device)
    return kto_loss(policy, data.reference[picks].to(device), desirable, kl, data.weights(), beta)


@torch.no_grad()
def compute_reference(model: Any, data: RatingsData, device: str) -> None:
    """The reference's log-probabilities, from `model` as it is now (the phase's start):
    of every example, of each training example's KL pair, and the top TOP_K tokens at
    every held-out completion token."""
    was_training = model.training
    model.eval()
    reference = torch.zeros(len(data.examples))
    pair_reference = torch.zeros(len(data.examples))
    # the held-out ones in the chunks `measure` takes, so that its ratios start at exactly 0
    for part in (data.train, data.held_out):
        for start in range(0, len(part), ROWS):
            chunk = part[start : start + ROWS]
            reference[chunk] = sequence_logprobs(model, data, [(i, i) for i in chunk], device).cpu()
    train = data.train
    for start in range(0, len(train), ROWS):
        chunk = train[start : start + ROWS]
        pairs = [(i, data.pair_of(i)) for i in chunk]
        pair_reference[chunk] = sequence_logprobs(model, data, pairs, device).cpu()
    data.reference, data.pair_reference = reference, pair_reference
    ids, logprobs = [], []
    for log_probs in _held_out_token_logprobs(model, data, device):
        top = log_probs.topk(min(TOP_K, log_probs.shape[-1]), dim=-1)
        ids.append(top.indices.cpu())
        logprobs.append(top.values.cpu())
    if ids:
        data.top_ids, data.top_logprobs = torch.cat(ids), torch.cat(logprobs)
    model.train(was_training)


def _held_out_token_logprobs(model: Any, data: RatingsData, device: str) -> Any:
    """Per chunk of held-out examples: the log-softmax at each completion token, [n, vocab]."""
    held = data.held_out
    for start in range(0, len(held), ROWS):
        chunk = held[start : start + ROWS]
        ids, mask, targets = _rows(data, [(i, i) for i in chunk], device)
        log_probs = torch.log_softmax(_logits(model, ids, mask), dim=-1)
        yield log_probs[targets != -100]


@torch.no_grad()
def measure(model: Any, data: RatingsData, device: str) -> tuple[float | None, float, int]:
    """Held-out preference accuracy (None without both kinds held out), the KL from the
    reference per completion token, and the number of accepted x rejected pairs."""
    assert data.reference is not None
    was_training = model.training
    model.eval()
    held = data.held_out
    ratios = []
    for start in range(0, len(held), ROWS):
        chunk = held[start : start + ROWS]
        policy = sequence_logprobs(model, data, [(i, i) for i in chunk], device).cpu()
        ratios.append(policy - data.reference[chunk])
    kl_sum, positions, offset = 0.0, 0, 0
    if data.top_ids is not None and data.top_logprobs is not None:
        for log_probs in _held_out_token_logprobs(model, data, device):
            rows = slice(offset, offset + len(log_probs))
            offset += len(log_probs)
            kl_sum += float(binned_kl(data.top_ids[rows], data.top_logprobs[rows], log_probs.cpu()))
            positions += len(log_probs)
    model.train(was_training)
    ratio = torch.cat(ratios) if ratios else torch.zeros(0)
    desirable = torch.tensor([data.examples[i].desirable for i in held], dtype=torch.bool)
    good, bad = ratio[desirable], ratio[~desirable]
    pairs = len(good) * len(bad)
    accuracy = None
    if pairs:
        difference = good[:, None] - bad[None, :]
        accuracy = float(((difference > 0).float() + 0.5 * (difference == 0).float()).mean())
    return accuracy, kl_sum / max(1, positions), pairs


def binned_kl(
    top_ids: torch.Tensor, top_logprobs: torch.Tensor, log_probs: torch.Tensor
) -> torch.Tensor:
    """Summed over positions: KL(reference ‖ model) over the reference's top tokens and
    one bin for the rest of the vocabulary (a lower bound of the full KL)."""
    reference = top_logprobs.double()
    model = log_probs.gather(1, top_ids).double()
    rest_reference = (1 - reference.exp().sum(1)).clamp(min=1e-12)
    rest_model = (1 - model.exp().sum(1)).clamp(min=1e-12)
    top = (reference.exp() * (reference - model)).sum(1)
    rest = rest_reference * (rest_reference.log() - rest_model.log())
    return (top + rest).clamp(min=0).sum()


def rating_eval(step: int, phase: int, data: RatingsData, model: Any, device: str) -> RatingEval:
    accuracy, kl, pairs = measure(model, data, device)
    if accuracy is not None and not math.isfinite(accuracy):
        accuracy = None
    return RatingEval(step, phase, data.source, accuracy, kl, pairs)


def describe(data: RatingsData, phase: int) -> str:
    """One line for `train`: what the phase learns from."""
    counts = data.counts()
    edits = f", {counts['edited']} edited" if counts["edited"] else ""
    since = f" rated after {data.filter.rated_after}" if data.filter.rated_after else ""
    return (
        f"phase {phase} ({data.source}{since}): {counts['accepted']} accepted{edits} and "
        f"{counts['rejected']} rejected samples; {counts['train']} to train on, "
        f"{counts['held_out']} held out"
    )
