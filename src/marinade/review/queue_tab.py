"""The queue tab: the posting queue by status, and the changes `marinade queue` makes.

Drop, retry, edit and "add the accepted samples" call the same functions as the CLI
(marinade.publishing.queue), so the page checks lengths and statuses exactly as the
terminal does. The page never posts: `marinade post --due` or the scheduler does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from marinade.errors import MarinadeError
from marinade.publishing.queue import drop_item, edit_item, queue_accepted, queue_row, retry_item
from marinade.store import QueueStatus, Store
from marinade.timestamps import now_iso

Render = Callable[[Request, str, dict[str, Any]], Response]

HEADINGS = {
    QueueStatus.QUEUED: "Queued",
    QueueStatus.POSTING: "Posting now",
    QueueStatus.POSTED: "Posted",
    QueueStatus.FAILED: "Failed",
    QueueStatus.UNKNOWN: "Unknown: maybe posted",
}


class ItemRequest(BaseModel):
    action: Literal["drop", "retry", "edit"]
    item_id: int
    text: str | None = None  # with edit


class AcceptedRequest(BaseModel):
    experiment: str | None = None  # only this experiment's accepted samples
    account: str | None = None  # None: the default account
    skip_long: bool = False


def safe_url(url: str | None) -> str | None:
    """A link only to http(s): a platform's answer must not become a javascript: link."""
    return url if url and url.lower().startswith(("https://", "http://")) else None


def queue_context(store: Store, experiment: str | None, message: str = "") -> dict[str, Any]:
    now = now_iso()
    by_status: dict[QueueStatus, list[dict[str, Any]]] = {status: [] for status in QueueStatus}
    for item in store.queue_items():
        row = queue_row(item)
        row["due"] = item.status is QueueStatus.QUEUED and item.due_at <= now
        row["link"] = safe_url(item.url)
        by_status[item.status].append(row)
    return {
        "groups": [
            {"status": status.value, "heading": HEADINGS[status], "rows": by_status[status]}
            for status in QueueStatus
        ],
        "accounts": [row["name"] for row in store.accounts()],
        "default_experiment": experiment or "",
        "message": message,
    }


def add_queue_routes(
    app: FastAPI, stores: Callable[[], Store], render: Render, experiment: str | None
) -> None:
    @app.get("/queue")
    def queue_page(request: Request) -> Response:
        return render(request, "queue.html", queue_context(stores(), experiment))

    @app.post("/queue/item")
    def change_item(request: Request, body: ItemRequest) -> Response:
        store = stores()
        if body.action == "drop":
            drop_item(store, body.item_id)
            message = f"item {body.item_id} dropped"
        elif body.action == "retry":
            retry_item(store, body.item_id)
            message = f"item {body.item_id} queued again"
        else:
            if body.text is None:
                raise MarinadeError("edit needs the new text")
            edit_item(store, body.item_id, text=body.text)
            message = f"item {body.item_id} edited"
        return render(request, "_queue.html", queue_context(store, experiment, message))

    @app.post("/queue/accepted")
    def add_accepted(request: Request, body: AcceptedRequest) -> Response:
        store = stores()
        accounts = [body.account] if body.account else None
        result = queue_accepted(store, body.experiment or None, accounts, skip_long=body.skip_long)
        parts = [f"{len(result.ids)} queued" if result.ids else "nothing to queue"]
        parts += [
            f"left out sample {sample}: too long for {name}" for sample, name in result.left_out
        ]
        return render(request, "_queue.html", queue_context(store, experiment, "; ".join(parts)))
