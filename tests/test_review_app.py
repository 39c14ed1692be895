"""The review app over real HTTP on 127.0.0.1: blindness, escaping, origin and host checks."""

from __future__ import annotations

import http.client
import json
import re

import pytest

from marinade.curation.report import wilson_interval
from marinade.curation.spec import parse_experiment
from marinade.review.app import create_app
from marinade.review.server import running_server
from review_helpers import add_check, add_grid, http_requests


@pytest.fixture
def server(store):
    """A review server for experiment "grid"; yields a request(method, path, ...) function."""
    with running_server(create_app(store.path, "grid")) as url:
        yield http_requests(url)


def page_state(html):
    session = re.search(r'data-session="([^"]+)"', html).group(1)
    sample_id = int(re.search(r'data-sample-id="(\d+)"', html).group(1))
    return session, sample_id


def test_the_page_is_blind_to_cell_model_and_settings(store, server):
    add_grid(
        store,
        recipes=("secret-recipe-one", "secret-recipe-two"),
        temperatures=(1.37, 0.43),
        text="a sample",
    )
    response, html = server("GET", "/")
    assert response.status == 200
    session, sample_id = page_state(html)
    shown = store.get_sample(sample_id)
    for secret in (shown["recipe"], shown["model"], str(shown["temperature"]), "secret-recipe"):
        assert secret not in html
    # the same after a rating, in the part the page swaps in, and in its JSON
    for accept in ("text/html", "application/json"):
        body = {"session": session, "action": "skip", "sample_id": sample_id}
        response, answer = server("POST", "/rate", body, {"Accept": accept})
        assert response.status == 200
        for secret in ("secret-recipe", "run-secret", "1.37", "0.43"):
            assert secret not in answer


def test_sample_and_document_html_is_escaped(store, server):
    script = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    (sample,) = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=1, text=script)
    add_check(store, sample["id"], "closest <b onmouseover=alert(1)>doc</b>", ["copied", "<i>"])
    response, html = server("GET", "/")
    assert "<script>window" not in html and "<img src=x" not in html and "<b onmouse" not in html
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;&lt;img src=x onerror=" in html
    assert "closest &lt;b onmouseover=alert(1)&gt;doc&lt;/b&gt;" in html
    assert "&lt;i&gt;" in html
    # a second line of defence: no inline scripts, no framing
    policy = response.getheader("Content-Security-Policy")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_cross_origin_posts_are_refused(store, server):
    add_grid(store, seeds=1)
    _, html = server("GET", "/")
    session, sample_id = page_state(html)
    body = {"session": session, "action": "accept", "sample_id": sample_id}
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:1"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        response, text = server("POST", "/rate", body, headers)
        assert response.status == 403, headers
        assert store.rating(sample_id) is None
    own = {"Origin": f"http://{server.netloc}", "Sec-Fetch-Site": "same-origin"}
    response, _ = server("POST", "/rate", body, own)
    assert response.status == 200 and store.rating(sample_id)["rating"] == "accept"


def test_foreign_host_headers_are_refused(store, server):
    add_grid(store, seeds=1)
    response, text = server("GET", "/", headers={"Host": "evil.example"})
    assert response.status == 403 and "local Host" in text
    response, _ = server("GET", "/", headers={"Host": "localhost:80"})
    assert response.status == 200


def test_bad_requests_are_one_line_errors(store, server):
    add_grid(store, seeds=1)
    response, text = server("POST", "/rate", {"session": "s", "action": "accept", "sample_id": 999})
    assert response.status == 400 and "no sample with id 999" in text
    response, text = server("POST", "/rate", {"session": "s", "action": "accept"})
    assert response.status == 400 and "needs a sample_id" in text
    response, text = server("POST", "/rate", {"session": "s", "action": "fly", "sample_id": 1})
    assert response.status == 422


def test_report_shows_rates_intervals_and_a_heatmap(store, server):
    rows = add_grid(store, recipes=("a", "b"), temperatures=(0.7,), seeds=2)
    spec = parse_experiment(
        {"name": "grid", "recipes": [{"name": "a"}, {"name": "b"}], "temperatures": [0.7]}, "t"
    )
    store.save_experiment(
        {"name": "grid", "spec": json.dumps(spec.to_dict()), "status": "finished"}
    )
    store.rate_sample(rows[0]["id"], "accept", now="t")
    store.rate_sample(rows[1]["id"], "reject", now="t")
    store.rate_sample(rows[2]["id"], "accept", now="t")
    response, text = server("GET", "/report?format=json")
    [report] = json.loads(text)["experiments"]
    cells = {cell["recipe"]: cell for cell in report["cells"]}
    assert (cells["a"]["rated"], cells["a"]["accepted"], cells["a"]["rate"]) == (2, 1, 0.5)
    assert (cells["a"]["ci_low"], cells["a"]["ci_high"]) == pytest.approx(wilson_interval(1, 2))
    assert (cells["b"]["samples"], cells["b"]["rated"]) == (2, 1)
    assert report["best"]["recipe"] == "b"  # 1 of 1 has the higher low end
    response, html = server("GET", "/report")
    assert "Best cell: b at temperature 0.7" in html
    assert "21%-100%" in html  # b's interval
    host, port = server.netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", "/report/grid.png")
    image = connection.getresponse()
    assert image.status == 200 and image.read()[:4] == b"\x89PNG"
    connection.close()
    response, _ = server("GET", "/report/other.png")
    assert response.status == 404


def test_an_empty_store_says_there_is_nothing_to_rate(store, server):
    response, html = server("GET", "/")
    assert response.status == 200
    assert "No samples yet" in html and "Every sample here is rated" not in html


def test_skip_tags_leave_tagged_samples_out_of_the_queue_only(store):
    empty, copied, plain = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=3)
    add_check(store, empty["id"], "a training document", ["empty"])
    store.save_sample_checks(
        [
            {
                "sample_id": sample["id"],
                "copied_words": 9,
                "closest_document_id": None,
                "tags": tags,
            }
            for sample, tags in ((copied, '["short", "copied"]'), (plain, '["short"]'))
        ]
    )
    spec = parse_experiment(
        {"name": "grid", "recipes": [{"name": "a"}], "temperatures": [0.7]}, "g"
    )
    store.save_experiment({"name": "grid", "spec": json.dumps(spec.to_dict()), "status": "done"})
    app = create_app(store.path, "grid", skip_tags=("empty", "copied"))
    with running_server(app) as url:
        request = http_requests(url)
        response, answer = request("GET", "/", headers={"Accept": "application/json"})
        page = json.loads(answer)
        assert page["sample"]["id"] == plain["id"] and page["left_out"] == 2
        body = {"session": page["session"], "action": "accept", "sample_id": plain["id"]}
        response, html = request("POST", "/rate", body)
        assert response.status == 200
        assert "2 unrated samples tagged empty or copied left out" in html
        assert "Every sample here is rated, but for those left out." in html
        response, answer = request("GET", "/report", headers={"Accept": "application/json"})
    assert len(store.experiment_samples("grid")) == 3  # still in the store
    (cell,) = json.loads(answer)["experiments"][0]["cells"]
    assert (cell["samples"], cell["rated"], cell["accepted"]) == (3, 1, 1)  # all in the report
    with running_server(create_app(store.path, "grid")) as url:  # without: the tagged ones
        response, answer = http_requests(url)("GET", "/?format=json")
    assert json.loads(answer)["sample"]["id"] in (empty["id"], copied["id"])
