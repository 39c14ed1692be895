"""A real HTTP server on 127.0.0.1 speaking the part of Google's OAuth token endpoint and
the Sheets API v4 that gspread uses for `queue sync`: spreadsheet metadata, values get
(FORMULA and FORMATTED_VALUE renders), values:batchUpdate (RAW or USER_ENTERED, all
cells or none, refused past the grid's edge as Sheets does) and the resize request.

The token endpoint checks a service account's signed JWT (against the public half of
the key the test made) or an authorized user's refresh token, and hands out
ACCESS_TOKEN, which every Sheets request must carry. `fail_writes` makes the next value
writes fail with a 500, changing nothing; `die_on_write` drops the connection instead.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCESS_TOKEN = "ya29.a-sheets-access-token"
REFRESH_TOKEN = "1//a-refresh-token-for-sheets"
CLIENT_SECRET = "GOCSPX-a-client-secret"


@dataclass
class Cell:
    value: Any  # str, int, float or bool; a formula's text when formula is set
    formula: bool = False
    shown: str | None = None  # what a formula shows (FORMATTED_VALUE)

    def formatted(self) -> str:
        if self.formula:
            return self.shown if self.shown is not None else "#ERROR!"
        if isinstance(self.value, bool):
            return "TRUE" if self.value else "FALSE"
        if isinstance(self.value, float) and self.value.is_integer():
            return str(int(self.value))
        return str(self.value)


@dataclass
class Grid:
    title: str
    sheet_id: int
    rows: int = 1000
    cols: int = 26
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)  # (row, col) from 0

    def put(self, rows: list[list[Any]]) -> None:
        """Fill from row 1 as a person typing would: numbers stay numbers."""
        self.cells.clear()
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value not in ("", None):
                    self.cells[(r, c)] = Cell(value)

    def formula(self, row: int, col: int, text: str, shown: str) -> None:
        self.cells[(row, col)] = Cell(text, formula=True, shown=shown)

    def values(self, render: str = "FORMATTED_VALUE") -> list[list[Any]]:
        """As the API answers: trailing empty cells and rows left out."""
        if not self.cells:
            return []
        height = max(r for r, _ in self.cells) + 1
        out: list[list[Any]] = []
        for r in range(height):
            width = max((c + 1 for rr, c in self.cells if rr == r), default=0)
            row = []
            for c in range(width):
                cell = self.cells.get((r, c))
                if cell is None:
                    row.append("")
                elif render == "FORMULA":
                    row.append(cell.value)
                else:
                    row.append(cell.formatted())
            out.append(row)
        return out

    def table(self) -> list[list[str]]:
        """Every row as the sheet shows it, padded: what a test compares."""
        shown = self.values()
        width = max((len(row) for row in shown), default=0)
        return [row + [""] * (width - len(row)) for row in shown]


@dataclass
class SheetsState:
    spreadsheet_id: str = "1aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
    timezone: str = "Europe/Paris"
    grids: list[Grid] = field(default_factory=lambda: [Grid("Queue", 0)])
    public_key: Any = None  # the service account's key, to check its JWTs
    requests: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # what writes sent
    tokens_issued: int = 0
    fail_writes: int = 0
    die_on_write: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def grid(self, title: str = "Queue") -> Grid:
        return next(grid for grid in self.grids if grid.title == title)


A1 = re.compile(r"^([A-Z]+)([0-9]+)(?::([A-Z]+)([0-9]+))?$")


def column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number


def split_range(text: str) -> tuple[str, str | None]:
    """ "'Queue'!B3" -> ("Queue", "B3"); "Queue" -> ("Queue", None)."""
    sheet, _, cells = text.rpartition("!") if "!" in text else (text, "", "")
    sheet = sheet.strip("'").replace("''", "'")
    return sheet, cells or None


class Handler(BaseHTTPRequestHandler):
    state: SheetsState

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"code": status, "message": message, "status": "ERR"}})

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}"

    def _metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.state.spreadsheet_id,
            "properties": {
                "title": "bot queue",
                "locale": "en_US",
                "timeZone": self.state.timezone,
            },
            "sheets": [
                {
                    "properties": {
                        "sheetId": grid.sheet_id,
                        "title": grid.title,
                        "index": index,
                        "sheetType": "GRID",
                        "gridProperties": {"rowCount": grid.rows, "columnCount": grid.cols},
                    }
                }
                for index, grid in enumerate(self.state.grids)
            ],
        }

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        with self.state.lock:
            self.state.requests.append(("GET", url.path))
        if not self._authorized():
            return self._error(401, "Request had invalid authentication credentials.")
        prefix = f"/v4/spreadsheets/{self.state.spreadsheet_id}"
        path = urllib.parse.unquote(url.path)
        if not path.startswith(prefix):
            return self._error(404, "Requested entity was not found.")
        if path == prefix:
            return self._send(200, self._metadata())
        if path.startswith(prefix + "/values/"):
            title, cells = split_range(path[len(prefix + "/values/") :])
            grid = next((g for g in self.state.grids if g.title == title), None)
            if grid is None or cells is not None:
                return self._error(400, f"Unable to parse range: {title}")
            render = query.get("valueRenderOption", "FORMATTED_VALUE")
            values = grid.values(render)
            body: dict[str, Any] = {"range": f"'{title}'!A1:Z1000", "majorDimension": "ROWS"}
            if values:
                body["values"] = values
            return self._send(200, body)
        self._error(404, "not found")

    def do_POST(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.state.lock:
            self.state.requests.append(("POST", url.path))
        if url.path == "/token":
            return self._token(dict(urllib.parse.parse_qsl(raw.decode())))
        if not self._authorized():
            return self._error(401, "Request had invalid authentication credentials.")
        prefix = f"/v4/spreadsheets/{self.state.spreadsheet_id}"
        body = json.loads(raw or b"{}")
        if url.path == prefix + "/values:batchUpdate":
            return self._write(body)
        if url.path == prefix + ":batchUpdate":
            for request in body.get("requests", []):
                properties = request["updateSheetProperties"]["properties"]
                grid = next(g for g in self.state.grids if g.sheet_id == properties["sheetId"])
                sizes = properties["gridProperties"]
                grid.rows = sizes.get("rowCount", grid.rows)
                grid.cols = sizes.get("columnCount", grid.cols)
            return self._send(200, {"spreadsheetId": self.state.spreadsheet_id, "replies": [{}]})
        self._error(404, "not found")

    def _write(self, body: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.bodies.append(body)
            if self.state.die_on_write:
                self.connection.close()  # the answer never comes; nothing was written
                return
            if self.state.fail_writes:
                self.state.fail_writes -= 1
                return self._error(500, "Internal error encountered.")
        user_entered = body.get("valueInputOption") == "USER_ENTERED"
        changes: list[tuple[Grid, int, int, Cell | None]] = []
        for data in body.get("data", []):
            title, cells = split_range(data["range"])
            grid = next((g for g in self.state.grids if g.title == title), None)
            match = A1.match(cells or "")
            if grid is None or match is None:
                return self._error(400, f"Unable to parse range: {data['range']}")
            top, left = int(match[2]) - 1, column_number(match[1]) - 1
            for r, row in enumerate(data["values"]):
                for c, value in enumerate(row):
                    if top + r >= grid.rows or left + c >= grid.cols:
                        return self._error(
                            400, f"Range ('{title}'!{cells}) exceeds grid limits."
                        )  # nothing is written
                    formula = user_entered and isinstance(value, str) and value.startswith("=")
                    if user_entered and isinstance(value, str) and value.startswith("'"):
                        value = value[1:]
                    cell = None if value in ("", None) else Cell(value, formula=formula)
                    changes.append((grid, top + r, left + c, cell))
        with self.state.lock:
            for grid, r, c, cell in changes:
                if cell is None:
                    grid.cells.pop((r, c), None)
                else:
                    grid.cells[(r, c)] = cell
        self._send(
            200, {"spreadsheetId": self.state.spreadsheet_id, "totalUpdatedCells": len(changes)}
        )

    def _token(self, form: dict[str, str]) -> None:
        grant = form.get("grant_type", "")
        if grant == "refresh_token":
            ok = (
                form.get("refresh_token") == REFRESH_TOKEN
                and form.get("client_secret") == CLIENT_SECRET
            )
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            ok = self._jwt_signed(form.get("assertion", ""))
        else:
            ok = False
        if not ok:
            return self._send(400, {"error": "invalid_grant", "error_description": "Bad grant"})
        with self.state.lock:
            self.state.tokens_issued += 1
        self._send(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})

    def _jwt_signed(self, assertion: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, payload, signature = assertion.split(".")
            signed = f"{head}.{payload}".encode()
            raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
            self.state.public_key.verify(raw, signed, padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature, AttributeError):
            return False
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return "spreadsheets" in claims.get("scope", "")


class SheetsServer:
    """`with SheetsServer() as server:` serves on server.url until the block ends."""

    def __init__(self) -> None:
        self.state = SheetsState()
        handler = type("BoundSheetsHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> SheetsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def service_account_file(self, folder: Any) -> Any:
        """A service-account key file (mode 600) whose token_uri is this server."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.state.public_key = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "marinade-test",
            "private_key_id": "key-1",
            "private_key": pem,
            "client_email": "queue-bot@marinade-test.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": f"{self.url}/token",
        }
        path = folder / "service-account.json"
        path.write_text(json.dumps(info))
        path.chmod(0o600)
        return path

    def authorized_user_info(self) -> dict[str, str]:
        return {
            "type": "authorized_user",
            "client_id": "1234.apps.googleusercontent.com",
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "token_uri": f"{self.url}/token",
        }
