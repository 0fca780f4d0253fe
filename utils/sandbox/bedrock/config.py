"""The sandbox's admin knobs (documented in ``utils/sandbox/README.md``) and their parsing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IDEMPOTENCY_MODES = ("remember", "forget_on_delete")


@dataclass
class Config:
    """The admin knobs (see README)."""

    catalog: str = "current"
    time_scale: float = 1.0
    batch_min_records: int = 100
    legacy_models: dict[str, dict[str, str]] = field(default_factory=dict)
    # How long a clientRequestToken is remembered: for the sandbox's life ("remember"), or
    # until its resource is deleted ("forget_on_delete"). AWS does not document the lifetime.
    idempotency_tokens: str = "remember"
    # Concurrent model customization jobs per account and Region (Service Quotas L-0406044C). 2 is
    # our assumption: AWS's quota page lists the quota, the default we could not confirm.
    concurrent_customization_jobs: int = 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "time_scale": self.time_scale,
            "batch_min_records": self.batch_min_records,
            "legacy_models": dict(self.legacy_models),
            "idempotency_tokens": self.idempotency_tokens,
            "concurrent_customization_jobs": self.concurrent_customization_jobs,
        }


def legacy_knob(value: Any) -> dict[str, dict[str, str]]:
    """The ``legacy_models`` knob: ``{model_id: {dates}}`` or a list of IDs (not a bare string)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = ((m, {}) for m in value)
    else:
        raise ValueError("legacy_models must be an object {model_id: {legacyTime: ...}} or a list of model IDs")
    out: dict[str, dict[str, str]] = {}
    for model_id, dates in items:
        if not isinstance(model_id, str) or not isinstance(dates, dict | type(None)):
            raise ValueError("legacy_models must map model IDs to objects of lifecycle dates")
        out[model_id] = {str(k): str(v) for k, v in (dates or {}).items()}
    return out


def idempotency_knob(value: Any) -> str:
    if value not in IDEMPOTENCY_MODES:
        raise ValueError(f"idempotency_tokens must be one of {', '.join(IDEMPOTENCY_MODES)}")
    return str(value)
