"""The co-writing tab: `/write` lists stories and starts one, `/write/{id}` writes it.

The page drives the same functions as `marinade write` (marinade.writing) over the same
story tree in the store, so a story started in the terminal goes on here and back. Every
step reloads the story from the store, and a step names the cursor the page showed: when
the terminal (or another tab) moved it meanwhile, the step is refused rather than applied
to a story the writer is not looking at. Steps that need the model run on the model
cache's worker thread (marinade.review.model_cache).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from marinade.errors import MarinadeError
from marinade.review.model_cache import ModelCache
from marinade.store import Store
from marinade.writing import (
    Node,
    Story,
    WriteSettings,
    add_own_text,
    choose,
    go_back,
    load_story,
    propose,
    random_seed,
    start_story,
)

Render = Callable[[Request, str, dict[str, Any]], Response]


class StartRequest(BaseModel):
    opening: str
    model: str = ""  # empty: the default model
    count: int = 5
    title: str | None = None


class StepRequest(BaseModel):
    # propose: only when the cursor has no proposals yet (the page asks on opening a story)
    action: Literal["propose", "pick", "more", "back", "own"]
    cursor_id: int | None = None  # the cursor the page showed
    node_id: int | None = None  # with pick
    edited_text: str | None = None  # with pick: the proposal as the writer edited it
    text: str | None = None  # with own


def node_view(node: Node) -> dict[str, Any]:
    return {**asdict(node), "edited": node.edited}


def story_context(story: Story) -> dict[str, Any]:
    return {
        "story": {
            "id": story.id,
            "title": story.title,
            "model": story.model,
            "count": story.settings.count,
            "cursor_id": story.current_id,
        },
        "steps": [node_view(node) for node in story.path()],
        "proposals": [node_view(node) for node in story.proposals()],
    }


def take_step(store: Store, models: ModelCache, story_id: int, body: StepRequest) -> Story:
    """Apply one step of the page to the story; propose when the cursor is left without any."""
    story = load_story(store, story_id)
    if body.cursor_id is not None and body.cursor_id != story.current_id:
        raise MarinadeError(
            f"story {story_id} moved on elsewhere (the terminal or another tab); reload the page"
        )
    if body.action == "pick":
        if body.node_id is None:
            raise MarinadeError("pick needs a node_id")
        choose(store, story, body.node_id, body.edited_text)
    elif body.action == "own":
        add_own_text(store, story, body.text or "")
    elif body.action == "back":
        go_back(store, story)
    elif body.action == "more":
        propose(store, story, models.get(story.model))
    if not story.proposals():
        propose(store, story, models.get(story.model))
    return story


def add_write_routes(
    app: FastAPI, stores: Callable[[], Store], render: Render, models: ModelCache
) -> None:
    @app.get("/write")
    def stories_page(request: Request) -> Response:
        return render(request, "stories.html", {"stories": stores().stories()})

    @app.post("/write/start")
    async def start(body: StartRequest) -> Response:
        settings = WriteSettings(count=body.count, seed=random_seed())
        settings.check()
        if not body.opening.strip():
            raise MarinadeError("a story needs an opening: give the text to start from")

        def work() -> int:
            loaded = models.get(body.model.strip())  # a bad name fails before any story exists
            store = stores()
            return start_story(store, body.opening, loaded.name, settings, body.title).id

        story_id = await models.run(work)
        return JSONResponse({"story_id": story_id, "url": f"/write/{story_id}"})

    @app.get("/write/{story_id}")
    def story_page(request: Request, story_id: int) -> Response:
        return render(request, "write.html", story_context(load_story(stores(), story_id)))

    @app.post("/write/{story_id}/step")
    async def step(request: Request, story_id: int, body: StepRequest) -> Response:
        story = await models.run(lambda: take_step(stores(), models, story_id, body))
        return render(request, "_write.html", story_context(story))
