"""`marinade glyphs`: a text, or a stored sample, as the model's tokens drawn as neutral glyphs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from marinade.cli.common import CliState, id_or_last, status, write_output
from marinade.errors import MarinadeError
from marinade.glyphs import glyph_view, render_html, render_text

FORMATS = ("text", "html")


def glyphs(
    ctx: typer.Context,
    source: Annotated[
        Path | None, typer.Argument(help="A text file ('-' for standard input).")
    ] = None,
    sample: Annotated[
        str | None,
        typer.Option(
            "--sample",
            metavar="ID",
            help="Show a stored sample (its prompt and text) instead; `last` for the newest.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Whose tokens. (default: the sample's model, else smollm2)"
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (.html makes a page); else stdout."),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option("--format", help="text or html. (default: from -o's suffix, else text)"),
    ] = None,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Add a legend, and the token on hover in HTML.")
    ] = False,
) -> None:
    """Text as the model sees it: each distinct token a neutral symbol, spacing kept."""
    state: CliState = ctx.obj
    if (source is None) == (sample is None):
        raise MarinadeError("give a text file or --sample ID (one of them)")
    if output_format is None:
        suffix = output.suffix.lower() if output else ""
        output_format = "html" if suffix in (".html", ".htm") else "text"
    if output_format not in FORMATS:
        raise MarinadeError(f"--format must be one of {', '.join(FORMATS)}, not {output_format}")
    if sample is not None:
        row = newest_or(state, id_or_last(sample, "--sample"))
        text = (row["prompt"] or "") + row["text"]
        title = f"Sample {row['id']}"
        model = model or row["model"]
    else:
        assert source is not None
        text, title = read_source(source)
    from marinade.models import load_tokenizer  # imports transformers: seconds

    tokenizer, model_name = load_tokenizer(model, state.home, on_status=status)
    view = glyph_view(tokenizer, text, model_name)
    page = render_html(view, title, reveal) if output_format == "html" else None
    rendered = page if page is not None else render_text(view, reveal)
    write_output(rendered, output)
    if output is not None:
        distinct = len({token.token_id for token in view.tokens})
        status(f"wrote {output}: {len(view.tokens)} tokens, {distinct} distinct ({model_name})")


def newest_or(state: CliState, sample_id: int | None) -> dict[str, Any]:
    if sample_id is not None:
        return state.store.get_sample(sample_id)
    newest = list(state.store.samples(limit=1))
    if not newest:
        raise MarinadeError("there are no samples yet: `marinade generate` makes some")
    return newest[0]


def read_source(source: Path) -> tuple[str, str]:
    if str(source) == "-":
        return sys.stdin.read(), "standard input"
    try:
        return source.read_text(encoding="utf-8"), source.name
    except FileNotFoundError:
        raise MarinadeError(f"no file {source}") from None
    except UnicodeDecodeError:
        raise MarinadeError(f"{source} is not UTF-8 text") from None
    except OSError as error:
        raise MarinadeError(f"cannot read {source}: {error.strerror}") from None
