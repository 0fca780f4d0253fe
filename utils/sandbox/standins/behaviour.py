"""What a stand-in knows about the model it imitates (:class:`ModelBehaviour`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for annotations only (no import cycle)
    from utils.sandbox.standins.custom import TrainedIndex


@dataclass
class ModelBehaviour:
    """What a stand-in needs to know about the model it imitates."""

    model_id: str  # base model id (for a custom model: its base model's id)
    kind: str = "base"  # "base" | "custom"
    training_pairs: list[tuple[str, str]] = field(default_factory=list)  # (prompt text, answer text)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    name: str = ""
    # What the customization job's training did (``training.TrainingResult.outcome()``), if known.
    training: dict[str, Any] | None = None
    # Retrieval index and learned style of ``training_pairs``; built once per custom model and shared.
    index: TrainedIndex | None = None
