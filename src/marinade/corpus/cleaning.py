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
# A link as it is removed: with the spaces before it, and with the <...> or (...) around it.
LINK = re.compile(rf"[ \t]*(?:<{URL.pattern}>|\({URL.pattern}\)|{URL.pattern})", re.IGNORECASE)
# What may follow a removed link without a space before it: "dry compost." not "dry compost .".
CLOSING = set(".,;:!?)]}>\"'»”’…")
LEADING_MENTIONS = re.compile(r"^(?:\.?@[\w.-]+(?:@[\w.-]+)?[\s,:]*)+")
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)
# Digit groups that may be a phone number: "+33 6 12 34 56 78", "(555) 123-4567",
# "020 7946 0958", "555.123.4567"; `is_phone_number` decides.
PHONE_CANDIDATE = re.compile(
    r"(?<![\w+/-])(?<!\d[.,:])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d+(?:[ ./-]\d+)*"
    r"(?![\w/-])"
)
COUNTRY_AND_AREA = re.compile(r"^(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?")
ZIP_PLUS_FOUR = re.compile(r"\d{5}[ -]\d{4}")  # a US ZIP code with its 4-digit suffix
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


def is_phone_number(candidate: str) -> bool:
    """Whether digit groups are written the way phone numbers are.

    9 to 15 digits, one kind of separator between the groups (a date followed by a
    time mixes them: "01.02.2023 10.30"), not a ZIP+4 code ("97201-1234") or a
    decimal number ("3.14159265358"), and not a row of small numbers ("4 8 15 16 23
    42"): without a "+country" or "(area)" prefix or a leading 0 (the trunk prefix,
    as in "06 12 34 56 78"), some group must have three digits or more.
    """
    if not 9 <= sum(ch.isdigit() for ch in candidate) <= 15:
        return False
    prefix = COUNTRY_AND_AREA.match(candidate)
    rest = candidate[prefix.end() :] if prefix else candidate
    separators = re.findall(r"[ ./-]", rest)
    if len(set(separators)) > 1 or ZIP_PLUS_FOUR.fullmatch(candidate) or separators == ["."]:
        return False
    groups = re.split(r"[ ./-]", rest)
    return bool(prefix and prefix.group()) or rest.startswith("0") or max(map(len, groups)) >= 3


def scrub_pii(text: str) -> str:
    text = EMAIL.sub(EMAIL_PLACEHOLDER, text)

    def phone(match: re.Match[str]) -> str:
        return PHONE_PLACEHOLDER if is_phone_number(match.group()) else match.group()

    return PHONE_CANDIDATE.sub(phone, text)


def remove_links(text: str) -> str:
    """Links out, with the brackets around them and the space before them where
    punctuation follows, so the sentence reads as if the link had never been there."""

    def drop(match: re.Match[str]) -> str:
        after = match.string[match.end() : match.end() + 1]
        return "" if not after or after.isspace() or after in CLOSING else " "

    return LINK.sub(drop, text)


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
        text = remove_links(text)
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
