"""The algorithm's-eye view: text as the model's tokens, each shown as a neutral symbol.

A token's glyph depends only on its id and the size of the model's vocabulary,
never on the text: the same token is always the same glyph, for every text and
every run. Glyphs are drawn from shapes, box-drawing pieces, blocks and braille
patterns (no letters, digits, arrows or pictures, which carry meaning of their
own); a vocabulary larger than that alphabet gets glyphs of two (or more)
symbols. Ids are scrambled by a fixed bijection before they become symbols, so
neighbouring ids (byte tokens "a", "b", "c" in a BPE vocabulary) do not get
neighbouring shapes that would give the alphabet away.

The text's own whitespace is kept around the glyphs, so lines and paragraphs
keep their shape; every token, whitespace-only ones included, shows one glyph.
Never prints; `render_html` returns a standalone page (inline CSS and script).

The legend gives each token its own bytes, not the text around it: in a
byte-level vocabulary "é" and "è" can share their first byte's token, so a
legend of "the text where the token first occurs" would decode "crème" as
"créme". A piece that is not whole characters is shown as its bytes (⟨C3⟩).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from marinade.errors import MarinadeError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _ranges(*spans: tuple[int, int]) -> str:
    return "".join(chr(code) for start, end in spans for code in range(start, end + 1))


# 511 neutral symbols. Never change this or the constants below: every page ever
# written would decode differently.
ALPHABET = _ranges(
    (0x25A0, 0x25FF),  # geometric shapes
    (0x2500, 0x257F),  # box drawing
    (0x2580, 0x259F),  # block elements
    (0x2801, 0x28FF),  # braille patterns (not the blank one)
)
SCRAMBLE_MULTIPLIER = 104_729  # a prime, coprime with every power of 511 (= 7 x 73)
SCRAMBLE_OFFSET = 7_919
VISIBLE_WHITESPACE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}
BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


class GlyphError(MarinadeError):
    """Text that is not a glyph rendering for this vocabulary."""


@dataclass(frozen=True)
class GlyphMap:
    """Token id <-> glyph for a vocabulary of `vocab_size` tokens."""

    vocab_size: int

    @cached_property
    def width(self) -> int:
        """Symbols per glyph: the fewest that give every token its own glyph."""
        width = 1
        while len(ALPHABET) ** width < self.vocab_size:
            width += 1
        return width

    @cached_property
    def size(self) -> int:
        return int(len(ALPHABET) ** self.width)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {symbol: index for index, symbol in enumerate(ALPHABET)}

    def glyph(self, token_id: int) -> str:
        if not 0 <= token_id < self.vocab_size:
            raise GlyphError(f"token id {token_id} is outside a vocabulary of {self.vocab_size}")
        number = (token_id * SCRAMBLE_MULTIPLIER + SCRAMBLE_OFFSET) % self.size
        symbols = []
        for _ in range(self.width):
            number, digit = divmod(number, len(ALPHABET))
            symbols.append(ALPHABET[digit])
        return "".join(reversed(symbols))

    def token_id(self, glyph: str) -> int:
        if len(glyph) != self.width:
            raise GlyphError(f"a glyph here is {self.width} symbol(s), not {glyph!r}")
        number = 0
        for symbol in glyph:
            if symbol not in self._index:
                raise GlyphError(f"{symbol!r} is not a glyph symbol")
            number = number * len(ALPHABET) + self._index[symbol]
        inverse = pow(SCRAMBLE_MULTIPLIER, -1, self.size)
        token_id = (number - SCRAMBLE_OFFSET) * inverse % self.size
        if token_id >= self.vocab_size:
            raise GlyphError(f"{glyph!r} is no token of a vocabulary of {self.vocab_size}")
        return token_id

    def read(self, rendered: str) -> list[int]:
        """The token ids of a rendering (its whitespace is layout and is skipped)."""
        symbols = "".join(rendered.split())
        if len(symbols) % self.width:
            raise GlyphError(f"{len(symbols)} symbols do not make glyphs of {self.width}")
        return [
            self.token_id(symbols[start : start + self.width])
            for start in range(0, len(symbols), self.width)
        ]


@dataclass(frozen=True)
class GlyphToken:
    token_id: int
    glyph: str
    text: str  # this token's stretch of the original text ("" for the rest of a split character)
    piece: bytes  # the token's own bytes, the same wherever it occurs

    def spacing(self) -> tuple[str, str]:
        """The token's own whitespace before and after its glyph (all of it after, for a
        whitespace-only token, so a line break shows its glyph at the end of the line)."""
        if not self.text.strip():
            return "", self.text
        before = self.text[: len(self.text) - len(self.text.lstrip())]
        return before, self.text[len(self.text.rstrip()) :]

    def rendered(self) -> str:
        before, after = self.spacing()
        return before + self.glyph + after


@dataclass(frozen=True)
class LegendEntry:
    glyph: str
    token_id: int
    piece: bytes  # the token's own bytes
    count: int

    @property
    def shown(self) -> str:
        return show_piece(self.piece)


@dataclass(frozen=True)
class GlyphView:
    model: str
    glyph_map: GlyphMap
    tokens: tuple[GlyphToken, ...]

    def text(self) -> str:
        return "".join(token.text for token in self.tokens)

    def render(self) -> str:
        return "".join(token.rendered() for token in self.tokens)

    def legend(self) -> list[LegendEntry]:
        """Each distinct token once, the most frequent first (ties: first seen first)."""
        counts = Counter(token.token_id for token in self.tokens)
        first: dict[int, GlyphToken] = {}
        for token in self.tokens:
            first.setdefault(token.token_id, token)
        entries = [
            LegendEntry(token.glyph, token_id, token.piece, counts[token_id])
            for token_id, token in first.items()
        ]
        return sorted(entries, key=lambda entry: -entry.count)  # stable: first seen first


def glyph_map_for(tokenizer: PreTrainedTokenizerBase) -> GlyphMap:
    return GlyphMap(len(tokenizer))


def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level BPE writes byte b as one printable character; this undoes that."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    codes = list(printable)
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + shift)
            shift += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}


BYTE_LEVEL = _byte_level_alphabet()


def _decoder_types(tokenizer: PreTrainedTokenizerBase) -> set[str]:
    decoder = json.loads(tokenizer.backend_tokenizer.to_str()).get("decoder") or {}
    found = set()
    for part in [decoder, *decoder.get("decoders", [])]:
        found.add(part.get("type"))
    return found


def token_pieces(
    tokenizer: PreTrainedTokenizerBase, ids: list[int], stretches: list[str]
) -> list[bytes]:
    """Each token's own bytes: exact for byte-level vocabularies (GPT-2, SmolLM2) and for
    byte-fallback tokens (<0xC3>); otherwise the token's stretch of the text."""
    byte_level = "ByteLevel" in _decoder_types(tokenizer)
    pieces = []
    for token, stretch in zip(tokenizer.convert_ids_to_tokens(ids), stretches, strict=True):
        fallback = BYTE_FALLBACK.fullmatch(token)
        if fallback:
            pieces.append(bytes([int(fallback.group(1), 16)]))
        elif byte_level and token and all(char in BYTE_LEVEL for char in token):
            pieces.append(bytes(BYTE_LEVEL[char] for char in token))
        else:
            pieces.append(stretch.encode("utf-8"))
    return pieces


def glyph_view(tokenizer: PreTrainedTokenizerBase, text: str, model: str) -> GlyphView:
    """Split `text` into the model's tokens, each with its glyph and its part of the text.

    A token's part runs from the end of the previous token to its own end (from
    the fast tokenizer's offsets), so the parts put together are the text itself
    and a token keeps the space the tokenizer folded into it.
    """
    if not text:
        raise MarinadeError("there is no text to show: the input is empty")
    if not tokenizer.is_fast:
        raise MarinadeError("glyphs needs a model with a fast (Rust) tokenizer")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    offsets = list(encoded["offset_mapping"])
    glyph_map = glyph_map_for(tokenizer)
    stretches = []
    position = 0
    for index, (_, end) in enumerate(offsets):
        end = len(text) if index == len(ids) - 1 else max(position, end)
        stretches.append(text[position:end])
        position = end
    pieces = token_pieces(tokenizer, ids, stretches)
    tokens = tuple(
        GlyphToken(token_id, glyph_map.glyph(token_id), stretch, piece)
        for token_id, stretch, piece in zip(ids, stretches, pieces, strict=True)
    )
    return GlyphView(model, glyph_map, tokens)


def decode_with_legend(rendered: str, legend: Mapping[str, bytes], width: int) -> str:
    """The text back from a rendering and a legend (glyph -> the token's bytes)."""
    symbols = "".join(rendered.split())
    pieces = []
    for start in range(0, len(symbols), width):
        glyph = symbols[start : start + width]
        if glyph not in legend:
            raise GlyphError(f"{glyph!r} is not in the legend")
        pieces.append(legend[glyph])
    try:
        return b"".join(pieces).decode("utf-8")
    except UnicodeDecodeError:
        raise GlyphError("the glyphs decode to bytes that are not UTF-8 text") from None


def visible(text: str) -> str:
    """A token's text with its whitespace made visible (␣ ⏎ ⇥); ∅ for none."""
    if not text:
        return "∅"
    return "".join(VISIBLE_WHITESPACE.get(char, char) for char in text)


def show_piece(piece: bytes) -> str:
    """A token's bytes as text with visible whitespace; bytes that are not whole characters
    (part of an accented letter or an emoji) as hex (a space and half an emoji: ␣⟨F0 9F⟩)."""
    if not piece:
        return visible("")
    shown = []
    while piece:
        try:
            shown.append(visible(piece.decode("utf-8")))
            break
        except UnicodeDecodeError as error:
            if error.start:
                shown.append(visible(piece[: error.start].decode("utf-8")))
            shown.append(
                "⟨" + " ".join(f"{byte:02X}" for byte in piece[error.start : error.end]) + "⟩"
            )
            piece = piece[error.end :]
    return "".join(shown)


# rendering


def render_text(view: GlyphView, reveal: bool = False) -> str:
    """The glyphs with the text's spacing; with `reveal`, a legend after them."""
    body = view.render()
    if not reveal:
        return body if body.endswith("\n") else body + "\n"
    lines = [body.rstrip("\n"), "", f"Legend ({len(view.tokens)} tokens, model {view.model})"]
    for entry in view.legend():
        lines.append(f"{entry.glyph}  {entry.count:>5}  {entry.shown}")
    return "\n".join(lines) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem;
       color: #222; background: #fdfdfb; }
header p { color: #666; font-size: .9rem; }
pre.glyphs { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 1.15rem;
             line-height: 1.6; white-space: pre-wrap; word-break: break-all; }
.g { border-radius: 2px; display: inline-block; }  /* a glyph never splits at a line end */
.g.same { background: #ffe08a; }
table { border-collapse: collapse; margin-top: 2rem; }
td, th { padding: .15rem .8rem; text-align: left; border-bottom: 1px solid #eee; }
td.glyph { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 1.15rem; }
td.count { text-align: right; }
td.text { font-family: monospace; white-space: pre; }
"""

# Hovering a glyph highlights every occurrence of the same token: patterns, not meanings.
_SCRIPT = """
var groups = {};
document.querySelectorAll('.g').forEach(function (span) {
  (groups[span.dataset.t] = groups[span.dataset.t] || []).push(span);
});
function mark(event, on) {
  var group = event.target.dataset && groups[event.target.dataset.t];
  if (group) { group.forEach(function (span) { span.classList.toggle('same', on); }); }
}
document.addEventListener('mouseover', function (event) { mark(event, true); });
document.addEventListener('mouseout', function (event) { mark(event, false); });
"""


def render_html(view: GlyphView, title: str, reveal: bool = False) -> str:
    """A standalone page: every piece of text escaped, no external assets.

    Without `reveal` nothing on the page says what a glyph means; with it, a
    glyph's title shows its token (its own bytes, as in the legend) on hover and a
    legend follows the text.
    """
    esc = html.escape
    ordinal: dict[int, int] = {}
    spans = []
    for token in view.tokens:
        number = ordinal.setdefault(token.token_id, len(ordinal))
        hover = f' title="{esc(show_piece(token.piece))}"' if reveal else ""
        before, after = token.spacing()
        spans.append(
            f'{before}<span class="g" data-t="{number}"{hover}>{esc(token.glyph)}</span>{after}'
        )
    distinct = len(ordinal)
    summary = f"{len(view.tokens)} tokens, {distinct} distinct, as model {view.model} sees them"
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head><body>",
        f"<header><h1>{esc(title)}</h1><p>{esc(summary)}</p></header>",
        f'<pre class="glyphs">{"".join(spans)}</pre>',
    ]
    if reveal:
        rows = "".join(
            f'<tr><td class="glyph">{esc(entry.glyph)}</td><td class="count">{entry.count}</td>'
            f'<td class="text">{esc(entry.shown)}</td><td>{entry.token_id}</td></tr>'
            for entry in view.legend()
        )
        parts.append(
            "<table><thead><tr><th>glyph</th><th>count</th><th>token</th><th>id</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
        )
    parts += [f"<script>{_SCRIPT}</script>", "</body></html>", ""]
    return "\n".join(parts)
