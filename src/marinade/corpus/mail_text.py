"""A mail's own words: its text part, decoded, without quoted replies or signature.

text/plain is preferred, else the HTML part; format=flowed text is unflowed (RFC 3676).
From plain text we remove "> " lines, "On ... wrote:" attributions (English, German,
French, over up to three lines), everything after a signature separator ("-- "), an
Outlook "-----Original Message-----" or "From:/Sent:" block, and "Sent from my ..."
lines. From HTML we remove the elements mail clients mark as quotes or signatures
(blockquote, Gmail's and Thunderbird's classes, Outlook's reply markers) and what
follows a forwarded-message rule. The mbox importer (corpus/importers/mbox.py) uses it.
"""

from __future__ import annotations

import email
import email.message
import re

from bs4 import BeautifulSoup

from marinade.corpus.cleaning import html_to_text

ATTRIBUTION = re.compile(
    r"^(?:On\b.*\bwrote|Am\b.*\bschrieb.*|Le\b.*\ba écrit)\s*:\s*$", re.IGNORECASE | re.DOTALL
)
ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Forwarded message|Ursprüngliche Nachricht"
    r"|Message d'origine)\s*-{2,}\s*$|^Begin forwarded message:\s*$",
    re.IGNORECASE,
)
ORIGINAL_MESSAGE_IN_HTML = re.compile(
    r"-{2,}\s*(?:Original Message|Forwarded message|Ursprüngliche Nachricht"
    r"|Message d'origine)\s*-{2,}",
    re.IGNORECASE,
)
RULE = re.compile(r"^\s*_{10,}\s*$")
MOBILE_SIGNATURE = re.compile(r"^\s*Sent from my \w[\w ]*\s*$", re.IGNORECASE)
HTML_QUOTE_CLASSES = ["gmail_quote", "gmail_signature", "moz-cite-prefix", "moz-signature"]


def own_words(lines: list[bytes]) -> tuple[str, bool] | None:
    """The message's own words (quotes and signature removed, "" if nothing is left)
    and whether they are HTML; None for a message without a text part."""
    found = _text_part(email.message_from_bytes(b"".join(lines)))
    if found is None:
        return None
    text, is_html = found
    text = strip_html_replies(text) if is_html else strip_replies(text)
    visible = html_to_text(text) if is_html else text
    return (text if visible.strip() else ""), is_html


def _text_part(message: email.message.Message) -> tuple[str, bool] | None:
    """The text/plain part, else the text/html one, decoded; attachments are not text."""
    plain = html = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        if part.get_content_type() == "text/plain" and plain is None:
            plain = part
        elif part.get_content_type() == "text/html" and html is None:
            html = part
    chosen = plain or html
    if chosen is None:
        return None
    payload = chosen.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = chosen.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n")
    if chosen is plain and str(chosen.get_param("format", "")).lower() == "flowed":
        text = unflow(text, str(chosen.get_param("delsp", "")).lower() == "yes")
    return text, chosen is html


def unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next."""
    lines: list[str] = []
    pending = ""
    for line in text.split("\n"):
        if line.startswith(" "):  # space-stuffed
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
        else:
            lines.append(pending + line)
            pending = ""
    if pending:
        lines.append(pending)
    return "\n".join(lines)


def _attribution_length(lines: list[str], start: int) -> int:
    """How many lines an "On ... wrote:" attribution at `start` spans (0: none)."""
    if not re.match(r"\s*(?:On|Am|Le)\b", lines[start]):
        return 0
    for length in (1, 2, 3):
        joined = " ".join(line.strip() for line in lines[start : start + length])
        if ATTRIBUTION.match(joined):
            rest = [line for line in lines[start + length :] if line.strip()]
            return length if not rest or rest[0].lstrip().startswith(">") else 0
    return 0


def _ends_own_words(lines: list[str], number: int) -> bool:
    """A signature separator, or the start of a forwarded/quoted original."""
    line = lines[number]
    if line.rstrip() == "--" or ORIGINAL_MESSAGE.match(line):
        return True
    if RULE.match(line) or line.startswith("From: "):  # Outlook's quoted header block
        following = next((later for later in lines[number + 1 :] if later.strip()), "")
        if RULE.match(line):
            return following.startswith("From:")
        return re.match(r"(?:Sent|Date): ", following) is not None
    return False


def strip_replies(text: str) -> str:
    """A plain-text mail body without quoted text, attributions and signature."""
    lines = text.split("\n")
    for number in range(len(lines)):
        if _ends_own_words(lines, number):
            lines = lines[:number]
            break
    kept: list[str] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        length = _attribution_length(lines, number)
        if length:
            number += length
            continue
        if not line.lstrip().startswith(">") and not MOBILE_SIGNATURE.match(line):
            kept.append(line)
        number += 1
    return "\n".join(kept).strip()


def strip_html_replies(markup: str) -> str:
    """An HTML mail body without the quote and signature elements mail clients mark."""
    match = ORIGINAL_MESSAGE_IN_HTML.search(markup)
    if match:
        markup = markup[: match.start()]
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup.find_all("blockquote") + soup.find_all(class_=HTML_QUOTE_CLASSES):
        tag.decompose()
    for marker_id in ("appendonsend", "divRplyFwdMsg"):
        marker = soup.find(id=marker_id)
        if marker is not None:
            for later in marker.find_all_next():
                later.decompose()
            marker.decompose()
    return str(soup)
