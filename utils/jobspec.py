"""What a customization job may ask for, checked before any call.

* :func:`check_hyperparameters`: every hyperparameter of the base model's family, by its API
  name, against the registry's ranges (:data:`utils.models.HYPERPARAMETERS`). Unknown names,
  values outside the range and non-integers for integer parameters are refused with the
  allowed range, instead of a ``ValidationException`` after a round trip.
* :func:`batch_size_advice`: the Claude 3 Haiku batch-size advice by data-set size, for any
  family whose batch size can be chosen.
* :func:`check_customization`: ``FINE_TUNING`` (default), ``CONTINUED_PRE_TRAINING`` and
  ``DISTILLATION``, refused with the reason where the model, region or teacher does not fit.
* :func:`continued_pretraining_records` / :func:`check_continued_pretraining`: Titan
  ``{"input"}`` records from reference documents, over-long records refused first.

The hyperparameter ranges were checked against AWS's pages on 2026-12-06:
Nova https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html,
Llama 3.1 https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama31.html,
Titan Text https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-titan-text.html,
Claude 3 https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-anth-claude-3.html.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from utils import models

FINE_TUNING = "FINE_TUNING"
CONTINUED_PRE_TRAINING = "CONTINUED_PRE_TRAINING"
DISTILLATION = "DISTILLATION"
CUSTOMIZATION_TYPES = (FINE_TUNING, CONTINUED_PRE_TRAINING, DISTILLATION)

HYPERPARAMETER_PAGES: dict[str, str] = {
    "nova": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html",
    "nova2": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html",
    "llama3.1": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama31.html",
    "llama3.2": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama32.html",
    # No page of its own: our assumption is that Llama 3.3 takes the Llama 3.1 values (uncertain).
    "llama3.3": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama31.html",
    "llama2": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-meta-llama2.html",
    "titan": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-titan-text.html",
    "claude3": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-anth-claude-3.html",
    "cohere": "https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-cohere-command.html",
}
ASSUMED_FAMILIES = {"llama3.3": "Llama 3.3 has no hyperparameter page; the Llama 3.1 ranges are our assumption"}


class JobSpecError(ValueError):
    """A job setting Bedrock would reject; the message says what, where, and the fix."""


def _number(value: Any) -> str:
    if isinstance(value, float) and (abs(value) < 1e-3 or abs(value) >= 1e4) and value != 0:
        return f"{value:.0e}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_range(hp: models.HyperParameter) -> str:
    kind = "whole number" if hp.kind is int else "number"
    if hp.minimum == hp.maximum:
        return f"{hp.name}: fixed at {_number(hp.kind(hp.minimum))}"
    return f"{hp.name}: {kind} {_number(hp.kind(hp.minimum))}..{_number(hp.kind(hp.maximum))}"


def allowed(base_model: str) -> str:
    """Every hyperparameter of the family with its range, one line each (for messages)."""
    return "; ".join(describe_range(hp) for hp in models.hyperparameters(base_model))


def _parse(name: str, value: Any, hp: models.HyperParameter, base_model: str) -> float:
    if isinstance(value, bool):
        raise JobSpecError(f"{name}={value!r}: a boolean is not a number. Allowed for {base_model}: {describe_range(hp)}.")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range (e.g. 10**400)
        number = math.inf
    except (TypeError, ValueError):
        raise JobSpecError(f"{name}={value!r} is not a number. Allowed for {base_model}: {describe_range(hp)}.") from None
    if math.isnan(number) or math.isinf(number):
        raise JobSpecError(f"{name}={value!r} is not a finite number. Allowed: {describe_range(hp)}.")
    if hp.kind is int and not number.is_integer():
        raise JobSpecError(
            f"{name}={value!r} must be a whole number for {base_model} (it is not rounded for you). "
            f"Allowed: {describe_range(hp)}."
        )
    return number


def check_hyperparameters(base_model: str, overrides: Mapping[str, Any] | None = None,
                          **more: Any) -> dict[str, str]:
    """The family's defaults with ``overrides`` applied, as the strings the API expects.

    ``None`` values keep the default. Raises :class:`JobSpecError` naming the allowed
    range (or the allowed names) before any call.
    """
    specs = {hp.name: hp for hp in models.hyperparameters(base_model)}
    values = models.default_hyperparameters(base_model)
    for name, value in {**(overrides or {}), **more}.items():
        if value is None:
            continue
        if name not in specs:
            raise JobSpecError(
                f"{name} is not a hyperparameter of {base_model} ({models.family_of(base_model)} family). "
                f"Allowed: {allowed(base_model)}."
            )
        hp = specs[name]
        number = _parse(name, value, hp, base_model)
        if not hp.minimum <= number <= hp.maximum:
            raise JobSpecError(
                f"{name}={_number(value) if not isinstance(value, str) else value} is out of range for "
                f"{base_model}. Allowed: {describe_range(hp)}."
            )
        values[name] = str(int(number)) if hp.kind is int else repr(float(number))
    return values


def hyperparameter_table(base_model: str, values: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per hyperparameter: name, value, default, min, max, type, source page."""
    family = models.family_of(base_model)
    page = HYPERPARAMETER_PAGES.get(family, "")
    return [
        {"name": hp.name, "value": values.get(hp.name), "default": _number(hp.kind(hp.default)),
         "min": _number(hp.kind(hp.minimum)), "max": _number(hp.kind(hp.maximum)),
         "type": hp.kind.__name__, "source": page + (" (assumed)" if family in ASSUMED_FAMILIES else "")}
        for hp in models.hyperparameters(base_model)
    ]


# --------------------------------------------------------------------------------------
# Batch size advice
# --------------------------------------------------------------------------------------

# Claude 3 Haiku batch size by training records, from AWS's best-practice post
# (https://aws.amazon.com/blogs/machine-learning/best-practices-and-lessons-for-fine-tuning-anthropics-claude-3-haiku-on-amazon-bedrock/).
BATCH_SIZE_ADVICE = ((1000, (32, 64)), (500, (16, 32)), (0, (4, 16)))


def batch_size_advice(records: int) -> tuple[int, int]:
    """The advised batch-size range: > 1,000 records 32-64; 500-1,000 16-32; < 500 4-16."""
    if records < 0:
        raise JobSpecError(f"records must be >= 0, got {records}.")
    if records > 1000:
        return BATCH_SIZE_ADVICE[0][1]
    if records >= 500:
        return BATCH_SIZE_ADVICE[1][1]
    return BATCH_SIZE_ADVICE[2][1]


def batch_size_note(base_model: str, records: int, chosen: int | str | None) -> str:
    """A sentence placing the chosen batch size next to the advice, or why there is nothing to choose."""
    spec = {hp.name: hp for hp in models.hyperparameters(base_model)}.get("batchSize")
    if spec is None:
        return f"{base_model} has no batchSize hyperparameter: Bedrock chooses the batch."
    if spec.minimum == spec.maximum:
        return f"{base_model} fixes batchSize at {int(spec.minimum)}: there is nothing to choose."
    low, high = batch_size_advice(records)
    low, high = max(low, int(spec.minimum)), min(high, int(spec.maximum))
    value = int(float(chosen)) if chosen is not None else int(spec.default)
    verdict = "within" if low <= value <= high else "outside"
    return (f"batchSize {value} is {verdict} the advised {low}-{high} for {records:,} training records "
            "(Claude 3 Haiku advice: > 1,000 records 32-64; 500-1,000 16-32; < 500 4-16).")


# --------------------------------------------------------------------------------------
# Customization types
# --------------------------------------------------------------------------------------

# Teacher -> students and region, from https://docs.aws.amazon.com/bedrock/latest/userguide/prequisites-model-distillation.html
# (checked 2026-12-06). "profile_only": the teacher is accepted only through its system-defined
# inference profile (the Llama 3.3 70B on-demand ID is profile-only).
@dataclass(frozen=True)
class DistillationPair:
    teacher: str  # registry key
    students: tuple[str, ...]  # registry keys
    region: str
    profile_only: bool = False


DISTILLATION_PAIRS: tuple[DistillationPair, ...] = (
    DistillationPair("nova-pro", ("nova-lite", "nova-micro"), "us-east-1"),
    DistillationPair("llama3-1-70b", ("llama3-1-8b",), "us-west-2"),
    DistillationPair("llama3-3-70b", ("llama3-1-8b",), "us-west-2", profile_only=True),
)


def supported_customizations(base_model: str, *, region: str | None = None, client: Any = None) -> list[str]:
    """``customizationsSupported`` of the base model in the catalog (``GetFoundationModel``)."""
    from utils import aws

    bedrock = client or aws.client("bedrock", region)
    details = bedrock.get_foundation_model(modelIdentifier=base_model)["modelDetails"]
    return list(details.get("customizationsSupported") or [])


def _teacher_spec(teacher: str) -> tuple[models.ModelSpec, bool]:
    """(registry entry, whether ``teacher`` names an inference profile)."""
    spec = models.get(teacher)
    return spec, teacher != spec.model_id and teacher != spec.key and teacher in {
        spec.profile_id(p) for p in spec.profile_prefixes}


def check_customization(base_model: str, customization_type: str = FINE_TUNING, *, region: str,
                        teacher: str | None = None, supported: Sequence[str] | None = None) -> None:
    """Refuse a customization type that cannot work for this model, region and teacher.

    ``supported`` is the catalog's ``customizationsSupported`` for ``base_model`` (see
    :func:`supported_customizations`); when given, the type must be listed there.
    """
    if customization_type not in CUSTOMIZATION_TYPES:
        raise JobSpecError(f"customization_type={customization_type!r}: choose one of {', '.join(CUSTOMIZATION_TYPES)}.")
    if supported is not None and customization_type not in supported:
        raise JobSpecError(
            f"{base_model} in {region} does not list {customization_type} in customizationsSupported "
            f"(it lists {', '.join(supported) or 'nothing'}). Choose a listed type or another base model."
        )
    family = models.family_of(base_model)
    if customization_type == CONTINUED_PRE_TRAINING and family != "titan":
        raise JobSpecError(
            f"CONTINUED_PRE_TRAINING is offered for Amazon Titan Text Express/Lite, not {base_model}. "
            "Use FINE_TUNING, or a Titan Text base model."
        )
    if customization_type != DISTILLATION:
        if teacher:
            raise JobSpecError(f"distillation_teacher={teacher!r} is only used with DISTILLATION, not {customization_type}: "
                               "leave it \"\" (03's synthetic-data teacher is its own parameter, `teacher`).")
        return
    if not teacher:
        raise JobSpecError("DISTILLATION needs a teacher model: set distillation_teacher (e.g. \"nova-pro\", "
                           "the registry key of Nova Pro, for a Nova Lite or Micro student in us-east-1).")
    try:
        student_key = models.get(base_model).key
        teacher_spec, via_profile = _teacher_spec(teacher)
    except KeyError as err:
        raise JobSpecError(f"DISTILLATION: {err.args[0]}") from None
    pairs = [p for p in DISTILLATION_PAIRS if p.teacher == teacher_spec.key]
    pair = next((p for p in pairs if student_key in p.students), None)
    if pair is None:
        documented = "; ".join(f"{p.teacher} -> {', '.join(p.students)} in {p.region}" for p in DISTILLATION_PAIRS)
        raise JobSpecError(
            f"{teacher_spec.name} cannot teach {base_model}: not a documented distillation pair. Pairs: {documented}."
        )
    if region != pair.region:
        raise JobSpecError(f"Distilling {teacher_spec.key} -> {student_key} runs in {pair.region}, not {region}: "
                           f"run the workshop in {pair.region} (01's `region`).")
    if pair.profile_only and not via_profile:
        raise JobSpecError(
            f"The {teacher_spec.name} teacher is accepted only through its system-defined inference profile: "
            f"use distillation_teacher={teacher_spec.profile_id()!r}, not {teacher!r}."
        )


def teacher_identifier(teacher: str) -> str:
    """The ID Bedrock takes for a teacher: a registry key (``nova-pro``) becomes its model ID.

    ``teacherModelIdentifier`` must be a model ID, a foundation-model ARN or an inference-profile
    ARN (its pattern in https://docs.aws.amazon.com/bedrock/latest/APIReference/API_TeacherModelConfig.html);
    a registry key would reach the service as it is and fail there. Other values pass unchanged.
    """
    try:
        spec = models.get(teacher)
    except KeyError:
        return teacher
    return spec.model_id if teacher == spec.key else teacher


def customization_config(teacher: str, max_response_length: int | None = None) -> dict[str, Any]:
    """``customizationConfig`` for a DISTILLATION job (API_DistillationConfig / TeacherModelConfig)."""
    teacher_config: dict[str, Any] = {"teacherModelIdentifier": teacher_identifier(teacher)}
    if max_response_length:
        teacher_config["maxResponseLengthForInference"] = int(max_response_length)
    return {"distillationConfig": {"teacherModelConfig": teacher_config}}


# --------------------------------------------------------------------------------------
# Continued pre-training records (Titan)
# --------------------------------------------------------------------------------------

# Titan per-record token limits by batch size, from
# https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-prepare.html
# (Express: 4,096 at batch 1, 2,048 at 2-4; Lite: 4,096 at 1-2, 2,048 at 3-6).
_TITAN_LIMITS = {"express": ((1, 4096), (4, 2048)), "lite": ((2, 4096), (6, 2048))}


def token_limit(base_model: str, batch_size: int = 1) -> int:
    """Per-record token limit of a Titan Text base model at this batch size."""
    variant = "lite" if "lite" in base_model else "express"
    for largest_batch, limit in _TITAN_LIMITS[variant]:
        if batch_size <= largest_batch:
            return limit
    raise JobSpecError(
        f"batchSize {batch_size} has no documented record limit for {base_model}; "
        f"use at most {_TITAN_LIMITS[variant][-1][0]}."
    )


def continued_pretraining_records(documents: Iterable[str], base_model: str, batch_size: int = 1) -> list[dict[str, str]]:
    """``{"input": text}`` records from reference documents, split on blank lines to fit the token limit."""
    from utils.validate_dataset import estimate_tokens

    limit = token_limit(base_model, batch_size)
    records: list[dict[str, str]] = []
    for document in documents:
        chunk = ""
        for paragraph in (p.strip() for p in document.split("\n\n")):
            if not paragraph:
                continue
            candidate = f"{chunk}\n\n{paragraph}" if chunk else paragraph
            if chunk and estimate_tokens(candidate) > limit:
                records.append({"input": chunk})
                candidate = paragraph
            chunk = candidate
        if chunk:
            records.append({"input": chunk})
    return records


def check_continued_pretraining(records: Sequence[Mapping[str, Any]], base_model: str, batch_size: int = 1) -> None:
    """Refuse records that are not ``{"input": text}`` or exceed the token limit, before any upload."""
    from utils.validate_dataset import estimate_tokens

    limit = token_limit(base_model, batch_size)
    problems = []
    for line, record in enumerate(records, start=1):
        if set(record) != {"input"} or not isinstance(record["input"], str) or not record["input"].strip():
            problems.append(f"line {line}: expected {{\"input\": \"<text>\"}}, got keys {sorted(record)}")
            continue
        tokens = estimate_tokens(record["input"])
        if tokens > limit:
            problems.append(f"line {line}: about {tokens:,} tokens, over the {limit:,}-token limit at batchSize {batch_size}")
    if not records:
        problems.append("no records")
    if problems:
        raise JobSpecError(
            "Continued pre-training data would fail the job (after it has started and billed): "
            + "; ".join(problems[:10]) + ". Split long documents or lower batchSize."
        )
