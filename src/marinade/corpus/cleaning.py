"""Shared cleaning: one document in, clean plain text (or a reason to skip it) out.

Importers only parse; every rule a user can switch with a flag lives here, so
all formats behave the same way.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import replace

from bs4 import BeautifulSoup

from marinade.corpus.document import Document, ImportOptions

# A link, without the punctuation that ends the sentence around it.
URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]", re.IGNORECASE)
LEADING_MENTIONS = re.compile(r"^(?:\.?@[\w.-]+(?:@[\w.-]+)?[\s,:]*)+")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)
# A run of digits with phone-like separators; counted as a phone number at 9+ digits.
PHONE_CANDIDATE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{6,}\d(?!\w)")
BLOCK_TAGS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr"}
EMAIL_PLACEHOLDER = "<email>"
PHONE_PLACEHOLDER = "<phone>"


def html_to_text(markup: str) -> str:
    """Plain text from HTML, paragraphs kept as blank-line-separated blocks."""
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style"]):
        tag.decompose()
    for tag in soup.find_all("br"):
        tag.replace_with("\n")
    for tag in soup.find_all(BLOCK_TAGS - {"br"}):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    return soup.get_text()


def scrub_pii(text: str) -> str:
    text = EMAIL.sub(EMAIL_PLACEHOLDER, text)

    def phone(match: re.Match[str]) -> str:
        digits = sum(ch.isdigit() for ch in match.group())
        return PHONE_PLACEHOLDER if digits >= 9 else match.group()

    return PHONE_CANDIDATE.sub(phone, text)


def normalise_whitespace(text: str) -> str:
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def clean(document: Document, options: ImportOptions) -> tuple[Document | None, str | None]:
    """The cleaned document, or None and the reason it was dropped."""
    if document.is_repost and not options.keep_reposts:
        return None, "repost"
    if document.visibility not in ("public", "unlisted"):
        return None, "not public"
    if document.is_reply and options.drop_replies:
        return None, "reply"
    text = html_to_text(document.text) if document.is_html else html.unescape(document.text)
    if options.keep_links:
        for short, target in document.link_targets.items():
            text = text.replace(short, target)
    else:
        text = URL.sub("", text)
    if document.is_reply:
        text = LEADING_MENTIONS.sub("", text.lstrip())
    if not options.keep_pii:
        text = scrub_pii(text)
    text = normalise_whitespace(text)
    if not text:
        return None, "empty"
    return replace(document, text=text, is_html=False, link_targets={}), None


def dedup_key(text: str) -> str:
    """Same key for texts that differ only in whitespace and case."""
    return hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()
