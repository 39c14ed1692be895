"""`runs export --format gguf`: runs of a tiny Llama and a tiny GPT-2 (and, slow, the
embedded SmolLM2) written as GGUF, read back by transformers' own GGUF reader and by
llama.cpp, and compared with the run itself on a fixed text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gguf
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
from typer.testing import CliRunner

from conftest import build_tiny_model, json_lines
from marinade.cli import app
from marinade.corpus.document import ImportOptions
from marinade.corpus.importing import import_corpus
from marinade.home import open_home
from marinade.models import DEFAULT_MODEL, convert_gguf, embedded_gguf, load_model
from marinade.sample_settings import DEFAULT_TEMPERATURE
from marinade.store import Store
from marinade.timestamps import now_iso
from marinade.training.loop import train
from marinade.training.recipe import build_recipe

TEXT = (
    "The lamplighter walked the quay at dusk, and the harbour was quiet. "
    "I like tea and toast, and rain on the roof. Small models write strange things."
)
MINE = [f"I like tea and toast, and rain on the roof number {i}." for i in range(30)]
SETTINGS = {"batch_size": 2, "block_size": 32, "warmup": 1, "eval_every": 10, "save_every": 10}
HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
PROMPT = "The lamplighter walked the quay"
NO_LLAMA_CPP = "llama-cpp-python is not installed (pip install -e '.[bench]')"


def build_tiny_llama(folder: Path, tokenizer_folder: Path) -> Path:
    """A 2-layer Llama with grouped-query attention (4 heads, 2 for keys and values, so
    the q/k reordering is exercised for both) and an untied output layer, using the
    tiny GPT-2's byte-level BPE tokenizer; random weights."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def gguf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with three runs: `llama` (LoRA on the tiny Llama, merged on export),
    `gpt2` (full fine-tune of a tiny GPT-2) and `neox` (a GPT-NeoX, which GGUF export
    does not write). The GPT-2 has 1024 positions, as every real GPT-2 does:
    transformers' GGUF reader builds a GPT-2 with 1024 whatever the file says."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    root = tmp_path_factory.mktemp("gguf")
    gpt2 = build_tiny_model(root / "tiny-gpt2", n_positions=1024)
    llama = build_tiny_llama(root / "tiny-llama", gpt2)
    neox = root / "tiny-neox"
    tokenizer = AutoTokenizer.from_pretrained(gpt2)
    GPTNeoXForCausalLM(
        GPTNeoXConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        )
    ).save_pretrained(neox)
    tokenizer.save_pretrained(neox)
    home = open_home(root / "home")
    store = Store(home.database)
    (root / "mine").mkdir()
    for i, text in enumerate(MINE):
        (root / "mine" / f"{i}.txt").write_text(text)
    import_corpus(store, root / "mine", "mine", options=ImportOptions())
    for name, model, flags in (
        ("llama", llama, {"method": "lora", "lora_targets": ("q_proj", "k_proj", "v_proj")}),
        ("gpt2", gpt2, {}),
        ("neox", neox, {}),
    ):
        recipe = build_recipe(name, str(model), ["mine:3"], None, None, {**SETTINGS, **flags})
        assert train(store, home, recipe).status == "finished"
    store.close()
    return root / "home"


def marinade(home: Path, *args: str):
    """`marinade --home HOME ARGS...`, stdout and stderr apart."""
    return CliRunner().invoke(app, ["--home", str(home), *args], catch_exceptions=False)


def export(home: Path, name: str, folder: Path, *args: str):
    return marinade(home, "runs", "export", name, str(folder), "--format", "gguf", *args)


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits[0].float()


@pytest.mark.parametrize("run", ["llama", "gpt2"])
@pytest.mark.parametrize("tensor_type", ["f32", "f16", "q8_0"])
def test_an_exported_run_loads_back_in_transformers_with_the_same_next_tokens(
    gguf_home, tmp_path, run, tensor_type
):
    result = export(gguf_home, run, tmp_path, "--type", tensor_type)
    assert result.exit_code == 0, result.stderr
    path = tmp_path / f"{run}.gguf"
    reference = load_model(run, open_home(gguf_home), device="cpu")
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name)
    back_tokenizer = AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    ids = reference.tokenizer(TEXT, return_tensors="pt").input_ids
    # the tokenizer in the file splits the text into the very same tokens
    assert back_tokenizer(TEXT, add_special_tokens=False).input_ids == ids[0].tolist()
    expected, got = logits(reference.model, ids), logits(back, ids)
    agreement = (expected.argmax(-1) == got.argmax(-1)).float().mean().item()
    difference = (expected - got).abs().max().item()
    if tensor_type in ("f32", "f16"):
        assert agreement == 1.0
        assert difference < (1e-4 if tensor_type == "f32" else 2e-2), difference
    else:
        assert agreement >= 0.95, agreement
    stored = {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}
    wanted = {"f32": "F32", "f16": "F16", "q8_0": "Q8_0"}[tensor_type]
    assert stored["blk.0.attn_q.weight" if run == "llama" else "blk.0.attn_qkv.weight"] == wanted
    assert stored["blk.0.attn_norm.weight"] == "F32"  # 1-D tensors stay float32


@pytest.mark.parametrize("tensor_type", ["q4_0", "bf16"])
def test_the_smaller_types_store_what_they_say_and_load_back(gguf_home, tmp_path, tensor_type):
    assert export(gguf_home, "llama", tmp_path, "--type", tensor_type).exit_code == 0
    path = tmp_path / "llama.gguf"
    stored = {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}
    big = "Q8_0" if tensor_type == "q4_0" else "BF16"  # q4_0 keeps the embeddings at 8 bits
    assert stored["token_embd.weight"] == stored["output.weight"] == big
    assert stored["blk.1.ffn_down.weight"] == tensor_type.upper()
    reference = load_model("llama", open_home(gguf_home), device="cpu")
    ids = reference.tokenizer(TEXT, return_tensors="pt").input_ids
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name)
    expected, got = logits(reference.model, ids), logits(back, ids)
    assert (expected.argmax(-1) == got.argmax(-1)).float().mean().item() >= 0.8


def test_the_file_carries_the_tokenizer_llama_cpp_needs(gguf_home, tmp_path):
    assert export(gguf_home, "llama", tmp_path, "--type", "f16").exit_code == 0
    tokenizer = load_model("llama", open_home(gguf_home), device="cpu").tokenizer
    reader = gguf.GGUFReader(tmp_path / "llama.gguf")
    value = {key: field.contents() for key, field in reader.fields.items()}
    assert value["general.architecture"] == "llama"
    assert value["tokenizer.ggml.model"] == "gpt2"
    assert value["tokenizer.ggml.pre"] == "gpt-2"  # plain byte-level, as the tokenizer says
    tokens = value["tokenizer.ggml.tokens"]
    assert len(tokens) == value["llama.vocab_size"] == len(tokenizer)
    end = tokens.index("<|endoftext|>")
    assert value["tokenizer.ggml.token_type"][end] == gguf.TokenType.CONTROL
    assert value["tokenizer.ggml.eos_token_id"] == end == tokenizer.eos_token_id
    assert value["tokenizer.ggml.bos_token_id"] == tokenizer.bos_token_id
    assert len(value["tokenizer.ggml.merges"]) > 0
    assert value["llama.attention.head_count_kv"] == 2
    assert "output.weight" in {t.name for t in reader.tensors}  # not tied in this model


def rate(home: Path, model: str, cells: dict[float, tuple[int, int]]) -> None:
    """Experiment samples of `model`, per temperature (accepted, rated)."""
    store = Store(open_home(home).database)
    for temperature, (accepted, rated) in cells.items():
        rows = store.add_samples(
            {
                "created_at": now_iso(),
                "origin": "experiment",
                "model": model,
                "model_hash": "x",
                "text": f"sample {i}",
                "seed": i,
                "temperature": temperature,
                "experiment": "grid",
            }
            for i in range(rated)
        )
        for i, row in enumerate(rows):
            store.rate_sample(row["id"], "accept" if i < accepted else "reject", now=now_iso())
    store.close()


def test_modelfile_uses_the_temperature_rated_best(gguf_home, tmp_path):
    assert export(gguf_home, "llama", tmp_path / "before").exit_code == 0
    # 1.2: 6 of 8 accepted; 0.8: 1 of 6; 1.0: one sample, accepted (too few to trust)
    rate(gguf_home, "llama", {0.8: (1, 6), 1.0: (1, 1), 1.2: (6, 8)})
    assert export(gguf_home, "llama", tmp_path / "after").exit_code == 0
    before = (tmp_path / "before" / "Modelfile").read_text().splitlines()
    after = (tmp_path / "after" / "Modelfile").read_text().splitlines()
    assert before[0] == after[0] == "FROM ./llama.gguf"
    assert 'PARAMETER stop "<|endoftext|>"' in after
    assert f"PARAMETER temperature {DEFAULT_TEMPERATURE:g}" in before  # nothing rated yet
    assert "PARAMETER temperature 1.2" in after
    readme = (tmp_path / "after" / "README.md").read_text()
    assert "ollama create llama -f Modelfile" in readme
    assert "llama-cli -m llama.gguf" in readme and "--temp 1.2" in readme
    assert "LM Studio" in readme


def test_what_gguf_export_refuses_in_one_line(gguf_home, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    assert export(gguf_home, "gpt2", tmp_path / "once").exit_code == 0
    first = (tmp_path / "once" / "gpt2.gguf").read_bytes()
    for result, words in (
        (
            export(gguf_home, "neox", tmp_path / "neox"),
            "cannot write a gpt_neox model as GGUF; --format gguf writes llama, gpt2",
        ),
        (
            export(gguf_home, "gpt2", tmp_path / "t", "--type", "q3_k"),
            "--type must be one of f32, f16, bf16, q8_0, q4_0, not 'q3_k'",
        ),
        (
            marinade(gguf_home, "runs", "export", "gpt2", str(tmp_path / "f"), "--format", "onnx"),
            "--format must be hf or gguf, not onnx",
        ),
        (export(gguf_home, "gpt2", a_file), "is a file, not a folder"),
        (export(gguf_home, "gpt2", a_file / "sub"), "cannot create"),
        (
            export(gguf_home, "gpt2", tmp_path / "once", "--type", "f32"),
            "already has gpt2.gguf, Modelfile, README.md; remove them or choose another folder",
        ),
        (export(gguf_home, "nosuchrun", tmp_path / "x"), "no run named nosuchrun"),
    ):
        assert result.exit_code == 1, result.stdout
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (tmp_path / "once" / "gpt2.gguf").read_bytes() == first  # not overwritten
    assert not list((tmp_path / "neox").glob("*.gguf"))
    assert a_file.read_text() == "mine"


@pytest.mark.skipif(not HAS_LLAMA_CPP, reason=NO_LLAMA_CPP)
@pytest.mark.parametrize("run", ["llama", "gpt2"])
def test_llama_cpp_runs_a_tiny_export_greedily_as_marinade_does(gguf_home, tmp_path, run):
    assert export(gguf_home, run, tmp_path, "--type", "f32").exit_code == 0
    ours = marinade_greedy(gguf_home, run, PROMPT, 8)
    assert len(ours.split()) >= 2, ours  # a few tokens, not an early end
    print(run, repr(ours))
    assert llama_cpp_greedy(tmp_path / f"{run}.gguf", PROMPT, 8) == ours


def marinade_greedy(home: Path, model: str, prompt: str, tokens: int) -> str:
    """What `marinade generate --temperature 0` writes after the prompt."""
    result = marinade(
        home, "generate", prompt, "--model", model, "--temperature", "0",
        "--max-new-tokens", str(tokens), "--device", "cpu", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return str(json_lines(result.stdout)[0]["text"])


def llama_cpp_greedy(path: Path, prompt: str, tokens: int) -> str:
    """What llama.cpp writes greedily after the prompt."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=128, verbose=False, seed=0)
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=False)
    picked: list[int] = []
    for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
        if token == llm.token_eos() or len(picked) == tokens:
            break
        picked.append(token)
    return llm.detokenize(picked).decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def smollm2_run_home(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding a 2-step LoRA run (`voice`) on the embedded SmolLM2, whose converted
    folder is shared with the other slow tests."""
    root = tmp_path_factory.mktemp("smollm2-run")
    home = open_home(root / "home")
    (home.models / DEFAULT_MODEL).symlink_to(smollm2_home / "models" / DEFAULT_MODEL)
    store = Store(home.database)
    (root / "mine").mkdir()
    for i, text in enumerate(MINE):
        (root / "mine" / f"{i}.txt").write_text(text)
    import_corpus(store, root / "mine", "mine", options=ImportOptions())
    recipe = build_recipe(
        "voice", DEFAULT_MODEL, ["mine:2"], None, None, {**SETTINGS, "method": "lora"}
    )
    assert train(store, home, recipe).status == "finished"
    store.close()
    return root / "home"


@pytest.mark.slow
def test_the_embedded_model_exports_like_its_original_gguf(smollm2_run_home, tmp_path):
    for tensor_type in ("f32", "q8_0"):
        result = export(smollm2_run_home, "voice", tmp_path / tensor_type, "--type", tensor_type)
        assert result.exit_code == 0, result.stderr
    reference = load_model("voice", open_home(smollm2_run_home), device="cpu")
    original_path = embedded_gguf()
    assert original_path is not None
    original = gguf.GGUFReader(original_path)
    exported = gguf.GGUFReader(tmp_path / "f32" / "voice.gguf")
    # every key of the original but its provenance (name, licence...) is in ours, and the
    # ones that describe the model and its tokenizer say the same
    provenance = {"general.name", "general.organization", "general.finetune", "general.basename"}
    provenance |= {"general.size_label", "general.license", "general.languages"}
    assert not set(original.fields) - set(exported.fields) - provenance
    for key in original.fields:
        if key.startswith(("llama.", "tokenizer.")):
            assert exported.fields[key].contents() == original.fields[key].contents(), key
    assert {t.name for t in exported.tensors} == {t.name for t in original.tensors}
    # read back by transformers: the same next tokens as the run
    ids = reference.tokenizer(TEXT, return_tensors="pt").input_ids
    expected = logits(reference.model, ids)
    for tensor_type, needed in (("f32", 1.0), ("q8_0", 0.95)):
        path = tmp_path / tensor_type / "voice.gguf"
        got = logits(AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name), ids)
        agreement = (expected.argmax(-1) == got.argmax(-1)).float().mean().item()
        assert agreement >= needed, (tensor_type, agreement)
        if tensor_type == "f32":
            assert (expected - got).abs().max().item() < 1e-3
    # and through marinade's own GGUF loader, the one that reads the embedded file
    convert_gguf(tmp_path / "f32" / "voice.gguf", tmp_path / "converted")
    again = load_model(str(tmp_path / "converted"), open_home(smollm2_run_home), device="cpu")
    assert (logits(again.model, ids) - expected).abs().max().item() < 1e-3


@pytest.mark.slow
@pytest.mark.skipif(not HAS_LLAMA_CPP, reason=NO_LLAMA_CPP)
def test_llama_cpp_runs_the_embedded_export_as_marinade_does(smollm2_run_home, tmp_path):
    from llama_cpp import Llama

    assert export(smollm2_run_home, "voice", tmp_path, "--type", "f32").exit_code == 0
    path = tmp_path / "voice.gguf"
    ours = marinade_greedy(smollm2_run_home, "voice", PROMPT, 8)
    assert llama_cpp_greedy(path, PROMPT, 8) == ours
    # "smollm" and the vocabulary make llama.cpp split text as it splits it for the original
    text = "Numbers 12345 and   spaces\n\ttabs, émigrés; it's 3.14!"
    original = embedded_gguf()
    split = [
        Llama(model_path=str(p), vocab_only=True, verbose=False).tokenize(
            text.encode(), add_bos=False
        )
        for p in (original, path)
    ]
    assert split[0] == split[1]
