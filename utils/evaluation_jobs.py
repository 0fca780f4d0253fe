"""A managed Bedrock model evaluation job (LLM-as-a-judge) on answers 06 already produced.

The job scores each answer alone (pointwise) on built-in metrics with an evaluator model
(https://docs.aws.amazon.com/bedrock/latest/userguide/evaluation-judge.html). The answers are
brought as ``precomputedInferenceSource`` data (one JSONL line per question with ``prompt``,
``referenceResponse`` and ``modelResponses``;
https://docs.aws.amazon.com/bedrock/latest/userguide/model-evaluation-prompt-datasets-judge.html),
so Bedrock runs no generator inference, only the judge. The results are read from the output
layout of https://docs.aws.amazon.com/bedrock/latest/userguide/model-evaluation-report-programmatic.html
(``..._output.jsonl`` files, one line per prompt with ``automatedEvaluationResult.scores``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from utils import aws, costs, s3, validate_dataset
from utils import state as ws
from utils.state import WorkshopState

METRICS = ("Builtin.Correctness", "Builtin.Completeness", "Builtin.Helpfulness")
MAX_PROMPTS = 1000  # per job (model-evaluation-prompt-datasets-judge.html)
# Judge tokens per prompt and metric beyond the record itself: the evaluator prompt template
# and the judge's explanation. AWS publishes the templates but not their token counts: these
# are our assumption, rounded up so the estimate is an upper bound.
TEMPLATE_TOKENS = 1200
EXPLANATION_TOKENS = 300
LEDGER_KIND = "evaluation-job"
NOTEBOOK = "06_evaluation"


def source_id(arm: str) -> str:
    """An ``inferenceSourceIdentifier`` for an arm (``[a-zA-Z0-9][a-zA-Z0-9._-]{0,255}``)."""
    return re.sub(r"[^a-zA-Z0-9._-]+", "-", arm).strip("-._")[:256] or "answers"


def dataset_records(scored: pd.DataFrame, arm: str, limit: int = MAX_PROMPTS) -> list[dict[str, Any]]:
    """One arm's zero-shot answers as evaluation-job records with its precomputed responses."""
    part = scored[(scored["arm"] == arm) & (scored["mode"] == "zero_shot")] if len(scored) else scored
    records = []
    for row in part.head(limit).to_dict("records"):
        records.append({
            "prompt": str(row["question"]),
            "referenceResponse": str(row["reference"]),
            "modelResponses": [{"response": str(row["prediction"]), "modelIdentifier": source_id(arm)}],
        })
    return records


def estimate(records: Sequence[Mapping[str, Any]], judge_price_key: str, metrics: Sequence[str] = METRICS,
             price_overrides: Mapping[str, float] | None = None, region: str = costs.DEFAULT_REGION) -> costs.Estimate:
    """Upper-bound judge cost: every record is read once per metric with the template, and answered."""
    per_record = [validate_dataset.estimate_tokens(json.dumps(r)) + TEMPLATE_TOKENS for r in records]
    part = costs.estimate_inference(
        judge_price_key, sum(per_record) * len(metrics), EXPLANATION_TOKENS * len(records) * len(metrics),
        price_overrides=price_overrides, region=region, description="evaluation job judge")
    estimate = costs.combine([part], title="06 managed evaluation job (judge tokens)")
    estimate.notes.append("Judge-based evaluation jobs are billed as the evaluator model's inference; "
                          "template and explanation sizes are our assumption (upper bound).")
    return estimate


def run(state: WorkshopState, records: Sequence[Mapping[str, Any]], arm: str, judge_model_id: str, *,
        metrics: Sequence[str] = METRICS, task_type: str = "QuestionAndAnswer", poll_s: float = 30,
        timeout_s: float = 3 * 3600, client: Any = None) -> dict[str, Any]:
    """Create (or find, on a rerun) the job, record it in the ledger, wait, and return its description.

    The job name is deterministic, so a rerun reuses the job instead of paying again.
    """
    if not records:
        raise ValueError("No answers to evaluate: run section 1 with confirm_spend=True first.")
    bedrock = client or aws.client("bedrock", state.region)
    name = ws.name(state.workshop_id, f"eval-{source_id(arm)}".lower())
    existing = [j for j in bedrock.list_evaluation_jobs(nameContains=name).get("jobSummaries", [])
                if j["jobName"] == name and j["status"] not in ("Failed", "Stopped", "Deleting")]
    if existing:
        arn = existing[0]["jobArn"]
    else:
        from utils import iam

        role = iam.ensure_evaluation_role(state.workshop_id, state.bucket, state.region, state.account_id)
        state.record("iam-role", role, NOTEBOOK)
        body = "\n".join(json.dumps(r) for r in records) + "\n"
        data = s3.upload_bytes(state.bucket, f"{iam.EVALUATION_INPUT_PREFIX}{name}.jsonl", body, region=state.region)
        request = {
            "jobName": name, "roleArn": role, "applicationType": "ModelEvaluation",
            "jobDescription": f"06_evaluation: pointwise judge scores of {arm}",
            "evaluationConfig": {"automated": {
                "datasetMetricConfigs": [{"taskType": task_type,
                                          "dataset": {"name": source_id(arm), "datasetLocation": {"s3Uri": data}},
                                          "metricNames": list(metrics)}],
                "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": judge_model_id}]}}},
            "inferenceConfig": {"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": source_id(arm)}}]},
            "outputDataConfig": {"s3Uri": s3.uri(state.bucket, iam.EVALUATION_OUTPUT_PREFIX)},
            "jobTags": ws.tag_list(state.workshop_id, key="key", value="value"),
        }
        arn = iam.retry_eventual(lambda: bedrock.create_evaluation_job(**request))["jobArn"]
    state.record(LEDGER_KIND, arn, NOTEBOOK, billable=True)
    try:
        return aws.poll_until(lambda: bedrock.get_evaluation_job(jobIdentifier=arn), "Completed",
                              failed=("Failed", "Stopped"), poll_s=poll_s, timeout_s=timeout_s)
    except RuntimeError:
        job = bedrock.get_evaluation_job(jobIdentifier=arn)
        reasons = "; ".join(job.get("failureMessages") or []) or "no failure message"
        raise RuntimeError(f"Evaluation job {arn} ended {job['status']}: {reasons}. Fix it and rerun this cell "
                           "(a failed job is replaced by a new one; 07_cleanup deletes both).") from None


def read_scores(job: Mapping[str, Any], region: str | None = None) -> pd.DataFrame:
    """Every ``*_output.jsonl`` of a completed job as one row per (prompt, metric)."""
    bucket, prefix = s3.parse_uri(job["outputDataConfig"]["s3Uri"])
    job_id = job["jobArn"].rsplit("/", 1)[-1]
    base = "/".join(p for p in (prefix.strip("/"), job["jobName"], job_id) if p) + "/"
    client = aws.client("s3", region)
    rows = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("_output.jsonl"):
                continue
            text = s3.read_text(s3.uri(bucket, obj["Key"]), region=region)
            for index, line in enumerate(x for x in text.splitlines() if x.strip()):
                record = json.loads(line)
                for score in (record.get("automatedEvaluationResult") or {}).get("scores", []):
                    rows.append({"record": index, "metric": score.get("metricName"), "score": score.get("result"),
                                 "prompt": (record.get("inputRecord") or {}).get("prompt", "")})
    return pd.DataFrame(rows, columns=["record", "metric", "score", "prompt"])


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, min, max and count of the pointwise scores per metric (0-1, higher is better)."""
    if scores.empty:
        return pd.DataFrame(columns=["metric", "mean", "min", "max", "n"])
    table = scores.dropna(subset=["score"]).groupby("metric")["score"].agg(["mean", "min", "max", "count"])
    return table.rename(columns={"count": "n"}).reset_index().round(3)
