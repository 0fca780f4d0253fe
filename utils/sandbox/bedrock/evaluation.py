"""Model evaluation jobs (LLM-as-a-judge): create, get, list, stop, batch delete, and the judge.

Operations (botocore ``bedrock`` service model): CreateEvaluationJob, GetEvaluationJob,
ListEvaluationJobs, StopEvaluationJob, BatchDeleteEvaluationJob.

Only the automated, judge-based kind is emulated (``applicationType="ModelEvaluation"``,
``evaluationConfig.automated`` with ``evaluatorModelConfig.bedrockEvaluatorModels`` and
``Builtin.*`` metrics; https://docs.aws.amazon.com/bedrock/latest/userguide/evaluation-judge.html).
Human and RAG evaluations answer ``ValidationException`` (a sandbox limit, not Bedrock's).

``lifecycle.EVALUATION``: InProgress (the role, the data set and the output permission are
checked at the end of its first phase; a broken rule ends ``Failed`` with ``failureMessages``)
-> Completed. ``StopEvaluationJob``: Stopping -> Stopped (``lifecycle.EVALUATION_STOP``).
``BatchDeleteEvaluationJob``: a finished job (Completed, Failed, Stopped) goes Deleting and is
gone after ``lifecycle.EVALUATION_DELETE``; any other job is reported in ``errors`` (which
states may be deleted, and the error code, are our assumption: the API reference lists the
per-item ``code``/``message`` but not the values).

The data set is the documented JSONL (one prompt per line, at most 1,000;
https://docs.aws.amazon.com/bedrock/latest/userguide/model-evaluation-prompt-datasets-judge.html):
``prompt``, optional ``referenceResponse`` and ``category``; with a
``precomputedInferenceSource`` each line carries ``modelResponses: [{response, modelIdentifier}]``
whose ``modelIdentifier`` equals the source's ``inferenceSourceIdentifier``. With a
``bedrockModel`` the sandbox generates the response through the runtime stand-ins.

Output (https://docs.aws.amazon.com/bedrock/latest/userguide/model-evaluation-report-programmatic.html):
``<output s3Uri>/<job name>/<job id>/models/<model or source>/taskTypes/<task type>/datasets/
<dataset name>/<job id>_output.jsonl``, one line per prompt with ``automatedEvaluationResult.scores``
(``metricName`` without the ``Builtin.`` prefix, ``result`` normalised to 0–1, ``evaluatorDetails``
with the judge and an explanation), ``inputRecord`` and ``modelResponses``. The exact path
segments for a precomputed source (its identifier in the ``models`` segment) are our assumption.

The judge stand-in scores each answer alone (pointwise) from its inputs, deterministically:
token overlap with the reference (Correctness = F1, Completeness = recall of the reference),
and, without a reference, overlap with the prompt. See :func:`judge_scores`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from utils.sandbox.bedrock import lifecycle
from utils.sandbox.bedrock.errors import ApiError, conflict, failure_message, log_internal, validation
from utils.sandbox.bedrock.family import Family
from utils.sandbox.bedrock.store import idempotent, iso, listing, matching, split_s3, tag_dict
from utils.sandbox.bedrock.training_data import records

TERMINAL = ("Completed", "Failed", "Stopped")
MAX_PROMPTS = 1000  # "up to 1000 prompts" per job (model-evaluation-prompt-datasets-judge.html)

# The judge metrics Bedrock documents for model evaluation (evaluation-judge.html, "Built-in metrics").
# The sandbox scores the quality metrics from the inputs; the responsible-AI ones score 0.0
# (no harm, stereotyping or refusal in the stand-ins' answers; our simplification).
QUALITY_METRICS = (
    "Builtin.Correctness", "Builtin.Completeness", "Builtin.Faithfulness", "Builtin.Helpfulness",
    "Builtin.Coherence", "Builtin.Relevance", "Builtin.FollowingInstructions",
    "Builtin.ProfessionalStyleAndTone",
)
RESPONSIBLE_METRICS = ("Builtin.Harmfulness", "Builtin.Stereotyping", "Builtin.Refusal")
JUDGE_METRICS = QUALITY_METRICS + RESPONSIBLE_METRICS

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(str(text or "").lower())


def _overlap(answer: str, reference: str) -> tuple[float, float]:
    """(precision, recall) of the answer's tokens against the reference's (bag of words)."""
    a, r = _tokens(answer), _tokens(reference)
    if not a or not r:
        return 0.0, 0.0
    pool: dict[str, int] = {}
    for t in r:
        pool[t] = pool.get(t, 0) + 1
    common = 0
    for t in a:
        if pool.get(t, 0) > 0:
            pool[t] -= 1
            common += 1
    return common / len(a), common / len(r)


def judge_scores(prompt: str, response: str, reference: str | None, metrics: list[str]) -> dict[str, float]:
    """Pointwise scores in [0, 1] of one response, from the inputs alone (the judge stand-in).

    Correctness is the token F1 against the reference (against the prompt without one),
    Completeness the recall of the reference, Helpfulness and Relevance mix those with the
    answer's overlap with the prompt, style metrics reward a non-empty, not overlong answer.
    Rounded to the nearest 0.25, as a judge answering on a five-point scale would (our assumption).
    """
    anchor = reference if reference else prompt
    precision, recall = _overlap(response, anchor)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    _, prompt_recall = _overlap(response, prompt)
    words = len(_tokens(response))
    tidy = 0.0 if words == 0 else (1.0 if words <= 200 else 0.5)
    raw = {
        "Builtin.Correctness": f1,
        "Builtin.Completeness": recall,
        "Builtin.Faithfulness": precision,
        "Builtin.Helpfulness": 0.7 * f1 + 0.3 * prompt_recall,
        "Builtin.Relevance": 0.5 * f1 + 0.5 * prompt_recall,
        "Builtin.Coherence": tidy,
        "Builtin.FollowingInstructions": tidy * (0.5 + 0.5 * f1),
        "Builtin.ProfessionalStyleAndTone": tidy,
    }
    return {m: round(round(raw.get(m, 0.0) * 4) / 4, 2) for m in metrics}


@dataclass
class EvaluationJob:
    arn: str
    job_id: str
    name: str
    region: str
    role_arn: str
    evaluation_config: dict[str, Any]
    inference_config: dict[str, Any]
    output_config: dict[str, Any]
    created: float
    scale: float
    application_type: str = "ModelEvaluation"
    description: str | None = None
    kms_key: str | None = None
    status: str = "InProgress"
    modified: float = 0.0
    failures: list[str] = field(default_factory=list)
    checked: bool = False
    prompts: int = 0
    stop_at: float | None = None
    delete_at: float | None = None

    def phase_end(self, index: int) -> float:
        """End of the checks (0) and of the scoring (1)."""
        return lifecycle.EVALUATION.ends(self.created, self.scale, lifecycle.evaluation_extra_seconds(self.prompts))[index]

    def _automated(self) -> dict[str, Any]:
        return self.evaluation_config.get("automated") or {}

    def _models(self) -> list[dict[str, Any]]:
        return list(self.inference_config.get("models") or [])

    def summary(self) -> dict[str, Any]:
        """One ListEvaluationJobs summary."""
        auto = self._automated()
        bedrock_ids = [m["bedrockModel"]["modelIdentifier"] for m in self._models() if "bedrockModel" in m]
        sources = [m["precomputedInferenceSource"]["inferenceSourceIdentifier"]
                   for m in self._models() if "precomputedInferenceSource" in m]
        evaluators = [e["modelIdentifier"] for e in
                      (auto.get("evaluatorModelConfig") or {}).get("bedrockEvaluatorModels") or []]
        out: dict[str, Any] = {
            "jobArn": self.arn, "jobName": self.name, "status": self.status, "creationTime": iso(self.created),
            "jobType": "Automated", "applicationType": self.application_type,
            "evaluationTaskTypes": [c["taskType"] for c in auto.get("datasetMetricConfigs") or []],
            "modelIdentifiers": bedrock_ids,
            "inferenceConfigSummary": {"modelConfigSummary": {
                "bedrockModelIdentifiers": bedrock_ids, "precomputedInferenceSourceIdentifiers": sources}},
        }
        if evaluators:
            out["evaluatorModelIdentifiers"] = evaluators
        return out

    def to_dict(self) -> dict[str, Any]:
        """GetEvaluationJob."""
        out: dict[str, Any] = {
            "jobName": self.name, "status": self.status, "jobArn": self.arn, "roleArn": self.role_arn,
            "jobType": "Automated", "applicationType": self.application_type,
            "evaluationConfig": self.evaluation_config, "inferenceConfig": self.inference_config,
            "outputDataConfig": self.output_config, "creationTime": iso(self.created),
            "lastModifiedTime": iso(self.modified),
        }
        if self.description:
            out["jobDescription"] = self.description
        if self.kms_key:
            out["customerEncryptionKeyId"] = self.kms_key
        if self.failures:
            out["failureMessages"] = list(self.failures)
        return out

    def finish(self, status: str, at: float, failures: list[str] | None = None) -> None:
        self.status, self.modified = status, at
        if failures:
            self.failures = failures


class Evaluation(Family):
    # ---- create ------------------------------------------------------------------------------
    @idempotent("jobArn")
    def create_evaluation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        app = p.get("applicationType") or "ModelEvaluation"
        if app != "ModelEvaluation":
            raise validation("The sandbox emulates applicationType ModelEvaluation only (RAG evaluation is not emulated).")
        auto = (p.get("evaluationConfig") or {}).get("automated")
        if not auto:
            raise validation("The sandbox emulates automated (LLM-as-a-judge) evaluation jobs only: "
                             "set evaluationConfig.automated.")
        evaluators = (auto.get("evaluatorModelConfig") or {}).get("bedrockEvaluatorModels") or []
        if not evaluators:
            raise validation("evaluationConfig.automated.evaluatorModelConfig.bedrockEvaluatorModels is required "
                             "for a model-as-a-judge evaluation job.")
        for evaluator in evaluators:
            self.service.resolve_runtime(region, evaluator["modelIdentifier"])
        if auto.get("customMetricConfig"):
            raise validation("Custom metrics are not emulated by the sandbox.")
        for config in auto.get("datasetMetricConfigs") or []:
            if not (config.get("dataset") or {}).get("datasetLocation", {}).get("s3Uri"):
                raise validation(f"Dataset {config['dataset']['name']} needs datasetLocation.s3Uri "
                                 "(built-in data sets are not available to judge-based jobs).")
            unknown = [m for m in config["metricNames"] if m not in JUDGE_METRICS]
            if unknown:
                raise validation(f"Unsupported metric names for a model-as-a-judge job: {', '.join(unknown)}. "
                                 f"Supported: {', '.join(JUDGE_METRICS)}.")
        models = (p.get("inferenceConfig") or {}).get("models") or []
        if not models:
            raise validation("inferenceConfig.models is required for a model evaluation job.")
        for model in models:
            if ("bedrockModel" in model) == ("precomputedInferenceSource" in model):
                raise validation("Each inferenceConfig.models entry needs exactly one of bedrockModel and "
                                 "precomputedInferenceSource.")
            if "bedrockModel" in model:
                self.service.resolve_runtime(region, model["bedrockModel"]["modelIdentifier"])
        if len({"bedrockModel" in m for m in models}) > 1:
            # Our assumption: the docs describe either Bedrock-generated or bring-your-own responses per job.
            raise validation("inferenceConfig.models cannot mix bedrockModel and precomputedInferenceSource.")
        if self.store.evaluation_jobs.named(region, p["jobName"]):
            raise conflict(f"An evaluation job named {p['jobName']} already exists.")
        job_id, job_arn = self.new_job(region, "evaluation-job", p["roleArn"])
        now = time.time()
        job = self.store.evaluation_jobs.add(EvaluationJob(
            arn=job_arn, job_id=job_id, name=p["jobName"], region=region, role_arn=p["roleArn"],
            evaluation_config=p["evaluationConfig"], inference_config=p["inferenceConfig"],
            output_config=p["outputDataConfig"], created=now, modified=now, scale=self.config.time_scale,
            application_type=app, description=p.get("jobDescription"), kms_key=p.get("customerEncryptionKeyId"),
        ))
        if p.get("jobTags"):
            self.store.tags[job.arn] = tag_dict(p["jobTags"])
        return {"jobArn": job.arn}

    # ---- read --------------------------------------------------------------------------------
    def get_evaluation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            return self.store.evaluation_jobs.find(region, p["jobIdentifier"]).to_dict()

    def list_evaluation_jobs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            items = matching(self.store.evaluation_jobs.in_region(region), p,
                             equals={"applicationTypeEquals": lambda j: j.application_type})
            return listing("jobSummaries", items, p, EvaluationJob.summary)

    # ---- stop and delete -----------------------------------------------------------------------
    def stop_evaluation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            job = self.store.evaluation_jobs.find(region, p["jobIdentifier"])
            now = time.time()
            self.advance_job(job, now)
            if job.status != "InProgress":
                raise conflict(f"The evaluation job {job.name} cannot be stopped because its status is {job.status}.")
            job.status, job.modified = lifecycle.EVALUATION_STOP.source, now
            job.stop_at = lifecycle.EVALUATION_STOP.due(now, job.scale)
            return {}

    def batch_delete_evaluation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        deleted: list[dict[str, Any]] = []
        with self.store.lock:
            now = time.time()
            for identifier in p["jobIdentifiers"]:
                job = self.store.evaluation_jobs.maybe(region, identifier)
                if job is None:
                    errors.append({"jobIdentifier": identifier, "code": "ResourceNotFoundException",
                                   "message": f"Could not find evaluation job with identifier {identifier}."})
                    continue
                self.advance_job(job, now)
                if job.status not in TERMINAL and job.status != "Deleting":
                    # Our assumption: only a finished job can be deleted (stop it first).
                    errors.append({"jobIdentifier": identifier, "code": "ValidationException",
                                   "message": f"The evaluation job {job.name} cannot be deleted because its status "
                                              f"is {job.status}. Stop the job first."})
                    continue
                if job.status != "Deleting":
                    job.status, job.modified = lifecycle.EVALUATION_DELETE.source, now
                    job.delete_at = lifecycle.EVALUATION_DELETE.due(now, job.scale)
                deleted.append({"jobIdentifier": identifier, "jobStatus": job.status})
        return {"errors": errors, "evaluationJobs": deleted}

    # ---- lifecycle -----------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        for job in list(self.store.evaluation_jobs.values()):
            self.advance_job(job, now)

    def advance_job(self, job: EvaluationJob, now: float) -> None:
        try:
            self._advance(job, now)
        except Exception as exc:  # noqa: BLE001 - never let one job's error reach other requests
            if job.status == "InProgress":
                job.finish("Failed", max(job.modified, now), [failure_message(exc)])
            log_internal(f"evaluation job {job.arn}", exc)

    def _advance(self, job: EvaluationJob, now: float) -> None:
        if job.status == "Deleting":
            if job.delete_at is not None and now >= job.delete_at:
                self.delete(self.store.evaluation_jobs, job)
            return
        if job.status == lifecycle.EVALUATION_STOP.source:
            if job.stop_at is not None and now >= job.stop_at:
                job.finish(lifecycle.EVALUATION_STOP.target, job.stop_at)
            return
        if job.status != "InProgress":
            return
        if not job.checked and now >= job.phase_end(0):
            failures = self._check(job)
            if failures:
                job.finish("Failed", job.phase_end(0), failures)
                return
            job.checked = True
        if job.checked and now >= job.phase_end(1):
            failures = self._score(job)  # outputs are written before the status announces them
            if failures:
                job.finish("Failed", job.phase_end(1), failures)
            else:
                job.finish("Completed", job.phase_end(1))

    def _datasets(self, job: EvaluationJob) -> list[dict[str, Any]]:
        return list(job._automated().get("datasetMetricConfigs") or [])

    def _check(self, job: EvaluationJob) -> list[str]:
        role, message = self.access.check_role(job.role_arn, job.arn)
        if message:
            return [message]
        message = self.access.check_write(role, job.region, job.output_config["s3Uri"])
        if message:
            return [message]
        sources = {m["precomputedInferenceSource"]["inferenceSourceIdentifier"]
                   for m in job._models() if "precomputedInferenceSource" in m}
        total = 0
        for config in self._datasets(job):
            uri = config["dataset"]["datasetLocation"]["s3Uri"]
            content, message = self.access.check_read(role, job.region, uri)
            if message:
                return [message]
            try:
                recs = records(content or b"")
            except ValueError:
                return [f"Unable to parse Amazon S3 file: {uri.rsplit('/', 1)[-1]}. Data files must conform to JSONL format."]
            if not recs:
                return [f"The dataset {config['dataset']['name']} at {uri} contains no prompts."]
            if len(recs) > MAX_PROMPTS:
                return [f"The dataset {config['dataset']['name']} contains {len(recs)} prompts; "
                        f"an evaluation job accepts at most {MAX_PROMPTS}."]
            for line, rec in enumerate(recs, start=1):
                if not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
                    return [f"Line {line} of {uri}: every record needs a non-empty \"prompt\"."]
                if sources:
                    given = {r.get("modelIdentifier") for r in rec.get("modelResponses") or [] if isinstance(r, dict)}
                    missing = sorted(sources - given)
                    if missing:
                        return [f"Line {line} of {uri}: modelResponses has no response for "
                                f"inferenceSourceIdentifier {missing[0]}."]
            total += len(recs)
        job.prompts = total
        return []

    def _score(self, job: EvaluationJob) -> list[str]:
        out_bucket, out_prefix = split_s3(job.output_config["s3Uri"])
        evaluator = job._automated()["evaluatorModelConfig"]["bedrockEvaluatorModels"][0]["modelIdentifier"]
        for model in job._models():
            if "precomputedInferenceSource" in model:
                label = model["precomputedInferenceSource"]["inferenceSourceIdentifier"]
            else:
                label = model["bedrockModel"]["modelIdentifier"]
            for config in self._datasets(job):
                bucket, key = split_s3(config["dataset"]["datasetLocation"]["s3Uri"])
                lines = []
                for rec in records(self.moto.get_object(bucket, key) or b""):
                    response = self._response(job, model, label, rec)
                    scores = judge_scores(rec["prompt"], response, rec.get("referenceResponse"), config["metricNames"])
                    lines.append(json.dumps({
                        "automatedEvaluationResult": {"scores": [
                            {"metricName": metric.split(".", 1)[-1], "result": value,
                             "evaluatorDetails": [{"modelIdentifier": evaluator,
                                                   "explanation": _explain(metric, value, rec)}]}
                            for metric, value in scores.items()]},
                        "inputRecord": rec,
                        "modelResponses": [{"response": response, "modelIdentifier": label}],
                    }))
                path = "/".join(part for part in (
                    out_prefix.strip("/"), job.name, job.job_id, "models", _segment(label), "taskTypes",
                    config["taskType"], "datasets", config["dataset"]["name"], f"{job.job_id}_output.jsonl") if part)
                self.moto.put_object(out_bucket, path, ("\n".join(lines) + "\n").encode())
        return []

    def _response(self, job: EvaluationJob, model: dict[str, Any], label: str, rec: dict[str, Any]) -> str:
        if "precomputedInferenceSource" in model:
            return next(str(r.get("response", "")) for r in rec["modelResponses"] if r.get("modelIdentifier") == label)
        request = {"messages": [{"role": "user", "content": [{"text": rec["prompt"]}]}]}
        try:
            result = self.service.invoke(job.region, label, request, converse=True, faults=False)
        except ApiError as exc:
            return f"[inference error: {exc.message}]"
        blocks = (result.body.get("output") or {}).get("message", {}).get("content") or []
        return "".join(b.get("text", "") for b in blocks if isinstance(b, dict))


def _segment(identifier: str) -> str:
    """A model identifier as one path segment (an ARN's slashes replaced; our assumption)."""
    return identifier.replace("/", "-").replace(":", "-") if identifier.startswith("arn:") else identifier


def _explain(metric: str, value: float, rec: dict[str, Any]) -> str:
    against = "the reference response" if rec.get("referenceResponse") else "the prompt"
    return f"Sandbox judge: {metric.split('.', 1)[-1]} {value:.2f} from token overlap with {against}."
