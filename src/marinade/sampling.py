"""Batched, seeded sampling from a causal language model. Never prints.

Every call samples from one prompt. The prompt is run through the model once
(batch 1) and its key/value cache is repeated for every row, so rows never need
padding. Each row has its own seed and temperature; all the random numbers a
row will use are drawn up front from a generator seeded with the row's seed,
so its randomness does not depend on which other rows shared its batch (its
float rounding can: see `sample`). Rows that finish (end-of-text, stop string)
leave the batch at once, so short texts do not pay for long ones.

Whole sentences (SampleSettings.whole_sentences): a row that reaches
max_new_tokens mid-sentence keeps going, a few tokens at most
(overrun_tokens), until its text ends at a sentence end (sentences.py); then
every text is cut back to its last sentence end, and one without any is
marked dropped. Each completion says which: "whole" (it ended at a sentence
end as sampled), "extended" (it went past the limit to reach one), "trimmed".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase
from transformers.cache_utils import DynamicLayer

from marinade.document_start import LEGACY, end_token_ids, sample_start_ids, start_ids
from marinade.sample_settings import (
    Completion,
    SampleSettings,
    SamplingError,
    check_temperature,
)
from marinade.sentences import ends_cleanly, last_sentence_end

# The automatic batch size keeps one batch's keys and values under this many bytes;
# on a CPU a batch of 200 short samples runs ~35% faster than batches of 64.
KV_CACHE_BUDGET = 2 * 2**30
MAX_AUTO_BATCH = 256


def context_window(model: PreTrainedModel) -> int:
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    return 2048


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    model: PreTrainedModel,
    prompt: str | None,
    max_new_tokens: int,
    document_start: str = LEGACY,
) -> list[int]:
    """Token ids to start from; raises SamplingError when they would overflow the context.

    Without a prompt: what precedes a document in the model's training streams
    (document_start.py), so the sample begins as a document of its corpus begins."""
    if prompt:
        ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    else:
        ids = sample_start_ids(tokenizer, document_start)
    window = context_window(model)
    if len(ids) + max_new_tokens > window:
        raise SamplingError(
            f"the prompt is {len(ids)} tokens and --max-new-tokens is {max_new_tokens}, "
            f"more than the model's context window of {window} tokens: shorten the prompt "
            "or lower --max-new-tokens"
        )
    return ids


def auto_batch_size(model: PreTrainedModel, tokens_per_row: int) -> int:
    """The most rows whose key/value cache fits in KV_CACHE_BUDGET, at most MAX_AUTO_BATCH.

    It depends only on the model and the settings, so the same command batches
    the same way and prints the same texts.
    """
    config = model.config.get_text_config()
    layers = config.num_hidden_layers
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    bytes_per_row = 2 * layers * heads * head_dim * tokens_per_row * model.dtype.itemsize
    return max(1, min(MAX_AUTO_BATCH, KV_CACHE_BUDGET // bytes_per_row))


def rows_per_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str | None,
    settings: SampleSettings,
    document_start: str = LEGACY,
) -> int:
    """The rows `sample` takes in one batch for this prompt and settings when not told:
    a caller that stores as it goes (an experiment's cell) asks for this many at a time."""
    prompt_ids = encode_prompt(tokenizer, model, prompt, settings.token_cap(), document_start)
    return auto_batch_size(model, len(prompt_ids) + settings.token_cap())


def sample(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str | None,
    seeds: Sequence[int],
    temperatures: Sequence[float],
    settings: SampleSettings,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    document_start: str = LEGACY,
) -> list[Completion]:
    """Sample one completion per (temperature, seed) pair, temperatures outermost.

    `document_start`: the convention the model was trained with (LoadedModel has it),
    which an unconditional sample starts from.
    `batch_size` None picks one from the model's size (auto_batch_size).
    `on_progress(k)` reports k more token slots done, out of
    rows x max_new_tokens in all (a row that ends early counts its unused slots).
    Float rounding differs a little between batch sizes, so a sample is
    reproduced exactly by the same seeds and batch size; alone, with its seed
    only, it usually is (about 9 in 10 tweet-length SmolLM2 samples here).
    """
    for temperature in temperatures:
        check_temperature(temperature)
    if batch_size is not None and batch_size < 1:
        raise SamplingError(f"--batch-size must be at least 1, not {batch_size}")
    prompt_ids = encode_prompt(tokenizer, model, prompt, settings.token_cap(), document_start)
    if batch_size is None:
        batch_size = auto_batch_size(model, len(prompt_ids) + settings.token_cap())
    rows = [(seed, temperature) for temperature in temperatures for seed in seeds]
    # equal batches: 300 rows at 256 a batch run as 2 x 150, not 256 + 44
    batches = -(-len(rows) // batch_size)
    size = -(-len(rows) // batches)
    completions: list[Completion] = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        completions.extend(
            _sample_batch(
                model, tokenizer, prompt_ids, chunk, settings, on_progress, document_start
            )
        )
    return completions


def sample_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str | None,
    rows: Sequence[tuple[int, float]],
    settings: SampleSettings,
    document_start: str = LEGACY,
) -> list[Completion]:
    """One batch of exactly these (seed, temperature) rows, in this order: a stored batch
    sampled again (marinade.reproduce), since a row's text depends on its companions."""
    prompt_ids = encode_prompt(tokenizer, model, prompt, settings.token_cap(), document_start)
    return _sample_batch(model, tokenizer, prompt_ids, rows, settings, None, document_start)


def _row_uniforms(seeds: Sequence[int], steps: int) -> torch.Tensor:
    """[rows, steps] float64 uniforms, row i drawn from a generator seeded with seeds[i]."""
    return torch.stack(
        [
            torch.rand(steps, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
            for seed in seeds
        ]
    )


def draw_tokens(
    logits: torch.Tensor,
    temperatures: torch.Tensor,
    uniforms: torch.Tensor,
    top_k: int,
    top_p: float,
) -> torch.Tensor:
    """Pick one token per row by inverse-CDF sampling with the given uniforms.

    logits [b, V], temperatures [b] (0 means greedy), uniforms [b] in [0, 1).
    One uniform per row and step replaces torch.multinomial, which is slow over a
    large vocabulary and draws from one shared generator.
    """
    scaled = logits.to(torch.float32, copy=True)  # ours to change in place
    if not bool((temperatures == 1).all()):  # x / 1 is x: skip a pass over [b, V]
        scaled.div_(temperatures.clamp(min=1e-5).unsqueeze(1))
    vocab = scaled.shape[-1]
    candidate_ids: torch.Tensor | None = None
    if 0 < top_k < vocab:
        scaled, candidate_ids = scaled.topk(top_k, dim=-1)  # sorted, largest first
    if top_p < 1.0:
        weights, candidate_ids = _nucleus(scaled, candidate_ids, top_p)
    else:
        # unnormalised probabilities: the draw scales its target by their sum
        weights = scaled.sub_(scaled.amax(dim=-1, keepdim=True)).exp_()
    choice = _inverse_cdf(weights, uniforms)
    if candidate_ids is not None:
        choice = candidate_ids.gather(1, choice.unsqueeze(1)).squeeze(1)
    greedy = temperatures == 0
    if greedy.any():
        choice = torch.where(greedy, logits.argmax(dim=-1), choice)
    return choice


def _nucleus(
    scaled: torch.Tensor, candidate_ids: torch.Tensor | None, top_p: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities of the smallest set of top tokens whose mass reaches top_p.

    A full sort of a 50k vocabulary costs more than a forward pass, so take the
    top k for a growing k until the nucleus of every row fits inside.
    """
    log_total = torch.logsumexp(scaled, dim=-1, keepdim=True)
    vocab = scaled.shape[-1]
    k = min(64, vocab)
    while True:
        top, top_ids = scaled.topk(k, dim=-1)
        probs = (top - log_total).exp()
        if k == vocab or bool((probs.sum(dim=-1) >= top_p).all()):
            break
        k = min(k * 8, vocab)
    mass_before = probs.cumsum(dim=-1) - probs
    probs = probs.masked_fill(mass_before >= top_p, 0.0)
    ids = top_ids if candidate_ids is None else candidate_ids.gather(1, top_ids)
    return probs, ids


def _inverse_cdf(weights: torch.Tensor, uniforms: torch.Tensor, block: int = 256) -> torch.Tensor:
    """Index i of each row with probability weights[i] / sum(weights), given one uniform.

    A cumulative sum over the whole vocabulary is slow on a CPU, so sum blocks of
    `block` weights, find the block, then the token inside it.
    """
    rows, size = weights.shape
    blocks = -(-size // block)
    if blocks * block != size:
        weights = torch.nn.functional.pad(weights, (0, blocks * block - size))
    weights = weights.view(rows, blocks, block)
    block_cdf = weights.sum(dim=-1).to(torch.float64).cumsum(dim=-1)  # [rows, blocks]
    targets = (uniforms.to(torch.float64) * block_cdf[:, -1]).unsqueeze(1)
    chosen = torch.searchsorted(block_cdf, targets).clamp(max=blocks - 1)  # [rows, 1]
    before = torch.where(chosen > 0, block_cdf.gather(1, (chosen - 1).clamp(min=0)), 0.0)
    inside = weights.gather(1, chosen.unsqueeze(2).expand(rows, 1, block)).squeeze(1)
    inside_cdf = inside.to(torch.float64).cumsum(dim=-1)
    offset = torch.searchsorted(inside_cdf, targets - before).clamp(max=block - 1)
    return (chosen * block + offset).squeeze(1).clamp(max=size - 1)


class PreallocatedLayer(DynamicLayer):
    """A DynamicLayer whose keys and values are views into buffers made once, `capacity`
    positions long: a step writes its position in place instead of concatenating the
    whole cache again (torch.cat was ~8% of a bf16 step at batch 64). The views hold the
    same numbers the concatenation would, so samples do not change."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.is_initialized, self.device = True, key_states.device
            rows, heads, _, dim = key_states.shape
            shape = (rows, heads, self.capacity, dim)
            self.key_buffer = key_states.new_empty(shape)
            self.value_buffer = value_states.new_empty(shape)
            self.length = 0
        end = self.length + key_states.shape[-2]
        self.key_buffer[:, :, self.length : end] = key_states
        self.value_buffer[:, :, self.length : end] = value_states
        self.length = end
        return self._views()

    def _views(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys = self.key_buffer[:, :, : self.length]
        self.values = self.value_buffer[:, :, : self.length]
        return self.keys, self.values

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self.key_buffer = self.key_buffer.repeat_interleave(repeats, dim=0)
            self.value_buffer = self.value_buffer.repeat_interleave(repeats, dim=0)
            self._views()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:  # only the filled positions are worth copying
            self.key_buffer = self._select(self.key_buffer, indices)
            self.value_buffer = self._select(self.value_buffer, indices)
            self._views()

    def _select(self, buffer: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        _, heads, capacity, dim = buffer.shape
        kept = buffer.new_empty((len(indices), heads, capacity, dim))
        torch.index_select(buffer[:, :, : self.length], 0, indices, out=kept[:, :, : self.length])
        return kept


def preallocated_cache(model: PreTrainedModel, capacity: int) -> DynamicCache:
    """The model's DynamicCache with its plain full-attention layers preallocated
    (sliding-window and other kinds stay as transformers made them)."""
    cache = DynamicCache(config=model.config)
    cache.layers = [
        PreallocatedLayer(capacity) if type(layer) is DynamicLayer else layer
        for layer in cache.layers
    ]
    return cache


def _forward(
    model: PreTrainedModel, input_ids: torch.Tensor, cache: DynamicCache, logits_to_keep: int = 0
) -> torch.Tensor:
    """One forward pass through the cache. transformers 5 renamed `past_key_values` to `cache`
    and warns at each first use (in the middle of `marinade write`'s screen); 4.x knows only
    the old name, which both accept."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
        output = model(
            input_ids=input_ids,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=logits_to_keep,
        )
    return output.logits


@torch.inference_mode()
def _sample_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: list[int],
    rows: Sequence[tuple[int, float]],
    settings: SampleSettings,
    on_progress: Callable[[int], None] | None,
    document_start: str = LEGACY,
) -> list[Completion]:
    device = model.device
    steps = settings.token_cap()
    uniforms = _row_uniforms([seed for seed, _ in rows], steps).to(device)
    temperatures = torch.tensor([t for _, t in rows], dtype=torch.float32, device=device)
    # the start of the next document ends this one too: a model trained with a start
    # mark may begin the next document without ending this one (end-of-text)
    next_start = start_ids(tokenizer, document_start)
    ends = end_token_ids(tokenizer) | (set(next_start) if len(next_start) == 1 else set())
    end_ids = torch.tensor(sorted(ends), device=device)
    marks = next_start if len(next_start) > 1 else []

    cache = preallocated_cache(model, len(prompt_ids) + steps)
    prompt = torch.tensor([prompt_ids], device=device)
    logits = _forward(model, prompt, cache, logits_to_keep=1)
    logits = logits[:, -1, :].expand(len(rows), -1)
    cache.batch_repeat_interleave(len(rows))

    live = torch.arange(len(rows), device=device)  # which row each batch position holds
    tokens: list[list[int]] = [[] for _ in rows]
    reasons = ["length"] * len(rows)
    for step in range(steps):
        if step < settings.min_new_tokens:  # not the end yet: end-of-text cannot be drawn
            logits = logits.index_fill(1, end_ids, float("-inf"))
        next_ids = draw_tokens(
            logits, temperatures[live], uniforms[live, step], settings.top_k, settings.top_p
        )
        ended = torch.isin(next_ids, end_ids).tolist()
        keep: list[int] = []  # batch positions still going after this step
        for position, (row, token) in enumerate(zip(live.tolist(), next_ids.tolist(), strict=True)):
            if ended[position]:
                reasons[row] = "end_of_text"
                continue
            tokens[row].append(token)
            if marks and tokens[row][-len(marks) :] == marks:
                del tokens[row][-len(marks) :]
                reasons[row] = "end_of_text"
                continue
            if settings.stop and settings.stop in tokenizer.decode(tokens[row]):
                reasons[row] = "stop"
                continue
            if settings.whole_sentences and len(tokens[row]) >= settings.max_new_tokens:
                if ends_cleanly(str(tokenizer.decode(prompt_ids + tokens[row]))):
                    over = len(tokens[row]) > settings.max_new_tokens
                    reasons[row] = "sentence" if over else "length"
                    continue
            keep.append(position)
        done_now = len(live) - len(keep)
        if on_progress:  # this step's slots, and the slots rows that ended now won't use
            on_progress(len(live) + done_now * (steps - step - 1))
        if step == steps - 1 or not keep:
            break
        if done_now:
            # finished rows leave the batch: no compute is spent on them from here on
            keep_positions = torch.tensor(keep, device=device)
            cache.batch_select_indices(keep_positions)
            live, next_ids = live[keep_positions], next_ids[keep_positions]
        logits = _forward(model, next_ids.unsqueeze(1), cache)
        logits = logits[:, -1, :]

    prefix = str(tokenizer.decode(prompt_ids))
    completions = []
    for (seed, temperature), row_tokens, reason in zip(rows, tokens, reasons, strict=True):
        # decode with the prompt so characters split across the boundary come out whole
        text = str(tokenizer.decode(prompt_ids + row_tokens))[len(prefix) :]
        if reason == "stop" and settings.stop:
            text = text[: text.index(settings.stop)] if settings.stop in text else text
        completion = Completion(
            text, seed, temperature, len(row_tokens), reason, batch_size=len(rows)
        )
        completions.append(whole_sentences(completion) if settings.whole_sentences else completion)
    dropped = tuple((i, c.seed, c.temperature) for i, c in enumerate(completions) if c.dropped)
    if dropped:
        completions = [replace(c, batch_dropped=dropped) for c in completions]
    return completions


def whole_sentences(completion: Completion) -> Completion:
    """The completion cut back to its last sentence end, marked how; dropped without one."""
    if ends_cleanly(completion.text):
        cut = "extended" if completion.finish_reason == "sentence" else "whole"
        return replace(completion, text=completion.text.rstrip(), sentence_cut=cut)
    end = last_sentence_end(completion.text)
    if end is None:
        return replace(completion, sentence_cut="dropped", dropped=True)
    return replace(completion, text=completion.text[:end], sentence_cut="trimmed")
