"""The review page off the loopback: a real server on 0.0.0.0, reached from this machine's
network address (so the peer is not 127.0.0.1), with forged Host, Origin and bodies."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from marinade.review.app import create_app
from marinade.review.security import MAX_BODY
from marinade.review.server import _interface_addresses, running_server, served_names
from review_helpers import add_grid

TOKEN = "t0ken-for-this-test-only_0123456789abcdefABCDEF"
LAN = next((a for a in _interface_addresses() if ":" not in a and not a.startswith("127.")), None)
needs_lan = pytest.mark.skipif(LAN is None, reason="this machine has no non-loopback IPv4")


def request(address, port, method, path, body=None, headers=None):
    """One request to address:port; returns (status, headers, text)."""
    connection = http.client.HTTPConnection(address, port, timeout=30)
    payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    connection.request(method, path, body=payload, headers=headers or {})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, response, text


@pytest.fixture
def lan_server(store):
    """The review app on 0.0.0.0 with a token, as `marinade review --host 0.0.0.0` serves it;
    yields (port, cookie header)."""
    app = create_app(store.path, "grid", allowed_hosts=served_names("0.0.0.0"), token=TOKEN)
    with running_server(app, host="0.0.0.0") as url:
        port = urlsplit(url).port
        yield port, {"Cookie": f"marinade-review-{port}={TOKEN}"}


def page_state(html):
    session = re.search(r'data-session="([^"]+)"', html).group(1)
    return session, int(re.search(r'data-sample-id="(\d+)"', html).group(1))


@needs_lan
def test_off_the_loopback_every_request_needs_the_token(store, lan_server):
    add_grid(store, seeds=1)
    port, cookie = lan_server
    host = {"Host": f"{LAN}:{port}"}
    for path in ("/", "/queue?format=json", "/static/review.js", "/report"):
        status, _, text = request(LAN, port, "GET", path, headers=host)
        assert status == 401 and "token" in text, path
    assert request(LAN, port, "GET", "/?token=wrong", headers=host)[0] == 401
    bearer = {**host, "Authorization": "Bearer wrong"}
    assert request(LAN, port, "GET", "/", headers=bearer)[0] == 401
    # the printed link trades its token for a cookie and drops it from the address
    status, response, _ = request(LAN, port, "GET", f"/?token={TOKEN}&format=json", headers=host)
    assert status == 303 and response.getheader("Location") == "/?format=json"
    set_cookie = response.getheader("Set-Cookie")
    assert f"marinade-review-{port}={TOKEN}" in set_cookie
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie.replace("Strict", "strict")
    assert request(LAN, port, "GET", "/", headers={**host, **cookie})[0] == 200
    assert (
        request(LAN, port, "GET", "/", headers={**host, "Authorization": f"Bearer {TOKEN}"})[0]
        == 200
    )
    # the loopback address of the same server asks for it too
    assert request("127.0.0.1", port, "GET", "/")[0] == 401


@needs_lan
def test_off_the_loopback_a_rebound_or_forged_host_is_refused(store, lan_server):
    add_grid(store, seeds=1)
    port, cookie = lan_server
    for forged in ("evil.example", f"evil.example:{port}", "192.0.2.250", "localhost.evil"):
        status, _, text = request(LAN, port, "GET", "/", headers={"Host": forged, **cookie})
        assert status == 403 and "Host" in text, forged
    for served in (f"{LAN}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"):
        assert request(LAN, port, "GET", "/", headers={"Host": served, **cookie})[0] == 200


@needs_lan
def test_off_the_loopback_a_change_needs_the_page_origin(store, lan_server):
    add_grid(store, seeds=1)
    port, cookie = lan_server
    host = {"Host": f"{LAN}:{port}", **cookie, "Content-Type": "application/json"}
    _, _, html = request(LAN, port, "GET", "/", headers=host)
    session, sample_id = page_state(html)
    body = {"session": session, "action": "accept", "sample_id": sample_id}
    # from another machine, a POST without an Origin header is a forged one
    status, _, text = request(LAN, port, "POST", "/rate", body, host)
    assert status == 403 and "Origin" in text and store.rating(sample_id) is None
    for origin in ("http://evil.example", "null", f"http://localhost:{port}"):
        status, _, _ = request(LAN, port, "POST", "/rate", body, {**host, "Origin": origin})
        assert status == 403 and store.rating(sample_id) is None, origin
    # and without the cookie, even from the right origin
    no_cookie = {"Host": f"{LAN}:{port}", "Origin": f"http://{LAN}:{port}"}
    assert request(LAN, port, "POST", "/rate", body, no_cookie)[0] == 401
    own = {**host, "Origin": f"http://{LAN}:{port}", "Sec-Fetch-Site": "same-origin"}
    status, _, _ = request(LAN, port, "POST", "/rate", body, own)
    assert status == 200 and store.rating(sample_id)["rating"] == "accept"


@needs_lan
def test_request_bodies_over_the_limit_are_refused(store, lan_server):
    add_grid(store, seeds=1)
    port, cookie = lan_server
    headers = {
        "Host": f"{LAN}:{port}",
        **cookie,
        "Origin": f"http://{LAN}:{port}",
        "Content-Type": "application/json",
    }
    _, _, html = request(LAN, port, "GET", "/", headers=headers)
    session, sample_id = page_state(html)
    edit = "x" * (MAX_BODY + 1)
    body = {"session": session, "action": "accept", "sample_id": sample_id, "edited_text": edit}
    status, _, text = request(LAN, port, "POST", "/rate", body, headers)
    assert status == 413 and "KiB" in text and store.rating(sample_id) is None
    # sent in chunks, with no length said up front: counted as it comes
    connection = http.client.HTTPConnection(LAN, port, timeout=30)
    chunks = (json.dumps(body).encode()[i : i + 8192] for i in range(0, MAX_BODY + 9000, 8192))
    connection.request("POST", "/rate", body=chunks, headers=headers, encode_chunked=True)
    assert connection.getresponse().status == 413 and store.rating(sample_id) is None
    connection.close()
    body["edited_text"] = "a short edit"
    assert request(LAN, port, "POST", "/rate", body, headers)[0] == 200
    assert store.rating(sample_id)["edited_text"] == "a short edit"


def test_the_loopback_page_limits_bodies_and_needs_no_token(store):
    add_grid(store, seeds=1)
    with running_server(create_app(store.path, "grid")) as url:
        port = urlsplit(url).port
        assert request("127.0.0.1", port, "GET", "/")[0] == 200
        big = b'{"session": "s", "action": "skip", "sample_id": 1, "x": "' + b"y" * MAX_BODY + b'"}'
        headers = {"Content-Type": "application/json"}
        assert request("127.0.0.1", port, "POST", "/rate", big, headers)[0] == 413


@needs_lan
def test_review_with_host_warns_and_prints_links_with_a_token(store, home_dir):
    add_grid(store, seeds=1, text="a sample")
    command = [sys.executable, "-m", "marinade", "--home", str(home_dir), "review"]
    command += ["--host", "0.0.0.0", "--port", "0", "--no-open"]
    environment = {**os.environ, "BROWSER": "false"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    ) as process:
        try:
            warning = process.stderr.readline()
            assert warning.startswith("Warning: the review page is open to the network")
            links = [process.stdout.readline().strip() for _ in range(2)]
            assert links[0].startswith("http://127.0.0.1:")
            lan = next(link for link in links if urlsplit(link).hostname == LAN)
            parts = urlsplit(lan)
            token = parts.query.removeprefix("token=")
            assert len(token) >= 40 and token not in warning
            status, response, _ = request(LAN, parts.port, "GET", f"/?{parts.query}")
            assert status == 303
            cookie = response.getheader("Set-Cookie").split(";")[0]
            status, _, html = request(LAN, parts.port, "GET", "/", headers={"Cookie": cookie})
            assert status == 200 and "a sample" in html
            assert request(LAN, parts.port, "GET", "/")[0] == 401
        finally:
            process.terminate()
            process.wait(timeout=10)
