"""Import speed for large archives, against the bare cost of parsing them, in one run.

    python benchmarks/corpus_import.py [--records 100000]

Writes a Twitter archive (zip with one tweets.js) and an mbox, each with
`--records` records, then times:
  - baseline: parsing the file with the standard library and nothing else
    (json.loads of the whole tweets.js; mailbox.mbox over every message);
  - marinade: `import_corpus` into a fresh SQLite store — streaming parse,
    cleaning, de-duplication, inserts and the full-text index;
and prints records per second and the ratio (how many times the bare parse
marinade's whole import costs). Also times `corpus stats` on the 100,000 tweets.
"""

from __future__ import annotations

import argparse
import json
import mailbox
import random
import tempfile
import time
import zipfile
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from marinade.corpus.document import ImportOptions
from marinade.corpus.importing import import_corpus
from marinade.corpus.stats import corpus_stats
from marinade.home import open_home
from marinade.store import Store

WORDS = (
    "the lamp quay tea toast rain roof free door empire name small model strange funny "
    "walked light evening harbour nets children counted pier"
).split()
START = datetime(2023, 2, 18, 12, 33, 11, tzinfo=timezone.utc)


def sentence(rng: random.Random, number: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) + f" #{number}"


def write_twitter(path: Path, records: int) -> Path:
    rng = random.Random(0)
    items = []
    for n in range(records):
        moment = START + timedelta(minutes=n)
        items.append(
            {
                "tweet": {
                    "id_str": str(10**17 + n),
                    "full_text": sentence(rng, n),
                    "created_at": moment.strftime("%a %b %d %H:%M:%S +0000 %Y"),
                    "lang": "en",
                    "entities": {"urls": []},
                }
            }
        )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/tweets.js", "window.YTD.tweets.part0 = " + json.dumps(items))
    return path


def write_mbox(path: Path, records: int) -> Path:
    rng = random.Random(1)
    box = mailbox.mbox(path)
    box.lock()
    for n in range(records):
        message = EmailMessage()
        message["From"] = "Me <me@example.org>"
        message["To"] = "You <you@example.org>"
        message["Subject"] = f"note {n}"
        message["Date"] = format_datetime(START + timedelta(minutes=n))
        message["Message-ID"] = f"<{n}@example.org>"
        message.set_content(sentence(rng, n))
        box.add(message)
    box.unlock()
    box.close()
    return path


def timed(function) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    result = function()
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    n = args.records
    folder = Path(tempfile.mkdtemp(prefix="marinade-bench-corpus-"))
    store = Store(open_home(folder / "home").database)
    print(f"{n} records per archive\n")

    twitter = write_twitter(folder / "twitter.zip", n)

    def parse_tweets() -> int:
        with zipfile.ZipFile(twitter) as archive:
            text = archive.read("data/tweets.js").decode()
        return len(json.loads(text[text.index("[") :]))

    base, _ = timed(parse_tweets)
    took, report = timed(lambda: import_corpus(store, twitter, "tweets"))
    print(f"twitter  baseline json.loads        {n / base:9.0f} records/s")
    print(
        f"twitter  marinade import            {n / took:9.0f} records/s   "
        f"{took:5.1f} s   x{took / base:.1f} the bare parse   (kept {report.kept})"  # type: ignore[attr-defined]
    )

    box = write_mbox(folder / "mail.mbox", n)
    base, _ = timed(lambda: sum(1 for _ in mailbox.mbox(box)))
    options = ImportOptions(me="me@example.org")
    took, report = timed(lambda: import_corpus(store, box, "mail", options=options))
    print(f"mbox     baseline mailbox.mbox      {n / base:9.0f} records/s")
    print(
        f"mbox     marinade import            {n / took:9.0f} records/s   "
        f"{took:5.1f} s   x{took / base:.1f} the bare parse   (kept {report.kept})"  # type: ignore[attr-defined]
    )

    took, stats = timed(lambda: corpus_stats(store, "tweets"))
    print(f"\ncorpus stats over {n} tweets (no token count): {took:.1f} s")


if __name__ == "__main__":
    main()
