"""How long another writer waits while a big import runs, in one run.

    python benchmarks/store_writers.py [--documents 50000]

One process imports `--documents` generated documents; meanwhile a second process
writes one row every 50 ms (what `queue add`, the review page or the scheduler do) and
records how long each write waited for the lock. Two ways, same run:
  - baseline: the whole import stored in one transaction (BATCH larger than the import:
    the lock is held while every document goes in, as imports did before);
  - marinade: a transaction per BATCH documents (corpus/importing.py).
Prints the import's time and the other writer's median and longest wait, and the ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import marinade.corpus.importing as importing
from marinade.corpus.document import Document
from marinade.store import Store


def other_writer(path: str, stop: Any, waits_out: Any) -> None:
    connection = sqlite3.connect(path, timeout=120, isolation_level=None)
    connection.execute("create table if not exists pings (at real)")
    waits = []
    while not stop.is_set():
        start = time.perf_counter()
        connection.execute("insert into pings values (?)", [start])
        waits.append(time.perf_counter() - start)
        time.sleep(0.05)
    waits_out.put(waits)


def documents(count: int) -> Any:
    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefghij") for _ in range(5)) for _ in range(5000)]
    for number in range(count):
        text = " ".join(rng.choice(words) for _ in range(15)) + f" {number}"
        yield Document(text=text, created_at=None, source="benchmark")


def run(count: int, batch: int) -> tuple[float, float, float]:
    importing.BATCH = batch
    path = Path(tempfile.mkdtemp()) / "marinade.db"
    store = Store(path)
    stop, waits_out = multiprocessing.Event(), multiprocessing.Queue()
    writer = multiprocessing.Process(target=other_writer, args=(str(path), stop, waits_out))
    writer.start()
    time.sleep(0.5)
    start = time.perf_counter()
    importing.import_records(store, documents(count), "big", "generated", "benchmark")
    took = time.perf_counter() - start
    stop.set()
    waits = sorted(waits_out.get())
    writer.join()
    store.close()
    return took, waits[len(waits) // 2], waits[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=50_000)
    count = parser.parse_args().documents
    batch = importing.BATCH
    results = {"one transaction": run(count, count + 1), f"batches of {batch}": run(count, batch)}
    for name, (took, median, longest) in results.items():
        print(
            f"{name:>18}: import of {count} documents {took:.1f} s; other writer waited"
            f" median {median * 1000:.0f} ms, longest {longest * 1000:.0f} ms"
        )
    (base_time, _, base_wait), (new_time, _, new_wait) = results.values()
    print(
        f"ratios (batches / one transaction): import time {new_time / base_time:.2f},"
        f" other writer's longest wait {new_wait / base_wait:.3f}"
    )


if __name__ == "__main__":
    main()
