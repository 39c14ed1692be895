"""Sample a stored sample again, as it was made: `marinade samples reproduce ID`.

A sample's text is a function of the model's weights, the prompt, its seed and
temperature, the sampling settings, the dtype it computed in and the batch it was drawn
in (float rounding differs with a batch's size, and rows leave a batch as they end, so
its companions matter too). The store records all of them; this rebuilds the sample's
batch from the samples logged with it, loads the model in the recorded dtype on the
recorded device, samples that batch once more and says whether the text is the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from marinade.errors import MarinadeError
from marinade.home import Home
from marinade.sample_settings import SampleSettings
from marinade.store import Store

# samples whose weights or settings the store cannot give back
NOT_REPRODUCIBLE = {
    "training": "was sampled during training, from weights between checkpoints",
}


@dataclass
class Reproduction:
    sample: dict[str, Any]  # the stored row
    text: str  # the text sampled again
    batch: int  # rows in the rebuilt batch
    dtype: str

    @property
    def identical(self) -> bool:
        return self.text == self.sample["text"]


def stored_batch(store: Store, sample: dict[str, Any]) -> tuple[list[tuple[int, float]], int]:
    """The (seed, temperature) rows of the batch `sample` was drawn in, and its position.

    A call's rows went out in equal batches of the recorded batch size, in the order they
    were stored. A row dropped for lacking a sentence end (--whole-sentences) was not
    stored; each stored row of its batch records it (batch_dropped) and it is put back."""
    rows = store.batch_samples(sample["batch_id"], sample["model"])
    start = 0
    while start < len(rows):
        dropped = json.loads(rows[start].get("batch_dropped") or "[]")
        size = max(1, int(rows[start]["batch_size"] or 1) - len(dropped))
        stored = rows[start : start + size]
        start += size
        ids = [row["id"] for row in stored]
        if sample["id"] not in ids:
            continue
        batch = [(row["seed"], row["temperature"]) for row in stored]
        position = ids.index(sample["id"])
        for index, seed, temperature in dropped:  # in increasing position
            batch.insert(index, (seed, temperature))
            position += index <= position
        return batch, position
    return [(sample["seed"], sample["temperature"])], 0


def reproduce_sample(store: Store, home: Home, sample_id: int) -> Reproduction:
    """Sample `sample_id` again with everything the store recorded for it."""
    from marinade.models import load_model
    from marinade.sampling import sample_batch

    sample = store.get_sample(sample_id)
    if sample["origin"] in NOT_REPRODUCIBLE:
        raise MarinadeError(
            f"sample {sample_id} {NOT_REPRODUCIBLE[sample['origin']]}; it cannot be reproduced"
        )
    dtype = sample["dtype"] or "float32"  # samples from before m016 were float32
    try:
        loaded = load_model(
            sample["model"],
            home,
            device=sample["device"],
            quantize=sample["quantize"],
            dtype=dtype,
        )
    except MarinadeError as error:
        raise MarinadeError(f"sample {sample_id} cannot be reproduced here: {error}") from None
    if loaded.weights_hash != sample["model_hash"]:
        raise MarinadeError(
            f"sample {sample_id}: the weights of {sample['model']} changed since it was "
            "sampled; it cannot be reproduced"
        )
    batch, position = stored_batch(store, sample)
    settings = SampleSettings(
        top_k=sample["top_k"],
        top_p=sample["top_p"],
        max_new_tokens=sample["max_new_tokens"],
        stop=sample["stop"],
        whole_sentences=sample["sentence_cut"] is not None,
    )
    completions = sample_batch(
        loaded.model,
        loaded.tokenizer,
        sample["prompt"],
        batch,
        settings,
        loaded.document_start,
    )
    return Reproduction(sample, completions[position].text, len(batch), loaded.dtype)
