"""One account to post to: its platform, its settings, and where to read its secret.

A secret (an access token, an app password) is never stored in the database or shown:
an account names an environment variable (`token_env`) or a file readable only by the
user (`token_file`, mode 0600 or stricter), and the secret is read when posting. It is
checked when the account is added and whenever it is read: a secret with a character a
request header cannot carry (a line break, a control or non-ASCII character) is refused
in one line that does not show it, before anything is sent.

This module imports nothing else of marinade.publishing, so the adapters (which take an
`Account`) and accounts.py (which checks an account against its adapter) both build on it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marinade.errors import MarinadeError
from marinade.publishing.redaction import mask_url, url_secrets


@dataclass(frozen=True)
class Account:
    name: str
    platform: str
    settings: dict[str, Any] = field(default_factory=dict)
    is_default: bool = False

    def setting(self, key: str, default: Any = None) -> Any:
        value = self.settings.get(key)
        return default if value in (None, "") else value

    def secret(self, required: bool = True) -> str | None:
        """The token or password, from the environment variable or the private file."""
        env, file = self.setting("token_env"), self.setting("token_file")
        if env:
            value = os.environ.get(env, "").strip()
            if not value:
                raise MarinadeError(
                    f"account {self.name}: environment variable {env} is not set (it holds "
                    "the token)"
                )
            return check_secret(value, f"account {self.name}: the token in ${env}")
        if file:
            return read_secret_file(Path(file), self.name)
        if required:
            raise MarinadeError(
                f"account {self.name} has no secret: add it again with --token-env VAR or "
                "--token-file FILE"
            )
        return None

    def secrets_to_hide(self) -> list[str]:
        """Everything of this account an error message must not show: its token as it
        is (even one `secret()` refuses), and a webhook's URL."""
        hidden = [value for value in (self._raw_secret(),) if value]
        if self.platform == "webhook":
            hidden += url_secrets(self.setting("url"))
        return hidden

    def _raw_secret(self) -> str | None:
        """The secret unchecked, or None where it cannot be read: only for redaction."""
        env, file = self.setting("token_env"), self.setting("token_file")
        try:
            if env:
                return os.environ.get(env, "").strip() or None
            if file:
                return Path(file).expanduser().read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        return None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Account:
        """An account as the store keeps it (its settings as JSON)."""
        return cls(
            name=row["name"],
            platform=row["platform"],
            settings=json.loads(row["settings"] or "{}"),
            is_default=bool(row["is_default"]),
        )

    def public(self) -> dict[str, Any]:
        """What `accounts list --json` shows: everything stored, a webhook's URL masked
        (for Slack and Discord the URL is the secret)."""
        settings = dict(self.settings)
        if self.platform == "webhook" and settings.get("url"):
            settings["url"] = mask_url(settings["url"])
        return {
            "name": self.name,
            "platform": self.platform,
            "default": self.is_default,
            **settings,
        }


def check_secret(value: str, where: str) -> str:
    """`value`, if every character of it can go in a request header (printable ASCII);
    else a one-line error that says which character and where, never the secret."""
    for position, character in enumerate(value, start=1):
        if " " <= character <= "~":
            continue
        if character in "\r\n":
            kind = "a line break"
        elif character == "\t":
            kind = "a tab"
        elif ord(character) < 0x20 or ord(character) == 0x7F:
            kind = f"a control character (U+{ord(character):04X})"
        else:
            kind = "a non-ASCII character"
        raise MarinadeError(
            f"{where} has {kind} at character {position}, which a request header cannot"
            " carry; put the token alone on one line (nothing was sent)"
        )
    return value


def read_secret_file(path: Path, account: str) -> str:
    """A secret from a file only its owner can read; group- or world-readable is refused."""
    path = path.expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MarinadeError(f"account {account}: token file {path} not found") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MarinadeError(
            f"account {account}: token file {path} can be read by others "
            f"(mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
        )
    if not stat.S_ISREG(mode):
        raise MarinadeError(f"account {account}: token file {path} is not a regular file")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise MarinadeError(f"account {account}: token file {path} is not UTF-8 text") from None
    except OSError as error:
        raise MarinadeError(
            f"account {account}: cannot read token file {path}: {error.strerror}"
        ) from None
    if not value:
        raise MarinadeError(f"account {account}: token file {path} is empty")
    return check_secret(value, f"account {account}: token file {path}")
