"""Parse and render InvokeModel bodies and Converse requests (skeleton)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from utils.sandbox.standins import Completion


class BodyError(ValueError):
    """A malformed request; the message becomes a ValidationException message."""


@dataclass
class Prompt:
    """A request reduced to what a stand-in model needs."""

    system: str
    messages: list[tuple[str, str]]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] = field(default_factory=list)


def parse_invoke_body(body_family: str, raw: bytes) -> Prompt:
    """Parse an InvokeModel body of ``body_family`` (anthropic|nova|llama|titan)."""
    raise NotImplementedError


def render_invoke_body(body_family: str, completion: Completion, model_name: str) -> dict[str, Any]:
    """Render a completion as ``body_family``'s InvokeModel response body."""
    raise NotImplementedError


def parse_converse(request: dict[str, Any]) -> Prompt:
    """Parse a Converse request body."""
    raise NotImplementedError


def render_converse(completion: Completion, latency_ms: int) -> dict[str, Any]:
    """Render a completion as a Converse response."""
    raise NotImplementedError
