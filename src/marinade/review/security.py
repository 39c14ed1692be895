"""Keeping the review page to the people it is meant for and to its own pages.

The page changes the store (ratings, the posting queue), so:

- **Host.** Every request must name, in its Host header, a name the page is served on:
  127.0.0.1, localhost or ::1, and off the loopback this machine's addresses and names
  (server.served_names). A DNS name that an attacker points at this machine (DNS
  rebinding) is refused, so a page on another site cannot reach this one through it.
- **Token, off the loopback.** Served on another address, the page needs a secret: a
  random token printed once in the URL (`?token=...`). The first request with it gets it
  back as an HttpOnly, SameSite=Strict cookie and is sent on to the same address without
  it; every later request must carry the cookie (or `Authorization: Bearer TOKEN`, for a
  script). Anything else is refused with 401. On the loopback there is no token: only
  this machine reaches the page, and the Host and Origin checks keep other sites out.
- **Origin.** A POST, PUT, PATCH or DELETE that carries an Origin or Sec-Fetch-Site
  header must come from the page's own origin. Scripts such as curl send neither and are
  let through from this machine; from another machine a change without an Origin header
  is refused, since every browser sends one and only a forged request lacks it.
- **Size.** A request body over MAX_BODY bytes is refused with 413 before the app reads
  it (no form of the page sends more than a few KiB).

The answers also forbid framing and inline scripts (Content-Security-Policy), a second
line behind escaping.
"""

from __future__ import annotations

import ipaddress
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MAX_BODY = 64 * 1024  # bytes; a rating, an edit or a story step is a few KiB at most
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def new_token() -> str:
    """A secret for the page's URL: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses only this machine reaches."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The host in a Host header, without its port: `[::1]:80` -> `::1`."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")].lower()
    return host_header.rsplit(":", 1)[0].lower()


def cookie_name(scope: Scope) -> str:
    """The token's cookie, named for the port: browsers share cookies across the ports of
    one host, and two review pages must not overwrite each other's."""
    server = scope.get("server")
    return f"marinade-review-{server[1] if server else 0}"


def _client_is_local(scope: Scope) -> bool:
    client = scope.get("client")
    return client is not None and is_loopback(str(client[0]))


def refusal(scope: Scope, served_hosts: tuple[str, ...]) -> str | None:
    """Why a request is refused (403), or None when it may go on."""
    headers = Headers(scope=scope)
    host = headers.get("host", "")
    if host_name(host) not in (*LOCAL_HOSTS, *served_hosts):
        return (
            f"this page answers only to a local Host header or a name it is served on, not {host!r}"
        )
    if scope["method"] in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is not None and origin != f"{scope['scheme']}://{host}":
        return f"a request from another origin ({origin}) may not change anything here"
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"a {site} request may not change anything here"
    if origin is None and not _client_is_local(scope):
        return "a change from another machine must come from the page (no Origin header)"
    return None


def _token_given(scope: Scope, token: str) -> bool:
    """The request carries the token in its cookie or an Authorization header."""
    headers = Headers(scope=scope)
    given = ""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    else:
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header carries no token
            return False
        morsel = cookie.get(cookie_name(scope))
        given = morsel.value if morsel is not None else ""
    return bool(given) and secrets.compare_digest(given.encode(), token.encode())


def _token_answer(scope: Scope, token: str) -> Response | None:
    """The answer that stops a request for want of the token (or that trades the URL's
    token for the cookie); None when the request carries it."""
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    from_url = [value for key, value in query if key == "token"]
    if from_url and scope["method"] in SAFE_METHODS:
        if not secrets.compare_digest(from_url[-1].encode(), token.encode()):
            return PlainTextResponse("this link's token is wrong", status_code=401)
        rest = urlencode([(key, value) for key, value in query if key != "token"])
        answer = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
        answer.set_cookie(cookie_name(scope), token, httponly=True, samesite="strict", path="/")
        return answer
    if _token_given(scope, token):
        return None
    return PlainTextResponse(
        "this page needs the link `marinade review` printed, with its token",
        status_code=401,
    )


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is longer than `limit`."""
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""  # the client left: the app finds an empty body, and stores nothing
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return body


class PageGuard:
    """ASGI middleware: the Host, token, Origin and size checks above, and the security
    headers on every answer. `token` None: no token (the loopback)."""

    def __init__(
        self,
        app: ASGIApp,
        served_hosts: tuple[str, ...] = (),
        token: str | None = None,
        max_body: int = MAX_BODY,
    ):
        self.app = app
        self.served_hosts = tuple(host.lower().strip("[]") for host in served_hosts)
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        reason = refusal(scope, self.served_hosts)
        if reason is not None:
            await PlainTextResponse(reason, status_code=403)(scope, receive, send_with_headers)
            return
        if self.token is not None:
            answer = _token_answer(scope, self.token)
            if answer is not None:
                await answer(scope, receive, send_with_headers)
                return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send_with_headers)
            return
        too_big = PlainTextResponse(
            f"the request body is over {self.max_body // 1024} KiB", status_code=413
        )
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await too_big(scope, receive, send_with_headers)
            return
        body = await _read_body(receive, self.max_body)
        if body is None:
            await too_big(scope, receive, send_with_headers)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_headers)
