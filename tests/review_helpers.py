"""Filling a store with experiment samples for the review tests (not a test module)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from marinade.store import Store


def add_grid(
    store: Store,
    recipes: tuple[str, ...] = ("marinated", "seared"),
    temperatures: tuple[float, ...] = (0.7, 1.1),
    seeds: int = 3,
    experiment: str = "grid",
    prompt: str | None = "Dear diary,",
    text: str = "{recipe} at {temperature} with seed {seed}",
    top_p: float | None = None,
) -> list[dict[str, Any]]:
    """One cell per recipe and temperature, `seeds` samples each, inserted cell by cell."""
    rows = [
        {
            "created_at": "2025-01-01T00:00:00+00:00",
            "origin": "experiment",
            "model": f"run-{recipe}",
            "model_hash": "h",
            "prompt": prompt,
            "text": text.format(recipe=recipe, temperature=temperature, seed=seed),
            "seed": seed,
            "temperature": temperature,
            "top_p": top_p,
            "experiment": experiment,
            "recipe": recipe,
        }
        for recipe in recipes
        for temperature in temperatures
        for seed in range(seeds)
    ]
    return store.add_samples(rows)


def add_check(store: Store, sample_id: int, document_text: str, tags: list[str]) -> None:
    """A training document and the automatic check that names it the closest one."""
    with store.transaction():
        import_id = store.start_import("mine", "posts.csv", "csv", "{}", "2025-01-01")
        store.add_documents(
            [
                {
                    "corpus": "mine",
                    "import_id": import_id,
                    "text": document_text,
                    "created_at": None,
                    "source": "test",
                    "record_id": None,
                    "is_reply": 0,
                    "is_repost": 0,
                    "language": "en",
                    "dedup_key": document_text,
                }
            ]
        )
    document_id = store.search_documents('"' + document_text.split()[0] + '"')[0]["id"]
    store.db.table("sample_checks").insert(
        {
            "sample_id": sample_id,
            "copied_words": 4,
            "closest_document_id": document_id,
            "tags": json.dumps(tags),
        }
    )


def http_requests(url: str, timeout: float = 60) -> Any:
    """request(method, path, body=None, headers=None) -> (response, text) against a server;
    JSON bodies. The function's `netloc` is the server's host:port."""
    parts = urlsplit(url)

    def request(method, path, body=None, headers=None):  # type: ignore[no-untyped-def]
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        text = response.read().decode()
        connection.close()
        return response, text

    request.netloc = parts.netloc  # type: ignore[attr-defined]
    return request
