"""A training run's recipe: base model, phases of corpora, settings; light to import (no torch).

A phase reads `SOURCE:STEPS` or `SOURCE:STEPS:LR`, SOURCE being one corpus (`admired`),
a merge (`admired+mine`: documents pooled, so each corpus counts in proportion to its
size) or a weighted mixture (`admired=0.3,mine=0.7`: weights add up to 1). STEPS may be
`auto` or left out (`mine`): the run picks them from the phase's training tokens when it
starts (automatic_steps), and stores the number it picked.

SOURCE may also be `ratings` or `ratings@EXPERIMENT`: the owner's accept/reject ratings
(training/ratings.py), learnt with a preference objective (KTO) instead of next-token
loss, alone (`ratings@tweets:60`) or weighted beside corpora (`mine=0.3,ratings=0.7`).

Settings resolve once, in this order: TrainSettings defaults, then a TOML recipe file,
then the command-line flags; the result is stored with the run (Recipe.to_dict).
A recipe file looks like this (every key optional; unknown keys are errors):

    name = "tweetbot"
    model = "gpt2-medium"
    from = "base-run@1"          # start from phase 1's checkpoint of run base-run
    phases = ["admired:1500", "mine:100:2e-5"]

    [training]                   # any TrainSettings field
    method = "lora"
    lora_rank = 8
    block_size = 128
    lr = 1e-4
    sample_prompts = ["How does one become free?"]
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, get_args, get_type_hints

from marinade.document_start import LEGACY, check_document_start
from marinade.errors import MarinadeError
from marinade.files import read_toml
from marinade.names import RUN_AT_PHASE, is_name

STEPS = re.compile(r"[0-9]+")
AUTO = "auto"
PHASE_SYNTAX = (
    "CORPUS[:STEPS[:LR]], CORPUS being name, a+b (merged) or a=0.3,b=0.7 (weighted), "
    "ratings or ratings@EXPERIMENT, STEPS a number or auto"
)
RATINGS = "ratings"  # a phase source: rated samples, not a corpus
RATINGS_SOURCE = re.compile(rf"{RATINGS}(?:@(?P<experiment>[\w][\w.-]*))?")
WEIGHT_TOLERANCE = 1e-6
DEFAULT_MODEL = "smollm2"
METHODS = ("full", "lora")
SCHEDULES = ("cosine", "linear", "constant")
HELD_OUT_SPLITS = ("spans", "documents")
TRAIN_DTYPES = ("auto", "float32", "bfloat16")
# First-run defaults (issue 21), measured with benchmarks/postable.py on 200 short posts
DEFAULT_LR = {"full": 5e-5, "lora": 2e-3}
DEFAULT_WARMUP = 20
AUTO_PASSES = 2
AUTO_MIN_STEPS = 30
AUTO_MAX_STEPS = 300


@dataclass(frozen=True)
class Phase:
    """Train on one source of documents for a number of optimizer steps."""

    corpora: tuple[tuple[str, float], ...]  # (corpus, weight); weight 0.0 for each in a merge
    steps: int | None  # None: automatic, not yet picked (with_automatic_steps)
    merge: bool = False  # True for "a+b": weights come from corpus sizes at training time
    lr: float | None = None  # None: the run's lr
    auto: bool = False  # the steps are (or will be) picked by automatic_steps

    def names(self) -> list[str]:
        return [name for name, _ in self.corpora]

    def corpus_names(self) -> list[str]:
        """The corpora it trains on (its sources but `ratings`)."""
        return [name for name in self.names() if not is_ratings_source(name)]

    def ratings_source(self) -> str | None:
        """Its `ratings` or `ratings@EXPERIMENT` source, if it has one."""
        return next((name for name in self.names() if is_ratings_source(name)), None)

    def label(self) -> str:
        """The text form; parse_phase(phase.label()) == phase."""
        if self.merge:
            source = "+".join(self.names())
        elif len(self.corpora) == 1:
            source = self.corpora[0][0]
        else:
            source = ",".join(f"{name}={weight!r}" for name, weight in self.corpora)
        text = f"{source}:{AUTO if self.steps is None else self.steps}"
        return text if self.lr is None else f"{text}:{self.lr!r}"

    def request(self) -> str:
        """The label as asked for: `auto` for automatic steps, picked or not (so a grid
        that asks for `mine` still matches the run that picked 30 steps for it)."""
        return replace(self, steps=None).label() if self.auto else self.label()


def parse_phase(text: str) -> Phase:
    parts = [part.strip() for part in text.strip().split(":")]
    if len(parts) > 3:
        raise _phase_error(text, "too many ':'")
    source, steps_text = parts[0], parts[1] if len(parts) > 1 else AUTO
    if steps_text.lower() == AUTO:
        steps = None
    elif STEPS.fullmatch(steps_text):
        steps = int(steps_text)
    else:
        raise _phase_error(text, f"steps {steps_text!r} is not a positive whole number or auto")
    auto = steps is None
    lr = None
    if len(parts) == 3:
        lr = _positive_number(parts[2])
        if lr is None:
            raise _phase_error(text, f"learning rate {parts[2]!r} is not a positive number")
    if "=" in source or "," in source:
        corpora = []
        for item in source.split(","):
            name, equals, weight_text = (piece.strip() for piece in item.partition("="))
            weight = _positive_number(weight_text)
            if not equals or weight is None:
                raise _phase_error(text, f"{item.strip()!r} needs a positive weight, as in a=0.3")
            corpora.append((name, weight))
        phase = Phase(tuple(corpora), steps, lr=lr, auto=auto)
    elif "+" in source:
        names = [name.strip() for name in source.split("+")]
        phase = Phase(tuple((name, 0.0) for name in names), steps, merge=True, lr=lr, auto=auto)
    else:
        phase = Phase(((source, 1.0),), steps, lr=lr, auto=auto)
    problem = _phase_problem(phase)
    if problem:
        raise _phase_error(text, problem)
    return phase


def _phase_error(text: str, problem: str) -> MarinadeError:
    return MarinadeError(f"bad phase {text!r}: {problem} (expected {PHASE_SYNTAX})")


def _positive_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 and math.isfinite(value) else None


def is_ratings_source(name: str) -> bool:
    """`ratings` or `ratings@EXPERIMENT`: a phase source that is rated samples."""
    return RATINGS_SOURCE.fullmatch(name) is not None


def _phase_problem(phase: Phase) -> str | None:
    """What is wrong with a phase, however it was made (parsed or read back from a run)."""
    if phase.steps is None and phase.auto:
        pass  # picked when the run starts
    elif isinstance(phase.steps, bool) or not isinstance(phase.steps, int) or phase.steps < 1:
        return f"steps must be a positive whole number, not {phase.steps!r}"
    names = phase.names()
    for name in names:
        if not name:
            return "a corpus name is empty"
        if is_ratings_source(name):
            continue
        if name.startswith(f"{RATINGS}@"):
            return f"{name!r}: after ratings@ comes an experiment's name"
        if not is_name(name):
            return f"corpus name {name!r} must be letters, digits, '_', '.' or '-'"
    if len(set(names)) < len(names):
        return "a corpus is named twice"
    if phase.merge and len(names) < 2:
        return "a merge needs at least two corpora"
    ratings = [name for name in names if is_ratings_source(name)]
    if ratings and phase.merge:
        return (
            "ratings cannot be merged with corpora (not documents); weigh them: a=0.3,ratings=0.7"
        )
    if len(ratings) > 1:
        return "one ratings source per phase"
    if not phase.merge:
        if any(not (weight > 0 and math.isfinite(weight)) for _, weight in phase.corpora):
            return "weights must be positive"
        total = sum(weight for _, weight in phase.corpora)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            return f"weights add up to {total:g}, not 1"
    if phase.lr is not None and not (phase.lr > 0 and math.isfinite(phase.lr)):
        return f"learning rate must be positive, not {phase.lr!r}"
    return None


@dataclass(frozen=True)
class TrainSettings:
    """How to train, shared by every phase of a run."""

    method: str = "full"  # "full" or "lora"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ()  # empty: peft's defaults for the architecture
    lr: float | None = None  # None: DEFAULT_LR of the method, filled in when made
    batch_size: int = 8
    grad_accum: int = 1
    block_size: int = 256
    warmup: int | None = None  # optimizer steps of linear warm-up; None: automatic_warmup
    schedule: str = "cosine"  # "cosine", "linear" or "constant" (after warm-up), over the run
    weight_decay: float = 0.0
    seed: int = 0
    eval_every: int = 50
    save_every: int = 200
    sample_every: int = 0  # 0: off
    sample_prompts: tuple[str, ...] = ()
    sample_temperature: float = 0.8
    max_minutes: float | None = None
    held_out: float = 0.03  # share of each corpus's tokens never trained on
    # "spans": held out by segment (training/split.py); "documents": whole documents, as
    # runs trained before spans did (a stored recipe without this key means "documents")
    held_out_split: str = "spans"
    # what precedes each document in training text and an unconditional sample
    # (document_start.py); a stored recipe without this key means "end-of-text"
    document_start: str = "marker"
    # corpora whose held-out loss is measured at each evaluation beside those the run
    # trains on: what a run forgets ("mine" only, measured on "admired" too)
    measure: tuple[str, ...] = ()
    # what the forward and backward passes compute in: "bfloat16" is autocast over float32
    # weights and optimizer state. "auto" (marinade.precision) is settled when the run
    # starts, so a stored recipe holds the dtype it trained in; one without this key
    # trained in float32
    dtype: str = "auto"
    # torch.compile the model's body for the training steps (training/loss.py `compiled`):
    # faster after a first step of minutes; it rounds differently, so a run keeps it
    compile: bool = False

    def __post_init__(self) -> None:
        if self.lr is None and self.method in DEFAULT_LR:
            # frozen: set once, so a stored recipe holds the number it trained with
            object.__setattr__(self, "lr", DEFAULT_LR[self.method])
        self.check()

    @property
    def peak_lr(self) -> float:
        """The learning rate as a number (__post_init__ fills in the method's default)."""
        assert self.lr is not None
        return self.lr

    def check(self) -> None:
        """A one-line MarinadeError for the first bad field. It runs when the settings are
        made (dataclasses.replace included), so settings that exist are valid."""
        if self.method not in METHODS:
            raise MarinadeError(f"method must be 'full' or 'lora', not {self.method!r}")
        if self.schedule not in SCHEDULES:
            raise MarinadeError(
                f"schedule must be 'cosine', 'linear' or 'constant', not {self.schedule!r}"
            )
        for name in ("lora_rank", "lora_alpha", "batch_size", "grad_accum", "block_size"):
            if getattr(self, name) < 1:
                raise MarinadeError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("warmup", "seed", "eval_every", "save_every", "sample_every"):
            if name == "warmup" and self.warmup is None:
                continue
            if getattr(self, name) < 0:
                raise MarinadeError(f"{name} must be 0 or more, not {getattr(self, name)}")
        if self.lr is None or not (self.lr > 0 and math.isfinite(self.lr)):
            raise MarinadeError(f"lr must be positive, not {self.lr}")
        if not 0 <= self.lora_dropout < 1:  # also catches nan
            raise MarinadeError(f"lora_dropout must be in [0, 1), not {self.lora_dropout}")
        if not self.weight_decay >= 0:
            raise MarinadeError(f"weight_decay must be 0 or more, not {self.weight_decay}")
        if not self.sample_temperature >= 0:
            raise MarinadeError(
                f"sample_temperature must be 0 (greedy) or more, not {self.sample_temperature}"
            )
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise MarinadeError(f"max_minutes must be positive, not {self.max_minutes}")
        if not 0 < self.held_out <= 0.5:
            raise MarinadeError(f"held_out must be in (0, 0.5], not {self.held_out}")
        check_document_start(self.document_start)
        for corpus in self.measure:
            if not is_name(corpus) or is_ratings_source(corpus):
                raise MarinadeError(f"measure: {corpus!r} is not a corpus name")
        if self.dtype not in TRAIN_DTYPES:
            raise MarinadeError(
                f"dtype must be auto, float32 or bfloat16, not {self.dtype!r}"
                + (" (float16 is not supported; bfloat16 is)" if self.dtype == "float16" else "")
            )
        if self.held_out_split not in HELD_OUT_SPLITS:
            raise MarinadeError(
                f"held_out_split must be 'spans' or 'documents', not {self.held_out_split!r}"
            )


SETTING_TYPES = get_type_hints(TrainSettings)


@dataclass(frozen=True)
class Recipe:
    """Everything needed to train a run again, and to explain it later."""

    name: str  # the run's name (same rules as corpus names)
    model: str  # base model as marinade.models understands it ("smollm2", "gpt2", a folder)
    phases: tuple[Phase, ...]
    settings: TrainSettings
    start_from: str | None = None  # "RUN@PHASE" (1-based phase number) or "RUN" (its last)

    def check(self) -> None:
        if not is_name(self.name):
            raise MarinadeError(f"run name {self.name!r} must be letters, digits, '_', '.' or '-'")
        if not self.model:
            raise MarinadeError("the base model must not be empty (e.g. --model smollm2)")
        if not self.phases:
            raise MarinadeError("a run needs at least one phase, e.g. --phase mine:500")
        for phase in self.phases:
            problem = _phase_problem(phase)
            if problem:
                raise _phase_error(phase.label(), problem)
        if self.start_from is not None:
            match = RUN_AT_PHASE.fullmatch(self.start_from)
            if not match or (match["phase"] is not None and int(match["phase"]) < 1):
                raise MarinadeError(
                    f"bad start {self.start_from!r}: expected RUN@PHASE (phase numbers "
                    "start at 1) or RUN (its last checkpoint)"
                )

    def corpora(self) -> list[str]:
        """Every corpus named, in first-seen order (ratings sources are not corpora)."""
        return list(dict.fromkeys(name for phase in self.phases for name in phase.corpus_names()))

    def ratings_phases(self) -> list[int]:
        """The 1-based numbers of the phases that train on ratings."""
        return [n for n, phase in enumerate(self.phases, 1) if phase.ratings_source()]

    def steps_picked(self) -> bool:
        """False until with_automatic_steps has picked the steps of every `auto` phase."""
        return all(phase.steps is not None for phase in self.phases)

    def total_steps(self) -> int:
        if not self.steps_picked():
            raise MarinadeError("automatic steps are picked when the run starts")
        return sum(phase.steps or 0 for phase in self.phases)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: each phase as its label and its fields, for people and programs."""
        phases = [
            {
                "label": phase.label(),
                "corpora": [[name, weight] for name, weight in phase.corpora],
                "steps": phase.steps,
                "merge": phase.merge,
                "lr": phase.lr,
                "auto": phase.auto,
            }
            for phase in self.phases
        ]
        settings = {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in asdict(self.settings).items()
        }
        return {
            "name": self.name,
            "model": self.model,
            "start_from": self.start_from,
            "phases": phases,
            "settings": settings,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        phases = tuple(
            Phase(
                corpora=tuple((name, float(weight)) for name, weight in phase["corpora"]),
                steps=phase["steps"],
                merge=phase["merge"],
                lr=phase["lr"],
                auto=phase.get("auto", False),
            )
            for phase in data["phases"]
        )
        settings: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value
            for key, value in data["settings"].items()
        }
        settings.setdefault("held_out_split", "documents")  # stored before spans existed
        settings.setdefault("lr", 5e-5)  # stored when every lr was given or this default
        settings.setdefault("warmup", 20)
        settings.setdefault("document_start", LEGACY)  # stored before start conventions
        settings.setdefault("dtype", "float32")  # stored before bf16 training
        return cls(
            name=data["name"],
            model=data["model"],
            phases=phases,
            settings=TrainSettings(**settings),
            start_from=data.get("start_from"),
        )


def automatic_steps(train_tokens: int, settings: TrainSettings) -> int:
    """Steps for an `auto` phase: AUTO_PASSES passes over its training tokens, at least
    AUTO_MIN_STEPS (a small corpus needs that many updates to change how samples begin
    and end; measured in benchmarks/postable.py) and at most AUTO_MAX_STEPS."""
    per_step = settings.batch_size * settings.grad_accum * settings.block_size
    wanted = math.ceil(AUTO_PASSES * train_tokens / per_step)
    return min(AUTO_MAX_STEPS, max(AUTO_MIN_STEPS, wanted))


def with_automatic_steps(recipe: Recipe, train_tokens: dict[str, int]) -> Recipe:
    """`recipe` with the steps of its `auto` phases picked from each corpus's training
    tokens (a merge or mixture: their sum). A ratings source counts as the tokens of
    its rated samples to train on (training/ratings.py)."""
    phases = tuple(
        phase
        if phase.steps is not None
        else replace(
            phase,
            steps=automatic_steps(sum(train_tokens[n] for n in phase.names()), recipe.settings),
        )
        for phase in recipe.phases
    )
    return replace(recipe, phases=phases)


def describe_automatic_steps(recipe: Recipe, train_tokens: dict[str, int]) -> list[str]:
    """One line per `auto` phase of a picked recipe: its steps and the passes they make."""
    per_step = recipe.settings.batch_size * recipe.settings.grad_accum * recipe.settings.block_size
    lines = []
    for number, phase in enumerate(recipe.phases, 1):
        if phase.auto and phase.steps is not None:
            tokens = sum(train_tokens[n] for n in phase.names())
            passes = phase.steps * per_step / max(1, tokens)
            lines.append(
                f"phase {number} ({phase.request()}): {phase.steps} steps, about {passes:.1f} "
                f"passes over its {tokens:,} training tokens"
            )
    return lines


def automatic_warmup(total_steps: int) -> int:
    """Warm-up when none is given: a tenth of the run, at most DEFAULT_WARMUP steps."""
    return min(DEFAULT_WARMUP, max(1, total_steps // 10))


def phase_of(recipe: Recipe, step: int) -> int:
    """The 1-based phase that optimizer step `step` (0-based) belongs to."""
    end = 0
    for index, phase in enumerate(recipe.phases, 1):
        end += phase.steps or 0
        if step < end:
            return index
    return len(recipe.phases)


def phase_ends(recipe: Recipe) -> list[int]:
    """The optimizer steps done when each phase ends."""
    ends, total = [], 0
    for phase in recipe.phases:
        total += phase.steps or 0
        ends.append(total)
    return ends


def load_recipe(path: Path) -> dict[str, Any]:
    """Read a TOML recipe file into overrides.

    Returns only the keys the file sets, among name, model, start_from (the file's
    `from`), phases (list of phase texts, already checked) and training (a dict of
    TrainSettings fields with the fields' types).
    """
    data = read_toml(path, "recipe")

    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("name", "model", "from"):
            if not isinstance(value, str):
                raise MarinadeError(f"{path}: {key} must be a string, not {value!r}")
            values["start_from" if key == "from" else key] = value
        elif key == "phases":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise MarinadeError(f'{path}: phases must be a list of strings like ["mine:500"]')
            for item in value:
                try:
                    parse_phase(item)
                except MarinadeError as error:
                    raise MarinadeError(f"{path}: {error}") from None
            values["phases"] = value
        elif key == "training":
            if not isinstance(value, dict):
                raise MarinadeError(f"{path}: training must be a [training] table")
            values["training"] = {
                name: setting_value(path, name, setting) for name, setting in value.items()
            }
            try:
                TrainSettings(**values["training"])
            except MarinadeError as error:
                raise MarinadeError(f"{path}: {error}") from None
        else:
            known = "name, model, from, phases, [training]"
            raise MarinadeError(f"{path}: unknown key {key!r} (known: {known})")
    return values


def setting_value(path: Path, key: str, value: Any) -> Any:
    """A TOML value as the TrainSettings field wants it, or an error naming the key."""
    if key not in SETTING_TYPES:
        raise MarinadeError(f"{path}: unknown key {key!r} in [training]")
    kind = SETTING_TYPES[key]
    if type(None) in get_args(kind):  # float | None: TOML has no null, so just the float
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    if kind is str and isinstance(value, str):
        return value
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == tuple[str, ...] and isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return tuple(value)
    wanted = {str: "a string", bool: "true or false", int: "a whole number", float: "a number"}.get(
        kind, "a list of strings"
    )
    raise MarinadeError(f"{path}: {key} in [training] must be {wanted}, not {value!r}")


def build_recipe(
    name: str | None,
    model: str | None,
    phases: list[str],
    start_from: str | None,
    file_values: dict[str, Any] | None,
    flag_values: dict[str, Any],
) -> Recipe:
    """Resolve defaults < recipe file < flags into one checked Recipe.

    flag_values holds only the flags the user gave, keyed by TrainSettings field name.
    """
    file_values = file_values or {}
    name = name or file_values.get("name")
    if not name:
        raise MarinadeError('a run needs a name: marinade train NAME, or name = "..." in a recipe')
    phase_texts = phases or file_values.get("phases", [])
    if not phase_texts:
        raise MarinadeError("a run needs at least one phase, e.g. --phase mine:500")
    flags: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in flag_values.items()
    }
    parsed = tuple(parse_phase(text) for text in phase_texts)  # a bad phase is told first
    # made once from file and flags together: a default that depends on another setting
    # (lr on method) is filled in from the final values
    settings = TrainSettings(**{**file_values.get("training", {}), **flags})
    recipe = Recipe(
        name=name,
        model=model or file_values.get("model") or DEFAULT_MODEL,
        phases=parsed,
        settings=settings,
        start_from=start_from or file_values.get("start_from"),
    )
    recipe.check()
    return recipe


__all__ = [
    "Phase",
    "Recipe",
    "TrainSettings",
    "automatic_steps",
    "automatic_warmup",
    "build_recipe",
    "describe_automatic_steps",
    "is_ratings_source",
    "load_recipe",
    "parse_phase",
    "phase_ends",
    "phase_of",
    "with_automatic_steps",
]
