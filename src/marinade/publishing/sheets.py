"""A Google Sheet through gspread: credentials, reading one worksheet, writing cells.

Credentials are a service-account JSON file (share the sheet with its e-mail address),
an authorized-user JSON (an OAuth refresh token, as `gcloud auth application-default
login` or google-auth-oauthlib write it), or a bare OAuth access token; from a file only
its owner can read (`--credentials`), an environment variable (`--token-env`), or else
the file $GOOGLE_APPLICATION_CREDENTIALS names. Only where they are is remembered;
error texts are scrubbed of every secret value they hold.

A worksheet is read twice, with the FORMULA and the FORMATTED_VALUE render: a cell is a
formula exactly when the two differ and the first starts with `=` (a text that starts
with `=`, written as a RAW value, reads the same both ways). Cells are written in one
values:batchUpdate request, RAW, so nothing marinade writes is ever run as a formula.

gspread talks to https://sheets.googleapis.com, and google-auth exchanges an OAuth
refresh token at https://oauth2.googleapis.com whatever the file says; `api_url`
rewrites both (tests point it at a local server, as x.py does for tweepy). A service
account's token is fetched from the `token_uri` its file names.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marinade.errors import MarinadeError
from marinade.publishing.account import read_secret_file

API = "https://sheets.googleapis.com"
TOKEN_API = "https://oauth2.googleapis.com"  # where an OAuth refresh token is exchanged
SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
TIMEOUT = 30.0  # seconds for each request
SHEET_URL = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class SheetSource:
    """Which sheet, and where its credentials are read from (never the secret itself)."""

    spreadsheet_id: str
    worksheet: str | None = None  # None: the first one
    credentials: str | None = None  # a 0600 JSON file
    token_env: str | None = None  # a variable holding such JSON, or an access token
    api_url: str = API

    def public(self) -> dict[str, Any]:
        return {
            "worksheet": self.worksheet,
            "credentials": self.credentials,
            "token_env": self.token_env,
            "api_url": self.api_url,
        }


def spreadsheet_id(text: str) -> str:
    """The id from an id or from the sheet's address in a browser."""
    found = SHEET_URL.search(text)
    value = found[1] if found else text.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{10,}", value):
        raise MarinadeError(
            f"bad --sheet {text!r}: give the spreadsheet id (the long part of its address "
            "after /spreadsheets/d/) or its address"
        )
    return value


@dataclass
class Worksheet:
    """One worksheet as read: cells by the FORMULA render and as the sheet shows them."""

    title: str
    sheet_id: int  # the gid: stable when the worksheet is renamed
    timezone: str
    rows: list[list[Any]]
    shown: list[list[str]]
    row_count: int
    col_count: int
    handle: Any  # the gspread Worksheet, for writing

    def is_formula(self, row: int, col: int) -> bool:
        """Row and column from 0."""
        raw = _at(self.rows, row, col)
        return isinstance(raw, str) and raw.startswith("=") and _at(self.shown, row, col) != raw


def _at(grid: list[list[Any]], row: int, col: int) -> Any:
    return grid[row][col] if row < len(grid) and col < len(grid[row]) else ""


def _secret_text(source: SheetSource) -> tuple[str, str]:
    """(the credentials' text, where they came from)."""
    if source.token_env:
        value = os.environ.get(source.token_env, "").strip()
        if not value:
            raise MarinadeError(f"environment variable {source.token_env} is not set")
        return value, f"${source.token_env}"
    path = source.credentials or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not path:
        raise MarinadeError(
            "which credentials? give --credentials FILE (a service-account or OAuth JSON "
            "file, mode 600) or --token-env VAR, or set GOOGLE_APPLICATION_CREDENTIALS"
        )
    return read_secret_file(Path(path), "google sheet"), str(path)


def credentials(source: SheetSource) -> tuple[Any, list[str]]:
    """google-auth credentials, and the secret strings to keep out of any message."""
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    text, where = _secret_text(source)
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict):  # a bare access token
        return user_credentials.Credentials(token=text), [text]
    secrets = [
        str(info[key])
        for key in ("private_key", "client_secret", "refresh_token", "token", "access_token")
        if info.get(key)
    ]
    try:
        if info.get("type") == "service_account":
            made = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        elif info.get("type") == "authorized_user" or "refresh_token" in info:
            made = user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
        else:
            raise ValueError("neither a service account nor an authorized user")
    except (ValueError, KeyError) as error:
        raise MarinadeError(
            f"{where}: not Google credentials ({_scrub(str(error), secrets)}); use a "
            "service-account or authorized-user JSON file"
        ) from None
    return made, secrets


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        for piece in (secret, *secret.splitlines()):
            if len(piece.strip()) >= 8:
                text = text.replace(piece.strip(), "[secret]")
    return text


class SheetClient:
    """An open spreadsheet; every failure comes out as one MarinadeError line."""

    def __init__(self, source: SheetSource):
        import gspread
        import requests
        from google.auth.transport.requests import AuthorizedSession, Request

        self.source = source
        auth, self.secrets = credentials(source)
        base = source.api_url.rstrip("/")

        def moved(url: str) -> str:
            if base == API:
                return url
            return url.replace(API, base, 1).replace(TOKEN_API, base, 1)

        class Session(AuthorizedSession):  # type: ignore[misc]
            def request(  # type: ignore[override]
                self, method: str, url: str, *args: Any, **kwargs: Any
            ) -> Any:
                return super().request(method, moved(url), *args, **kwargs)

        class TokenSession(requests.Session):
            def request(  # type: ignore[override]
                self, method: str, url: str, *args: Any, **kwargs: Any
            ) -> Any:
                return super().request(method, moved(url), *args, **kwargs)

        session = Session(auth, auth_request=Request(TokenSession()))
        self.client = gspread.Client(auth=auth, session=session)
        self.client.set_timeout(TIMEOUT)
        self.spreadsheet = self._call(
            "open", lambda: self.client.open_by_key(source.spreadsheet_id)
        )

    def _call(self, doing: str, action: Callable[[], Any]) -> Any:
        import google.auth.exceptions
        import gspread
        import requests

        where = f"Google Sheet {self.source.spreadsheet_id}"
        try:
            return action()
        except gspread.exceptions.SpreadsheetNotFound:
            raise MarinadeError(
                f"{where}: not found (is it shared with the credentials' account?)"
            ) from None
        except gspread.exceptions.WorksheetNotFound:
            raise MarinadeError(f"{where}: no worksheet named {self.source.worksheet!r}") from None
        except PermissionError:
            raise MarinadeError(
                f"{where}: no permission (share it with the credentials' account)"
            ) from None
        except gspread.exceptions.APIError as error:
            status = error.response.status_code
            reason = _scrub(str(error.error.get("message", error)), self.secrets)
            raise MarinadeError(f"{where}: {doing}: HTTP {status}: {reason}") from None
        except (google.auth.exceptions.GoogleAuthError, requests.RequestException) as error:
            reason = _scrub(f"{error.__class__.__name__}: {error}", self.secrets)
            raise MarinadeError(f"{where}: {doing}: {reason}") from None

    def worksheet(self) -> Worksheet:
        from gspread.utils import ValueRenderOption

        name = self.source.worksheet
        sheet = self._call(
            "open the worksheet",
            lambda: self.spreadsheet.worksheet(name) if name else self.spreadsheet.sheet1,
        )
        rows = self._call(
            "read", lambda: sheet.get_values(value_render_option=ValueRenderOption.formula)
        )
        shown = self._call(
            "read", lambda: sheet.get_values(value_render_option=ValueRenderOption.formatted)
        )
        return Worksheet(
            title=sheet.title,
            sheet_id=int(sheet.id),
            timezone=str(self.spreadsheet._properties.get("timeZone") or "UTC"),
            rows=[list(row) for row in rows],
            shown=[[str(cell) for cell in row] for row in shown],
            row_count=int(sheet.row_count),
            col_count=int(sheet.col_count),
            handle=sheet,
        )

    def grow(self, sheet: Worksheet, rows: int, cols: int) -> None:
        """Make the grid at least rows x cols (a write past its edge is refused)."""
        if rows > sheet.row_count or cols > sheet.col_count:
            new_rows, new_cols = max(rows, sheet.row_count), max(cols, sheet.col_count)
            self._call("resize", lambda: sheet.handle.resize(rows=new_rows, cols=new_cols))
            sheet.row_count, sheet.col_count = new_rows, new_cols

    def write(self, sheet: Worksheet, cells: dict[tuple[int, int], Any]) -> None:
        """Write cells ((row, column) from 1 -> value) in one request, as RAW values."""
        from gspread.utils import ValueInputOption, rowcol_to_a1

        if not cells:
            return
        data = [
            {"range": rowcol_to_a1(row, col), "values": [[value]]}
            for (row, col), value in sorted(cells.items())
        ]
        self._call(
            "write",
            lambda: sheet.handle.batch_update(data, value_input_option=ValueInputOption.raw),
        )
