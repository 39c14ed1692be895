"""The runs tab: every training run with its status, phases and progress, and a page per
run whose held-out loss curves grow while it trains.

The pages only read the store: nothing here starts, stops or changes a run. The list
and a run's page each have a JSON twin (`/runs-part`, `/runs/NAME/data`) that review.js
polls every two seconds; a run's curves are drawn in the browser from its evals, so a
page left open follows a run that `marinade train` is training in another process,
without a reload. A run's samples are those it logged with `--sample-every`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from marinade.home import Home
from marinade.store import Run, Store
from marinade.training.recipe import Recipe, phase_ends
from marinade.training.runs import all_runs, phase_progress, settled

Render = Callable[[Request, str, dict[str, Any]], Response]


def run_row(run: Run) -> dict[str, Any]:
    """A run as the list shows it."""
    return {
        "name": run.name,
        "status": str(run.status),
        "model": run.model,
        "steps_done": run.steps_done,
        "total_steps": run.total_steps,
        "phases": [asdict(phase) for phase in phase_progress(run)],
        "updated_at": run.updated_at or run.created_at,
        "message": run.message,
    }


def runs_context(store: Store, home: Home) -> dict[str, Any]:
    return {"runs": [run_row(run) for run in reversed(all_runs(store, home))]}


def run_data(store: Store, home: Home, run: Run) -> dict[str, Any]:
    """What a run's page shows and review.js redraws: progress, evals per corpus,
    phase boundaries, the samples logged, the compare command against its base model."""
    run = settled(store, home, run)
    recipe = run.recipe_dict()
    curves: dict[str, list[list[float]]] = {}
    for measured in store.evals(run.name):
        curves.setdefault(measured.corpus, []).append([measured.step, measured.loss])
    base = recipe["model"]
    return {
        **run_row(run),
        "curves": curves,
        "phase_ends": phase_ends(Recipe.from_dict(recipe)),
        "samples": [
            {"id": row["id"], "model": row["model"], "prompt": row["prompt"], "text": row["text"]}
            for row in store.training_samples(run.name)
        ],
        "base_model": base,
        "compare": f"marinade compare --model {base} --model {run.name} --seed 0",
    }


def unknown_run(name: str) -> Response:
    return Response(
        f"no run named {name}; the Runs tab (/runs) lists them, as does `marinade runs list`",
        status_code=404,
        media_type="text/plain",
    )


def add_runs_routes(app: FastAPI, stores: Callable[[], Store], render: Render, home: Home) -> None:
    @app.get("/runs")
    def runs_page(request: Request) -> Response:
        return render(request, "runs.html", runs_context(stores(), home))

    @app.get("/runs-part")
    def runs_part(request: Request) -> Response:
        return render(request, "_runs.html", runs_context(stores(), home))

    @app.get("/runs/{name}")
    def run_page(request: Request, name: str) -> Response:
        run = stores().run(name)
        if run is None:
            return unknown_run(name)
        return render(request, "run.html", {"run": run_data(stores(), home, run)})

    @app.get("/runs/{name}/data")
    def run_json(name: str) -> Response:
        run = stores().run(name)
        if run is None:
            return unknown_run(name)
        return JSONResponse(run_data(stores(), home, run))
