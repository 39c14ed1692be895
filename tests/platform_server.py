"""A real HTTP server on 127.0.0.1 that speaks the subset of the Mastodon, Bluesky, X and
Tumblr APIs marinade's adapters use, plus a webhook, and counts what it is asked.

Posts are really "made" (kept in `made`), so tests can check that nothing was posted
twice. Mastodon de-duplicates by Idempotency-Key, as the real server does for an hour.
`answers` queues canned answers (status, body[, headers]) for the next create requests, and
`delay` makes the server create the post and then answer late (a timeout). Tumblr's
posts are checked for a valid OAuth 1.0a HMAC-SHA1 signature made with TUMBLR_KEYS, and
its blogs' public posts are paged by `_links.next` (or by offset, with
`tumblr_links` off).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MASTODON_TOKEN = "good-mastodon-token"
BLUESKY_PASSWORD = "good-app-password"
X_TOKEN = "good-x-token"
TUMBLR_KEYS = {
    "consumer_key": "tumblr-consumer-key",
    "consumer_secret": "tumblr-consumer-secret",
    "oauth_token": "tumblr-oauth-token",
    "oauth_token_secret": "tumblr-token-secret",
}


def _jwt(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


@dataclass
class Made:
    platform: str
    text: str
    remote_id: str
    key: str | None = None
    tags: list[str] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlatformState:
    made: list[Made] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    # (status, body) or (status, body, headers)
    answers: list[tuple[Any, ...]] = field(default_factory=list)
    delay: float = 0.0
    mastodon_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    # public posts of other accounts, for `corpus fetch`: Mastodon statuses by id
    mastodon_statuses: list[dict[str, Any]] = field(default_factory=list)
    bluesky_feed: list[dict[str, Any]] = field(default_factory=list)  # newest first
    tumblr_posts: list[dict[str, Any]] = field(default_factory=list)  # newest first
    tumblr_links: bool = True  # page by _links.next (as Tumblr does); else by offset only
    tumblr_paging: str = "offset"  # "before": only by time (offset ignored), with no links
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 100

    def creates(self, platform: str) -> list[Made]:
        return [made for made in self.made if made.platform == platform]


class Handler(BaseHTTPRequestHandler):
    state: PlatformState  # set on the subclass each server makes

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _canned(self) -> tuple[Any, ...] | None:
        with self.state.lock:
            return self.state.answers.pop(0) if self.state.answers else None

    def _made(self, platform: str, text: str, key: str | None = None, **more: Any) -> str:
        with self.state.lock:
            self.state.next_id += 1
            remote_id = str(self.state.next_id)
            self.state.made.append(Made(platform, text, remote_id, key, **more))
        return remote_id

    def _tumblr_signed(self) -> bool:
        """Whether the request carries TUMBLR_KEYS' OAuth 1.0a HMAC-SHA1 signature."""
        from oauthlib.oauth1.rfc5849 import signature

        headers = {"Authorization": self.headers.get("Authorization", "")}
        url = urllib.parse.urlsplit(self.path)
        try:
            given = dict(
                signature.collect_parameters(headers=headers, exclude_oauth_signature=False)
            )
            params = signature.collect_parameters(uri_query=url.query, headers=headers)
        except ValueError:
            return False
        if given.get("oauth_consumer_key") != TUMBLR_KEYS["consumer_key"]:
            return False
        if given.get("oauth_token") != TUMBLR_KEYS["oauth_token"]:
            return False
        uri = signature.base_string_uri(f"http://{self.headers['Host']}{url.path}")
        base = signature.signature_base_string(
            self.command, uri, signature.normalize_parameters(params)
        )
        expected = signature.sign_hmac_sha1(
            base, TUMBLR_KEYS["consumer_secret"], TUMBLR_KEYS["oauth_token_secret"]
        )
        return given.get("oauth_signature") == expected

    def _tumblr_post(self, raw: bytes) -> None:
        if not self._tumblr_signed():
            meta = {"status": 401, "msg": "Unauthorized"}
            return self._send(401, {"meta": meta, "response": [], "errors": [
                {"title": "Unauthorized", "code": 0, "detail": "oauth_signature does not match"}
            ]})  # fmt: skip
        canned = self._canned()
        if canned:
            return self._send(*canned)
        body = json.loads(raw)
        lines = [block["text"] for block in body["content"] if block["type"] == "text"]
        tags = [tag for tag in body.get("tags", "").split(",") if tag]
        remote_id = self._made("tumblr", "\n".join(lines), tags=tags, body=body)
        time.sleep(self.state.delay)
        response = {"id": f"7{remote_id:0>15}", "state": "published"}
        self._send(201, {"meta": {"status": 201, "msg": "Created"}, "response": response})

    def _tumblr_blog_posts(self, blog: str, query: dict[str, str]) -> None:
        if query.get("api_key") != TUMBLR_KEYS["consumer_key"]:
            meta = {"status": 401, "msg": "Unauthorized"}
            return self._send(401, {"meta": meta, "response": []})
        if blog not in ("staff", "staff.tumblr.com", "bot"):
            return self._send(404, {"meta": {"status": 404, "msg": "Not Found"}, "response": []})
        rows = self.state.tumblr_posts
        if query.get("type"):
            rows = [p for p in rows if p.get("original_type", p.get("type")) == query["type"]]
        if self.state.tumblr_paging == "before":  # ignores offset, as a time-paged API would
            before = int(query.get("before") or 10**12)
            rows = sorted(
                (p for p in rows if p["timestamp"] < before), key=lambda p: -p["timestamp"]
            )
            start = 0
        elif "page_number" in query:
            start = int(base64.urlsafe_b64decode(query["page_number"]).decode())
        else:
            start = int(query.get("offset") or 0)
        limit = min(int(query.get("limit") or 20), 20)
        page = rows[start : start + limit]
        answer: dict[str, Any] = {"blog": {"name": "staff"}, "posts": page}
        answer["total_posts"] = len(rows)
        if self.state.tumblr_links and start + limit < len(rows):
            token = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            params = {"npf": "true", "page_number": token, "limit": str(limit)}
            answer["_links"] = {"next": {"href": f"/v2/blog/{blog}/posts?page_number={token}",
                                         "method": "GET", "query_params": params}}  # fmt: skip
        self._send(200, {"meta": {"status": 200, "msg": "OK"}, "response": answer})

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        with self.state.lock:
            self.state.requests.append(("GET", url.path))
        if url.path == "/api/v1/accounts/lookup":
            return self._send(200, _mastodon_account(query["acct"]))
        if url.path.startswith("/api/v1/accounts/") and url.path.endswith("/statuses"):
            since = int(query.get("since_id") or 0)
            below = int(query.get("max_id") or 10**18)
            limit = int(query.get("limit") or 20)
            rows = [s for s in self.state.mastodon_statuses if since < int(s["id"]) < below]
            rows.sort(key=lambda s: -int(s["id"]))
            return self._send(200, rows[:limit])
        parts = url.path.split("/")
        if len(parts) == 5 and parts[1:3] == ["v2", "blog"] and parts[4] == "posts":
            return self._tumblr_blog_posts(urllib.parse.unquote(parts[3]), query)
        if url.path == "/xrpc/app.bsky.actor.getProfile":
            return self._send(200, {"did": "did:plc:me", "handle": query["actor"]})
        if url.path == "/xrpc/app.bsky.feed.getAuthorFeed":
            start = int(query.get("cursor") or 0)
            limit = int(query.get("limit") or 50)
            page = self.state.bluesky_feed[start : start + limit]
            body: dict[str, Any] = {"feed": page}
            if start + limit < len(self.state.bluesky_feed):
                body["cursor"] = str(start + limit)
            return self._send(200, body)
        self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        path = urllib.parse.urlsplit(self.path).path
        raw = self._body()
        with self.state.lock:
            self.state.requests.append(("POST", path))
        auth = self.headers.get("Authorization", "")
        if path == "/api/v1/statuses":
            return self._mastodon_post(raw, auth)
        if path.startswith("/v2/blog/") and path.endswith("/posts"):
            return self._tumblr_post(raw)
        if path == "/xrpc/com.atproto.server.createSession":
            body = json.loads(raw)
            if body.get("password") != BLUESKY_PASSWORD:
                return self._send(
                    401, {"error": "AuthenticationRequired", "message": "Invalid password"}
                )
            exp = int(time.time()) + 3600
            token = _jwt({"sub": "did:plc:me", "exp": exp, "scope": "com.atproto.access"})
            return self._send(
                200,
                {
                    "did": "did:plc:me",
                    "handle": body["identifier"],
                    "accessJwt": token,
                    "refreshJwt": _jwt({"sub": "did:plc:me", "exp": exp + 3600}),
                    "active": True,
                },
            )
        if path == "/xrpc/com.atproto.repo.createRecord":
            canned = self._canned()
            if canned:
                return self._send(*canned)
            record = json.loads(raw)["record"]
            remote_id = self._made("bluesky", record["text"])
            time.sleep(self.state.delay)
            uri = f"at://did:plc:me/app.bsky.feed.post/3k{remote_id}"
            cid = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
            return self._send(200, {"uri": uri, "cid": cid})
        if path == "/2/tweets":
            if auth != f"Bearer {X_TOKEN}":
                return self._send(401, {"title": "Unauthorized", "status": 401})
            canned = self._canned()
            if canned:
                return self._send(*canned)
            text = json.loads(raw)["text"]
            remote_id = self._made("x", text)
            time.sleep(self.state.delay)
            return self._send(201, {"data": {"id": remote_id, "text": text}})
        if path == "/hook":
            canned = self._canned()
            if canned:
                return self._send(*canned)
            body = json.loads(raw)
            remote_id = self._made("webhook", body["text"], body.get("idempotency_key"))
            time.sleep(self.state.delay)
            return self._send(200, {"id": remote_id})
        self._send(404, {"error": "not found"})

    def _mastodon_post(self, raw: bytes, auth: str) -> None:
        if auth != f"Bearer {MASTODON_TOKEN}":
            return self._send(401, {"error": "The access token is invalid"})
        canned = self._canned()
        if canned:
            return self._send(*canned)
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        key = self.headers.get("Idempotency-Key")
        with self.state.lock:
            earlier = self.state.mastodon_keys.get(key) if key else None
        if earlier is not None:
            return self._send(200, earlier)
        if len(form["status"]) > 500:
            return self._send(422, {"error": "Validation failed: Text character limit of 500"})
        remote_id = self._made("mastodon", form["status"], key)
        status = {
            "id": remote_id,
            "url": f"https://mastodon.example/@bot/{remote_id}",
            "uri": f"https://mastodon.example/users/bot/statuses/{remote_id}",
            "content": f"<p>{form['status']}</p>",
            "created_at": "2026-11-22T09:00:00.000Z",
            "visibility": form.get("visibility", "public"),
            "account": _mastodon_account("bot"),
        }
        if key:
            with self.state.lock:
                self.state.mastodon_keys[key] = status
        time.sleep(self.state.delay)
        self._send(200, status)


def _mastodon_account(acct: str) -> dict[str, Any]:
    return {
        "id": "7",
        "username": acct.lstrip("@").split("@")[0],
        "acct": acct.lstrip("@"),
        "display_name": acct,
        "url": f"https://mastodon.example/@{acct}",
        "created_at": "2020-01-01T00:00:00.000Z",
    }


class PlatformServer:
    """`with PlatformServer() as server:` serves on server.url until the block ends."""

    def __init__(self) -> None:
        self.state = PlatformState()
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> PlatformServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
