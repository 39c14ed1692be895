"""The runs tab: in Chromium, a run's page draws the curves of a tiny run that trains in
another process and follows it without a reload; the list follows new runs; an unknown
run is a 404 that says so. The page starts nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from marinade.corpus.document import ImportOptions
from marinade.corpus.importing import import_corpus
from marinade.review.app import TABS, create_app
from marinade.review.server import running_server
from marinade.store import Run, RunStatus
from marinade.training.recipe import build_recipe
from review_helpers import http_requests
from test_review_page import browser, page  # noqa: F401  (the Chromium fixtures)

SRC = Path(__file__).resolve().parent.parent / "src"
TEXTS = [f"The lamplighter walked the quay at dusk, lamp number {i}." for i in range(30)]


def wait_for(check, what: str, seconds: float = 120):  # a deadline, not a timed assertion
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def stored_run(store, name: str, steps_done: int = 0) -> None:
    recipe = build_recipe(name, "smollm2", ["admired:10"], None, None, {})
    store.save_run(
        Run(
            name=name,
            model="smollm2",
            recipe=json.dumps(recipe.to_dict()),
            status=RunStatus.FINISHED,
            steps_done=steps_done,
            total_steps=10,
            corpus_versions="{}",
            message=None,
            created_at="2026-01-01T00:00:00+00:00",
            updated_at=None,
        )
    )


def test_the_tab_is_in_the_nav_and_an_unknown_run_is_a_404(store):
    assert ("/runs", "Runs") in TABS
    stored_run(store, "known")
    with running_server(create_app(store.path)) as url:
        request = http_requests(url)
        response, text = request("GET", "/runs/nosuch")
        assert response.status == 404 and "no run named nosuch" in text
        response, text = request("GET", "/runs/nosuch/data")
        assert response.status == 404
        response, text = request("GET", "/runs/known/data")
        data = json.loads(text)
        assert (data["status"], data["steps_done"], data["phase_ends"]) == ("finished", 0, [10])
        assert data["compare"] == "marinade compare --model smollm2 --model known --seed 0"
        response, text = request("GET", "/runs?format=json")
        assert [run["name"] for run in json.loads(text)["runs"]] == ["known"]
        stored_run(store, "part")  # no route of the tab's own hides a run's page
        response, text = request("GET", "/runs/part")
        assert response.status == 200 and '<section id="run" data-run="part"' in text


def test_the_list_shows_a_new_run_without_a_reload(store, page):  # noqa: F811
    stored_run(store, "first", steps_done=3)
    navigations = []
    with running_server(create_app(store.path)) as url:
        page.goto(f"{url.rstrip('/')}/runs")
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        row = page.wait_for_selector('tr.run[data-run="first"]')
        assert "3/10" in row.inner_text() and "finished" in row.inner_text()
        stored_run(store, "second", steps_done=7)
        page.wait_for_selector('tr.run[data-run="second"][data-steps="7"]', timeout=20_000)
        assert navigations == []


@pytest.fixture
def corpus_home(tmp_path, store):
    folder = tmp_path / "admired"
    folder.mkdir()
    for i, text in enumerate(TEXTS):
        (folder / f"{i}.txt").write_text(text)
    import_corpus(store, folder, "admired", options=ImportOptions())
    return tmp_path / "home"


def test_a_runs_page_follows_a_run_training_in_another_process(
    store,
    page,  # noqa: F811
    corpus_home,
    tiny_model,
):
    command = [
        sys.executable, "-m", "marinade", "--home", str(corpus_home), "train", "live",
        "--model", str(tiny_model), "--phase", "admired:5000", "--batch-size", "2",
        "--block-size", "32", "--eval-every", "1", "--save-every", "0", "--sample-every", "3",
    ]  # fmt: skip
    # the test holds the store's write lock for a while: the trainer waits for it
    environment = {**os.environ, "PYTHONPATH": str(SRC), "MARINADE_BUSY_TIMEOUT": "600"}
    # to a file: a pipe nobody reads fills up (64 KB is ~1,600 of its step lines) and would block it
    log = (corpus_home.parent / "trainer.log").open("w")
    trainer = subprocess.Popen(command, env=environment, stderr=log, text=True)
    navigations: list[str] = []
    try:
        wait_for(lambda: (run := store.run("live")) and run.steps_done >= 4, "training to start")
        # freeze the run: with the write lock held, the trainer cannot record its next step
        lock = sqlite3.connect(store.path, timeout=60)
        lock.execute("begin immediate")
        frozen = lock.execute("select max(step), count(*) from evals where run = 'live'").fetchone()
        samples = lock.execute("select count(*) from samples where origin = 'training'").fetchone()
        with running_server(create_app(store.path, home=None)) as url:
            page.goto(f"{url.rstrip('/')}/runs/live")
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            page.wait_for_selector(f'#curves[data-last-step="{frozen[0]}"]', state="attached")
            assert page.get_attribute("#curves", "data-points") == str(frozen[1])
            assert page.get_attribute("#run", "data-status") == "running"
            assert page.locator("#curves polyline.curve").count() == 1  # one corpus
            assert page.get_attribute("#run-samples", "data-count") == str(samples[0])
            assert "marinade compare --model" in page.inner_text("pre.compare")
            lock.rollback()  # the trainer goes on; the page follows, no reload
            lock.close()
            page.wait_for_selector(
                f'#curves:not([data-last-step="{frozen[0]}"])', state="attached", timeout=60_000
            )
            assert int(page.get_attribute("#curves", "data-last-step")) > frozen[0]
            assert trainer.poll() is None  # still training: the page followed it live
            # SIGTERM, which marinade always handles: after SIGINT the trainer ran on to step
            # ~2,500 in three full-suite runs (it stopped when run alone); cause not found yet
            trainer.send_signal(signal.SIGTERM)
            trainer.wait(timeout=120)
            page.wait_for_selector('#run[data-status="interrupted"]', timeout=30_000)
            shown = int(page.get_attribute("#curves", "data-last-step"))
            assert shown == max(e.step for e in store.evals("live"))
            assert int(page.get_attribute("#run-samples", "data-count")) >= 1
        assert navigations == []
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
        log.close()
