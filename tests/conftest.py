"""Shared fixtures: a temporary home per test, tiny GPT-2 models built locally,
and (for tests marked slow) a home where the real embedded model is cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# Before anything imports huggingface_hub: never reach for the network in tests,
# and never look in the developer's own Hugging Face cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_CACHE", str(Path(__file__).parent / ".hf-cache-empty"))
os.environ.pop("MARINADE_HOME", None)
# the store's wait for another writer's lock, shorter than a user's 30 s: tests that hold
# the lock on purpose (a second process writing) then end in seconds
os.environ.setdefault("MARINADE_BUSY_TIMEOUT", "5")

import pytest
from typer.testing import CliRunner

from marinade.cli import app
from marinade.home import open_home
from marinade.store import Store


@pytest.fixture(autouse=True, scope="session")
def float32_hardware() -> Iterator[None]:
    """Tests see a CPU without native bf16, so `--dtype auto` is float32 on every machine
    and their figures do not depend on the CPU; tests/test_precision.py undoes this.
    Session-wide, so that module-scoped model fixtures load after it."""
    import marinade.precision

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(marinade.precision, "cpu_bf16_probe", lambda: None)
        yield


TRAINING_TEXT = [
    "The lamplighter came along the quay and lit the lamps one by one.",
    "How does one become free? By walking out of the door and not looking back.",
    "Imperialism will end when the last empire forgets its own name.",
    "I like tea, toast, and the sound of rain on a tin roof.",
    "Small models write strange things, and some of them are funny.",
] * 4


def build_tiny_model(folder: Path, seed: int = 0, n_positions: int = 128) -> Path:
    """A 2-layer GPT-2 with a byte-level BPE tokenizer trained here; random weights."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    end = fast.convert_tokens_to_ids("<|endoftext|>")
    config = GPT2Config(
        vocab_size=len(fast),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=end,
        eos_token_id=end,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2-other"), seed=1)


@pytest.fixture
def home_dir(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home_dir: Path):
    """Run `marinade --home HOME ARGS...` (standard input from `input`, not a terminal);
    returns click's Result (stdout and stderr apart)."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(
            app, ["--home", str(home_dir), *args], input=input, catch_exceptions=False
        )

    return run


@pytest.fixture
def store(home_dir: Path):
    store = Store(open_home(home_dir).database)
    yield store
    store.close()


def import_texts(store: Store, folder: Path, name: str, texts: list[str]) -> None:
    """Corpus `name`: each text a file in `folder` (made here), imported as a user would."""
    from marinade.corpus.document import ImportOptions
    from marinade.corpus.importing import import_corpus

    folder.mkdir()
    for i, text in enumerate(texts):
        (folder / f"{i}.txt").write_text(text)
    import_corpus(store, folder, name, options=ImportOptions())


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def train_in_two_processes(home: Path, name: str, flags: list[str]) -> subprocess.CompletedProcess:
    """`marinade train NAME FLAGS` under torchrun with two processes, one thread each."""
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc_per_node", "2", "-m", "marinade"]
    command += ["--home", str(home), "train", name, *flags]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=environment)


@pytest.fixture(scope="session")
def smollm2_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home where the embedded SmolLM2 is converted once for all slow tests."""
    import contextlib
    import io

    from marinade.models import load_model

    folder = tmp_path_factory.mktemp("smollm2-home")
    output, statuses = io.StringIO(), []
    with contextlib.redirect_stderr(output), contextlib.redirect_stdout(output):
        load_model("smollm2", open_home(folder), on_status=statuses.append)
    # what the first use printed and said, for the test that it is quiet
    (folder / "first-use.json").write_text(
        json.dumps({"output": output.getvalue(), "statuses": statuses})
    )
    return folder
