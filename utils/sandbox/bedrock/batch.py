"""Batch inference (model invocation jobs): create, get, list, stop, and running the records.

``lifecycle.BATCH``: Submitted -> Validating (the role, inputs, output permission and record
count are checked at its end) -> Scheduled -> InProgress -> Completed | PartiallyCompleted |
Failed. Every record's ``modelInput`` goes through the runtime (``Bedrock.invoke``, no faults);
the records run outside the store's lock and the result is published under it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from utils.sandbox.bedrock import lifecycle
from utils.sandbox.bedrock.errors import ApiError, conflict, failure_message, log_internal, validation
from utils.sandbox.bedrock.family import Family
from utils.sandbox.bedrock.store import idempotent, iso, listing, matching, split_s3, tag_dict
from utils.sandbox.bedrock.training_data import records

TERMINAL = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")


@dataclass
class InvocationJob:
    arn: str
    job_id: str
    name: str
    region: str
    model_id: str
    role_arn: str
    input_config: dict[str, Any]
    output_config: dict[str, Any]
    submitted: float
    scale: float
    invocation_type: str = "InvokeModel"
    timeout_hours: int = 24
    client_token: str | None = None
    vpc_config: dict[str, Any] | None = None
    status: str = "Submitted"
    message: str | None = None
    modified: float = 0.0
    end_time: float | None = None
    stop_at: float | None = None
    validated: bool = False
    files: list[str] = field(default_factory=list)
    total: int = 0
    processed: int = 0
    success: int = 0
    errors: int = 0
    running: bool = False  # its records are being run (outside the lock)

    def phase_end(self, index: int) -> float:
        """End of Submitted (0), Validating (1), Scheduled (2), InProgress (3)."""
        return lifecycle.BATCH.ends(self.submitted, self.scale, lifecycle.batch_extra_seconds(self.total))[index]

    def to_dict(self) -> dict[str, Any]:
        """GetModelInvocationJob (and each list summary)."""
        out: dict[str, Any] = {
            "jobArn": self.arn, "jobName": self.name, "modelId": self.model_id, "roleArn": self.role_arn,
            "status": self.status, "submitTime": iso(self.submitted), "lastModifiedTime": iso(self.modified),
            "inputDataConfig": self.input_config, "outputDataConfig": self.output_config,
            "timeoutDurationInHours": self.timeout_hours,
            "jobExpirationTime": iso(self.submitted + self.timeout_hours * 3600),
            "modelInvocationType": self.invocation_type,
        }
        if self.client_token:
            out["clientRequestToken"] = self.client_token
        if self.message:
            out["message"] = self.message
        if self.end_time is not None:
            out["endTime"] = iso(self.end_time)
        if self.vpc_config:
            out["vpcConfig"] = self.vpc_config
        if self.validated:
            out.update({
                "totalRecordCount": self.total, "processedRecordCount": self.processed,
                "successRecordCount": self.success, "errorRecordCount": self.errors,
            })
        return out

    def finish(self, status: str, message: str | None, at: float) -> None:
        self.status, self.message = status, message if message is not None else self.message
        self.end_time = self.modified = at


class Batch(Family):
    @idempotent("jobArn")
    def create_model_invocation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        self.service.resolve_runtime(region, p["modelId"])
        s3_in = (p.get("inputDataConfig") or {}).get("s3InputDataConfig")
        s3_out = (p.get("outputDataConfig") or {}).get("s3OutputDataConfig")
        if not s3_in or not s3_out:
            raise validation("inputDataConfig.s3InputDataConfig and outputDataConfig.s3OutputDataConfig are required.")
        if self.store.batch_jobs.named(region, p["jobName"]):
            raise conflict(f"A model invocation job named {p['jobName']} already exists.")
        job_id, job_arn = self.new_job(region, "model-invocation-job", p["roleArn"])
        now = time.time()
        job = self.store.batch_jobs.add(InvocationJob(
            arn=job_arn, job_id=job_id,
            name=p["jobName"], region=region, model_id=p["modelId"], role_arn=p["roleArn"],
            input_config=p["inputDataConfig"], output_config=p["outputDataConfig"],
            submitted=now, modified=now, scale=self.config.time_scale,
            invocation_type=p.get("modelInvocationType") or "InvokeModel",
            timeout_hours=int(p.get("timeoutDurationInHours") or 24), client_token=p.get("clientRequestToken"),
            vpc_config=p.get("vpcConfig"),
        ))
        if p.get("tags"):
            self.store.tags[job.arn] = tag_dict(p["tags"])
        return {"jobArn": job.arn}

    def get_model_invocation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            return self.store.batch_jobs.find(region, p["jobIdentifier"]).to_dict()

    def list_model_invocation_jobs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            items = matching(self.store.batch_jobs.in_region(region), p, time_attr="submitted",
                             after="submitTimeAfter", before="submitTimeBefore")
            return listing("invocationJobSummaries", items, p, InvocationJob.to_dict, sort_by="submitted")

    def stop_model_invocation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            job = self.store.batch_jobs.find(region, p["jobIdentifier"])
            self.advance(job, time.time())
            if job.status in TERMINAL or job.status == lifecycle.BATCH_STOP.source:
                raise conflict(
                    f"The model invocation job {job.name} cannot be stopped because its status is {job.status}."
                )
            now = time.time()
            job.status, job.modified = lifecycle.BATCH_STOP.source, now
            job.stop_at = lifecycle.BATCH_STOP.due(now, job.scale)
            return {}

    # ---- lifecycle --------------------------------------------------------------------------
    def advance(self, job: InvocationJob, now: float) -> bool:
        """Move the job along up to ``now``; an error fails only this job. True when its records
        are due to run (the caller runs them with :meth:`execute`, outside the lock)."""
        try:
            self._advance(job, now)
        except Exception as exc:  # noqa: BLE001 - never let one job's error reach other requests
            if job.status not in TERMINAL:
                job.finish("Failed", failure_message(exc), max(job.modified, min(now, job.phase_end(3))))
            log_internal(f"batch job {job.arn}", exc)
        if job.status == "InProgress" and not job.running and now >= job.phase_end(3):
            job.running = True
            return True
        return False

    def _advance(self, job: InvocationJob, now: float) -> None:
        if job.status in TERMINAL:
            return
        if job.status == lifecycle.BATCH_STOP.source:
            if job.stop_at is not None and now >= job.stop_at:
                job.finish(lifecycle.BATCH_STOP.target, None, job.stop_at)
            return
        if now >= job.phase_end(0) and job.status == "Submitted":
            job.status, job.modified = "Validating", job.phase_end(0)
        if now >= job.phase_end(1) and job.status == "Validating":
            message = self._validate(job)
            if message:
                job.finish("Failed", message, job.phase_end(1))
                return
            job.status, job.modified = "Scheduled", job.phase_end(1)
        if now >= job.phase_end(2) and job.status == "Scheduled":
            job.status, job.modified = "InProgress", job.phase_end(2)
        # InProgress -> Completed | PartiallyCompleted | Failed: ``execute`` runs the records.

    def _inputs(self, job: InvocationJob) -> list[str]:
        uri = job.input_config["s3InputDataConfig"]["s3Uri"]
        bucket, key = split_s3(uri)
        if key.endswith(".jsonl"):
            return [f"s3://{bucket}/{key}"]
        prefix = key if not key or key.endswith("/") else key + "/"
        return [f"s3://{bucket}/{k}" for k in self.moto.list_keys(bucket, prefix) if k.endswith(".jsonl")]

    def _validate(self, job: InvocationJob) -> str | None:
        role, message = self.access.check_role(job.role_arn, job.arn)
        if message:
            return message
        files = self._inputs(job)
        if not files:
            return f"No .jsonl input files were found at {job.input_config['s3InputDataConfig']['s3Uri']}."
        total = 0
        for uri in files:
            content, message = self.access.check_read(role, job.region, uri)
            if message:
                return message
            try:
                total += len(records(content or b""))
            except ValueError:
                return f"Unable to parse Amazon S3 file: {uri.rsplit('/', 1)[-1]}. Data files must conform to JSONL format."
        message = self.access.check_write(role, job.region, job.output_config["s3OutputDataConfig"]["s3Uri"])
        if message:
            return message
        if total < self.config.batch_min_records:
            return (
                f"The input contains {total} records, fewer than the minimum of "
                f"{self.config.batch_min_records} records per batch inference job for this model."
            )
        job.files, job.total, job.validated = files, total, True
        return None

    def execute(self, job: InvocationJob) -> None:
        """Run a due job's records (no lock held), then publish the result under the lock."""
        lock = self.store.lock
        try:
            counts = self._run(job)
        except Exception as exc:  # noqa: BLE001 - fail only this job
            with lock:
                job.running = False
                if job.status == "InProgress":
                    job.finish("Failed", failure_message(exc), max(job.modified, job.phase_end(3)))
            log_internal(f"batch job {job.arn}", exc)
            return
        with lock:
            job.running = False
            if job.status != "InProgress":  # stopped meanwhile: the stop lifecycle wins
                return
            job.processed, job.success, job.errors = counts
            if job.errors == 0:
                job.finish("Completed", None, job.phase_end(3))
            elif job.success > 0:
                job.finish("PartiallyCompleted", None, job.phase_end(3))
            else:
                job.finish("Failed", "All records failed; see the error field of each output record.", job.phase_end(3))

    def _run(self, job: InvocationJob) -> tuple[int, int, int]:
        """Run every record through the runtime and write the outputs; (processed, success, errors)."""
        from utils.sandbox import bodies

        out_bucket, out_prefix = split_s3(job.output_config["s3OutputDataConfig"]["s3Uri"])
        base = f"{out_prefix.strip('/')}/{job.job_id}".lstrip("/")
        tokens_in = tokens_out = processed = success = errors = 0
        for uri in job.files:
            bucket, key = split_s3(uri)
            lines = []
            for index, record in enumerate(records(self.moto.get_object(bucket, key) or b"")):
                record_id = str(record.get("recordId") or f"{index + 1:011d}")
                model_input = record.get("modelInput")
                line: dict[str, Any] = {"recordId": record_id, "modelInput": model_input}
                try:
                    if not isinstance(model_input, dict):
                        raise bodies.BodyError("modelInput must be a JSON object")
                    result = self.service.invoke(job.region, job.model_id, model_input,
                                                 converse=job.invocation_type == "Converse", faults=False)
                    line["modelOutput"] = result.body
                    tokens_in += result.completion.input_tokens
                    tokens_out += result.completion.output_tokens
                    success += 1
                except ApiError as exc:
                    line["error"] = {"errorCode": exc.status, "errorMessage": exc.message}
                    errors += 1
                except bodies.BodyError as exc:
                    line["error"] = {"errorCode": 400, "errorMessage": str(exc)}
                    errors += 1
                processed += 1
                lines.append(json.dumps(line))
            name = key.rsplit("/", 1)[-1]
            self.moto.put_object(out_bucket, f"{base}/{name}.out", ("\n".join(lines) + "\n").encode())
        manifest = {
            "totalRecordCount": job.total, "processedRecordCount": processed,
            "successRecordCount": success, "errorRecordCount": errors,
            "inputTokenCount": tokens_in, "outputTokenCount": tokens_out,
        }
        self.moto.put_object(out_bucket, f"{base}/manifest.json.out", json.dumps(manifest).encode())
        return processed, success, errors
