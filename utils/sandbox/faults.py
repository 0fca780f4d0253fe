"""Fault injection and rate limits for the sandbox runtime (skeleton)."""

from __future__ import annotations

from typing import Any


class Fault(Exception):
    """An injected service error: ``code``, HTTP ``status`` and ``message``."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


class Faults:
    """Per-model token buckets plus seeded random faults and latency."""

    def configure(self, settings: dict[str, Any]) -> None:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def before_call(self, model_id: str, estimated_tokens: int) -> None:
        raise NotImplementedError

    def malformed_output(self) -> bool:
        raise NotImplementedError

    def latency_seconds(self) -> float:
        raise NotImplementedError
