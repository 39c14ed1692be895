"""Keeping the review page to its own machine and its own pages.

The page changes the store, so another web site open in the same browser must not be able
to post to it (cross-site request forgery), and a DNS name that an attacker points at
127.0.0.1 must not reach it either (DNS rebinding). So every request must name a local host
(or one the user allowed) in its Host header, and a POST, PUT, PATCH or DELETE that carries
an Origin or Sec-Fetch-Site header must come from the page's own origin. Scripts such as
curl send neither header and are let through; browsers always send them. The answers also
forbid framing and inline scripts (Content-Security-Policy), a second line behind escaping.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def host_name(host_header: str) -> str:
    """The host in a Host header, without its port: `[::1]:80` -> `::1`."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")].lower()
    return host_header.rsplit(":", 1)[0].lower()


def refusal(scope: Scope, allowed_hosts: tuple[str, ...]) -> str | None:
    """Why a request is refused, or None when it may go on."""
    headers = Headers(scope=scope)
    host = headers.get("host", "")
    if "*" not in allowed_hosts and host_name(host) not in (*LOCAL_HOSTS, *allowed_hosts):
        return f"this page answers only to a local Host header, not {host!r}"
    if scope["method"] in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is not None and origin != f"{scope['scheme']}://{host}":
        return f"a request from another origin ({origin}) may not change anything here"
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"a {site} request may not change anything here"
    return None


class LocalOnly:
    """ASGI middleware: refuses foreign hosts and cross-origin writes, adds security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] = ()):
        self.app = app
        self.allowed_hosts = tuple(host.lower() for host in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reason = refusal(scope, self.allowed_hosts)
        if reason is not None:
            await PlainTextResponse(reason, status_code=403)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
