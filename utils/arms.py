"""The seeds' four-arm experiment: base, FT-N, FT-4N and FT-N+3N synthetic.

The comparison published by AWS (fine-tuning with synthetic data, 2025) trains one model on N
originals, one on 4N originals and one on N originals plus 3N teacher-written pairs (three per
original), and compares them with the base model. This module plans the arms' training data,
submits their jobs concurrently up to the account's concurrent-customization-job quota (the
rest wait in a queue), watches them all with one log line per status change, and summarises
each arm's loss curves.

Arm names are fixed: ``base``, ``ft_n``, ``ft_4n``, ``ft_n_3n``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from utils import aws, customization, models
from utils.jobspec import JobSpecError

ARMS = ("base", "ft_n", "ft_4n", "ft_n_3n")
TRAINED_ARMS = ARMS[1:]
LABELS = {"base": "base model", "ft_n": "FT-N", "ft_4n": "FT-4N", "ft_n_3n": "FT-N+3N synthetic"}
SYNTHETIC_PER_ORIGINAL = 3

# Service Quotas code of "Concurrent model customization jobs" (the code the sandbox and
# utils.preflight use). When it cannot be read we assume 2: our assumption, the real
# default is unconfirmed.
CONCURRENT_JOBS_QUOTA = "L-0406044C"
DEFAULT_CONCURRENT_JOBS = 2

# Minimum records per job, from https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-prepare.html
# Llama counts training + validation records. Nova: 8 is the aws-samples validator's floor
# (uncertain; AWS recommends at least 100 per task).
MIN_RECORDS: dict[str, tuple[int, bool]] = {  # family -> (minimum, validation records count too)
    "llama3.1": (100, True), "llama3.2": (100, True), "llama3.3": (100, True),
    "claude3": (32, False), "nova": (8, False), "nova2": (8, False),
}

ACTIVE = ("InProgress", "Stopping")
ENDED = ("Completed", "Failed", "Stopped")

# failureMessage fragments -> the likely fix (messages as AWS's troubleshooting page quotes
# them: https://docs.aws.amazon.com/bedrock/latest/userguide/fine-tuning-troubleshooting.html).
FIXES: tuple[tuple[str, str], ...] = (
    ("GetObject permissions", "Give the customization role s3:GetObject and s3:ListBucket on the training data (01_permissions); "
     "keep the bucket in the job's Region, trust bedrock.amazonaws.com, and allow kms:Decrypt if the bucket uses a customer managed key."),
    ("PutObject", "Give the customization role s3:PutObject on the output prefix (01_permissions)."),
    ("conform to JSONL", "Every line of the data file must be one JSON object with no blank lines: rerun 02 and check its validator."),
    ("must follow", "The records have the wrong keys for this model: rerun 02 with the right base_model."),
    ("Input size exceeded", "A record is too long: shorten the longest records or drop them (02 shows token lengths)."),
    ("token count", "A record exceeds the model's token limit: shorten or split the longest records."),
    ("token length", "A record exceeds the model's token limit: shorten or split the longest records."),
    ("license terms", "Anthropic's screening flagged the data: contact AWS Support."),
    ("unexpected error", "An internal error in Bedrock. Job records cannot be deleted, so a rerun with the same data and "
     "settings finds this failed job again: to retry, change a setting that enters the job's name (for example "
     "warmup_steps) or the workshop_id; if it recurs, contact AWS Support with the job ARN."),
)


def likely_fix(message: str | None) -> str:
    """The likely fix for a job's failureMessage, or a generic pointer."""
    for fragment, fix in FIXES:
        if message and fragment.lower() in message.lower():
            return fix
    return "Read the failureMessage; fix the data or settings it names and rerun (a new name is derived)."


def parse_arms(arms: str | Sequence[str]) -> list[str]:
    """``"all"``, ``""`` or a comma-separated list -> arm names in the fixed order."""
    names = [a.strip() for a in (arms.split(",") if isinstance(arms, str) else arms) if a.strip()]
    if not names or names == ["all"]:
        return list(ARMS)
    unknown = [a for a in names if a not in ARMS]
    if unknown:
        raise JobSpecError(f"arms: unknown {unknown}; choose from {', '.join(ARMS)} (or \"all\").")
    return [a for a in ARMS if a in names]


def choose_arms(arms: str | Sequence[str], use_synthetic: bool = True) -> list[str]:
    """The arms to run: :func:`parse_arms`, less ft_n_3n when ``use_synthetic`` is False.

    ``arms`` naming ft_n_3n explicitly while ``use_synthetic`` is False is a contradiction, refused
    rather than resolved silently (the arm would not run).
    """
    chosen = parse_arms(arms)
    if use_synthetic:
        return chosen
    explicit = not (isinstance(arms, str) and arms.strip() in ("", "all"))
    if explicit and "ft_n_3n" in chosen:
        raise JobSpecError("arms names ft_n_3n, which trains on 03's synthetic pairs, but use_synthetic=False: "
                           "drop ft_n_3n from arms, or set use_synthetic=True.")
    return [arm for arm in chosen if arm != "ft_n_3n"]


def without_missing_synthetic(chosen: Sequence[str], synthetic: Sequence[Any], arms: str | Sequence[str]) -> list[str]:
    """``chosen`` less FT-N+3N when 03 has written no synthetic pairs and the arms were not named explicitly.

    With ``arms="all"`` (the default) a run whose 03 generated nothing (for example 03 left at
    ``confirm_spend=False``) drops that arm and says so; an explicit ``ft_n_3n`` still gets
    :func:`build_arm_data`'s refusal, so nobody asks for the arm and silently trains without it.
    """
    explicit = not (isinstance(arms, str) and arms.strip() in ("", "all"))
    if "ft_n_3n" in chosen and not synthetic and not explicit:
        print("ft_n_3n dropped: 03 has written no synthetic pairs yet (rerun 03 with confirm_spend=True to add this arm).")
        return [arm for arm in chosen if arm != "ft_n_3n"]
    return list(chosen)


def arm_sizes(arm: str, n_originals: int) -> tuple[int, int]:
    """(original records, synthetic records) an arm trains on."""
    return {"base": (0, 0), "ft_n": (n_originals, 0), "ft_4n": (4 * n_originals, 0),
            "ft_n_3n": (n_originals, SYNTHETIC_PER_ORIGINAL * n_originals)}[arm]


@dataclass
class ArmData:
    arm: str
    originals: list[dict[str, Any]]
    synthetic: list[dict[str, Any]] = field(default_factory=list)
    wanted_synthetic: int = 0

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.originals + self.synthetic

    def describe(self) -> str:
        text = f"{self.arm}: {len(self.originals)} originals"
        if self.wanted_synthetic:
            text += f" + {len(self.synthetic)} synthetic"
            if len(self.synthetic) < self.wanted_synthetic:
                text += f" (wanted {self.wanted_synthetic}; 03 produced fewer)"
        return text


def build_arm_data(arms: Sequence[str], n_originals: int, originals: Sequence[dict[str, Any]],
                   synthetic: Sequence[dict[str, Any]] = ()) -> dict[str, ArmData]:
    """Training records per trained arm: the first N or 4N originals, N originals + up to 3N synthetic.

    ``originals`` are 02's training records in split order, so FT-N's records are a prefix of
    FT-4N's. Refuses a pool too small for the arms asked for, naming the largest N that fits.
    """
    if isinstance(n_originals, bool) or int(n_originals) != n_originals or n_originals < 1:
        raise JobSpecError(f"n_originals must be a whole number >= 1, got {n_originals!r}.")
    needed = max((arm_sizes(a, n_originals)[0] for a in arms), default=0)
    if needed > len(originals):
        largest = len(originals) // (4 if "ft_4n" in arms else 1)
        raise JobSpecError(
            f"n_originals={n_originals} needs {needed} original training records, but 02 left {len(originals)}. "
            f"Use n_originals <= {largest}, or lower test_size/validation_size in 02."
        )
    if "ft_n_3n" in arms and not synthetic:
        raise JobSpecError("The ft_n_3n arm needs 03's synthetic pairs: run 03_synthetic_data, or drop ft_n_3n from arms.")
    data = {}
    for arm in arms:
        if arm == "base":
            continue
        n_orig, n_syn = arm_sizes(arm, n_originals)
        data[arm] = ArmData(arm, list(originals[:n_orig]), list(synthetic[:n_syn]), n_syn)
    return data


def check_minimum_records(base_model: str, data: Mapping[str, ArmData], validation_records: int,
                          pool: int) -> None:
    """Refuse arms below the family's minimum records, with the sizes that would pass."""
    family = models.family_of(base_model)
    minimum, counts_validation = MIN_RECORDS.get(family, (1, False))
    extra = validation_records if counts_validation else 0
    short = {arm: len(d.records) for arm, d in data.items() if len(d.records) + extra < minimum}
    if not short:
        return
    need_n = max(1, minimum - extra)  # FT-N is the smallest arm
    counted = "training + validation records" if counts_validation else "training records"
    fits = "fits" if 4 * need_n <= pool else f"needs {4 * need_n} originals for ft_4n, more than the {pool} available"
    raise JobSpecError(
        f"{base_model} needs at least {minimum} {counted} per job; too few for "
        + ", ".join(f"{arm} ({n} + {extra} validation)" if extra else f"{arm} ({n})" for arm, n in short.items())
        + f". Use n_originals >= {need_n} ({fits}), or a larger data set (the seeds: 500 / 2,000 / 1,500)."
    )


def hyperparameter_overrides(epochs: int, learning_rate: float, warmup_steps: int, batch_size: int,
                             extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """04's hyperparameter parameters by API name; ``None`` (the family's default) where a parameter is unset."""
    overrides = {"epochCount": epochs, "learningRate": learning_rate or None,
                 "learningRateWarmupSteps": warmup_steps if warmup_steps >= 0 else None,
                 "batchSize": batch_size or None, **(extra or {})}
    return {name: value for name, value in overrides.items() if value is not None}


def check_distillation_overrides(customization_type: str, overrides: Mapping[str, Any], base_model: str) -> None:
    """Refuse hyperparameters a DISTILLATION job would not receive (:func:`plan_jobs` sends none).

    Our assumption (uncertain): distillation jobs take their hyperparameters from Bedrock, not from
    us, so a value set here would be dropped silently. ``epochCount`` at the family's default passes.
    """
    if customization_type != "DISTILLATION":
        return
    defaults = models.default_hyperparameters(base_model)
    given = {name: value for name, value in overrides.items()
             if not (name in defaults and _same_number(value, defaults[name]))}
    if given:
        raise JobSpecError(
            f"DISTILLATION jobs get no hyperparameters from this workshop (our assumption), so {sorted(given)} would be "
            "ignored: leave epochs, learning_rate, warmup_steps, batch_size and extra_hyperparameters at their defaults, "
            "or use FINE_TUNING.")


def _same_number(value: Any, default: str) -> bool:
    try:
        return float(value) == float(default)
    except (TypeError, ValueError):
        return False


def training_pool(params: Mapping[str, Any], notebook_dir: str | None = None) -> int | None:
    """The most training rows 02 can leave: a local CSV's rows (its first ``sample_size``) less the
    validation and test rows; None when the data set is not a local CSV file (02 finds out itself)."""
    from pathlib import Path

    from utils import datasets

    path = Path(str(params.get("dataset_path") or ""))
    if not path.is_absolute() and notebook_dir:
        path = Path(notebook_dir) / path
    if path.suffix.lower() != ".csv" or not path.is_file():
        return None
    try:
        rows = len(datasets.read_csv(path))
    except (ValueError, OSError):
        return None
    sample = int(params.get("sample_size") or 0)
    rows = min(rows, sample) if sample > 0 else rows
    return max(0, rows - int(params.get("validation_size") or 0) - int(params.get("test_size") or 0))


def check_parameters(params: Mapping[str, Any], notebook_dir: str | None = None) -> str | None:
    """04's parameters checked with no call, so a run refuses them before 01 starts (utils.runner).

    ``params`` are the run's effective parameters (every notebook's defaults with the overrides).
    Checks what needs no account: the arms, ``deploy_arm``, ``n_originals``, the customization type
    and distillation teacher, and every hyperparameter against the student's family. The student
    and Region are resolved as 01 and 02 resolve them; when they cannot be (an unknown profile or
    model), nothing is checked here and 01 reports it. Returns the base model checked, or None.
    ``notebook_dir`` resolves a relative ``dataset_path`` as 02 does (it runs in ``notebooks/``).
    Raises :class:`JobSpecError` naming the parameter, the allowed values and the fix.
    """
    from utils import jobspec

    try:
        profile = models.profile(str(params.get("profile_name") or models.DEFAULT_PROFILE))
        base_model = str(params.get("base_model") or "") or models.get(
            str(params.get("student") or "") or profile.student).customization_id
        region = str(params.get("region") or "") or aws.configured_region(profile.region)
        models.family_of(base_model)
    except (KeyError, ValueError):
        return None
    if not base_model:
        return None
    arms = params.get("arms", "all")
    chosen = choose_arms(arms, bool(params.get("use_synthetic", True)))
    check_deploy_arm(str(params.get("deploy_arm") or ""), chosen)
    n = params.get("n_originals", 25)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise JobSpecError(f"n_originals must be a whole number >= 1, got {n!r}.")
    if params.get("live_panel", "auto") not in ("auto", "on", "off"):
        raise JobSpecError(f"live_panel must be one of auto, on, off, got {params.get('live_panel')!r}.")
    for name in ("poll_seconds", "timeout_minutes"):
        if not params.get(name, 1) > 0:
            raise JobSpecError(f"{name} must be greater than 0, got {params.get(name)!r}.")
    if not any(arm != "base" for arm in chosen):
        return base_model
    pool = training_pool(params, notebook_dir)
    needed = max(arm_sizes(arm, n)[0] for arm in chosen)
    if pool is not None and needed > pool:
        largest = pool // (4 if "ft_4n" in chosen else 1)
        raise JobSpecError(
            f"n_originals={n} needs {needed} original training records, but 02 would leave at most {pool} "
            f"({params.get('dataset_path')} less validation_size and test_size). Use n_originals <= {largest}, "
            "or lower test_size/validation_size.")
    minimum, counts_validation = MIN_RECORDS.get(models.family_of(base_model), (1, False))
    validation = int(params.get("validation_size") or 0) if counts_validation else 0
    sizes = {arm: arm_sizes(arm, n)[0] for arm in chosen if arm in ("ft_n", "ft_4n")}  # known before 03 runs
    short = {arm: size for arm, size in sizes.items() if size + validation < minimum}
    if short:
        counted = "training + validation records" if counts_validation else "training records"
        raise JobSpecError(
            f"{base_model} needs at least {minimum} {counted} per job; n_originals={n} gives "
            + ", ".join(f"{arm} {size}" + (f" + {validation} validation" if validation else "") for arm, size in short.items())
            + f". Use n_originals >= {max(1, minimum - validation) if 'ft_n' in short else -(-(minimum - validation) // 4)}."
        )
    jobspec.check_customization(base_model, str(params.get("customization_type") or jobspec.FINE_TUNING),
                                region=region, teacher=str(params.get("distillation_teacher") or "") or None)
    extra = params.get("extra_hyperparameters") or {}
    if not isinstance(extra, Mapping):
        raise JobSpecError(f"extra_hyperparameters must be a dict of API names to values, got {extra!r}.")
    overrides = hyperparameter_overrides(params.get("epochs", 2), params.get("learning_rate", 0.0),
                                         params.get("warmup_steps", -1), params.get("batch_size", 0), extra)
    jobspec.check_hyperparameters(base_model, overrides)
    check_distillation_overrides(str(params.get("customization_type") or jobspec.FINE_TUNING), overrides, base_model)
    return base_model


def concurrent_job_quota(*, region: str | None = None, client: Any = None) -> tuple[int, str]:
    """(concurrent customization jobs allowed, where the number came from).

    GetServiceQuota returns only applied values: "If the applied quota value is not available for a
    quota, the quota is not retrieved" (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html),
    so an account that never changed it gets the AWS default from GetAWSDefaultServiceQuota
    (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetAWSDefaultServiceQuota.html).
    """
    errors = []
    quotas = None
    for call, where in (("get_service_quota", ""), ("get_aws_default_service_quota", ", AWS default")):
        try:
            quotas = quotas or client or aws.client("service-quotas", region)
            value = getattr(quotas, call)(ServiceCode="bedrock", QuotaCode=CONCURRENT_JOBS_QUOTA)["Quota"]["Value"]
            return max(1, int(value)), f"Service Quotas {CONCURRENT_JOBS_QUOTA}{where}"
        except (ClientError, KeyError, ValueError, TypeError, AttributeError) as err:
            errors.append(str(err)[:120])
    return DEFAULT_CONCURRENT_JOBS, f"assumed (quota unreadable: {errors[0]}); the real default is unconfirmed"


# --------------------------------------------------------------------------------------
# Submitting and watching
# --------------------------------------------------------------------------------------


@dataclass
class ArmJob:
    arm: str
    plan: customization.JobPlan
    records: int
    status: str = "Queued"
    job_arn: str | None = None
    model_arn: str | None = None
    failure_message: str | None = None
    created: bool = False
    details: dict[str, str] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None

    def result(self) -> dict[str, Any]:
        out = {"arm": self.arm, "job_name": self.plan.job_name, "job_arn": self.job_arn, "status": self.status,
               "records": self.records, "model_arn": self.model_arn, "created": self.created}
        if self.failure_message:
            out["failure_message"] = self.failure_message
            out["fix"] = likely_fix(self.failure_message)
        return out


def _running_in_account(bedrock: Any) -> set[str]:
    names = set()
    for page in bedrock.get_paginator("list_model_customization_jobs").paginate(statusEquals="InProgress"):
        names.update(j["jobName"] for j in page.get("modelCustomizationJobSummaries", []))
    return names


def _is_quota_error(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ServiceQuotaExceededException"


def run_arms(
    jobs: Sequence[ArmJob], *, quota: int, poll_s: float = 60, timeout_s: float = 6 * 3600,
    region: str | None = None, client: Any = None, log: Callable[[str], None] = print,
    on_submit: Callable[[ArmJob], None] | None = None, sleep: Callable[[float], None] = time.sleep,
    on_poll: Callable[[ArmJob, dict[str, Any]], None] | None = None, clock: Callable[[], float] = time.monotonic,
) -> list[ArmJob]:
    """Submit the arms' jobs up to ``quota`` at a time, queue the rest, and watch them all.

    A job that already exists under the plan's name is adopted, never created twice. Logs one
    line per status (or sub-status) change, never one per poll. Returns when every job has
    ended or ``timeout_s`` passed (jobs still running keep running; rerun to keep watching).
    ``on_poll(job, described)`` sees every GetModelCustomizationJob answer (the live panel's hook).
    """
    bedrock = client or aws.client("bedrock", region)
    start = clock()
    queue = list(jobs)
    for job in queue:  # adopt earlier jobs first: a rerun creates nothing
        existing = customization.find_job(job.plan.job_name, client=bedrock)
        if existing is not None:
            job.job_arn, job.status = existing["jobArn"], existing["status"]
            job.started = start
            job.model_arn = existing.get("outputModelArn") if job.status == "Completed" else None
            if job.status in ("Failed", "Stopped"):
                job.failure_message = existing.get("failureMessage") or "no failureMessage"
            if job.model_arn and not _model_exists(bedrock, job.model_arn):
                raise customization.JobFailed(
                    f"Job {job.plan.job_name} completed earlier, but its custom model was deleted (07_cleanup). "
                    "Rerun from 01_permissions after cleanup, or use a new workshop_id."
                )
            log(f"{job.arm:<8} found existing job {job.plan.job_name}: {job.status}")
            if on_submit:
                on_submit(job)
    watching = [j for j in queue if j.job_arn]
    pending = [j for j in queue if not j.job_arn]
    warned_quota = False
    # Waits start short and back off to poll_s (aws.poll_delays), so a job that ends in seconds
    # (the sandbox) is seen in seconds; they start short again after each submission.
    delays = aws.poll_delays(poll_s)
    while True:
        ours = {j.plan.job_name for j in watching if j.status in ACTIVE}
        free = quota - len(ours | _running_in_account(bedrock)) if pending else 0
        while pending and free > 0:
            job = pending[0]
            try:
                job.job_arn = bedrock.create_model_customization_job(**job.plan.request())["jobArn"]
            except ClientError as err:
                if not _is_quota_error(err):  # refused outright: this arm fails, the others go on
                    pending.pop(0)
                    job.status, job.ended = "Failed", clock()
                    job.failure_message = f"CreateModelCustomizationJob refused: {err.response['Error'].get('Message', err)}"
                    log(f"{job.arm:<8} Failed: {job.failure_message}. Likely fix: {likely_fix(job.failure_message)}")
                    continue
                if not warned_quota:
                    log(f"{job.arm:<8} queued: the account is at its concurrent job quota ({err.response['Error'].get('Message', '')})")
                    warned_quota = True
                break
            pending.pop(0)
            free -= 1
            delays = aws.poll_delays(poll_s)
            job.created, job.status, job.started = True, "InProgress", clock()
            watching.append(job)
            log(f"{job.arm:<8} submitted {job.plan.job_name} ({job.records} records)")
            if on_submit:
                on_submit(job)
        if pending and not warned_quota:
            log(f"{', '.join(j.arm for j in pending)} queued: {quota} concurrent job(s) allowed")
            warned_quota = True
        for job in watching:
            if job.status in ENDED:
                continue
            described = _refresh(job, bedrock, log, clock)
            if on_poll:
                on_poll(job, described)
        if not pending and all(j.status in ENDED for j in watching):
            return list(jobs)
        if clock() - start >= timeout_s:
            log(f"stopped watching after {timeout_s:.0f} s; jobs keep running: rerun this cell to keep watching")
            return list(jobs)
        sleep(next(delays))


def _refresh(job: ArmJob, bedrock: Any, log: Callable[[str], None], clock: Callable[[], float]) -> dict[str, Any]:
    described = bedrock.get_model_customization_job(jobIdentifier=job.job_arn)
    elapsed = clock() - (job.started or clock())
    for phase, detail in (described.get("statusDetails") or {}).items():
        status = detail.get("status")
        if status and job.details.get(phase) != status:
            job.details[phase] = status
            log(f"{job.arm:<8} {phase}: {status} ({elapsed:.0f} s)")
    status = described["status"]
    if status != job.status:
        job.status = status
        if status in ENDED:
            job.ended = clock()
        line = f"{job.arm:<8} {status} ({elapsed:.0f} s)"
        if status in ("Failed", "Stopped"):
            job.failure_message = described.get("failureMessage") or "no failureMessage"
            line += f": {job.failure_message}. Likely fix: {likely_fix(job.failure_message)}"
        log(line)
    if status == "Completed":
        job.model_arn = described.get("outputModelArn")
    return described


# --------------------------------------------------------------------------------------
# Loss curves
# --------------------------------------------------------------------------------------


def loss_summary(frames: Mapping[str, pd.DataFrame]) -> dict[str, float | None]:
    """Final training loss and best validation loss (None where a curve is missing)."""
    training, validation = frames.get("training", pd.DataFrame()), frames.get("validation", pd.DataFrame())
    final = float(training["training_loss"].iloc[-1]) if not training.empty else None
    best = float(validation["validation_loss"].min()) if not validation.empty else None
    return {"final_training_loss": final, "best_validation_loss": best}


def _change(series: pd.Series) -> float:
    """Relative change from the first quarter's mean to the last quarter's mean."""
    values = [float(v) for v in series if not math.isnan(float(v))]
    if len(values) < 2:
        return 0.0
    k = max(1, len(values) // 4)
    first, last = sum(values[:k]) / k, sum(values[-k:]) / k
    return (last - first) / first if first else 0.0


def describe_curves(frames: Mapping[str, pd.DataFrame], tolerance: float = 0.05) -> str:
    """One sentence on what the loss curves show, computed from them.

    Compares the relative change of each curve (first quarter vs last quarter of its points)
    and where validation loss bottomed out. ``tolerance`` is the relative change below which a
    curve counts as flat (our choice: 5 %).
    """
    training, validation = frames.get("training", pd.DataFrame()), frames.get("validation", pd.DataFrame())
    if training.empty:
        return "No training metrics yet: the job has not written step_wise_training_metrics.csv."
    t = _change(training["training_loss"])
    if validation.empty:
        trend = "falls" if t < -tolerance else "stays flat" if abs(t) <= tolerance else "rises"
        return (f"Training loss {trend} ({t:+.0%}); there is no validation curve, so memorising cannot be "
                "told from learning: give 02 a validation set.")
    v = _change(validation["validation_loss"])
    losses = validation["validation_loss"].tolist()
    best = losses.index(min(losses))
    rising_after_best = best < len(losses) - 1 and losses[-1] > min(losses) * (1 + tolerance)
    if t < -tolerance and rising_after_best:
        epoch = validation["epoch_number"].iloc[best] if "epoch_number" in validation else best + 1
        return (f"Training loss falls ({t:+.0%}) while validation loss bottoms out early (around epoch {epoch}) "
                "and then rises: the model is memorising the training set. Use fewer epochs (or early stopping) or more data.")
    if t < -tolerance and abs(v) <= tolerance:
        return (f"Training loss falls ({t:+.0%}) while validation loss stays flat ({v:+.0%}): the model is memorising "
                "rather than generalising. Use fewer epochs, or more (or more varied) data.")
    if t < -tolerance and v < -tolerance:
        return (f"Training and validation loss both fall ({t:+.0%}, {v:+.0%}): the model is learning something "
                "that generalises. More epochs or data may still help while validation keeps falling.")
    if t > tolerance:
        return (f"Training loss rises ({t:+.0%}): training is unstable. Lower the learning rate "
                "(or raise the warm-up steps).")
    return (f"Training loss barely moves ({t:+.0%}; validation {v:+.0%}): the model is learning little. "
            "Raise the learning rate or the epochs, or check that the data teaches something new.")


def epoch_curves(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-epoch losses (epochs 1-based): mean training loss, and the epoch's last validation loss.

    Our assumption: a checkpoint is kept at the end of each epoch, so the last evaluation of an
    epoch is that epoch's validation loss (AWS's early-stopping example works on one validation
    loss per epoch). ``epoch_number`` may start at 0 or 1 in the CSVs; it is renumbered from 1.
    """
    training, validation = frames.get("training", pd.DataFrame()), frames.get("validation", pd.DataFrame())
    columns = ["epoch", "training_loss", "validation_loss"]
    if training.empty or "epoch_number" not in training:
        return pd.DataFrame(columns=columns)
    first = int(training["epoch_number"].min())
    if not validation.empty and "epoch_number" in validation:
        first = min(first, int(validation["epoch_number"].min()))
    out = training.groupby("epoch_number")["training_loss"].mean().rename("training_loss").to_frame()
    if not validation.empty and "epoch_number" in validation:
        out = out.join(validation.groupby("epoch_number")["validation_loss"].last(), how="outer")
    else:
        out["validation_loss"] = float("nan")
    out = out.reset_index()
    out["epoch"] = out["epoch_number"].astype(int) - first + 1
    return out[columns]


def curve_marks(frames: Mapping[str, pd.DataFrame], base_model: str,
                hyperparameters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The epochs to mark on an arm's curves: best checkpoint, and early stopping where the family has it.

    With ``earlyStoppingThreshold``/``earlyStoppingPatience`` (the family's defaults unless set),
    :func:`utils.customization.early_stopping` on the per-epoch validation losses gives both the
    stop and the best epoch; otherwise the best epoch is the one with the lowest validation loss.
    ``note`` says it in a sentence.
    """
    hp = {h.name: h.default for h in models.hyperparameters(base_model)} \
        if models.family_of(base_model) in models.HYPERPARAMETERS else {}
    hp.update(hyperparameters or {})
    planned = int(float(hp.get("epochCount", 1)))
    per_epoch = epoch_curves(frames)
    losses = per_epoch.dropna(subset=["validation_loss"])
    run = int(per_epoch["epoch"].max()) if not per_epoch.empty else 0
    marks: dict[str, Any] = {"epochs_planned": planned, "epochs_run": run, "best_epoch": None, "stopped_epoch": None,
                             "early_stopping": "earlyStoppingPatience" in hp}
    if losses.empty:
        marks["note"] = "No validation loss per epoch: no best checkpoint to mark (give 02 a validation set)."
        return marks
    values = losses["validation_loss"].tolist()
    if marks["early_stopping"]:
        threshold, patience = float(hp["earlyStoppingThreshold"]), int(float(hp["earlyStoppingPatience"]))
        stopped, best = customization.early_stopping(values, threshold, patience)
        marks["stopped_epoch"] = int(losses["epoch"].iloc[stopped - 1])
        marks["best_epoch"] = int(losses["epoch"].iloc[best - 1])
        ended = (f"stopped training after epoch {marks['stopped_epoch']} of {planned}"
                 if run < planned else f"did not stop early (all {planned} epochs ran)")
        marks["note"] = (f"Early stopping (threshold {threshold:g}, patience {patience}) {ended}; "
                         f"best checkpoint: epoch {marks['best_epoch']} (validation loss {min(values[:stopped]):.3f}).")
    else:
        marks["best_epoch"] = int(losses["epoch"].iloc[values.index(min(values))])
        marks["note"] = (f"Lowest validation loss at epoch {marks['best_epoch']} of {run} ({min(values):.3f}); "
                         "this family has no early stopping, so the custom model is the last epoch's (our assumption).")
    return marks


def plot_curves(frames: Mapping[str, pd.DataFrame], marks: Mapping[str, Any], title: str = "Loss"):
    """Training and validation loss against step (left) and epoch (right), the best and stop epochs marked."""
    import matplotlib.pyplot as plt

    training, validation = frames.get("training", pd.DataFrame()), frames.get("validation", pd.DataFrame())
    fig, (by_step, by_epoch) = plt.subplots(1, 2, figsize=(11, 3.6))
    if not training.empty:
        by_step.plot(training["step_number"], training["training_loss"], lw=1, label="training loss")
    if not validation.empty:
        by_step.plot(validation["step_number"], validation["validation_loss"], "o-", ms=3, label="validation loss")
    by_step.set(xlabel="step", ylabel="loss", title="per step")
    per_epoch = epoch_curves(frames)
    if not per_epoch.empty:
        by_epoch.plot(per_epoch["epoch"], per_epoch["training_loss"], "s-", label="training loss (epoch mean)")
        with_val = per_epoch.dropna(subset=["validation_loss"])
        by_epoch.plot(with_val["epoch"], with_val["validation_loss"], "o-", label="validation loss (end of epoch)")
        if marks.get("best_epoch"):
            best = with_val.loc[with_val["epoch"] == marks["best_epoch"], "validation_loss"]
            by_epoch.plot([marks["best_epoch"]], best, marker="*", ms=16, ls="none", color="gold", mec="black",
                          label=f"best checkpoint (epoch {marks['best_epoch']})")
        if marks.get("stopped_epoch") and marks.get("epochs_run", 0) < marks.get("epochs_planned", 0):
            by_epoch.axvline(marks["stopped_epoch"], color="red", ls="--",
                             label=f"early stop (epoch {marks['stopped_epoch']} of {marks['epochs_planned']})")
        by_epoch.set_xticks(per_epoch["epoch"].tolist())
    by_epoch.set(xlabel="epoch", ylabel="loss", title="per epoch")
    for ax in (by_step, by_epoch):
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# Records and plans per arm
# --------------------------------------------------------------------------------------

_DOCUMENTS = re.compile(r"<documents>\n?(.*?)\n?</documents>", flags=re.DOTALL)


def synthetic_records(datasets: Mapping[str, str], *, region: str | None = None) -> list[dict[str, Any]]:
    """03's synthetic pairs as formatted training records, in 03's order.

    Reads ``datasets["synthetic"]`` (only the teacher's pairs) when 03 wrote it; otherwise the
    part of ``train_augmented`` after 02's training records (03 appends its pairs to them).
    """
    from utils import s3
    from utils.formats import from_jsonl

    if datasets.get("synthetic"):
        return from_jsonl(s3.read_text(datasets["synthetic"], region=region))
    if not datasets.get("train_augmented"):
        return []
    augmented = from_jsonl(s3.read_text(datasets["train_augmented"], region=region))
    originals = from_jsonl(s3.read_text(datasets["train"], region=region))
    return augmented[len(originals):] if augmented[: len(originals)] == originals else []


def records_for(records: Sequence[Mapping[str, Any]], customization_type: str, base_model: str,
                batch_size: int = 1) -> list[dict[str, Any]]:
    """An arm's fine-tuning records rewritten for the customization type.

    * FINE_TUNING: unchanged.
    * DISTILLATION: the prompts only (system + user turn, Converse format); Bedrock has the
      teacher write the answers (https://docs.aws.amazon.com/bedrock/latest/userguide/distillation-prepare-datasets.html).
    * CONTINUED_PRE_TRAINING: ``{"input"}`` records of the reference documents inside the
      prompts, each document once, split to fit the Titan token limit.
    """
    from utils import formats, jobspec

    if customization_type == jobspec.FINE_TUNING:
        return [dict(r) for r in records]
    parsed = [formats.parse_record(r) for r in records]
    if customization_type == jobspec.DISTILLATION:
        return [formats.conversation_record([t for t in turns if t[0] == "user"][:1], system) for system, turns in parsed]
    documents: list[str] = []
    for _, turns in parsed:
        for found in _DOCUMENTS.findall(turns[0][1]):
            if found.strip() and found.strip() not in documents:
                documents.append(found.strip())
    cpt = jobspec.continued_pretraining_records(documents, base_model, batch_size)
    jobspec.check_continued_pretraining(cpt, base_model, batch_size)
    return cpt


def plan_jobs(data: Mapping[str, ArmData], *, workshop_id: str, base_model: str, role_arn: str, bucket: str,
              hyperparameters: Mapping[str, str], validation_uri: str | None, validation_text: str = "",
              customization_type: str = "FINE_TUNING", customization_config: dict[str, Any] | None = None,
              generation: int = 0, warmup_from_data: bool = False,
              kms_key_id: str | None = None) -> list[tuple[ArmJob, str]]:
    """One (job, training JSONL) per trained arm, named from a fingerprint of what it trains.

    Same data and settings give the same names, so a rerun finds the jobs; anything
    different gives new names. Data goes to ``s3://<bucket>/datasets/arms/``.
    With ``warmup_from_data`` each arm's Nova warm-up follows AWS's small-dataset guidance
    for its own record count (:func:`utils.customization.recommended_warmup_steps`).
    ``kms_key_id`` encrypts the custom models with a customer managed key.
    """
    from utils import formats, iam
    from utils.state import name

    batch = int(float(hyperparameters.get("batchSize", 1)))
    planned = []
    for arm, arm_data in data.items():
        body = formats.to_jsonl(records_for(arm_data.records, customization_type, base_model, batch))
        validation = validation_uri if customization_type == "FINE_TUNING" else None
        arm_hp = dict(hyperparameters)
        warmup = customization.recommended_warmup_steps(base_model, len(arm_data.records))
        if warmup_from_data and warmup is not None:
            arm_hp[customization.WARMUP] = str(warmup)
        fingerprint = customization.fingerprint(base_model, arm_hp, body.encode(),
                                                validation_text.encode() if validation else b"", customization_type)
        suffix = fingerprint + (f"-g{generation}" if generation else "")
        short = arm.replace("_", "")
        plan = customization.JobPlan(
            job_name=name(workshop_id, f"{short}-{suffix}"), model_name=name(workshop_id, f"model-{short}-{suffix}"),
            base_model=base_model, role_arn=role_arn,
            training_uri=f"s3://{bucket}/{iam.TRAINING_PREFIX}arms/{arm}-{fingerprint}.jsonl",
            validation_uri=validation, output_uri=f"s3://{bucket}/{iam.OUTPUT_PREFIX}",
            # Our assumption: distillation jobs take no hyperparameters from us (uncertain).
            hyperparameters={} if customization_type == "DISTILLATION" else arm_hp,
            workshop_id=workshop_id, customization_type=customization_type, customization_config=customization_config,
            kms_key_id=kms_key_id,
        )
        planned.append((ArmJob(arm, plan, len(formats.from_jsonl(body))), body))
    return planned


def estimate_training(planned: Sequence[tuple[ArmJob, str]], model_key: str, epochs: int, *,
                      price_overrides: Mapping[str, float] | None = None, region: str = "us-east-1",
                      customization_type: str = "FINE_TUNING") -> tuple[Any, int]:
    """(the estimate for every trained arm, the training tokens it counts).

    Tokens are every arm's training file, counted with the validator's conservative estimator.
    Storage is billed per custom model and month (https://aws.amazon.com/bedrock/pricing/), so
    each arm's model adds one model-month.
    """
    from utils import costs
    from utils.validate_dataset import estimate_tokens

    tokens = sum(estimate_tokens(line) for _, body in planned for line in body.splitlines())
    estimate = costs.estimate_training(model_key, train_tokens=tokens, epochs=epochs, months_stored=max(1, len(planned)),
                                       price_overrides=price_overrides, region=region)
    estimate.notes.append(f"Storage counts one month for each of the {len(planned)} arms' custom models.")
    if customization_type == "DISTILLATION":
        estimate.notes.append("Not included: the teacher's tokens while it writes the responses (billed at the teacher's "
                              "on-demand price, https://aws.amazon.com/bedrock/pricing/); the training line assumes the "
                              "student's default epochs.")
    return estimate, tokens


def arm_results(jobs: Sequence[ArmJob], metrics: Mapping[str, Mapping[str, pd.DataFrame]],
                arms: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per-arm results for the state file and ``metrics.arms`` in results.json."""
    results: dict[str, dict[str, Any]] = {}
    if "base" in arms:
        results["base"] = {"arm": "base", "status": "NoJob", "records": 0,
                           "final_training_loss": None, "best_validation_loss": None}
    for job in jobs:
        results[job.arm] = {**job.result(), **loss_summary(metrics.get(job.arm, {}))}
    for arm in arms:  # asked for, but no job: say so rather than leave the arm out
        if arm != "base" and arm not in results:
            results[arm] = {"arm": arm, "status": "NotSubmitted", "records": 0, "final_training_loss": None,
                            "best_validation_loss": None,
                            "detail": "no job was created (confirm_spend is False, or the estimate is over max_spend_usd)"}
    return {arm: results[arm] for arm in ARMS if arm in results}


def check_deploy_arm(preferred: str, chosen: Sequence[str]) -> None:
    """Refuse a ``deploy_arm`` that names no trained arm of this run, before any call.

    ``""`` lets :func:`deploy_arm` choose. ``base`` has no custom model to deploy, and an arm
    missing from ``arms`` would never be trained, so neither is ignored silently.
    """
    if not preferred:
        return
    trained = [arm for arm in chosen if arm != "base"]
    options = f"choose one of {', '.join(trained)}" if trained else "add a trained arm to `arms`"
    if preferred == "base":
        raise JobSpecError(f"deploy_arm='base': the base model has no custom model to deploy (05 and 06 compare "
                           f"with the base model anyway). Leave deploy_arm \"\" or {options}.")
    if preferred not in TRAINED_ARMS:
        raise JobSpecError(f"deploy_arm={preferred!r} is not an arm; {options} (or \"\" to pick one).")
    if preferred not in chosen:
        raise JobSpecError(f"deploy_arm={preferred!r} is not trained in this run (arms: {', '.join(chosen)}). "
                           f"Add it to `arms`, or {options} (or \"\" to pick one).")


def deploy_arm(results: Mapping[str, Mapping[str, Any]], preferred: str = "") -> str | None:
    """The arm whose model 05 deploys and 06 evaluates: ``preferred``, else ft_n_3n, else the first trained arm.

    A ``preferred`` arm without a job in ``results`` is refused (see :func:`check_deploy_arm`).
    """
    if preferred:
        check_deploy_arm(preferred, [arm for arm in results if arm != "base"])
        return preferred
    return next((a for a in ("ft_n_3n", "ft_n", "ft_4n") if a in results), None)


def _model_exists(bedrock: Any, model_arn: str) -> bool:
    try:
        bedrock.get_custom_model(modelIdentifier=model_arn)
    except ClientError as err:
        if aws.is_not_found(err):
            return False
        raise
    return True


def completed_arm(results: Mapping[str, Mapping[str, Any]] | None, arm: str | None,
                  notebook: str) -> Mapping[str, Any] | None:
    """The chosen arm's result from 04 (``state['arms']``) if its job completed.

    None when 04 trained nothing (no spend opt-in, or only the base arm). An arm that did not
    complete is refused, naming the arm, its status, Bedrock's failureMessage and the likely fix.
    """
    if not results or not arm:
        return None
    result = results.get(arm)
    if result is None:
        raise customization.JobFailed(
            f"{notebook}: 04_fine_tuning has no arm {arm!r} (it ran {', '.join(results)}). "
            "Rerun 04 with that arm in `arms`, or set its `deploy_arm` to one of those.")
    if result.get("status") != "Completed" or not result.get("model_arn"):
        status = result.get("status", "unknown")
        why = f": {result['failure_message']}. Likely fix: {result.get('fix') or likely_fix(result['failure_message'])}" \
            if result.get("failure_message") else ""
        raise customization.JobFailed(
            f"{notebook}: arm {arm} ({LABELS.get(arm, arm)}) did not complete, its job is {status}{why}. "
            "Rerun 04_fine_tuning (it adopts running jobs and keeps watching), or set `deploy_arm` in 04 to an arm that completed.")
    return result
