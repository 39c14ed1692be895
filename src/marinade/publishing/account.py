"""One account to post to: its platform, its settings, and where to read its secret.

A secret (an access token, an app password) is never stored in the database or shown:
an account names an environment variable (`token_env`) or a file readable only by the
user (`token_file`, mode 0600 or stricter), and the secret is read when posting.

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
            return value
        if file:
            return read_secret_file(Path(file), self.name)
        if required:
            raise MarinadeError(
                f"account {self.name} has no secret: add it again with --token-env VAR or "
                "--token-file FILE"
            )
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
        """What `accounts list --json` shows: everything stored (there is no secret in it)."""
        return {
            "name": self.name,
            "platform": self.platform,
            "default": self.is_default,
            **self.settings,
        }


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
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise MarinadeError(f"account {account}: token file {path} is empty")
    return value
