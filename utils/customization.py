"""Model customization jobs: build the request, create it once, watch it, read its metrics.

Billing happens when a job is created, so notebooks call
:func:`utils.costs.guard` with an estimate before :func:`ensure_job`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from utils import aws, models
from utils.state import tag_list


class JobFailed(RuntimeError):
    """A customization job ended without a model; the message is Bedrock's failureMessage."""


@dataclass(frozen=True)
class JobPlan:
    """Everything needed to create one customization job (pure data, testable)."""

    job_name: str
    model_name: str
    base_model: str  # customization ID from utils.models (ModelSpec.customization_id)
    role_arn: str
    training_uri: str
    validation_uri: str | None
    output_uri: str
    hyperparameters: dict[str, str]
    workshop_id: str
    customization_type: str = "FINE_TUNING"
    kms_key_id: str | None = None  # customer managed KMS key for the custom model (customModelKmsKeyId)
    customization_config: dict[str, Any] | None = None  # DISTILLATION: utils.jobspec.customization_config

    def request(self) -> dict[str, Any]:
        """Keyword arguments for ``create_model_customization_job``.

        The job name doubles as the idempotency token: a create that botocore retries
        after a timeout returns the same job instead of failing on the name.
        """
        request: dict[str, Any] = {
            "jobName": self.job_name,
            "clientRequestToken": self.job_name,
            "customModelName": self.model_name,
            "roleArn": self.role_arn,
            "baseModelIdentifier": self.base_model,
            "customizationType": self.customization_type,
            "trainingDataConfig": {"s3Uri": self.training_uri},
            "outputDataConfig": {"s3Uri": self.output_uri},
            "hyperParameters": dict(self.hyperparameters),
            "jobTags": tag_list(self.workshop_id, key="key", value="value"),
            "customModelTags": tag_list(self.workshop_id, key="key", value="value"),
        }
        if self.customization_config:
            request["customizationConfig"] = self.customization_config
        if self.validation_uri:
            request["validationDataConfig"] = {"validators": [{"s3Uri": self.validation_uri}]}
        if self.kms_key_id:
            # https://docs.aws.amazon.com/bedrock/latest/userguide/encryption-custom-job.html
            request["customModelKmsKeyId"] = self.kms_key_id
        return request


def fingerprint(base_model: str, hyperparameters: dict[str, str], training_data: bytes,
                validation_data: bytes = b"", customization_type: str = "FINE_TUNING") -> str:
    """8 hex characters that change whenever the job would train something different.

    Names built from it are deterministic (a rerun finds its job) yet never reuse a job
    trained on other data or settings.
    """
    digest = hashlib.sha256()
    for part in (base_model, customization_type, json.dumps(hyperparameters, sort_keys=True)):
        digest.update(part.encode() + b"\0")
    digest.update(hashlib.sha256(training_data).digest() + hashlib.sha256(validation_data).digest())
    return digest.hexdigest()[:8]


def hyperparameters_for(base_model: str, **overrides: float | int | str | None) -> dict[str, str]:
    """The family's defaults with overrides applied and range-checked before any call.

    Raises ``ValueError`` naming the allowed range, the message Bedrock would give
    as a ``ValidationException`` only after a round trip.
    """
    specs = {hp.name: hp for hp in models.hyperparameters(base_model)}
    values = models.default_hyperparameters(base_model)
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in specs:
            raise ValueError(
                f"{name} is not a hyperparameter of {base_model}; allowed: {', '.join(specs)}"
            )
        # A whole number where one is declared (epochCount=3.7 is refused, not truncated to 3).
        values[name] = specs[name].api_value(value, base_model)
    return values


# AWS's guidance for Nova warm-up on small datasets: "set the warmup steps by dividing the
# dataset size by 640 for Amazon Nova Micro, 160 for Amazon Nova Lite and 320 for Amazon Nova Pro"
# (https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html). Rounding to the
# nearest step is our assumption; the result is clamped to the API's range (0-100).
WARMUP_DIVISORS = {"nova-micro": 640, "nova-lite": 160, "nova-pro": 320}
WARMUP = "learningRateWarmupSteps"


def recommended_warmup_steps(base_model: str, training_records: int) -> int | None:
    """AWS's recommended ``learningRateWarmupSteps`` for a Nova model and dataset size, else None."""
    try:
        key = models.get(base_model).key
    except KeyError:
        return None
    divisor = WARMUP_DIVISORS.get(key)
    spec = next((hp for hp in models.hyperparameters(base_model) if hp.name == WARMUP), None)
    if divisor is None or spec is None:
        return None
    steps = int(training_records / divisor + 0.5)
    return int(min(max(steps, spec.minimum), spec.maximum))


def plan_hyperparameters(
    base_model: str, training_records: int, **overrides: float | int | None,
) -> tuple[dict[str, str], dict[str, str]]:
    """``(hyperparameters, where each value came from)`` for a job on ``training_records`` records.

    Explicit overrides win; otherwise Nova's warm-up follows AWS's small-dataset guidance
    (:func:`recommended_warmup_steps`), since the default of 10 steps on a few dozen records
    means the learning rate may never reach its set value; everything else keeps the
    family's default.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    sources = {hp.name: ("your value" if hp.name in given else "default") for hp in models.hyperparameters(base_model)}
    warmup = recommended_warmup_steps(base_model, training_records)
    if warmup is not None and WARMUP not in given:
        given[WARMUP] = warmup
        divisor = WARMUP_DIVISORS[models.get(base_model).key]
        sources[WARMUP] = f"AWS guidance: {training_records} records / {divisor}, rounded"
    return hyperparameters_for(base_model, **given), sources


def same_hyperparameters(stored: dict[str, Any], planned: dict[str, Any]) -> bool:
    """True when both name the same hyperparameters with numerically equal values.

    Bedrock echoes the strings it stored, which need not be ours character for character
    ("1e-05" for "1.0e-05", "2.0" for "2"), so values are compared as numbers, key by key.
    """
    if set(stored) != set(planned):
        return False
    for key, value in planned.items():
        try:
            if not math.isclose(float(stored[key]), float(value), rel_tol=1e-9, abs_tol=0.0):
                return False
        except (TypeError, ValueError):
            if str(stored[key]).strip() != str(value).strip():
                return False
    return True


def find_job(name: str, *, region: str | None = None, client: Any = None) -> dict[str, Any] | None:
    """The job with this name, or None (Get accepts the name)."""
    bedrock = client or aws.client("bedrock", region)
    try:
        return bedrock.get_model_customization_job(jobIdentifier=name)
    except ClientError as err:
        if aws.is_not_found(err):
            return None
        raise


def ensure_job(plan: JobPlan, *, region: str | None = None, client: Any = None) -> tuple[str, bool]:
    """Create the job unless one with the same deterministic name exists. Returns (ARN, created).

    A rerun finds the earlier job by name, so it never trains (or bills) twice. An
    earlier job that failed, was stopped, or whose model has since been deleted is
    not reused silently: the error says what to change.
    """
    bedrock = client or aws.client("bedrock", region)
    existing = find_job(plan.job_name, client=bedrock)
    if existing is None:
        return bedrock.create_model_customization_job(**plan.request())["jobArn"], True
    status = existing["status"]
    if status in ("Failed", "Stopped"):
        raise JobFailed(
            f"Job {plan.job_name} already exists and ended {status}: "
            f"{existing.get('failureMessage', 'no failureMessage')}. Job records cannot be deleted; "
            "fix the cause (the data or the settings change the job's name) and rerun."
        )
    if status == "Completed":
        try:
            bedrock.get_custom_model(modelIdentifier=existing["outputModelArn"])
        except ClientError as err:
            if not aws.is_not_found(err):
                raise
            raise JobFailed(
                f"Job {plan.job_name} completed earlier, but its custom model was deleted (07_cleanup). "
                "Rerun from 01_permissions after cleanup, or use a new workshop_id."
            ) from err
    return existing["jobArn"], False


def wait_for_job(
    job: str,
    *,
    timeout_s: float = 6 * 3600,
    poll_s: float = 60,
    region: str | None = None,
    client: Any = None,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll until the job completes. Raises JobFailed (with Bedrock's failureMessage) or TimeoutError."""
    bedrock = client or aws.client("bedrock", region)
    try:
        return aws.poll_until(
            lambda: bedrock.get_model_customization_job(jobIdentifier=job), "Completed",
            failed=("Failed", "Stopped"), timeout_s=timeout_s, poll_s=poll_s, on_poll=on_poll,
        )
    except RuntimeError as err:  # a Failed or Stopped status; TimeoutError passes through
        raise JobFailed(f"Job {job} ended. {err}") from err


def job_id(job_arn: str) -> str:
    """The 12-character ID at the end of a job ARN."""
    return job_arn.rsplit("/", 1)[-1]


def metrics_keys(output_uri: str, job_arn: str) -> tuple[str, str]:
    """(bucket, prefix) of the job's artifacts: ``<output>/model-customization-job-<id>/``."""
    without_scheme = output_uri.removeprefix("s3://").rstrip("/")
    bucket, _, prefix = without_scheme.partition("/")
    folder = f"model-customization-job-{job_id(job_arn)}/"
    return bucket, f"{prefix}/{folder}" if prefix else folder


def read_metrics(
    output_uri: str, job_arn: str, *, region: str | None = None, client: Any = None
) -> dict[str, pd.DataFrame]:
    """Training and validation metric CSVs as DataFrames (empty ones if not written yet).

    The validation file's folder is not the same in every AWS example
    (https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-analyze.html), so any
    ``validation_metrics.csv`` under ``validation_artifacts/`` is accepted.
    """
    s3 = client or aws.client("s3", region)
    bucket, prefix = metrics_keys(output_uri, job_arn)
    frames = {"training": pd.DataFrame(), "validation": pd.DataFrame()}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("training_artifacts/step_wise_training_metrics.csv"):
                target = "training"
            elif "validation_artifacts/" in key and key.endswith("validation_metrics.csv"):
                target = "validation"
            else:
                continue
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            frames[target] = pd.read_csv(io.BytesIO(body))
    return frames


def plot_loss(frames: dict[str, pd.DataFrame], title: str = "Loss"):
    """Training loss per step with validation loss on top; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    training = frames.get("training", pd.DataFrame())
    validation = frames.get("validation", pd.DataFrame())
    if not training.empty:
        ax.plot(training["step_number"], training["training_loss"], label="training loss")
    if not validation.empty:
        ax.plot(validation["step_number"], validation["validation_loss"], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def early_stopping(losses: Sequence[float], threshold: float, patience: int) -> tuple[int, int]:
    """Where early stopping ends a run, and which epoch's checkpoint is best.

    ``losses`` are per-epoch validation losses (epoch 1 first). An epoch *improves* when the lowest loss of
    all earlier epochs minus its loss is greater than ``threshold`` (the first epoch always improves).
    Training stops after ``patience`` consecutive non-improving epochs, or when the losses run out.
    Returns ``(stopped_epoch, best_epoch)``, both 1-based; ``best_epoch`` is the earliest epoch with the
    lowest loss among the epochs run. These are the semantics of Bedrock's ``earlyStoppingThreshold`` and
    ``earlyStoppingPatience`` for Claude 3 Haiku as AWS explains them with a 7-epoch example
    (https://aws.amazon.com/blogs/machine-learning/best-practices-and-lessons-for-fine-tuning-anthropics-claude-3-haiku-on-amazon-bedrock/).

    Differences are rounded to 12 decimals before the comparison, so ``0.9 - 0.8`` counts as ``0.1``.
    """
    values = [float(x) for x in losses]
    if not values:
        raise ValueError("early_stopping needs at least one validation loss (epoch 1).")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}.")
    if isinstance(patience, bool) or int(patience) != patience or patience < 1:
        raise ValueError(f"patience must be a whole number >= 1, got {patience!r}.")
    lowest = math.inf
    waited = 0
    stopped = len(values)
    for epoch, loss in enumerate(values, start=1):
        # min() of no earlier epochs is +inf, so a finite first loss improves; inf - inf and NaN never do
        improves = round(lowest - loss, 12) > threshold
        waited = 0 if improves else waited + 1
        if not math.isnan(loss):
            lowest = min(lowest, loss)
        if waited >= patience:
            stopped = epoch
            break
    run = values[:stopped]
    finite = [x for x in run if not math.isnan(x)]
    best = run.index(min(finite)) + 1 if finite else 1
    return stopped, best
