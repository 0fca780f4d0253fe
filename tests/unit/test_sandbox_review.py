"""Sandbox regressions from the code review: each test failed before its fix."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_control import job_kwargs
from tests.unit.test_sandbox_support import (
    Env,
    sandbox_fixture,
    unique,
    wait_for,
)

_sandbox = sandbox_fixture()


def _slow_job(env: Env, **kwargs: object) -> tuple[str, str]:
    """A customization job created at time_scale 1 (about 2-4 s), writing to its own output bucket."""
    out_bucket = env.bucket()
    env.configure(time_scale=1.0)
    try:
        br = env.client("bedrock")
        arn = br.create_model_customization_job(
            **job_kwargs(env, outputDataConfig={"s3Uri": f"s3://{out_bucket}/out/"}, **kwargs)
        )["jobArn"]
    finally:
        env.configure(time_scale=0.05)
    return arn, out_bucket


def _delete_bucket(env: Env, bucket: str) -> None:
    s3 = env.client("s3")
    for key in env.keys(bucket):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)


# ---- 1. one resource's failure must not break every request ----------------------------------


def test_output_bucket_deleted_mid_training_fails_only_that_job(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    arn, out_bucket = _slow_job(sandbox)
    wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn)["statusDetails"]["trainingDetails"],
             "status", ("InProgress",))
    _delete_bucket(sandbox, out_bucket)
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status",
                   ("Completed", "Failed", "Stopped"))
    assert job["status"] == "Failed"
    assert job["failureMessage"].startswith("Amazon S3 perms missing (PutObject): ")
    assert out_bucket in job["failureMessage"]
    assert "outputModelArn" not in job
    # Unrelated requests keep working.
    assert sandbox.client("bedrock").list_foundation_models()["modelSummaries"]
    assert br.list_model_customization_jobs()["modelCustomizationJobSummaries"]


def test_output_bucket_deleted_mid_batch_fails_only_that_batch(sandbox: Env) -> None:
    bucket, out_bucket = sandbox.bucket(), sandbox.bucket()
    records = [
        {"recordId": f"r{i}", "modelInput": {"messages": [{"role": "user", "content": [{"text": f"Hi {i}?"}]}]}}
        for i in range(3)
    ]
    src = sandbox.put_jsonl(bucket, "batch/in.jsonl", records)
    br = sandbox.client("bedrock")
    sandbox.configure(time_scale=1.0)
    try:
        arn = br.create_model_invocation_job(
            jobName=unique("batch"), roleArn=sandbox.role(), modelId="amazon.nova-lite-v1:0",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": src}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{out_bucket}/out/"}},
        )["jobArn"]
    finally:
        sandbox.configure(time_scale=0.05)
    wait_for(lambda: br.get_model_invocation_job(jobIdentifier=arn), "status", ("InProgress",))
    _delete_bucket(sandbox, out_bucket)
    job = wait_for(lambda: br.get_model_invocation_job(jobIdentifier=arn), "status",
                   ("Completed", "PartiallyCompleted", "Failed", "Stopped"))
    assert job["status"] == "Failed"
    assert job["message"].startswith("Amazon S3 perms missing (PutObject): ")
    assert sandbox.client("bedrock").list_foundation_models()["modelSummaries"]


# ---- 2. statusDetails of a stopped job ------------------------------------------------------------


def test_stopped_job_phases_stay_stopped_and_before_end_time(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    arn, _ = _slow_job(sandbox)
    br.stop_model_customization_job(jobIdentifier=arn)  # during validation (the first 0.3 s)
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Stopped",))
    time.sleep(max(0.0, job["creationTime"].timestamp() + 0.8 - time.time()))  # past data processing's end
    job = br.get_model_customization_job(jobIdentifier=arn)
    details = job["statusDetails"]
    assert details["validationDetails"]["status"] == "Stopped"
    assert details["dataProcessingDetails"]["status"] == "NotStarted"
    assert details["trainingDetails"]["status"] == "NotStarted"
    for entry in details.values():
        if "lastModifiedTime" in entry:
            assert entry["lastModifiedTime"] <= job["endTime"]
    summary = br.list_model_customization_jobs(nameContains=job["jobName"])["modelCustomizationJobSummaries"][0]
    assert summary["statusDetails"]["dataProcessingDetails"]["status"] == "NotStarted"


# ---- 3. a deleted custom model frees its name -------------------------------------------------------


def test_custom_model_name_reusable_after_delete(sandbox: Env) -> None:
    br = sandbox.client("bedrock")
    name = unique("model")
    arn = br.create_model_customization_job(**job_kwargs(sandbox, customModelName=name))["jobArn"]
    job = wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Completed", "Failed"))
    assert job["status"] == "Completed"
    with pytest.raises(ClientError, match="currently in use"):
        br.create_model_customization_job(**job_kwargs(sandbox, customModelName=name))
    br.delete_custom_model(modelIdentifier=name)
    again = br.create_model_customization_job(**job_kwargs(sandbox, customModelName=name))["jobArn"]
    assert wait_for(lambda: br.get_model_customization_job(jobIdentifier=again), "status",
                    ("Completed", "Failed"))["status"] == "Completed"


# ---- 4. reset restarts the fault streams ------------------------------------------------------------


def _fault_sequence(env: Env, n: int = 12) -> list[str]:
    rt = env.client("bedrock-runtime")
    out = []
    for i in range(n):
        try:
            rt.converse(modelId="amazon.nova-lite-v1:0",
                        messages=[{"role": "user", "content": [{"text": f"Question {i}?"}]}])
            out.append("ok")
        except ClientError as exc:
            out.append(exc.response["Error"]["Code"])
    return out


def test_reset_makes_seeded_faults_reproducible(sandbox: Env) -> None:
    from utils import sandbox as api

    sandbox.configure(faults={"service_unavailable_rate": 0.5, "seed": 7, "rpm": 100})
    try:
        first = _fault_sequence(sandbox)
        api.reset(sandbox.url)
        second = _fault_sequence(sandbox)
        assert "ok" in first and "ServiceUnavailableException" in first
        assert second == first
        # The RPM bucket restarts too: a 13th call within the minute passes only after a reset.
        api.reset(sandbox.url)
        sandbox.configure(faults={"service_unavailable_rate": 0.0, "rpm": 12})
        assert _fault_sequence(sandbox) == ["ok"] * 12
        api.reset(sandbox.url)
        assert _fault_sequence(sandbox, 1) == ["ok"]
    finally:
        sandbox.configure(faults={"profile": "off"})
