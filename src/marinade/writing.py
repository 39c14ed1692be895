"""Co-writing with a model: a story is a tree of text nodes. Never prints.

The root is the opening text. At the cursor the model proposes K continuations
(children of the cursor, each with its own seed); choosing one, or typing one's
own text, adds it to the path and moves the cursor there; going back moves the
cursor to the parent and leaves the abandoned node in the tree. The story's text
is the path from the root to the cursor; every other node is a branch not taken.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from marinade.errors import MarinadeError
from marinade.sample_settings import (
    DEFAULT_TEMPERATURE,
    SampleSettings,
    check_seed,
    check_temperature,
)
from marinade.sentences import sentence_ends
from marinade.store import Store
from marinade.timestamps import now_iso

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from marinade.models import LoadedModel

EXPORT_FORMATS = ("md", "txt")
TITLE_LENGTH = 60


@dataclass(frozen=True)
class WriteSettings:
    """How proposals are made; stored with the story so a resumed one proposes the same way."""

    count: int = 5  # proposals per request
    max_new_tokens: int = 40
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = 0
    top_p: float = 1.0
    sentence: bool = True  # end each proposal at its first sentence end
    seed: int = 0  # the story's base seed: its n-th proposal uses seed + n
    # a proposal is never empty: the model may not end the text before its first token
    min_new_tokens: int = 1

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """A one-line error naming the first bad option; run when the settings are made."""
        if self.count < 1:
            raise MarinadeError(f"--count must be at least 1, not {self.count}")
        check_temperature(self.temperature)
        check_seed(self.seed)
        self.sample_settings()  # checks top-k, top-p and the token counts

    def sample_settings(self) -> SampleSettings:
        return SampleSettings(
            top_k=self.top_k,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            min_new_tokens=self.min_new_tokens,
            # a proposal that has not reached a sentence end at the limit samples on a
            # little to reach one (sampling.py); propose() keeps the first sentence
            whole_sentences=self.sentence,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WriteSettings:
        values = json.loads(text)
        values.setdefault("min_new_tokens", 0)  # stories begun before it existed go on as begun
        return cls(**values)


@dataclass(frozen=True)
class Node:
    id: int
    parent_id: int | None
    text: str
    author: str  # "model" or "user"
    chosen: bool
    proposed_text: str | None = None  # the model's own text, when the user edited it
    seed: int | None = None
    temperature: float | None = None
    model: str | None = None
    finish_reason: str | None = None

    @property
    def edited(self) -> bool:
        return self.proposed_text is not None and self.proposed_text != self.text

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Node:
        return cls(
            id=row["id"],
            parent_id=row["parent_id"],
            text=row["text"],
            author=row["author"],
            chosen=bool(row["chosen"]),
            proposed_text=row["proposed_text"],
            seed=row["seed"],
            temperature=row["temperature"],
            model=row["model"],
            finish_reason=row["finish_reason"],
        )


@dataclass
class Story:
    """A story as loaded from the store: every node, and the cursor."""

    id: int
    title: str
    model: str
    settings: WriteSettings
    current_id: int
    nodes: dict[int, Node] = field(default_factory=dict)

    def path(self) -> list[Node]:
        """The nodes from the root to the cursor: the story as it stands."""
        path = []
        node_id: int | None = self.current_id
        while node_id is not None:
            path.append(self.nodes[node_id])
            node_id = self.nodes[node_id].parent_id
        return path[::-1]

    def text(self) -> str:
        return "".join(node.text for node in self.path())

    def children(self, node_id: int) -> list[Node]:
        return [node for node in self.nodes.values() if node.parent_id == node_id]

    def proposals(self) -> list[Node]:
        """What can follow the cursor: every child it has, in the order they were made."""
        return self.children(self.current_id)

    def model_nodes(self) -> int:
        return sum(1 for node in self.nodes.values() if node.author == "model")


def default_title(opening: str) -> str:
    flat = " ".join(opening.split())
    return flat if len(flat) <= TITLE_LENGTH else flat[: TITLE_LENGTH - 1] + "…"


def random_seed() -> int:
    return secrets.randbelow(2**31)


def start_story(
    store: Store, opening: str, model: str, settings: WriteSettings, title: str | None = None
) -> Story:
    """A new story whose root is the opening text; the cursor is at the root."""
    if not opening.strip():
        raise MarinadeError("a story needs an opening: give the text to start from")
    now = now_iso()
    story_id = store.create_story(
        {
            "title": title or default_title(opening),
            "model": model,
            "settings": settings.to_json(),
            "created_at": now,
        }
    )
    [root] = store.add_story_nodes(
        [{"story_id": story_id, "text": opening, "author": "user", "chosen": 1, "created_at": now}]
    )
    store.set_story_path(story_id, [root["id"]], now)
    return load_story(store, story_id)


def load_story(store: Store, story_id: int) -> Story:
    row = store.story(story_id)
    nodes = {row["id"]: Node.from_row(row) for row in store.story_nodes(story_id)}
    return Story(
        id=row["id"],
        title=row["title"],
        model=row["model"],
        settings=WriteSettings.from_json(row["settings"]),
        current_id=row["current_node_id"],
        nodes=nodes,
    )


def change_settings(store: Store, story: Story, settings: WriteSettings) -> Story:
    store.update_story(story.id, settings.to_json(), now_iso())
    return replace(story, settings=settings)


def sentence_end(text: str) -> int | None:
    """Where the first sentence of `text` ends (after leading whitespace), or None.

    Sentence ends are sentences.py's, as whole-sentence sampling finds them (abbreviations,
    quotes, emoji, other scripts); a line break ends a proposal too (the next step starts
    the new line)."""
    start = len(text) - len(text.lstrip())
    ends = [end for end in sentence_ends(text) if end > start][:1]
    newline = text.find("\n", start)
    if newline >= 0:
        ends.append(newline)
    return min(ends) if ends else None


def fit_context(tokenizer: PreTrainedTokenizerBase, text: str, budget: int) -> str:
    """The end of `text` in at most about `budget` tokens: the model sees the latest part."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return text
    # a few tokens of slack: the cut tail may re-encode a little longer than it was
    return str(tokenizer.decode(ids[-max(1, budget - 4) :]))


def propose(
    store: Store,
    story: Story,
    loaded: LoadedModel,
    on_progress: Callable[[int], None] | None = None,
) -> list[Node]:
    """Sample settings.count continuations of the story at its cursor and store them.

    Proposal n of the story (counting every proposal ever made in it) uses seed
    base + n, so asking for more never repeats a seed and a story replays the
    same way.
    """
    from marinade.sampling import context_window, sample  # imports torch

    settings = story.settings
    first = settings.seed + story.model_nodes()
    seeds = [first + offset for offset in range(settings.count)]
    check_seed(seeds[-1])
    budget = context_window(loaded.model) - settings.sample_settings().token_cap()
    if budget < 1:
        raise MarinadeError(
            f"--max-new-tokens {settings.max_new_tokens} leaves no room for the story in the "
            f"model's context window of {context_window(loaded.model)} tokens"
        )
    context = fit_context(loaded.tokenizer, story.text(), budget)
    completions = sample(
        loaded.model,
        loaded.tokenizer,
        context,
        seeds,
        [settings.temperature],
        settings.sample_settings(),
        on_progress=on_progress,
        document_start=loaded.document_start,
    )
    now = now_iso()
    rows = []
    for completion in completions:
        # a proposal with no sentence end even past the limit is still offered, as it is:
        # the writer chooses (generate and grids drop such samples)
        text, reason = completion.text, completion.finish_reason
        end = sentence_end(text) if settings.sentence else None
        if end is not None and (end < len(text) or reason == "length"):
            text, reason = text[:end], "sentence"
        rows.append(
            {
                "story_id": story.id,
                "parent_id": story.current_id,
                "text": text,
                "proposed_text": text,
                "author": "model",
                "model": loaded.name,
                "model_hash": loaded.weights_hash,
                "seed": completion.seed,
                "temperature": completion.temperature,
                "finish_reason": reason,
                "chosen": 0,
                "created_at": now,
            }
        )
    stored = store.add_story_nodes(rows)
    new = [Node.from_row(row) for row in stored]
    story.nodes.update((node.id, node) for node in new)
    return new


def choose(store: Store, story: Story, node_id: int, edited_text: str | None = None) -> Node:
    """Take a child of the cursor (a proposal, perhaps edited) into the story; move there."""
    node = story.nodes.get(node_id)
    if node is None or node.parent_id != story.current_id:
        raise MarinadeError(f"node {node_id} is not a proposal at the cursor of story {story.id}")
    if edited_text is not None and edited_text != node.text:
        store.edit_story_node(node.id, edited_text)
        node = replace(node, text=edited_text)
    return _move_to(store, story, node)


def add_own_text(store: Store, story: Story, text: str) -> Node:
    """The user's own continuation: a new child of the cursor, chosen."""
    if not text:
        raise MarinadeError("your text is empty")
    text = join_text(story.text(), text)
    [row] = store.add_story_nodes(
        [
            {
                "story_id": story.id,
                "parent_id": story.current_id,
                "text": text,
                "author": "user",
                "chosen": 0,
                "created_at": now_iso(),
            }
        ]
    )
    return _move_to(store, story, Node.from_row(row))


def go_back(store: Store, story: Story) -> Node:
    """Move the cursor to its parent; the node left becomes a branch not taken."""
    current = story.nodes[story.current_id]
    if current.parent_id is None:
        raise MarinadeError("already at the opening: there is no step to go back")
    return _move_to(store, story, story.nodes[current.parent_id])


def _move_to(store: Store, story: Story, node: Node) -> Node:
    story.nodes[node.id] = node
    story.current_id = node.id
    path = story.path()
    store.set_story_path(story.id, [step.id for step in path], now_iso())
    on_path = {step.id for step in path}
    for key, value in story.nodes.items():
        story.nodes[key] = replace(value, chosen=key in on_path)
    return story.nodes[node.id]


def join_text(before: str, text: str) -> str:
    """Typed text joins the story with one space, unless either side already has whitespace."""
    if before and not before[-1].isspace() and not text[0].isspace() and text[0] not in ",.;:!?)":
        return " " + text
    return text


# export


def export_story(story: Story, export_format: str = "md", tree: bool = False) -> str:
    """The story's text (Markdown or plain), and with `tree`, every branch not taken."""
    if export_format not in EXPORT_FORMATS:
        raise MarinadeError(
            f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {export_format}"
        )
    markdown = export_format == "md"
    parts = [f"# {story.title}\n\n" if markdown else "", story.text().strip("\n"), "\n"]
    if tree:
        branches = _branches(story, markdown)
        if branches:
            heading = "## Branches not taken" if markdown else "Branches not taken"
            parts.append(f"\n---\n\n{heading}\n\n" if markdown else f"\n\n{heading}\n\n")
            parts.append(branches)
    return "".join(parts)


def _branches(story: Story, markdown: bool) -> str:
    """For each step of the path, the other children of the step before it, with their subtrees;
    then the proposals left at the cursor."""
    path = story.path()
    sections = []
    for index, step in enumerate(path):
        children = story.children(step.id)
        taken = path[index + 1].id if index + 1 < len(path) else None
        others = [child for child in children if child.id != taken]
        if not others:
            continue
        where = "the end" if taken is None else f"step {index + 1}"
        context = _tail(story_text_until(path, index))
        header = f"At {where}, after “{context}”:"
        lines = [f"**{header}**" if markdown else header, ""]
        for other in others:
            lines.extend(_subtree(story, other, 0, markdown))
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def story_text_until(path: list[Node], index: int) -> str:
    return "".join(node.text for node in path[: index + 1])


def _tail(text: str, length: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= length else "…" + flat[-length:]


def _subtree(story: Story, node: Node, depth: int, markdown: bool) -> list[str]:
    label = "you" if node.author == "user" else f"seed {node.seed}"
    if node.edited:
        label += ", edited"
    text = " ".join(node.text.split()) or "(nothing: the model ended the text)"
    if markdown:
        line = f"{'  ' * depth}- {_escape_markdown(text)} *({label})*"
    else:
        line = f"{'  ' * (depth + 1)}[{label}] {text}"
    lines = [line]
    for child in story.children(node.id):
        lines.extend(_subtree(story, child, depth + 1, markdown))
    return lines


def _escape_markdown(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)
