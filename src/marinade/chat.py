"""Chat with a model trained on dialog. Never prints.

The conversation is written the way `corpus import --dialog` writes training
text (corpus.document.format_dialog): one turn per line, "- " for the owner of
the archive and "> " for everyone else. A model fine-tuned on such text answers
as the owner when the prompt ends with "-", so by default the user speaks as
">" and the model as "-"; `me="-"` swaps the sides. The model's turn ends at
the end of its line. When the conversation outgrows the model's context window,
the oldest turns are left out of the prompt (they stay in the store).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from marinade.corpus.document import format_dialog
from marinade.errors import MarinadeError
from marinade.sample_settings import (
    DEFAULT_TEMPERATURE,
    SampleSettings,
    check_seed,
    check_temperature,
)
from marinade.store import Store
from marinade.timestamps import now_iso

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from marinade.models import LoadedModel

OWNER = "-"  # the archive owner's turns in a --dialog corpus
OTHERS = ">"  # everyone else's


@dataclass(frozen=True)
class ChatSettings:
    me: str = OTHERS  # the user's side; the model speaks for the other one
    max_new_tokens: int = 60
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0  # the model's n-th answer in the conversation uses seed + n

    @property
    def model_side(self) -> str:
        return OWNER if self.me == OTHERS else OTHERS

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """A one-line error naming the first bad option; run when the settings are made."""
        if self.me not in (OWNER, OTHERS):
            raise MarinadeError(
                f"--me must be '{OTHERS}' (the other side, as in a --dialog corpus) or "
                f"'{OWNER}' (the owner's side), not {self.me!r}"
            )
        check_temperature(self.temperature)
        check_seed(self.seed)
        self.sample_settings()  # checks top-k, top-p and max-new-tokens

    def sample_settings(self) -> SampleSettings:
        # the model's turn ends with its line
        return SampleSettings(
            top_k=self.top_k, top_p=self.top_p, max_new_tokens=self.max_new_tokens, stop="\n"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChatSettings:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Turn:
    speaker: str  # "user" or "model"
    text: str
    seed: int | None = None
    context_turns: int | None = None  # earlier turns the model saw when it answered


@dataclass
class Conversation:
    id: int
    model: str
    settings: ChatSettings
    turns: list[Turn] = field(default_factory=list)

    def side(self, turn: Turn) -> str:
        return self.settings.me if turn.speaker == "user" else self.settings.model_side

    def answers(self) -> int:
        return sum(1 for turn in self.turns if turn.speaker == "model")


def parse_side(value: str) -> str:
    """`--me` takes '>' or '-' (a trailing space, as the prefixes are written, is fine)."""
    return value.strip()


def start_conversation(store: Store, model: str, settings: ChatSettings) -> Conversation:
    conversation_id = store.create_conversation(
        {"model": model, "me": settings.me, "settings": settings.to_json(), "created_at": now_iso()}
    )
    return Conversation(conversation_id, model, settings)


def load_conversation(store: Store, conversation_id: int) -> Conversation:
    row = store.conversation(conversation_id)
    turns = [
        Turn(turn["speaker"], turn["text"], turn["seed"], turn["context_turns"])
        for turn in store.chat_turns(conversation_id)
    ]
    return Conversation(row["id"], row["model"], ChatSettings.from_json(row["settings"]), turns)


def dialog_text(turns: list[Turn], settings: ChatSettings) -> str:
    """Turns as the dialog lines a --dialog corpus holds."""
    return format_dialog(
        [
            ((settings.me if turn.speaker == "user" else settings.model_side) == OWNER, turn.text)
            for turn in turns
        ]
    )


def build_prompt(
    tokenizer: PreTrainedTokenizerBase, turns: list[Turn], settings: ChatSettings, window: int
) -> tuple[str, int]:
    """The prompt for the model's next turn and how many turns it holds.

    It starts where a training document starts (after the end-of-text token),
    holds as many of the latest turns as fit the context window with room for
    the answer, and ends with the model's prefix without its space: the space
    belongs to the answer's first token, as it did in training.
    """
    from marinade.document_start import start_token_id

    start = str(tokenizer.convert_ids_to_tokens(start_token_id(tokenizer)))
    budget = window - settings.max_new_tokens
    for first in range(len(turns)):
        kept = turns[first:]
        lines = dialog_text(kept, settings)
        prompt = start + (lines + "\n" if lines else "") + settings.model_side
        if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) <= budget:
            return prompt, len(kept)
    raise MarinadeError(
        f"your message does not fit the model's context window of {window} tokens with "
        f"{settings.max_new_tokens} for the answer: write less or lower --max-new-tokens"
    )


def say(
    store: Store,
    conversation: Conversation,
    loaded: LoadedModel,
    text: str,
    on_progress: Callable[[int], None] | None = None,
) -> Turn:
    """Add the user's turn, sample the model's answer, store both; returns the answer."""
    from marinade.sampling import context_window, sample  # imports torch

    text = " ".join(text.split())
    if not text:
        raise MarinadeError("say something: the message is empty")
    settings = conversation.settings
    user_turn = Turn("user", text)
    prompt, context_turns = build_prompt(
        loaded.tokenizer,
        [*conversation.turns, user_turn],
        settings,
        context_window(loaded.model),
    )
    seed = settings.seed + conversation.answers()
    check_seed(seed)
    [completion] = sample(
        loaded.model,
        loaded.tokenizer,
        prompt,
        [seed],
        [settings.temperature],
        settings.sample_settings(),
        on_progress=on_progress,
    )
    answer = Turn("model", " ".join(completion.text.split()), seed, context_turns - 1)
    now = now_iso()
    base: dict[str, Any] = {"conversation_id": conversation.id, "created_at": now}
    store.add_chat_turn({**base, "speaker": "user", "text": text})
    store.add_chat_turn(
        {
            **base,
            "speaker": "model",
            "text": answer.text,
            "model": loaded.name,
            "model_hash": loaded.weights_hash,
            "seed": seed,
            "temperature": settings.temperature,
            "finish_reason": completion.finish_reason,
            "context_turns": answer.context_turns,
        }
    )
    conversation.turns.extend([user_turn, answer])
    return answer
