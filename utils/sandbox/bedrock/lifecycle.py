"""Every emulated lifecycle, declared in one place: statuses and their durations.

Durations are seconds at ``time_scale`` 1.0. Customization and batch jobs multiply every phase,
a stop included, by the scale in force when they were created; PTs and deployments use the scale
in force at each create or update request. Families never write a duration literal: they ask a
:class:`Transition` when it is due, or a :class:`Phases` where each phase ends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Transition:
    """``source -> target`` after ``seconds`` (× time_scale)."""

    source: str
    target: str
    seconds: float

    def due(self, since: float, scale: float) -> float:
        return since + self.seconds * scale


@dataclass(frozen=True)
class Phases:
    """Consecutive named phases of fixed duration; the last phase may run longer (``extra``)."""

    phases: tuple[tuple[str, float], ...]

    def ends(self, start: float, scale: float, extra: float = 0.0) -> tuple[float, ...]:
        """End time of each phase, for a resource that started at ``start``."""
        out, at = [], start
        for index, (_, seconds) in enumerate(self.phases):
            at += (seconds + (extra if index == len(self.phases) - 1 else 0.0)) * scale
            out.append(at)
        return tuple(out)

    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.phases)


# ---- model customization jobs -----------------------------------------------------------------
# validation (the asynchronous checks run at its end), then data processing, then training.
CUSTOMIZATION = Phases((("validationDetails", 0.3), ("dataProcessingDetails", 0.3)))


def training_seconds(steps_run: int, steps_planned: int) -> float:
    """Training phase length: 1.4 s plus up to 2 s for big jobs, shortened by early stopping."""
    planned = max(1, steps_planned)
    return (1.4 + 2.0 * min(1.0, planned / 20000.0)) * steps_run / planned


JOB_STOP = Transition("Stopping", "Stopped", 0.3)

# ---- batch inference jobs ---------------------------------------------------------------------
# Submitted -> Validating -> Scheduled -> InProgress, then a result; InProgress lasts 0.4 s plus
# up to 2 s (1 s per 1000 records).
BATCH = Phases((("Submitted", 0.2), ("Validating", 0.2), ("Scheduled", 0.2), ("InProgress", 0.4)))


def batch_extra_seconds(records: int) -> float:
    return min(2.0, records / 1000.0)


BATCH_STOP = Transition("Stopping", "Stopped", 0.3)

# ---- serving ----------------------------------------------------------------------------------
PT_CREATE = Transition("Creating", "InService", 1.0)
PT_UPDATE = Transition("Updating", "InService", 1.0)
DEPLOYMENT_CREATE = Transition("Creating", "Active", 1.0)
# ``updateDetails.updateStatus``; the deployed model changes when the update completes (our
# assumption: AWS does not document when traffic switches).
DEPLOYMENT_UPDATE = Transition("Updating", "UpdateCompleted", 1.0)

# ---- Custom Model Import ----------------------------------------------------------------------
IMPORT_JOB = Transition("InProgress", "Completed", 1.0)  # or Failed, when the S3 folder breaks a rule

# ---- model evaluation jobs --------------------------------------------------------------------
# InProgress: the checks (role, output permission, data set) at the end of the first phase, the
# scoring at the end of the second, which lasts 0.4 s plus up to 2 s (1 s per 500 prompts).
EVALUATION = Phases((("checks", 0.2), ("scoring", 0.4)))


def evaluation_extra_seconds(prompts: int) -> float:
    return min(2.0, prompts / 500.0)


EVALUATION_STOP = Transition("Stopping", "Stopped", 0.3)
EVALUATION_DELETE = Transition("Deleting", "deleted", 0.3)  # BatchDeleteEvaluationJob; then the job is gone
