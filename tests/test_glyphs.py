"""The algorithm's-eye view (`marinade glyphs`): a stable token -> glyph mapping, spacing
kept, a round trip back to the text, and standalone, escaped HTML."""

from __future__ import annotations

import random
import re
import unicodedata
from html.parser import HTMLParser

import pytest
from transformers import AutoTokenizer

from marinade.glyphs import (
    ALPHABET,
    GlyphError,
    GlyphMap,
    decode_with_legend,
    glyph_view,
    render_html,
    render_text,
    show_piece,
)

TEXT = (
    "The lamplighter came along the quay\n\nand lit the lamps,  one by one.\n"
    "\tCafé au lait — 😀 — the end the end"
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def test_alphabet_is_neutral_symbols():
    assert len(ALPHABET) == len(set(ALPHABET)) == 511
    for symbol in ALPHABET:
        assert not symbol.isspace()
        assert unicodedata.category(symbol)[0] not in "LNP"  # no letters, digits, punctuation


def test_glyphs_are_pinned_and_one_to_one():
    """The mapping must never change: pages written before must still read the same."""
    large = GlyphMap(50257)
    assert large.width == 2
    assert [large.glyph(i) for i in (0, 1, 2, 198, 50256)] == ["▯▞", "╼▄", "⢪╪", "▂╸", "╾▁"]
    small = GlyphMap(400)
    assert small.width == 1
    assert [small.glyph(i) for i in (0, 1, 2, 399)] == ["▞", "▄", "╪", "┄"]
    assert GlyphMap(511).width == 1 and GlyphMap(512).width == 2
    assert len({small.glyph(i) for i in range(400)}) == 400
    for token_id in [*range(400), *random.Random(0).sample(range(50257), 2000)]:
        grid = small if token_id < 400 else large
        assert grid.token_id(grid.glyph(token_id)) == token_id
    glyphs = {large.glyph(i) for i in range(50257)}
    assert len(glyphs) == 50257
    with pytest.raises(GlyphError):
        small.glyph(400)


def test_same_token_same_glyph_whatever_the_text(tokenizer):
    first = glyph_view(tokenizer, "the end", "tiny")
    second = glyph_view(tokenizer, "Imperialism will end, and then the end.", "tiny")
    glyph_of = {token.token_id: token.glyph for token in first.tokens}
    shared = [token for token in second.tokens if token.token_id in glyph_of]
    assert shared  # " end" at least
    for token in shared:
        assert token.glyph == glyph_of[token.token_id]
    # and the same token repeated within a text is one glyph
    view = glyph_view(tokenizer, TEXT, "tiny")
    by_id: dict[int, set[str]] = {}
    for token in view.tokens:
        by_id.setdefault(token.token_id, set()).add(token.glyph)
    assert all(len(glyphs) == 1 for glyphs in by_id.values())
    assert len(by_id) < len(view.tokens)  # "the end the end" repeats tokens


def test_round_trip_with_the_legend_and_through_the_ids(tokenizer):
    view = glyph_view(tokenizer, TEXT, "tiny")
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert [token.token_id for token in view.tokens] == ids
    assert view.text() == TEXT  # every character belongs to exactly one token
    rendered = view.render()
    assert not any(char.isalnum() for char in rendered)  # nothing of the text shows
    legend = {entry.glyph: entry.piece for entry in view.legend()}
    assert decode_with_legend(rendered, legend, view.glyph_map.width) == TEXT
    assert view.glyph_map.read(rendered) == ids
    assert tokenizer.decode(view.glyph_map.read(rendered)) == TEXT
    counts = {entry.glyph: entry.count for entry in view.legend()}
    assert sum(counts.values()) == len(ids)
    assert [entry.count for entry in view.legend()] == sorted(counts.values(), reverse=True)


ACCENTS = "Café crème, naïve 😀😁 — the end"


def test_a_token_shared_by_two_characters_decodes_to_each(tokenizer):
    """In a byte-level vocabulary "é" and "è" (and two emoji) share their first bytes'
    tokens: the legend holds each token's own bytes, so the round trip still holds."""
    view = glyph_view(tokenizer, ACCENTS, "tiny")
    ids = [token.token_id for token in view.tokens]
    assert len(ids) > len(set(ids))
    legend = {entry.glyph: entry.piece for entry in view.legend()}
    assert decode_with_legend(view.render(), legend, view.glyph_map.width) == ACCENTS
    assert b"".join(token.piece for token in view.tokens) == ACCENTS.encode("utf-8")
    shared = [entry for entry in view.legend() if entry.shown.startswith("⟨")]
    assert shared and all(len(entry.piece) < 4 for entry in shared)  # part of a character
    assert show_piece("é".encode()[:1]) == "⟨C3⟩" and show_piece(b" end") == "␣end"
    assert show_piece(" 😀".encode()[:3]) == "␣⟨F0 9F⟩" and show_piece(b"\x80a") == "⟨80⟩a"
    with pytest.raises(GlyphError, match="not in the legend"):
        decode_with_legend(view.render(), {}, view.glyph_map.width)


def test_spacing_is_kept(tokenizer):
    rendered = glyph_view(tokenizer, TEXT, "tiny").render()
    # the same whitespace, in the same order: lines, the blank line, double space, tab
    assert re.sub(r"\S", "", rendered) == re.sub(r"\S", "", TEXT)
    assert len(rendered.splitlines()) == len(TEXT.splitlines())
    assert rendered.splitlines()[1].strip() != ""  # a line break token shows its glyph


def test_text_rendering_with_reveal_has_a_legend(tokenizer):
    view = glyph_view(tokenizer, "the end the end", "tiny")
    plain = render_text(view)
    assert plain == view.render() + "\n"
    revealed = render_text(view, reveal=True)
    assert revealed.startswith(view.render())
    assert f"Legend ({len(view.tokens)} tokens, model tiny)" in revealed
    end = view.tokens[-1]
    assert end.text == " end"
    assert f"\n{end.glyph}      2  ␣end\n" in revealed  # the most frequent first


class PageReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.titles: list[str] = []
        self.glyphs: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._in_glyph = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self._in_glyph = tag == "span" and attributes.get("class") == "g"
        if self._in_glyph and "title" in attributes:
            self.titles.append(attributes["title"] or "")

    def handle_data(self, data):
        if self._in_glyph:
            self.glyphs.append(data)
            self._in_glyph = False


HOSTILE = 'Say <script>alert("x")</script> & <b>bold</b>\n"quoted" \'too\''


def test_html_is_standalone_and_escapes_everything(tokenizer):
    view = glyph_view(tokenizer, HOSTILE, "tiny <model>")
    for reveal in (False, True):
        page = render_html(view, 'My "story" <1>', reveal=reveal)
        assert page.startswith("<!DOCTYPE html>")
        assert "<script>alert" not in page and "<b>bold" not in page
        assert "tiny &lt;model&gt;" in page and "My &quot;story&quot; &lt;1&gt;" in page
        assert "http" not in page and "src=" not in page and "<link" not in page
        reader = PageReader()
        reader.feed(page)
        assert [tag for tag, _ in reader.tags if tag == "script"] == ["script"]  # our own
        assert "".join(reader.glyphs) == "".join(token.glyph for token in view.tokens)
        if reveal:
            assert reader.titles == [show_piece(token.piece) for token in view.tokens]
            assert "&lt;" in page and "&quot;" in page
        else:
            assert reader.titles == []
            assert "alert" not in page and "<table" not in page  # nothing says what means what


def test_cli_file_to_html_and_text(cli, tiny_model, tmp_path):
    story = tmp_path / "story.txt"
    story.write_text(TEXT, encoding="utf-8")
    page = tmp_path / "story.html"
    result = cli("glyphs", str(story), "-o", str(page), "--model", str(tiny_model), "--reveal")
    assert result.exit_code == 0, result.stderr
    html = page.read_text(encoding="utf-8")
    assert "<table" in html and "story.txt" in html
    assert "tokens" in result.stderr

    text = cli("glyphs", str(story), "--model", str(tiny_model))
    assert text.exit_code == 0, text.stderr
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    glyph_map = GlyphMap(len(tokenizer))
    assert tokenizer.decode(glyph_map.read(text.stdout)) == TEXT


def test_cli_shows_a_stored_sample_with_its_own_model(cli, tiny_model, tmp_path):
    made = cli("generate", "The lamp", "--model", str(tiny_model), "--seed", "3", "--json")
    assert made.exit_code == 0, made.stderr
    page = tmp_path / "sample.html"
    result = cli("glyphs", "--sample", "1", "-o", str(page))  # no --model: the sample's
    assert result.exit_code == 0, result.stderr
    assert "Sample 1" in page.read_text(encoding="utf-8")
    text = cli("glyphs", "--sample", "1", "--format", "text", "--model", str(tiny_model))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    from conftest import json_lines

    [row] = json_lines(made.stdout)
    decoded = tokenizer.decode(GlyphMap(len(tokenizer)).read(text.stdout))
    assert decoded == row["prompt"] + row["text"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a text file or --sample ID"),
        (["missing.txt"], "no file missing.txt"),
        (["--sample", "4"], "no sample with id 4"),
        (["x.txt", "--format", "pdf"], "--format must be one of text, html"),
    ],
)
def test_bad_requests_are_one_line_errors(cli, args, message):
    result = cli("glyphs", *args)
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
