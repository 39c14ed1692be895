"""Serving the review app with uvicorn: on a socket bound first (so port 0 can pick a free
port and the URL is known before serving starts), in the foreground or in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from marinade.errors import MarinadeError

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


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in WILDCARD_HOSTS else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _server(app: FastAPI) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))


def serve(app: FastAPI, sock: socket.socket) -> None:
    """Serve until Ctrl-C."""
    _server(app).run(sockets=[sock])


@contextmanager
def running_server(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve in a background thread for as long as the block runs; yields the URL."""
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
