"""The review page as a FastAPI app: rate samples blind, compare models A/B, see counts.

Pages are rendered by Jinja2 with autoescaping, so a sample's HTML or script shows as text.
A key press POSTs JSON and gets back the page's changing part as HTML (or JSON when asked
with `Accept: application/json`), which review.js swaps in. Every write reaches the store
before the answer is sent, so closing the tab loses nothing. A store busy past its busy
timeout (another process writing) answers 503, stores nothing, and review.js sends the
same request again until it is stored.
"""

from __future__ import annotations

import io
import secrets
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.review.model_cache import ModelCache
from marinade.review.queue_tab import add_queue_routes
from marinade.review.rating_order import RatingQueue, next_ab_pair, vote
from marinade.review.runs_tab import add_runs_routes
from marinade.review.security import PageGuard
from marinade.review.write_tab import add_write_routes
from marinade.store import Store
from marinade.store.db import is_busy

HERE = Path(__file__).parent

# The tabs of the base template's nav; a page adds its tab here along with its routes.
TABS: list[tuple[str, str]] = [
    ("/", "Rate"),
    ("/ab", "A/B"),
    ("/report", "Report"),
    ("/queue", "Queue"),  # review.queue_tab
    ("/write", "Write"),  # review.write_tab
    ("/runs", "Runs"),  # review.runs_tab
]


class RateRequest(BaseModel):
    session: str
    action: Literal["accept", "reject", "skip", "undo"]
    sample_id: int | None = None  # not needed for undo
    edited_text: str | None = None  # with accept: the rater's edit, kept beside the text


class VoteRequest(BaseModel):
    left_id: int
    right_id: int
    winner_id: int


class _ThreadStores:
    """One Store per server thread: sqlite connections must stay in the thread that made them."""

    def __init__(self, path: Path):
        self.path = path
        self.local = threading.local()

    def get(self) -> Store:
        store: Store | None = getattr(self.local, "store", None)
        if store is None:
            store = self.local.store = Store(self.path)
        return store


def _wants_json(request: Request) -> bool:
    return request.query_params.get("format") == "json" or request.headers.get(
        "accept", ""
    ).startswith("application/json")


def create_app(
    store_path: Path,
    experiment: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
    home: Home | None = None,
    skip_tags: tuple[str, ...] = (),
    token: str | None = None,
    dtype: str | None = None,
) -> FastAPI:
    """The review app over the store at `store_path`, limited to one experiment if given;
    the rating queue leaves out samples whose automatic checks gave one of `skip_tags`.
    Requests must name 127.0.0.1, localhost or ::1 in their Host header, or one of
    `allowed_hosts` (server.served_names); with a `token` (off the loopback) they must
    carry it too; POSTs from other origins are refused (security.py). The co-writing
    page loads models (runs, cached downloads) from `home`, by default the store's folder,
    in `dtype` (--dtype; None: auto)."""
    stores = _ThreadStores(store_path)
    Store(store_path).close()  # migrate (and fail) now rather than on the first request
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template: sample texts are model output
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.globals.update(tabs=TABS, experiment=experiment)

    def render(request: Request, template: str, context: dict[str, Any]) -> Response:
        if _wants_json(request):
            return JSONResponse(context)
        html = templates.get_template(template).render(path=request.url.path, **context)
        return HTMLResponse(html)

    def rating_queue() -> RatingQueue:
        return RatingQueue(stores.get(), experiment, skip_tags)

    def review_context(
        session: str, sample: dict[str, Any] | None, message: str = ""
    ) -> dict[str, Any]:
        return {
            "session": session,
            "sample": sample,
            "progress": rating_queue().progress(),
            "message": message,
            "skip_tags": list(skip_tags),
            "left_out": rating_queue().left_out(),
        }

    def ab_context() -> dict[str, Any]:
        store = stores.get()
        pair = next_ab_pair(store, experiment)
        return {
            "pair": None if pair is None else {"left": pair.left, "right": pair.right},
            "results": store.ab_results(experiment),
        }

    home = home or Home(store_path.parent)
    models = ModelCache(home, dtype=dtype)  # loads nothing until /write asks

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        models.close()

    app = FastAPI(
        title="marinade review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.add_middleware(PageGuard, served_hosts=allowed_hosts, token=token)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(MarinadeError)
    def user_error(request: Request, error: MarinadeError) -> Response:
        return Response(str(error), status_code=400, media_type="text/plain")

    @app.exception_handler(sqlite3.OperationalError)
    def store_busy(request: Request, error: sqlite3.OperationalError) -> Response:
        """Another process held the write lock past the busy timeout: nothing was stored,
        and 503 with Retry-After tells review.js to send the same key press again."""
        if not is_busy(error):
            raise error
        return Response(
            "the store is busy (another marinade process is writing); sending again",
            status_code=503,
            media_type="text/plain",
            headers={"Retry-After": "1"},
        )

    @app.get("/")
    def rate_page(request: Request) -> Response:
        session = secrets.token_urlsafe(12)  # undo reaches only this page load's actions
        return render(request, "rate.html", review_context(session, rating_queue().next_sample()))

    @app.post("/rate")
    def rate(request: Request, body: RateRequest) -> Response:
        review = rating_queue()
        if body.action == "undo":
            undone = review.undo(body.session)
            if undone is None:
                return render(
                    request,
                    "_review.html",
                    review_context(body.session, review.next_sample(), "nothing to undo"),
                )
            return render(request, "_review.html", review_context(body.session, undone))
        if body.sample_id is None:
            raise MarinadeError(f"{body.action} needs a sample_id")
        review.act(body.session, body.sample_id, body.action, body.edited_text)
        return render(request, "_review.html", review_context(body.session, review.next_sample()))

    @app.get("/ab")
    def ab_page(request: Request) -> Response:
        return render(request, "ab.html", ab_context())

    @app.post("/ab/vote")
    def ab_vote(request: Request, body: VoteRequest) -> Response:
        vote(stores.get(), body.left_id, body.right_id, body.winner_id)
        return render(request, "_ab.html", ab_context())

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)  # none; but no 404 in the browser's console

    def experiment_reports() -> list[dict[str, Any]]:
        """Each experiment's cells (accept rate, Wilson interval, copied rate) and best cell."""
        from dataclasses import asdict

        from marinade.curation.losses import experiment_curves, recipe_losses
        from marinade.curation.report import as_json, best_cell, experiment_cells

        store = stores.get()
        names = [experiment] if experiment else [row["name"] for row in store.experiments()]
        reports = []
        for name in names:
            spec, table = experiment_cells(store, name)
            best = best_cell(table)
            corpora, curves = experiment_curves(store, spec)
            reports.append(
                {
                    "name": name,
                    "cells": as_json(table),
                    "best": None if best is None else as_json([best])[0],
                    "several_top_p": len(spec["top_p"]) > 1,
                    "corpora": corpora,  # held-out losses per recipe (curation/losses.py)
                    "losses": [asdict(row) for row in recipe_losses(curves)],
                }
            )
        return reports

    @app.get("/report")
    def report(request: Request) -> Response:
        outside = [row for row in stores.get().rating_counts(None) if row["experiment"] is None]
        context = {"experiments": experiment_reports(), "rows": [] if experiment else outside}
        return render(request, "report.html", context)

    @app.get("/report/{name}.png")
    def heatmap(name: str) -> Response:
        from marinade.curation.report import experiment_cells, plot_heatmap

        if experiment and name != experiment:
            return Response(status_code=404)
        _, table = experiment_cells(stores.get(), name)
        image = io.BytesIO()
        plot_heatmap(table, name, image)
        return Response(image.getvalue(), media_type="image/png")

    @app.get("/report/{name}/losses.png")
    def loss_curves(name: str) -> Response:
        from marinade.curation.losses import experiment_losses, plot_curves

        if experiment and name != experiment:
            return Response(status_code=404)
        corpora, curves = experiment_losses(stores.get(), name)
        image = io.BytesIO()
        plot_curves(corpora, curves, name, image)
        return Response(image.getvalue(), media_type="image/png")

    add_queue_routes(app, stores.get, render, experiment)
    add_write_routes(app, stores.get, render, models)
    add_runs_routes(app, stores.get, render, home)
    return app
