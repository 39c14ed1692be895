"""A generic webhook: the item as JSON, POSTed to the account's URL (httpx)."""

from __future__ import annotations

import httpx

from marinade.publishing.account import Account
from marinade.publishing.adapters import (
    Adapter,
    Post,
    Posted,
    exception_outcome,
    http_outcome,
    server_wait,
    timeout,
)


def post(account: Account, item: Post) -> Posted:
    token = account.secret(required=False)
    headers = {"Idempotency-Key": item.idempotency_key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = {
        "id": item.item_id,
        "text": item.text,
        "idempotency_key": item.idempotency_key,
        "model_written": item.model_written,
    }
    try:
        response = httpx.post(
            account.setting("url"), json=payload, headers=headers, timeout=timeout(account)
        )
    except httpx.HTTPError as error:
        raise exception_outcome(error) from None
    if response.status_code >= 300:
        wait = server_wait(response.headers)  # Retry-After: seconds or an HTTP date
        raise http_outcome(response.status_code, response.text[:200], wait)
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    return Posted(remote_id=str(answer.get("id", item.item_id)), url=answer.get("url"))


ADAPTER = Adapter(
    name="webhook",
    description="any URL: a JSON POST {id, text, idempotency_key, model_written}; --url",
    post=post,
    max_length=None,
    required=("url",),
    needs_secret=False,
)
