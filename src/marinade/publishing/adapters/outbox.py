"""An outbox file: each post appended as one JSON line. For dry runs and rehearsals."""

from __future__ import annotations

import json
from pathlib import Path

from marinade.publishing.account import Account
from marinade.publishing.adapters import Adapter, Post, Posted
from marinade.timestamps import now_iso


def write_to_outbox(path: Path, item: Post, account: str) -> Posted:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "id": item.item_id,
        "account": account,
        "text": item.text,
        "idempotency_key": item.idempotency_key,
        "written_at": now_iso(),
    }
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(line, ensure_ascii=False) + "\n")
    return Posted(remote_id=f"outbox-{item.item_id}", url=path.resolve().as_uri())


def post(account: Account, item: Post) -> Posted:
    return write_to_outbox(Path(account.setting("path")).expanduser(), item, account.name)


ADAPTER = Adapter(
    name="outbox",
    description="a JSON-lines file (--path): rehearse the schedule without posting",
    post=post,
    max_length=None,
    dedupes=False,  # a crash between writing and recording would repeat a line
    required=("path",),
    needs_secret=False,
)
