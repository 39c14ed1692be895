"""The review page in a real browser: Debian's chromium driven by Playwright, pressing keys
and checking the store. `make test` installs chromium when it is missing."""

from __future__ import annotations

import re
import shutil

import pytest

from marinade.review.app import create_app
from marinade.review.server import running_server
from review_helpers import add_check, add_grid

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "the browser tests need Debian's chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh tab; afterwards, its console must have no errors (a script the page's own
    Content-Security-Policy blocked, a failed request, an exception in review.js)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def shown_id(page) -> int:
    return int(page.get_attribute("#review", "data-sample-id"))


def press(page, key: str, url_part: str = "/rate") -> None:
    """Press a key and wait until the page has swapped in the server's answer (review.js
    counts them in body[data-answers]; a selector, as the page's CSP forbids eval)."""
    before = int(page.get_attribute("body", "data-answers") or 0)
    with page.expect_response(lambda response: url_part in response.url) as answer:
        page.keyboard.press(key)
    assert answer.value.ok
    page.wait_for_selector(f"body[data-answers='{before + 1}']", state="attached")


def test_keys_rate_skip_edit_undo_and_progress(store, page):
    rows = add_grid(store, seeds=1)  # 4 samples in 4 cells
    texts = {row["id"]: row["text"] for row in rows}
    with running_server(create_app(store.path, "grid")) as url:
        page.goto(url)
        assert page.text_content(".count") == "0 / 4 rated"
        assert page.inner_text("#sample-text") == texts[shown_id(page)]

        first = shown_id(page)
        press(page, "a")
        assert store.rating(first)["rating"] == "accept"
        assert page.text_content(".count") == "1 / 4 rated"

        second = shown_id(page)
        assert second != first
        press(page, "r")
        assert store.rating(second)["rating"] == "reject"

        skipped = shown_id(page)
        press(page, "s")
        assert store.rating(skipped) is None and shown_id(page) != skipped
        assert page.text_content(".count") == "2 / 4 rated"

        # e: edit the text, Ctrl+Enter accepts the edit and keeps the original beside it
        edited = shown_id(page)
        page.keyboard.press("e")
        assert page.is_visible("#edit-text")
        assert page.input_value("#edit-text") == texts[edited]  # no stray "e" typed
        page.fill("#edit-text", "a better line <b>bold</b>")
        press(page, "Control+Enter")
        rating = store.rating(edited)
        assert (rating["rating"], rating["edited_text"]) == ("accept", "a better line <b>bold</b>")
        assert store.get_sample(edited)["text"] == texts[edited]

        # the skipped sample comes back once the others are rated
        assert shown_id(page) == skipped
        press(page, "a")
        assert page.text_content(".count") == "4 / 4 rated"
        assert "Every sample here is rated" in page.inner_text("#review")

        # u: the latest rating goes and its sample is shown again; twice walks further back
        press(page, "u")
        assert store.rating(skipped) is None and shown_id(page) == skipped
        press(page, "u")
        assert store.rating(edited) is None and shown_id(page) == edited
        assert page.text_content(".count") == "2 / 4 rated"

        # Escape leaves the editor without rating; the page session ends with the tab
        page.keyboard.press("e")
        page.keyboard.press("Escape")
        assert page.is_visible("#sample-text") and store.rating(edited) is None
        page.reload()
        press(page, "u")
        assert "nothing to undo" in page.inner_text("#review")
        assert store.rating(first)["rating"] == "accept"


def test_script_in_a_sample_shows_as_text(store, page):
    script = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    first, second = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=2, text=script)
    add_check(store, first["id"], '<img src=y onerror="window.pwned = 3"> closest', ["loop"])
    add_check(store, second["id"], '<img src=z onerror="window.pwned = 4"> closest', ["short"])
    with running_server(create_app(store.path, "grid")) as url:
        page.goto(url)
        for _ in range(2):  # the first page load, then the part swapped in after a key
            assert page.inner_text("#sample-text") == script
            assert "<img src=" in page.inner_text("#closest-text")
            assert page.evaluate("window.pwned") is None
            assert page.locator("#review img").count() == 0
            assert page.locator("#review script").count() == 0
            press(page, "s")
        assert page.locator(".tag").all_inner_texts() in (["loop"], ["short"])
        assert "4 words copied" in page.inner_text(".tags")


def test_ab_vote_with_keys(store, page):
    add_grid(store, recipes=("a", "b"), temperatures=(0.7,), seeds=2)  # two pairs
    with running_server(create_app(store.path, "grid")) as url:
        page.goto(url + "ab")
        left = int(page.get_attribute("#ab", "data-left"))
        right = int(page.get_attribute("#ab", "data-right"))
        assert page.inner_text("#left .text") == store.get_sample(left)["text"]
        press(page, "1", "/ab/vote")
        votes = list(store.db.query("select * from ab_votes"))
        assert [
            (v["left_sample_id"], v["right_sample_id"], v["winner_sample_id"]) for v in votes
        ] == [(left, right, left)]
        left, right = (
            int(page.get_attribute("#ab", "data-left")),
            int(page.get_attribute("#ab", "data-right")),
        )
        press(page, "ArrowRight", "/ab/vote")
        assert list(store.db.query("select winner_sample_id from ab_votes where id = 2")) == [
            {"winner_sample_id": right}
        ]
        assert "No pair left" in page.inner_text("#ab")
        page.click("summary")
        assert "run-a" in page.inner_text(".results") and "2" in page.inner_text(".results")


def click(page, selector: str, url_part: str) -> None:
    """Click and wait until the page has swapped in the server's answer."""
    before = int(page.get_attribute("body", "data-answers") or 0)
    with page.expect_response(lambda response: url_part in response.url) as answer:
        page.click(selector)
    assert answer.value.ok
    page.wait_for_selector(f"body[data-answers='{before + 1}']", state="attached")


def test_queue_tab_edit_retry_drop_and_accepted(store, page, tmp_path):
    from marinade.publishing.accounts import add_account
    from marinade.publishing.queue import Entry, add_to_queue

    add_account(store, "box", "outbox", {"path": str(tmp_path / "box")}, True)
    edited, dropped, failed = add_to_queue(store, [Entry("first"), Entry("second"), Entry("third")])
    store.update_queue_item(failed, {"status": "failed", "error": "refused <b>rudely</b>"})
    [sample] = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=1, text="<i>good</i>")
    store.rate_sample(sample["id"], "accept", now="t")
    with running_server(create_app(store.path, "grid")) as url:
        page.goto(url + "queue")
        assert page.inner_text("#group-failed .reason") == "refused <b>rudely</b>"

        row = f"#item-{edited}"
        page.click(f"{row} button[data-action=edit]")
        page.fill(f"{row} textarea", "first, edited")
        click(page, f"{row} button[data-action=save]", "/queue/item")
        assert store.queue_item(edited).text == "first, edited"
        assert page.inner_text(f"{row} pre.text") == "first, edited"

        click(page, f"#item-{failed} button[data-action=retry]", "/queue/item")
        assert store.queue_item(failed).status == "queued"
        assert page.locator(f"#group-queued #item-{failed}").count() == 1

        page.click(f"#item-{dropped} button[data-action=drop]")  # asks for a second click
        assert store.queue_item(dropped).status == "queued"
        click(page, f"#item-{dropped} button[data-action=drop]", "/queue/item")
        assert dropped not in [item.id for item in store.queue_items()]

        assert page.input_value("#add-accepted input[name=experiment]") == "grid"
        click(page, "#add-accepted button[type=submit]", "/queue/accepted")
        assert [item.text for item in store.queue_items() if item.sample_id] == ["<i>good</i>"]
        assert "1 queued" in page.inner_text("#queue-message")
        assert page.locator("#queue i").count() == 0  # shown as text


def visible(text):
    """Text as a page shows it: the tiny model's random output can hold control characters
    and odd white space, which the browser drops or normalises. The HTML parser drops NUL
    from body text altogether, so it goes without leaving a space."""
    return " ".join(re.sub(r"[\x01-\x1f\x7f]", " ", text.replace("\x00", "")).split())


def test_write_tab_start_pick_more_edit_back_and_own_words(store, page, tiny_model):
    from marinade.writing import join_text, load_story

    with running_server(create_app(store.path)) as url:
        page.goto(url + "write")
        page.fill("#new-story input[name=model]", str(tiny_model))
        page.fill("#new-story textarea[name=opening]", "The lamplighter")
        page.click("#new-story button[type=submit]")
        page.wait_for_url("**/write/*")
        page.wait_for_selector("body[data-answers='1']", state="attached")  # first proposals
        [row] = store.stories()
        story_id = row["id"]

        def story():
            return load_story(store, story_id)

        proposals = story().proposals()
        assert page.locator("#proposals li.proposal").count() == len(proposals) == 5

        press(page, "1", "/step")
        assert [node.id for node in story().path()] == [story().path()[0].id, proposals[0].id]
        assert visible(page.inner_text("#story-text")) == visible(story().text())

        press(page, "m", "/step")
        assert len(story().proposals()) == 10
        assert page.locator("#proposals li.proposal").count() == 10

        second = story().proposals()[1]
        page.keyboard.press("e")
        page.keyboard.press("2")
        assert page.is_visible("#proposal-edit")
        assert visible(page.input_value("#proposal-edit")) == visible(second.text)  # no stray "2"
        page.fill("#proposal-edit", " lit <b>the</b> lamps.")
        press(page, "Control+Enter", "/step")
        taken = story().path()[-1]
        assert (taken.id, taken.text) == (second.id, " lit <b>the</b> lamps.")
        assert taken.proposed_text == second.text
        assert page.locator("#story-text b").count() == 0

        press(page, "b", "/step")
        assert story().current_id == proposals[0].id

        before = story().text()  # a space joins it unless the model's text ended in one
        page.fill("#own-text", "and then")
        page.focus("#own-text")
        press(page, "Control+Enter", "/step")
        last = story().path()[-1]
        assert (last.author, last.text) == ("user", join_text(before, "and then"))
        assert last.text.lstrip() == "and then"
        assert page.inner_text("#story-text").endswith("and then")


def test_off_the_loopback_the_link_with_its_token_rates_in_the_browser(store, page):
    from marinade.review.server import _interface_addresses, served_names

    lan = next((a for a in _interface_addresses() if ":" not in a and a[:4] != "127."), None)
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4")
    [sample] = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=1)
    token = "browser-test-token-0123456789abcdefghijklmnop"
    app = create_app(store.path, "grid", allowed_hosts=served_names("0.0.0.0"), token=token)
    with running_server(app, host="0.0.0.0") as url:
        port = url.rsplit(":", 1)[1].strip("/")
        answer = page.request.get(f"http://{lan}:{port}/", max_redirects=0)
        assert answer.status == 401  # no token, no page
        page.goto(f"http://{lan}:{port}/?token={token}")
        assert page.url == f"http://{lan}:{port}/"  # the token left the address bar
        [cookie] = page.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        press(page, "a")  # the page's own POST: cookie and Origin, from a LAN address
        assert store.rating(sample["id"])["rating"] == "accept"


def test_a_key_pressed_while_the_store_is_busy_is_sent_again_until_stored(
    store, browser, monkeypatch
):
    from lock_holder import write_lock_held

    [sample] = add_grid(store, recipes=("a",), temperatures=(0.7,), seeds=1)
    monkeypatch.setenv("MARINADE_BUSY_TIMEOUT", "0.2")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    with running_server(create_app(store.path, "grid")) as url:
        page.goto(url)
        busy_answers = []
        page.on("response", lambda r: r.status == 503 and busy_answers.append(r.url))
        with write_lock_held(store.path):
            page.keyboard.press("a")
            page.wait_for_selector("#error:not([hidden])")
            assert "busy" in page.inner_text("#error")
            page.wait_for_timeout(1500)  # a few tries while another process writes
            assert store.rating(sample["id"]) is None
        page.wait_for_selector("body[data-answers='1']", state="attached")
        assert store.rating(sample["id"])["rating"] == "accept"
        assert len(busy_answers) >= 2 and page.is_hidden("#error")
    context.close()
    # the only errors are the browser's own lines for the 503 answers
    assert all("503" in error for error in errors)
