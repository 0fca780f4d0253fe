"""Model evaluation jobs (LLM-as-a-judge) in the sandbox, driven with plain boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_support import FAST, Env, sandbox_fixture, unique, wait_for
from utils.sandbox.bedrock.evaluation import judge_scores

_sandbox = sandbox_fixture()

JUDGE = "amazon.nova-pro-v1:0"
METRICS = ["Builtin.Correctness", "Builtin.Completeness", "Builtin.Helpfulness"]


def _records() -> list[dict[str, Any]]:
    return [
        {"prompt": "What was revenue in 2023?", "referenceResponse": "Revenue was 4.2 billion dollars in 2023.",
         "modelResponses": [{"response": "Revenue was 4.2 billion dollars in 2023.", "modelIdentifier": "ft"}]},
        {"prompt": "Who is the CEO?", "referenceResponse": "The CEO is Jane Doe.",
         "modelResponses": [{"response": "I cannot tell from the filing.", "modelIdentifier": "ft"}]},
    ]


def _create(sandbox: Env, bedrock: Any, bucket: str, *, role: str | None = None, source: str = "ft",
            records: list[dict[str, Any]] | None = None, **extra: Any) -> str:
    data = sandbox.put_jsonl(bucket, f"eval/{unique('d')}.jsonl", records if records is not None else _records())
    return bedrock.create_evaluation_job(
        jobName=unique("evaljob").lower(), roleArn=role or sandbox.role(), applicationType="ModelEvaluation",
        evaluationConfig={"automated": {
            "datasetMetricConfigs": [{"taskType": "QuestionAndAnswer",
                                      "dataset": {"name": "heldout", "datasetLocation": {"s3Uri": data}},
                                      "metricNames": METRICS}],
            "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": JUDGE}]}}},
        inferenceConfig={"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": source}}]},
        outputDataConfig={"s3Uri": f"s3://{bucket}/eval-out/"}, **extra,
    )["jobArn"]


def test_lifecycle_output_files_and_scores(sandbox: Env) -> None:
    bedrock, bucket = sandbox.client("bedrock"), sandbox.bucket()
    arn = _create(sandbox, bedrock, bucket, jobTags=[{"key": "workshop-id", "value": "t"}])
    assert bedrock.get_evaluation_job(jobIdentifier=arn)["status"] == "InProgress"
    job = wait_for(lambda: bedrock.get_evaluation_job(jobIdentifier=arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Completed", job.get("failureMessages")
    assert job["jobType"] == "Automated"
    job_id = arn.rsplit("/", 1)[-1]
    keys = sandbox.keys(bucket, "eval-out/")
    expected = (f"eval-out/{job['jobName']}/{job_id}/models/ft/taskTypes/QuestionAndAnswer/datasets/heldout/"
                f"{job_id}_output.jsonl")
    assert keys == [expected]
    lines = [json.loads(x) for x in sandbox.read(bucket, expected).decode().splitlines()]
    assert len(lines) == 2
    first, second = ({s["metricName"]: s["result"] for s in line["automatedEvaluationResult"]["scores"]} for line in lines)
    assert set(first) == {"Correctness", "Completeness", "Helpfulness"}
    assert first["Correctness"] == 1.0 and second["Correctness"] < 0.5  # the exact answer beats the refusal
    assert lines[0]["modelResponses"][0]["modelIdentifier"] == "ft"
    assert lines[0]["automatedEvaluationResult"]["scores"][0]["evaluatorDetails"][0]["modelIdentifier"] == JUDGE
    summaries = bedrock.list_evaluation_jobs(nameContains=job["jobName"])["jobSummaries"]
    assert [s["jobArn"] for s in summaries] == [arn]
    assert summaries[0]["inferenceConfigSummary"]["modelConfigSummary"]["precomputedInferenceSourceIdentifiers"] == ["ft"]


def test_judge_is_pointwise_and_deterministic() -> None:
    good = judge_scores("q", "Revenue was 4.2 billion.", "Revenue was 4.2 billion.", METRICS)
    partial = judge_scores("q", "Revenue was high.", "Revenue was 4.2 billion.", METRICS)
    assert good == judge_scores("q", "Revenue was 4.2 billion.", "Revenue was 4.2 billion.", METRICS)
    assert good["Builtin.Correctness"] > partial["Builtin.Correctness"]
    assert all(0.0 <= v <= 1.0 for v in partial.values())


def test_stop_takes_time_then_batch_delete(sandbox: Env) -> None:
    bedrock, bucket = sandbox.client("bedrock"), sandbox.bucket()
    # Stopping and deleting last 1.2 s each (0.3 s x 4): at the module's time_scale (FAST, 15 ms)
    # a loaded machine could see the job Stopped before the batch delete that must find it Stopping.
    sandbox.configure(time_scale=4.0)
    try:
        arn = _create(sandbox, bedrock, bucket)
    finally:
        sandbox.configure(time_scale=FAST)
    bedrock.stop_evaluation_job(jobIdentifier=arn)
    assert bedrock.get_evaluation_job(jobIdentifier=arn)["status"] == "Stopping"
    result = bedrock.batch_delete_evaluation_job(jobIdentifiers=[arn])
    assert result["evaluationJobs"] == [] and result["errors"][0]["jobIdentifier"] == arn
    wait_for(lambda: bedrock.get_evaluation_job(jobIdentifier=arn), "status", ("Stopped",))
    with pytest.raises(ClientError) as err:
        bedrock.stop_evaluation_job(jobIdentifier=arn)
    assert err.value.response["Error"]["Code"] == "ConflictException"
    result = bedrock.batch_delete_evaluation_job(jobIdentifiers=[arn])
    assert result["errors"] == [] and result["evaluationJobs"] == [{"jobIdentifier": arn, "jobStatus": "Deleting"}]

    def gone() -> dict[str, Any]:
        try:
            return bedrock.get_evaluation_job(jobIdentifier=arn)
        except ClientError as exc:
            return {"status": exc.response["Error"]["Code"]}

    wait_for(gone, "status", ("ResourceNotFoundException",))
    missing = arn[:-12] + "zzzzzzzzzzzz"
    assert bedrock.batch_delete_evaluation_job(jobIdentifiers=[missing])["errors"][0]["code"] == "ResourceNotFoundException"


def test_bad_inputs(sandbox: Env) -> None:
    bedrock, bucket = sandbox.client("bedrock"), sandbox.bucket()
    with pytest.raises(ClientError) as err:  # a role Bedrock cannot assume is refused at create
        _create(sandbox, bedrock, bucket, role=sandbox.role(trust=False))
    assert "Could not assume provided IAM role" in err.value.response["Error"]["Message"]
    # A response missing for the precomputed source fails the job with a message.
    arn = _create(sandbox, bedrock, bucket, source="other")
    job = wait_for(lambda: bedrock.get_evaluation_job(jobIdentifier=arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Failed" and "inferenceSourceIdentifier other" in job["failureMessages"][0]
    # No S3 access: the output permission is checked first.
    arn = _create(sandbox, bedrock, bucket, role=sandbox.role(s3=False))
    job = wait_for(lambda: bedrock.get_evaluation_job(jobIdentifier=arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Failed" and "PutObject" in job["failureMessages"][0]
    with pytest.raises(ClientError) as err:
        bedrock.create_evaluation_job(
            jobName=unique("evaljob").lower(), roleArn=sandbox.role(),
            evaluationConfig={"automated": {"datasetMetricConfigs": [{
                "taskType": "QuestionAndAnswer", "dataset": {"name": "d", "datasetLocation": {"s3Uri": f"s3://{bucket}/x.jsonl"}},
                "metricNames": ["Builtin.Nonsense"]}],
                "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": JUDGE}]}}},
            inferenceConfig={"models": [{"precomputedInferenceSource": {"inferenceSourceIdentifier": "ft"}}]},
            outputDataConfig={"s3Uri": f"s3://{bucket}/o/"})
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_bedrock_model_generates_responses_and_list_filters(sandbox: Env) -> None:
    bedrock, bucket = sandbox.client("bedrock"), sandbox.bucket()
    data = sandbox.put_jsonl(bucket, "eval/gen.jsonl", [{"prompt": "Revenue of segment 3?", "referenceResponse": "12"}])
    name = unique("evalgen").lower()
    arn = bedrock.create_evaluation_job(
        jobName=name, roleArn=sandbox.role(),
        evaluationConfig={"automated": {
            "datasetMetricConfigs": [{"taskType": "Generation", "dataset": {"name": "g", "datasetLocation": {"s3Uri": data}},
                                      "metricNames": ["Builtin.Correctness"]}],
            "evaluatorModelConfig": {"bedrockEvaluatorModels": [{"modelIdentifier": JUDGE}]}}},
        inferenceConfig={"models": [{"bedrockModel": {"modelIdentifier": "amazon.nova-lite-v1:0"}}]},
        outputDataConfig={"s3Uri": f"s3://{bucket}/gen-out"})["jobArn"]
    job = wait_for(lambda: bedrock.get_evaluation_job(jobIdentifier=arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Completed", job.get("failureMessages")
    (key,) = sandbox.keys(bucket, "gen-out/")
    line = json.loads(sandbox.read(bucket, key))
    assert line["modelResponses"][0]["response"]  # generated by the stand-in
    assert "/models/amazon.nova-lite-v1:0/taskTypes/Generation/" in key
    assert [s["jobName"] for s in bedrock.list_evaluation_jobs(nameContains=name, statusEquals="Completed")["jobSummaries"]] == [name]
    assert bedrock.list_evaluation_jobs(nameContains=name, statusEquals="InProgress")["jobSummaries"] == []
    page = bedrock.list_evaluation_jobs(maxResults=1, sortOrder="Ascending")
    assert len(page["jobSummaries"]) == 1 and page.get("nextToken")
