"""`marinade generate` and `marinade compare`."""

from __future__ import annotations

import gc
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from marinade.cli.common import (
    CliState,
    advance,
    load_model_for,
    out,
    print_json_line,
    printable,
    progress_bar,
    status,
)
from marinade.errors import MarinadeError
from marinade.generation import check_request, choose_seeds, generate_samples
from marinade.sample_settings import DEFAULT_TEMPERATURE, SampleSettings

DEFAULTS = SampleSettings()  # the defaults typer shows are SampleSettings' own

Count = Annotated[int, typer.Option("-n", "--count", help="Samples per temperature.")]
Temperatures = Annotated[
    list[float] | None,
    typer.Option(
        "--temperature",
        "-t",
        help=f"Repeat for several; 0 is greedy. \\[default: {DEFAULT_TEMPERATURE}]",
    ),
]
TopK = Annotated[
    int, typer.Option("--top-k", help="Sample among the k likeliest tokens; 0 is off.")
]
TopP = Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass in (0, 1]; 1 is off.")]
MaxNewTokens = Annotated[int, typer.Option("--max-new-tokens", help="Most tokens per sample.")]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Sample i uses seed+i; random when left out.")
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size", help="Samples computed together. \\[default: from the model's size]"
    ),
]
Stop = Annotated[
    str | None,
    typer.Option(
        "--stop", help="End a sample at this string (left out of the text); \\n and \\t work."
    ),
]
WholeSentences = Annotated[
    bool,
    typer.Option(
        "--whole-sentences",
        help="End each sample at its last sentence end (a little past --max-new-tokens to "
        "reach one); drop a sample with none.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per sample and line.")]
Device = Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:N or mps.")]
Quantize = Annotated[
    str | None,
    typer.Option("--quantize", help="int8: faster on a CPU, slightly worse text (see README)."),
]
Dtype = Annotated[
    str | None,
    typer.Option(
        "--dtype",
        help="auto, float32 or bfloat16; auto: bfloat16 where the CPU or GPU computes it "
        "natively (`marinade models` says which).",
    ),
]


def generate(
    ctx: typer.Context,
    prompt: Annotated[
        str | None, typer.Argument(help="Text to continue; leave out for unconditional samples.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model name or folder.")
    ] = None,
    count: Count = 1,
    temperature: Temperatures = None,
    top_k: TopK = DEFAULTS.top_k,
    top_p: TopP = DEFAULTS.top_p,
    max_new_tokens: MaxNewTokens = DEFAULTS.max_new_tokens,
    seed: Seed = None,
    batch_size: BatchSize = None,
    stop: Stop = None,
    whole_sentences: WholeSentences = False,
    as_json: AsJson = False,
    device: Device = None,
    quantize: Quantize = None,
    dtype: Dtype = None,
) -> None:
    """Sample texts from a model; every sample is logged in the store."""
    state: CliState = ctx.obj
    temperatures = temperature or [DEFAULT_TEMPERATURE]
    check_request(temperatures, count, batch_size)
    settings = SampleSettings(
        top_k=top_k,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        stop=unescape(stop),
        whole_sentences=whole_sentences,
    )
    seeds = choose_seeds(seed, count)
    store = state.store
    loaded = load_model_for(state, model, device, quantize, dtype)
    total = len(seeds) * len(temperatures)
    slots = total * settings.token_cap()
    with progress_bar(f"{total} samples from {loaded.name}", slots) as bar:
        rows = generate_samples(
            store,
            loaded,
            prompt,
            seeds,
            temperatures,
            settings,
            batch_size=batch_size,
            on_progress=lambda k: advance(bar, k),
        )
    for row in rows:
        if as_json:
            print_json_line(row)
        else:
            print_sample(row)
    if len(rows) < total:
        status(f"dropped {total - len(rows)} of {total} samples: no sentence end")


def compare(
    ctx: typer.Context,
    prompt: Annotated[
        str | None, typer.Argument(help="Text to continue; leave out for unconditional.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Give two or more.")
    ] = None,
    count: Count = 1,
    temperature: Annotated[
        float, typer.Option("--temperature", "-t", help="0 is greedy.")
    ] = DEFAULT_TEMPERATURE,
    top_k: TopK = DEFAULTS.top_k,
    top_p: TopP = DEFAULTS.top_p,
    max_new_tokens: MaxNewTokens = DEFAULTS.max_new_tokens,
    seed: Seed = None,
    batch_size: BatchSize = None,
    stop: Stop = None,
    as_json: AsJson = False,
    device: Device = None,
    quantize: Quantize = None,
    dtype: Dtype = None,
) -> None:
    """The same prompt and seeds through each model, side by side."""
    state: CliState = ctx.obj
    models = model or []
    if len(models) < 2:
        raise MarinadeError(
            "compare needs two or more --model options, e.g. --model smollm2 --model ./my-model"
        )
    check_request([temperature], count, batch_size)
    settings = SampleSettings(
        top_k=top_k, top_p=top_p, max_new_tokens=max_new_tokens, stop=unescape(stop)
    )
    seeds = choose_seeds(seed, count)
    store = state.store
    batch_id = uuid.uuid4().hex
    from marinade.models import model_folder  # imports torch and transformers: seconds

    for name in models:  # every model must be there before anything is sampled and stored
        model_folder(name, state.home, on_status=status)

    columns: list[tuple[str, list[dict[str, Any]]]] = []
    for name in models:
        # one model in memory at a time
        loaded = load_model_for(state, name, device, quantize, dtype)
        with progress_bar(
            f"{len(seeds)} samples from {loaded.name}", len(seeds) * max_new_tokens
        ) as bar:
            rows = generate_samples(
                store,
                loaded,
                prompt,
                seeds,
                [temperature],
                settings,
                batch_size=batch_size,
                origin="compare",
                batch_id=batch_id,
                on_progress=lambda k: advance(bar, k),
            )
        label = Path(loaded.name).name if loaded.name.startswith("/") else loaded.name
        columns.append((f"{label}\n{loaded.weights_hash[:8]}", rows))
        del loaded
        gc.collect()
    if as_json:
        for _, rows in columns:
            for row in rows:
                print_json_line(row)
        return
    table = Table(
        show_lines=True,
        title=Text(f"{printable(prompt or '(unconditional)')}  · temperature {temperature}"),
    )
    table.add_column("seed", justify="right", style="dim")
    for header, _ in columns:
        table.add_column(header, ratio=1)
    for index, seed_value in enumerate(seeds):
        texts = (Text(printable(rows[index]["text"])) for _, rows in columns)
        table.add_row(str(seed_value), *texts)
    out.print(table)


def unescape(stop: str | None) -> str | None:
    """`--stop "\\n\\n"` means two newlines: shells pass the backslashes through."""
    if stop is None:
        return None
    return stop.replace("\\n", "\n").replace("\\t", "\t")


def print_sample(row: dict[str, Any]) -> None:
    header = f"#{row['id']}  seed {row['seed']} · temperature {row['temperature']}"
    out.rule(Text(header, style="dim"), align="left")
    body = Text()
    if row.get("prompt"):
        body.append(printable(row["prompt"]), style="bold")
    body.append(printable(row["text"]))
    out.print(body)
