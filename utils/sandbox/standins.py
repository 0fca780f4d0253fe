"""Deterministic stand-in models for the offline sandbox (skeleton; see README "Stand-in models")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from utils.sandbox.bodies import Prompt


@dataclass
class Completion:
    """A stand-in model's answer. ``stop_reason``: end_turn | max_tokens | stop_sequence."""

    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str


@dataclass
class ModelBehaviour:
    """What a stand-in needs to know about the model it imitates."""

    model_id: str
    kind: str = "base"
    training_pairs: list[tuple[str, str]] = field(default_factory=list)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    name: str = ""


def count_tokens(text: str) -> int:
    """Conservative offline token estimate: ceil(max(words * 4 / 3, chars / 4))."""
    words = len(text.split())
    return -(-max(words * 4, len(text)) // (3 if words * 4 * 4 >= len(text) * 3 else 4)) if text else 0


def generate(prompt: Prompt, behaviour: ModelBehaviour) -> Completion:
    """Answer ``prompt`` deterministically as the model in ``behaviour`` would."""
    raise NotImplementedError


def malformed(completion: Completion) -> Completion:
    """Garble a completion (used when the malformed-output fault fires)."""
    raise NotImplementedError
