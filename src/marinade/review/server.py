"""Serving the review app with uvicorn: on a socket bound first (so port 0 can pick a free
port and the URL is known before serving starts), in the foreground or in a thread.

Off the loopback, `served_names` says which Host headers the page answers to (this
machine's addresses and names on the address it listens on) and `urls_of` the links
printed for them, each with the page's token (review/security.py).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from marinade.errors import MarinadeError
from marinade.review.security import LOCAL_HOSTS, is_loopback

WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    except OSError as error:
        raise MarinadeError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    # Accepted connections inherit this. Without it, on a socket handed to uvicorn, each
    # answer waited ~40 ms for the client's delayed ACK (Nagle's algorithm): measured
    # 44 ms for any request here, 1 ms with it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def url_of(sock: socket.socket, host: str, token: str | None = None) -> str:
    """The page's address on `host` (127.0.0.1 for a wildcard), with its token if any."""
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    url = f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"
    return url + (f"?token={token}" if token else "")


def _interface_addresses() -> list[str]:
    """Every IPv4 and IPv6 address of this machine's network interfaces (psutil)."""
    import psutil

    families = (socket.AF_INET, socket.AF_INET6)
    return [
        address.address.split("%")[0]  # fe80::1%eth0: the zone is no part of a Host header
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family in families
    ]


def _machine_names() -> list[str]:
    hostname = socket.gethostname()
    names = [hostname, socket.getfqdn(), f"{hostname.split('.')[0]}.local"]  # .local: mDNS
    return [name.lower() for name in dict.fromkeys(names) if name]


def served_names(host: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The Host header names the page answers to when listening on `host`: the loopback
    names always; a wildcard adds every interface address and this machine's names; a
    given address or name adds itself and this machine's names. `extra`: names the user
    allows too (a reverse proxy's, an alias in /etc/hosts)."""
    names = [*LOCAL_HOSTS, host.lower().strip("[]")]
    if host in WILDCARD_HOSTS:
        names += _interface_addresses()
    if not is_loopback(host):
        names += _machine_names()
    names += [name.lower() for name in extra]
    return tuple(name for name in dict.fromkeys(names) if name not in WILDCARD_HOSTS)


def urls_of(sock: socket.socket, host: str, token: str | None = None) -> list[str]:
    """The links to print: on a wildcard, one per non-loopback interface address (IPv4
    first) after the loopback one; else the one address."""
    if host not in WILDCARD_HOSTS:
        return [url_of(sock, host, token)]
    addresses = [
        address
        for address in _interface_addresses()
        if not is_loopback(address) and not address.startswith("fe80:")  # link-local
    ]
    if host == "0.0.0.0":  # IPv4 only; "::" listens on both where the system maps them
        addresses = [address for address in addresses if ":" not in address]
    addresses.sort(key=lambda address: ":" in address)
    local = "::1" if host == "::" else "127.0.0.1"
    return [url_of(sock, address, token) for address in (local, *addresses)]


def _server(app: FastAPI) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))


def serve(app: FastAPI, sock: socket.socket) -> None:
    """Serve until Ctrl-C."""
    _server(app).run(sockets=[sock])


@contextmanager
def running_server(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve in a background thread for as long as the block runs; yields the URL (without
    a token: the test that serves with one adds it)."""
    sock = listen(host, 0)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the review server did not start")
        time.sleep(0.01)
    try:
        yield url_of(sock, host)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
