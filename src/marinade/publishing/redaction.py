"""Keeping secrets out of what is stored and shown: a token (and a webhook URL, which for
Slack or Discord is itself the secret) blanked in error messages, a URL masked for lists.

A server or a library that echoes a secret back rarely echoes it as it is: an exception's
text holds its repr (`b'Bearer ab\\ncd'`), a JSON answer its quoted form, a URL its
percent-encoded one. `redact` blanks every such form, and each long piece of a secret
that has whitespace in it (a token file with two lines shows up one line at a time).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit

SHOWN = "[secret]"
MIN_PIECE = 6  # pieces of a secret shorter than this are too common to blank


def secret_forms(secret: str) -> set[str]:
    """The ways `secret` can appear inside a message: each encoding, and each encoding of
    an encoding (a JSON answer quoting an exception's repr)."""
    once = _encodings(secret)
    forms = set().union(*(_encodings(form) for form in once))
    forms |= {piece for piece in re.split(r"\s+", secret) if len(piece) >= MIN_PIECE}
    return {form for form in forms if len(form) >= MIN_PIECE or form == secret}


def _encodings(secret: str) -> set[str]:
    return {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret.encode("utf-8", "backslashreplace"))[2:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        html.escape(secret),
    }


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every form of every secret replaced by [secret], longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= secret_forms(secret)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, SHOWN)
    return text


def url_secrets(url: str | None) -> list[str]:
    """What in a webhook URL is secret: its path and query (Slack's and Discord's token is
    there) and any user:password, alone and as the whole URL."""
    if not url:
        return []
    parts = urlsplit(url)
    secret_part = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    found = [url, secret_part, parts.path.lstrip("/"), parts.query]
    if parts.password:
        found.append(parts.password)
    return [part for part in found if part and part != "/"]


def mask_url(url: str) -> str:
    """A webhook URL fit to show: scheme and host, the rest starred
    (`https://hooks.slack.com/***`)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host += f":{parts.port}"
    rest = parts.path.strip("/") or parts.query
    return f"{parts.scheme}://{host}/" + ("***" if rest else "")
