"""The queue and co-writing tabs of the review app over real HTTP on 127.0.0.1: what they
show (escaped), what their POSTs change in the store, and the origin check on each POST."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from marinade.publishing.accounts import add_account
from marinade.publishing.queue import Entry, add_to_queue
from marinade.review.app import TABS, create_app
from marinade.review.server import running_server
from marinade.writing import WriteSettings, load_story, start_story
from review_helpers import add_grid, http_requests

SRC = Path(__file__).resolve().parent.parent / "src"
SCRIPT = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
FOREIGN = ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"})


@pytest.fixture
def server(store):
    """A review server for experiment "grid"; yields a request(method, path, ...) function."""
    with running_server(create_app(store.path, "grid")) as url:
        yield http_requests(url)


def outbox_account(store, tmp_path, name="box", **settings):
    return add_account(store, name, "outbox", {"path": str(tmp_path / name), **settings}, True)


def queue_texts(store):
    return {item.id: (item.status, item.text) for item in store.queue_items()}


def test_both_tabs_are_in_the_nav(store, server):
    assert ("/queue", "Queue") in TABS and ("/write", "Write") in TABS
    _, html = server("GET", "/")
    assert 'href="/queue"' in html and 'href="/write"' in html


# the queue tab


def test_queue_groups_items_by_status_and_escapes_them(store, server, tmp_path):
    outbox_account(store, tmp_path)
    queued, posted, failed, odd_link = add_to_queue(
        store, [Entry(SCRIPT), Entry("posted one"), Entry("failed one"), Entry("odd link")]
    )
    store.update_queue_item(
        posted, {"status": "posted", "url": "https://example.social/@me/1", "remote_id": "1"}
    )
    store.update_queue_item(failed, {"status": "failed", "error": "refused: <b>too rude</b>"})
    store.update_queue_item(odd_link, {"status": "posted", "url": "javascript:alert(1)"})
    response, html = server("GET", "/queue")
    assert response.status == 200
    assert "<script>window" not in html and "<img src=x" not in html and "<b>too" not in html
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html
    assert "refused: &lt;b&gt;too rude&lt;/b&gt;" in html
    assert '<a href="https://example.social/@me/1"' in html
    assert 'href="javascript:' not in html  # shown as text, not a link
    _, text = server("GET", "/queue?format=json")
    groups = {group["status"]: group["rows"] for group in json.loads(text)["groups"]}
    assert [item["id"] for item in groups["queued"]] == [queued]
    assert groups["queued"][0]["due"] is True  # no slots: due when added
    assert [item["id"] for item in groups["posted"]] == [posted, odd_link]
    assert [item["error"] for item in groups["failed"]] == ["refused: <b>too rude</b>"]
    assert groups["posting"] == [] and groups["unknown"] == []


def test_queue_drop_retry_and_edit_as_the_cli_does(store, server, tmp_path):
    outbox_account(store, tmp_path, max_length="10")
    keep, drop, failed, unknown, posted = add_to_queue(
        store, [Entry("keep"), Entry("drop"), Entry("failed"), Entry("unknown"), Entry("done")]
    )
    store.update_queue_item(failed, {"status": "failed", "error": "refused", "attempts": 3})
    store.update_queue_item(unknown, {"status": "unknown"})
    store.update_queue_item(posted, {"status": "posted"})

    response, html = server("POST", "/queue/item", {"action": "drop", "item_id": drop})
    assert response.status == 200 and f"item {drop} dropped" in html
    assert drop not in queue_texts(store)
    for item_id in (failed, unknown):
        response, _ = server("POST", "/queue/item", {"action": "retry", "item_id": item_id})
        assert response.status == 200
        item = store.queue_item(item_id)
        assert (item.status, item.attempts, item.error) == ("queued", 0, None)
    body = {"action": "edit", "item_id": keep, "text": "  kept <i>  "}
    response, html = server("POST", "/queue/item", body)
    assert response.status == 200 and "kept &lt;i&gt;" in html
    assert store.queue_item(keep).text == "kept <i>"

    # the same refusals as `marinade queue`, as one-line errors
    body = {"action": "edit", "item_id": keep, "text": "far over ten characters"}
    response, text = server("POST", "/queue/item", body)
    assert response.status == 400 and "over outbox's 10" in text and "not changed" in text
    assert store.queue_item(keep).text == "kept <i>"
    response, text = server("POST", "/queue/item", {"action": "drop", "item_id": posted})
    assert response.status == 400 and "stays in the record" in text
    response, text = server("POST", "/queue/item", {"action": "retry", "item_id": keep})
    assert response.status == 400 and "only failed or unknown" in text
    response, text = server("POST", "/queue/item", {"action": "drop", "item_id": 999})
    assert response.status == 400 and "no queue item with id 999" in text


def test_queue_the_accepted_samples_of_an_experiment(store, server, tmp_path):
    outbox_account(store, tmp_path, max_length="25")
    grid = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=2)
    other = add_grid(store, recipes=("b",), temperatures=(0.7,), seeds=1, experiment="other")
    long = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=1, text="x" * 40)
    for row in (*grid, *other):
        store.rate_sample(row["id"], "accept", now="t")
    store.rate_sample(grid[1]["id"], "accept", edited_text="an edit", now="t")
    response, html = server("POST", "/queue/accepted", {"experiment": "grid"})
    assert response.status == 200 and "2 queued" in html
    assert sorted(text for _, text in queue_texts(store).values()) == [
        "a at 0.7 with seed 0",
        "an edit",
    ]
    response, html = server("POST", "/queue/accepted", {"experiment": "grid"})
    assert "nothing to queue" in html

    store.rate_sample(long[0]["id"], "accept", now="t")
    response, text = server("POST", "/queue/accepted", {})  # every experiment
    assert response.status == 400 and f"sample {long[0]['id']} is too long" in text
    assert len(store.queue_items()) == 2  # nothing was queued
    response, html = server("POST", "/queue/accepted", {"skip_long": True})
    assert f"1 queued; left out sample {long[0]['id']}: too long for box" in html
    assert len(store.queue_items()) == 3


def test_queue_posts_from_other_origins_are_refused(store, server, tmp_path):
    outbox_account(store, tmp_path)
    [item] = add_to_queue(store, [Entry("stay")])
    [sample] = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=1)
    store.rate_sample(sample["id"], "accept", now="t")
    for headers in FOREIGN:
        for path, body in (
            ("/queue/item", {"action": "drop", "item_id": item}),
            ("/queue/item", {"action": "edit", "item_id": item, "text": "changed"}),
            ("/queue/accepted", {}),
        ):
            response, _ = server("POST", path, body, headers)
            assert response.status == 403, (path, headers)
    assert queue_texts(store) == {item: ("queued", "stay")}


# the co-writing tab


def test_stories_list_and_a_story_page_escape_their_text(store, server):
    story = start_story(store, SCRIPT, "some-model", WriteSettings(seed=1), title="<b>title</b>")
    response, html = server("GET", "/write")
    assert response.status == 200
    assert f'href="/write/{story.id}"' in html and "&lt;b&gt;title&lt;/b&gt;" in html
    response, html = server("GET", f"/write/{story.id}")
    assert response.status == 200
    assert "<script>window" not in html and "&lt;script&gt;window.pwned = 1" in html
    assert 'data-proposals="0"' in html  # the page asks for proposals once it is open
    response, _ = server("GET", "/write/999")
    assert response.status == 400


def test_writing_a_story_over_http(store, server, tiny_model):
    response, text = server("POST", "/write/start", {"model": str(tiny_model), "opening": "Once"})
    assert response.status == 200
    story_id = json.loads(text)["story_id"]
    story = load_story(store, story_id)
    assert story.model == str(tiny_model.resolve()) and story.settings.count == 5

    def step(body, accept="application/json"):
        cursor = load_story(store, story_id).current_id
        response, text = server(
            "POST", f"/write/{story_id}/step", {"cursor_id": cursor, **body}, {"Accept": accept}
        )
        assert response.status == 200, text
        return json.loads(text)

    page = step({"action": "propose"})
    first = [node["id"] for node in page["proposals"]]
    assert len(first) == 5
    assert [node["id"] for node in step({"action": "propose"})["proposals"]] == first  # no more
    assert len(step({"action": "more"})["proposals"]) == 10
    page = step({"action": "pick", "node_id": first[2], "edited_text": " <i>edited</i>"})
    assert [node["text"] for node in page["steps"]] == ["Once", " <i>edited</i>"]
    assert len(page["proposals"]) == 5  # new ones at the new cursor
    page = step({"action": "own", "text": "my words"})
    assert page["steps"][-1]["text"] == " my words" and page["steps"][-1]["author"] == "user"
    page = step({"action": "back"})
    assert [node["text"] for node in page["steps"]] == ["Once", " <i>edited</i>"]
    story = load_story(store, story_id)
    assert story.text() == "Once <i>edited</i>"
    assert story.nodes[first[2]].proposed_text != " <i>edited</i>"  # the model's text kept

    # the HTML answer escapes, and a step from a page showing an old cursor is refused
    response, html = server(
        "POST", f"/write/{story_id}/step", {"action": "more", "cursor_id": story.current_id}
    )
    assert "&lt;i&gt;edited&lt;/i&gt;" in html and "<i>edited" not in html
    shown = [node for node in load_story(store, story_id).proposals() if node.author == "model"]
    assert len(shown) == 10 and all(f">seed {node.seed}<" in html for node in shown)
    response, text = server("POST", f"/write/{story_id}/step", {"action": "back", "cursor_id": 1})
    assert response.status == 400 and "moved on elsewhere" in text
    response, text = server("POST", f"/write/{story_id}/step", {"action": "pick", "node_id": 1})
    assert response.status == 400 and "not a proposal at the cursor" in text


def test_bad_model_names_start_no_story(store, server, tmp_path):
    response, text = server("POST", "/write/start", {"model": str(tmp_path), "opening": "Once"})
    assert response.status == 400 and "no config.json" in text
    response, text = server("POST", "/write/start", {"model": "x", "opening": "  "})
    assert response.status == 400 and "needs an opening" in text
    assert store.stories() == []


def test_write_posts_from_other_origins_are_refused(store, server):
    story = start_story(store, "Once", "some-model", WriteSettings(seed=1))
    for headers in FOREIGN:
        response, _ = server("POST", "/write/start", {"model": "x", "opening": "a"}, headers)
        assert response.status == 403
        body = {"action": "own", "text": "intruder"}
        response, _ = server("POST", f"/write/{story.id}/step", body, headers)
        assert response.status == 403
    assert [row["id"] for row in store.stories()] == [story.id]
    assert load_story(store, story.id).text() == "Once"


def test_the_model_is_loaded_once_and_not_at_startup(store, tiny_model, monkeypatch):
    import marinade.models

    calls = []
    real = marinade.models.load_model
    monkeypatch.setattr(
        marinade.models,
        "load_model",
        lambda *args, **kw: calls.append(args[0]) or real(*args, **kw),
    )
    app = create_app(store.path)
    with running_server(app) as url:
        parts = urlsplit(url)
        assert calls == []
        for _ in range(2):
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            body = json.dumps({"model": str(tiny_model), "opening": "Once"})
            connection.request("POST", "/write/start", body, {"Content-Type": "application/json"})
            assert connection.getresponse().status == 200
            connection.close()
    assert calls == [str(tiny_model)]


def test_the_app_starts_without_torch():
    code = (
        "import sys, tempfile, pathlib\n"
        "from marinade.review.app import create_app\n"
        "create_app(pathlib.Path(tempfile.mkdtemp()) / 'marinade.db')\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(SRC)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
