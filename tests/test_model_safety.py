"""A model folder from someone else cannot run code: no trust_remote_code prompt, no
pickle that runs when loaded; each refusal is one line naming the folder."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

from marinade.errors import MarinadeError
from marinade.home import open_home
from marinade.models import load_model, load_tokenizer


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_pytorch_model_bin_is_one_line_and_never_runs(tmp_path, tiny_model, cli):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "it-ran"
    torch.save({**weights, "surprise": RunsCode(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(MarinadeError, match="pickle that could run code") as raised:
        load_model(str(folder), open_home(tmp_path / "home"))
    assert "\n" not in str(raised.value) and str(folder) in str(raised.value)
    result = cli("generate", "Hello", "--model", str(folder), "--max-new-tokens", "2")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_plain_pytorch_model_bin_still_loads(tmp_path, tiny_model):
    folder = tmp_path / "plain-bin"
    shutil.copytree(tiny_model, folder)
    weights = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")
    assert load_model(str(folder), open_home(tmp_path / "home")).model is not None


def _with_code_of_its_own(tiny_model, folder, marker):
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "surprise-gpt"
    config["auto_map"] = {
        "AutoConfig": "modeling_surprise.SurpriseConfig",
        "AutoModelForCausalLM": "modeling_surprise.SurpriseModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_surprise.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "from transformers import GPT2Config as SurpriseConfig\n"
        "from transformers import GPT2LMHeadModel as SurpriseModel\n"
    )


def test_a_folder_that_needs_trust_remote_code_is_refused_without_a_prompt(
    tmp_path, tiny_model, cli
):
    folder = tmp_path / "remote"
    marker = tmp_path / "it-ran"
    _with_code_of_its_own(tiny_model, folder, marker)
    home = open_home(tmp_path / "home")
    for load in (load_model, load_tokenizer):
        with pytest.raises(MarinadeError, match="never runs code that comes with a model"):
            load(str(folder), home)
    # a terminal's input would answer transformers' "run the custom code? [y/N]": never asked
    result = cli("generate", "Hi", "--model", str(folder), input="y\n")
    assert result.exit_code == 1
    assert "[y/N]" not in result.stdout + result.stderr
    assert "trust_remote_code" in result.stderr and result.stderr.count("\n") == 1
    assert not marker.exists()


def test_a_tokenizer_of_its_own_is_refused(tmp_path, tiny_model):
    folder = tmp_path / "remote-tokenizer"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "SurpriseTokenizer"
    config["auto_map"] = {"AutoTokenizer": ["tokenization_surprise.SurpriseTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(MarinadeError, match="tokenization_surprise.SurpriseTokenizer"):
        load_model(str(folder), open_home(tmp_path / "home"))
