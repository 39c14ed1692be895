"""`marinade samples reproduce ID`: a stored sample sampled again with its recorded model,
seed, settings, dtype and batch, on a tiny GPT-2."""

from __future__ import annotations

import json

import marinade.precision


def generate(cli, tiny_model, *flags: str) -> None:
    result = cli(
        "generate", "--model", str(tiny_model), "-n", "5", "--seed", "7", "--batch-size", "2",
        "--max-new-tokens", "12", "-t", "0.9", "-t", "1.3", *flags,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_every_sample_of_a_call_reproduces_in_its_batch(cli, tiny_model, store):
    generate(cli, tiny_model)
    rows = list(store.samples(newest_first=False))
    assert len(rows) == 10 and {row["batch_size"] for row in rows} == {2}
    for row in rows:
        result = cli("samples", "reproduce", str(row["id"]), "--json")
        assert result.exit_code == 0, result.output
        again = json.loads(result.stdout)
        assert again["identical"] and again["text"] == row["text"]
        assert (again["dtype"], again["batch"]) == ("float32", 2)
    assert "reproduced: the same text" in cli("samples", "reproduce", "3").stderr


def test_a_bf16_sample_reproduces_in_bf16(cli, tiny_model, store, monkeypatch):
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: "AVX512_BF16")
    generate(cli, tiny_model, "--dtype", "bfloat16")
    bf16 = list(store.samples(newest_first=False))
    assert {row["dtype"] for row in bf16} == {"bfloat16"}
    for row in bf16[:4]:
        again = json.loads(cli("samples", "reproduce", str(row["id"]), "--json").stdout)
        assert again["identical"] and again["dtype"] == "bfloat16"
    # where bf16 is not native, the recorded dtype cannot run: one line, nothing stored
    monkeypatch.setattr(marinade.precision, "cpu_bf16_probe", lambda: None)
    result = cli("samples", "reproduce", str(bf16[0]["id"]))
    assert result.exit_code == 1 and result.stderr.strip().count("\n") == 0
    assert "cannot be reproduced here" in result.stderr and "no native bf16" in result.stderr
    assert store.count_samples() == 10


def test_a_sample_that_comes_out_different_exits_1(cli, tiny_model, store):
    generate(cli, tiny_model)
    store.db.execute("update samples set text = 'edited by hand' where id = 4")
    store.db.conn.commit()
    result = cli("samples", "reproduce", "4")
    assert result.exit_code == 1
    assert "sample 4 came out different this time" in result.stderr
    assert result.stdout.strip() != "edited by hand"


def test_samples_whose_weights_are_gone_are_refused(cli, tiny_model, store):
    generate(cli, tiny_model)
    store.db.execute("update samples set model_hash = 'other' where id = 1")
    store.db.execute("update samples set origin = 'training' where id = 2")
    store.db.conn.commit()
    result = cli("samples", "reproduce", "1")
    assert result.exit_code == 1 and "weights of" in result.stderr
    result = cli("samples", "reproduce", "2")
    assert result.exit_code == 1 and "during training" in result.stderr
    result = cli("samples", "reproduce", "99")
    assert result.exit_code == 1 and "no sample with id 99" in result.stderr


def test_samples_of_batches_that_lost_rows_to_whole_sentences_reproduce(cli, tiny_model, store):
    """Rows dropped for lacking a sentence end are not stored; their batch is rebuilt with
    them, so every stored sample comes back in its whole batch."""
    result = cli(
        "generate", "--model", str(tiny_model), "-n", "12", "--seed", "3", "--batch-size", "6",
        "--max-new-tokens", "8", "--whole-sentences",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(store.samples(newest_first=False))
    assert 0 < len(rows) < 12  # the tiny model ends few texts at a sentence end
    for first_seed in (3, 9):  # each batch: its stored rows and the ones dropped from it
        batch = [row for row in rows if first_seed <= row["seed"] < first_seed + 6]
        dropped = json.loads(batch[0]["batch_dropped"])
        assert all(row["batch_dropped"] == batch[0]["batch_dropped"] for row in batch)
        seeds = sorted([seed for _, seed, _ in dropped] + [row["seed"] for row in batch])
        assert seeds == list(range(first_seed, first_seed + 6))
    for row in rows:
        result = cli("samples", "reproduce", str(row["id"]), "--json")
        assert result.exit_code == 0, result.output
        again = json.loads(result.stdout)
        assert again["identical"] and again["batch"] == 6
