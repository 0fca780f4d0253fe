"""Model customization jobs: create, get, list, stop, and the job lifecycle.

A job validates its input synchronously (``ValidationException``), then advances through
validation (the role, S3 and data checks run at its end), data processing and training
(``lifecycle.CUSTOMIZATION`` and ``lifecycle.training_seconds``). On success it writes the
metric CSVs, then creates the custom model, then reports ``Completed``. The training curve
comes from ``utils.sandbox.training``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from utils import models as registry
from utils.sandbox import training
from utils.sandbox.bedrock import lifecycle
from utils.sandbox.bedrock import training_data as data
from utils.sandbox.bedrock.custom_models import CustomModel
from utils.sandbox.bedrock.errors import ApiError, conflict, failure_message, log_internal, validation
from utils.sandbox.bedrock.family import Family
from utils.sandbox.bedrock.store import idempotent, iso, listing, matching, new_id, split_s3, tag_dict
from utils.sandbox.catalog import INVALID_MODEL_IDENTIFIER, FoundationModel

TERMINAL = ("Completed", "Failed", "Stopped")


@dataclass
class CustomizationJob:
    arn: str
    job_id: str
    name: str
    region: str
    base: FoundationModel
    base_model_arn: str
    model_name: str
    role_arn: str
    customization_type: str
    hyperparameters: dict[str, str]
    training_config: dict[str, Any]
    validation_config: dict[str, Any]
    output_config: dict[str, Any]
    created: float
    scale: float
    client_token: str | None = None
    customization_config: dict[str, Any] | None = None
    vpc_config: dict[str, Any] | None = None
    kms_key: str | None = None
    model_tags: dict[str, str] = field(default_factory=dict)
    parent: CustomModel | None = None
    status: str = "InProgress"
    failure_message: str | None = None
    modified: float = 0.0
    end_time: float | None = None
    stop_at: float | None = None
    stop_requested: float | None = None
    prepared: bool = False
    train_end: float | None = None
    result: training.TrainingResult | None = None
    pairs: list[tuple[str, str]] = field(default_factory=list)
    model: CustomModel | None = None

    @property
    def validation_end(self) -> float:
        return lifecycle.CUSTOMIZATION.ends(self.created, self.scale)[0]

    @property
    def processing_end(self) -> float:
        return lifecycle.CUSTOMIZATION.ends(self.created, self.scale)[1]

    # ---- rendering ------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        """``trainingMetrics`` and ``validationMetrics`` of a completed job (one entry per validator)."""
        if self.status != "Completed" or self.result is None:
            return {}
        out: dict[str, Any] = {"trainingMetrics": {"trainingLoss": self.result.final_training_loss}}
        val = self.result.final_validation_loss
        out["validationMetrics"] = [] if val is None else [
            {"validationLoss": val} for _ in self.validation_config.get("validators", [])
        ]
        return out

    def status_details(self, now: float) -> dict[str, Any]:
        """Sub-statuses of the validation, data-processing and training phases.

        A stopped (or stopping) job froze at its stop request: phases that had finished are
        ``Completed``, the running one shows the job's status, later ones ``NotStarted``.
        No phase is modified after the job's ``endTime``.
        """
        phases = (
            ("validationDetails", self.created, self.validation_end),
            ("dataProcessingDetails", self.validation_end, self.processing_end),
            ("trainingDetails", self.processing_end, self.train_end),
        )
        horizon = now if self.end_time is None else min(now, self.end_time)
        stopped = self.status in ("Stopping", "Stopped")
        frozen = self.stop_requested if stopped and self.stop_requested is not None else None
        out: dict[str, Any] = {}
        for key, start, end in phases:
            if self.status == "Failed":
                status = "Failed" if key == "validationDetails" else "NotStarted"
                if self.prepared and key != "validationDetails":
                    status = "Completed" if key == "dataProcessingDetails" else "Failed"
            elif frozen is not None:
                if frozen < start:
                    status = "NotStarted"
                elif end is not None and frozen >= end:
                    status = "Completed"
                else:
                    status = self.status
            elif now < start:
                status = "NotStarted"
            elif end is not None and now >= end:
                status = "Completed"
            else:
                status = "InProgress"
            entry: dict[str, Any] = {"status": status}
            if status != "NotStarted":
                last = horizon if end is None else min(horizon, end)
                entry["creationTime"] = iso(start)
                entry["lastModifiedTime"] = iso(max(start, last))
            out[key] = entry
        return out

    def to_dict(self) -> dict[str, Any]:
        """GetModelCustomizationJob."""
        out: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": self.name,
            "outputModelName": self.model_name,
            "roleArn": self.role_arn,
            "status": self.status,
            "statusDetails": self.status_details(time.time()),
            "creationTime": iso(self.created),
            "lastModifiedTime": iso(self.modified),
            "baseModelArn": self.base_model_arn,
            "hyperParameters": self.hyperparameters,
            "trainingDataConfig": self.training_config,
            "validationDataConfig": self.validation_config,
            "outputDataConfig": self.output_config,
            "customizationType": self.customization_type,
        }
        if self.client_token:
            out["clientRequestToken"] = self.client_token
        if self.model is not None:
            out["outputModelArn"] = self.model.arn
        if self.failure_message:
            out["failureMessage"] = self.failure_message
        if self.end_time is not None:
            out["endTime"] = iso(self.end_time)
        if self.kms_key:
            out["outputModelKmsKeyArn"] = self.kms_key
        out.update(self.metrics())
        if self.vpc_config:
            out["vpcConfig"] = self.vpc_config
        if self.customization_config:
            out["customizationConfig"] = self.customization_config
        return out

    def summary(self) -> dict[str, Any]:
        """ListModelCustomizationJobs."""
        item: dict[str, Any] = {
            "jobArn": self.arn, "baseModelArn": self.base_model_arn, "jobName": self.name,
            "status": self.status, "statusDetails": self.status_details(time.time()),
            "lastModifiedTime": iso(self.modified), "creationTime": iso(self.created),
            "customModelName": self.model_name, "customizationType": self.customization_type,
        }
        if self.end_time is not None:
            item["endTime"] = iso(self.end_time)
        if self.model is not None:
            item["customModelArn"] = self.model.arn
        return item

    def fail(self, message: str, at: float) -> None:
        self.status, self.failure_message, self.end_time, self.modified = "Failed", message, at, at


# Where the validation metrics land, per family: where AWS's public samples read them
# (aws-samples/amazon-bedrock-samples @ 85fba9d9, custom-models/bedrock-fine-tuning/meta-llama/
# "Llama-3.1 Text customization"/02_fine-tune_and_evaluate_llama31_8B_bedrock_summarization.ipynb reads
# validation_artifacts/validation_metrics.csv; custom-models/on_demand_inference/
# 02_fine-tune_nova_micro_with_on_demand_inference.ipynb reads the post_fine_tuning_validation path).
# The real layout is unconfirmed (AWS's user guide shows yet another tree); other families use the
# Nova layout (uncertain). utils.customization reads any of them.
LLAMA_VALIDATION_METRICS = "validation_artifacts/validation_metrics.csv"
NOVA_VALIDATION_METRICS = "validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv"


def validation_metrics_key(base_model_id: str) -> str:
    """The validation CSV's key under ``model-customization-job-<id>/`` for a base model."""
    llama = registry.family_of(base_model_id).startswith("llama")
    return LLAMA_VALIDATION_METRICS if llama else NOVA_VALIDATION_METRICS


# Hyperparameters a family's page does not list but the service is seen to accept, as
# {family: {name: (minimum, maximum)}}. AWS's Nova Micro samples pass batchSize "1" and report the
# job completing (aws-samples/amazon-bedrock-samples @ 85fba9d9,
# custom-models/on_demand_inference/02_fine-tune_nova_micro_with_on_demand_inference.ipynb and
# custom-models/bedrock-fine-tuning/nova/understanding/nova_tooluse_customization/tooluse_finetuner_main/
# notebooks/03_toolcall_fullfinetune_nova_bedrock.ipynb), while
# https://docs.aws.amazon.com/bedrock/latest/userguide/cm-hp-nova-mm.html lists three hyperparameters.
# Accepting only the value 1 (no other value is seen anywhere) is our assumption (uncertain).
UNDOCUMENTED_ACCEPTED = {"nova": {"batchSize": (1, 1)}}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Customization(Family):
    # ---- synchronous checks -----------------------------------------------------------------
    def _resolve_base(self, region: str, identifier: str, ctype: str) -> tuple[FoundationModel, str, CustomModel | None]:
        """(foundation model variant, baseModelArn, parent custom model) for a job's base."""
        parent = self.store.models.maybe(region, identifier)
        if parent is not None:
            return parent.base, parent.arn, parent
        model = self.catalog.model(region, identifier)
        if model is None:
            raise validation(INVALID_MODEL_IDENTIFIER)
        if ctype not in model.customizations:
            raise validation(
                f"The base model {model.model_id} does not support customization type {ctype} in "
                f"region {region}."
            )
        return model, model.arn(region), None

    @staticmethod
    def _validate_hyperparameters(base: FoundationModel, given: dict[str, str]) -> None:
        try:
            family = registry.family_of(base.model_id)
        except KeyError as exc:
            raise validation(INVALID_MODEL_IDENTIFIER) from exc
        table = {hp.name: hp for hp in (registry.hyperparameters(base.model_id) if family in registry.HYPERPARAMETERS else ())}
        extra = UNDOCUMENTED_ACCEPTED.get(family, {})
        for name, raw in given.items():
            hp = table.get(name)
            if hp is None and name in extra and str(raw).strip().isdigit() and int(raw) in range(extra[name][0], extra[name][1] + 1):
                continue
            if hp is None:
                raise validation(
                    f"Hyperparameter {name} is not supported for base model {base.model_id}. "
                    f"Supported hyperparameters: {', '.join(table)}."
                )
            try:
                value: float = int(raw) if hp.kind is int else float(raw)
            except (TypeError, ValueError) as exc:
                kind = "an integer" if hp.kind is int else "a number"
                raise validation(f"Hyperparameter {name} must be {kind}, but got '{raw}'.") from exc
            if not hp.minimum <= value <= hp.maximum:
                raise validation(
                    f"Hyperparameter {name} with value {raw} is out of range. "
                    f"Valid range for {base.model_id}: [{_num(hp.minimum)}, {_num(hp.maximum)}]."
                )

    def _check_job_quota(self, region: str) -> None:
        """Refuse a job past the concurrent-customization-job quota (L-0406044C, the
        ``concurrent_customization_jobs`` knob). ServiceQuotaExceededException is modeled for
        CreateModelCustomizationJob (botocore bedrock service-2.json); the message wording is our
        assumption (the shape documents "The number of requests exceeds the service quota.
        Resubmit your request later."). Jobs InProgress or Stopping count; the check runs after
        the request's validation (uncertain)."""
        limit = self.config.concurrent_customization_jobs
        running = sum(j.status in ("InProgress", "Stopping") for j in self.store.jobs.in_region(region))
        if running >= limit:
            raise ApiError(
                "ServiceQuotaExceededException",
                f"The number of model customization jobs in progress ({running}) has reached the quota for "
                f"concurrent model customization jobs ({limit}) in this account and Region. Resubmit your "
                "request later, or request a quota increase (Service Quotas code L-0406044C).",
            )

    # ---- operations -------------------------------------------------------------------------
    @idempotent("jobArn")
    def create_model_customization_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        ctype = p.get("customizationType") or "FINE_TUNING"
        if ctype in ("REINFORCEMENT_FINE_TUNING", "IMPORTED"):
            raise validation(f"Customization type {ctype} is not supported for this base model.")
        base, base_arn, parent = self._resolve_base(region, p["baseModelIdentifier"], ctype)
        hyper = dict(p.get("hyperParameters") or {})
        self._validate_hyperparameters(base, hyper)
        training_config = p.get("trainingDataConfig") or {}
        if not training_config.get("s3Uri") and not training_config.get("invocationLogsConfig"):
            raise validation("trainingDataConfig must specify s3Uri or invocationLogsConfig.")
        if training_config.get("invocationLogsConfig"):
            raise validation("The sandbox does not emulate training from invocation logs; use s3Uri.")
        customization_config = p.get("customizationConfig")
        if ctype == "DISTILLATION":
            teacher = ((customization_config or {}).get("distillationConfig") or {}).get("teacherModelConfig")
            if not teacher:
                raise validation("customizationConfig.distillationConfig is required for DISTILLATION jobs.")
            self.service.resolve_runtime(region, teacher["teacherModelIdentifier"])
        jobs = self.store.jobs
        if jobs.named(region, p["jobName"]):
            raise validation("The provided job name is currently in use.")
        if self.store.models.named(region, p["customModelName"]) or any(
            j.model_name == p["customModelName"] and j.status in ("InProgress", "Stopping") for j in jobs.in_region(region)
        ):
            raise validation("The provided custom model name is currently in use.")
        # A role that can never succeed is refused before the quota is checked (order: our assumption).
        job_id, job_arn = self.new_job(region, f"model-customization-job/{base.model_id}", p["roleArn"])
        self._check_job_quota(region)
        now = time.time()
        job = jobs.add(CustomizationJob(
            arn=job_arn,
            job_id=job_id, name=p["jobName"], region=region, base=base, base_model_arn=base_arn,
            model_name=p["customModelName"], role_arn=p["roleArn"], customization_type=ctype,
            hyperparameters=hyper, training_config=training_config,
            validation_config=p.get("validationDataConfig") or {"validators": []},
            output_config=p["outputDataConfig"], created=now, modified=now,
            scale=self.config.time_scale, client_token=p.get("clientRequestToken"),
            customization_config=customization_config, vpc_config=p.get("vpcConfig"),
            kms_key=p.get("customModelKmsKeyId"), model_tags=tag_dict(p.get("customModelTags")), parent=parent,
        ))
        if p.get("jobTags"):
            self.store.tags[job.arn] = tag_dict(p["jobTags"])
        return {"jobArn": job.arn}

    def get_model_customization_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            return self.store.jobs.find(region, p["jobIdentifier"]).to_dict()

    def list_model_customization_jobs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            jobs = matching(self.store.jobs.in_region(region), p)
            return listing("modelCustomizationJobSummaries", jobs, p, CustomizationJob.summary)

    def stop_model_customization_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            job = self.store.jobs.find(region, p["jobIdentifier"])
            self.advance(job, time.time())
            if job.status != "InProgress":
                raise conflict(
                    f"The model customization job {job.name} cannot be stopped because its status is {job.status}."
                )
            now = time.time()
            job.status, job.modified, job.stop_requested = lifecycle.JOB_STOP.source, now, now
            job.stop_at = lifecycle.JOB_STOP.due(now, job.scale)
            return {}

    # ---- lifecycle --------------------------------------------------------------------------
    def advance(self, job: CustomizationJob, now: float) -> None:
        """Move the job along up to ``now``; an error (e.g. the output bucket deleted mid-job)
        fails only this job."""
        try:
            self._advance(job, now)
        except Exception as exc:  # noqa: BLE001 - never let one job's error reach other requests
            if job.status not in TERMINAL:
                at = job.train_end if job.prepared and job.train_end is not None else min(now, job.validation_end)
                job.fail(failure_message(exc), max(job.created, min(at, now)))
            log_internal(f"customization job {job.arn}", exc)

    def _advance(self, job: CustomizationJob, now: float) -> None:
        if job.status in TERMINAL:
            return
        if job.status == lifecycle.JOB_STOP.source:
            if job.stop_at is not None and now >= job.stop_at:
                job.status, job.end_time, job.modified = lifecycle.JOB_STOP.target, job.stop_at, job.stop_at
            return
        if not job.prepared and now >= job.validation_end:
            message = self._prepare(job)
            if message:
                job.fail(message, job.validation_end)
                return
            job.modified = job.validation_end
        if job.prepared and job.train_end is not None and now >= job.train_end:
            self._complete(job)

    def _prepare(self, job: CustomizationJob) -> str | None:
        """Asynchronous checks, data parsing and the training simulation. Returns a failure message."""
        role, message = self.access.check_role(job.role_arn, job.arn)
        if message:
            return message
        train_uri = job.training_config["s3Uri"]
        train_data, message = self.access.check_read(role, job.region, train_uri)
        if message:
            return message
        validation_files: list[tuple[str, bytes]] = []
        for validator in job.validation_config.get("validators", []):
            content, message = self.access.check_read(role, job.region, validator["s3Uri"])
            if message:
                return message
            validation_files.append((validator["s3Uri"], content or b""))
        message = self.access.check_write(role, job.region, job.output_config["s3Uri"], write_probe=True)
        if message:
            return message
        assert train_data is not None
        base_id, ctype = job.base.model_id, job.customization_type
        message, train_count = data.validate_data(base_id, ctype, job.hyperparameters, train_uri, train_data, "train")
        if message:
            return message
        val_count = 0
        for uri, content in validation_files:
            message, count = data.validate_data(base_id, ctype, job.hyperparameters, uri, content, "validation")
            if message:
                return message
            val_count += count
        message = data.validate_combined_counts(base_id, ctype, train_count, val_count)
        if message:
            return message
        records = data.records(train_data)
        val_records = [r for _, content in validation_files for r in data.records(content)]
        pairs, texts = data.pairs_and_texts(records)
        if ctype == "DISTILLATION":
            pairs = self._teacher_pairs(job, pairs)
            texts = [t for pair in pairs for t in pair]
        from utils.sandbox.standins import count_tokens

        train_lengths = [count_tokens(" ".join(data.pairs_and_texts([r])[1])) for r in records]
        val_lengths = [count_tokens(" ".join(data.pairs_and_texts([r])[1])) for r in val_records]
        seed_source = train_data + json.dumps(job.hyperparameters, sort_keys=True).encode()
        seed = int.from_bytes(hashlib.sha256(seed_source).digest()[:8], "big")
        job.result = training.simulate(training.TrainingInputs(
            family=registry.family_of(base_id), train_lengths=train_lengths, validation_lengths=val_lengths,
            text="\n".join(texts), hyperparameters=job.hyperparameters, seed=seed,
        ))
        parent_pairs = job.parent.training_pairs if job.parent is not None else []
        job.pairs = parent_pairs + pairs
        seconds = lifecycle.training_seconds(job.result.steps, job.result.planned_steps)
        job.train_end = job.processing_end + seconds * job.scale
        job.prepared = True
        return None

    def _teacher_pairs(self, job: CustomizationJob, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Distillation: the teacher's stand-in answers each prompt of the data set."""
        from utils.sandbox import standins
        from utils.sandbox.messages import Prompt

        teacher = job.customization_config["distillationConfig"]["teacherModelConfig"]  # type: ignore[index]
        target = self.service.resolve_runtime(job.region, teacher["teacherModelIdentifier"])
        max_tokens = int(teacher.get("maxResponseLengthForInference") or 1000)
        out = []
        for prompt_text, _ in pairs:
            prompt = Prompt(system="", messages=[("user", prompt_text)], max_tokens=max_tokens)
            out.append((prompt_text, standins.generate(prompt, target.behaviour).text))
        return out

    def _complete(self, job: CustomizationJob) -> None:
        """Write the metric CSVs, then create the custom model, then publish Completed."""
        assert job.result is not None and job.train_end is not None
        bucket, prefix = split_s3(job.output_config["s3Uri"])
        folder = f"{prefix.strip('/')}/model-customization-job-{job.job_id}".lstrip("/")
        self.moto.put_object(
            bucket, f"{folder}/training_artifacts/step_wise_training_metrics.csv", job.result.training_csv()
        )
        if job.result.validation_rows:
            self.moto.put_object(bucket, f"{folder}/{validation_metrics_key(job.base.model_id)}", job.result.validation_csv())
        model = self.store.models.add(CustomModel(
            arn=self.arn(job.region, f"custom-model/{job.base.model_id}/{new_id()}"),
            name=job.model_name, region=job.region, base=job.base, base_model_arn=job.base_model_arn,
            created=job.train_end, job=job, customization_type=job.customization_type,
            hyperparameters=job.hyperparameters, owner=self.moto.account, training_pairs=job.pairs,
            kms_key=job.kms_key, training=job.result.outcome(),
        ))
        if job.model_tags:
            self.store.tags[model.arn] = dict(job.model_tags)
        job.model = model
        job.status, job.end_time, job.modified = "Completed", job.train_end, job.train_end
