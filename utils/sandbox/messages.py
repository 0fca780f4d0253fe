"""Types shared by the request parsers (``bodies.py``) and the stand-in models (``standins/``).

This module sits at the bottom of the sandbox's import graph: it imports nothing
from the sandbox, so ``bodies`` and ``standins`` both depend on it and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Prompt:
    """A request reduced to what a stand-in model needs."""

    system: str  # joined system text ("" if none)
    messages: list[tuple[str, str]]  # (role, text), role "user" | "assistant"
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] = field(default_factory=list)


@dataclass
class Completion:
    """A stand-in model's answer.

    ``stop_reason`` is normalized to ``end_turn`` | ``max_tokens`` | ``stop_sequence``;
    the body renderers map it to each family's vocabulary. ``stop_sequence`` is the
    matched sequence when ``stop_reason == "stop_sequence"``.
    """

    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    stop_sequence: str | None = None
