"""Models for the co-writing page: loaded on first use, kept, and run off the event loop.

The review server must start in a second, so nothing here imports torch or loads a model
until a story asks for one. A loaded model stays in a small cache (by the name it was asked
for), the least recently used one going when a new one would make too many. All model work
(loading, proposing) runs on one worker thread: torch already spreads one call over every
core, two calls at once would only compete for them (and for memory), and the server's
event loop stays free to answer the other tabs meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from marinade.home import Home

if TYPE_CHECKING:
    from marinade.models import LoadedModel

T = TypeVar("T")
KEPT_MODELS = 2  # a story's model and one more (an A/B of two runs) without reloading


class ModelCache:
    """Loaded models by name, at most `size` of them; `run` does model work on the worker."""

    def __init__(self, home: Home, size: int = KEPT_MODELS, dtype: str | None = None):
        self.home = home
        self.size = size
        self.dtype = dtype  # --dtype; None: auto
        self.models: OrderedDict[str, LoadedModel] = OrderedDict()
        self.lock = threading.Lock()  # the worker is one thread, but `get` may be called anywhere
        self.executor: ThreadPoolExecutor | None = None  # made on first use: no idle thread

    def get(self, name: str) -> LoadedModel:
        """The model called `name` (a model name, a run, or a local folder), loading it once."""
        with self.lock:
            loaded = self.models.get(name)
            if loaded is not None:
                self.models.move_to_end(name)
                return loaded
            from marinade.models import load_model  # imports torch and transformers: seconds

            loaded = load_model(name, self.home, dtype=self.dtype)
            self.models[name] = loaded
            while len(self.models) > self.size:
                self.models.popitem(last=False)
            return loaded

    async def run(self, work: Callable[[], T]) -> T:
        """Run `work` on the model worker thread and wait for it without blocking the loop."""
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="marinade-model")
        return await asyncio.wrap_future(self.executor.submit(work))

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
        with self.lock:
            self.models.clear()
