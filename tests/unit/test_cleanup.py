"""cleanup() and audit() against the sandbox: tag-confirmed audit, job models, generations."""

from __future__ import annotations

import json
import time

import pytest

from tests.unit.conftest import sandbox_environment
from utils import aws, cleanup, formats, iam, models, s3
from utils.state import WorkshopState, name, tags

REGION = "us-east-1"


@pytest.fixture()
def sandbox_env(monkeypatch, tmp_path):
    with sandbox_environment(monkeypatch, tmp_path, time_scale=0.05) as server:
        yield server


def setup_workshop(workshop_id: str) -> WorkshopState:
    state = WorkshopState.load(workshop_id)
    state.region, account = REGION, aws.account_id(REGION)
    state.bucket = name(workshop_id, f"{account}-{REGION}")
    s3.ensure_bucket(state.bucket, REGION, tags=tags(workshop_id))
    state.record("s3-bucket", state.bucket, "01")
    state.roles["customization"] = iam.ensure_customization_role(workshop_id, state.bucket, REGION, account)
    state.record("iam-role", state.roles["customization"], "01")
    return state


def test_audit_is_confirmed_by_tags_and_cleanup_is_complete(sandbox_env):
    demo, other = setup_workshop("demo"), setup_workshop("demo-2")
    found = cleanup.audit("demo", REGION)
    assert found == sorted([f"s3-bucket: {demo.bucket}", "iam-role: AmazonBedrockWorkshop-demo-Customization",
                            "iam-policy: AmazonBedrockWorkshop-demo-Customization-S3"])
    actions = cleanup.cleanup(demo, log=lambda _: None)
    assert {a.outcome for a in actions} == {"deleted"}
    assert cleanup.audit("demo", REGION) == []
    assert len(cleanup.audit("demo-2", REGION)) == 3  # the other workshop is untouched
    assert demo.ledger == [] and demo.get("generation") == 1
    assert cleanup.cleanup(demo, log=lambda _: None) == []  # idempotent
    assert other.ledger


def start_job(state: WorkshopState, **extra) -> str:
    """A small Nova Lite customization job of ``state``'s workshop; returns its ARN."""
    workshop_id = state.workshop_id
    student = models.get("nova-lite")
    records = [formats.format_record(f"What is item {i}?", f"Item {i} is a widget.", student.customization_id)
               for i in range(10)]
    uri = s3.upload_bytes(state.bucket, f"{iam.TRAINING_PREFIX}train.jsonl", formats.to_jsonl(records))
    return aws.client("bedrock", REGION).create_model_customization_job(
        jobName=name(workshop_id, "ft"), customModelName=name(workshop_id, "model"),
        roleArn=state.roles["customization"], baseModelIdentifier=student.customization_id,
        trainingDataConfig={"s3Uri": uri}, outputDataConfig={"s3Uri": f"s3://{state.bucket}/{iam.OUTPUT_PREFIX}"},
        customModelTags=[{"key": k, "value": v} for k, v in tags(workshop_id).items()], **extra,
    )["jobArn"]


def test_model_of_a_recorded_job_is_deleted_even_if_not_recorded(sandbox_env):
    state = setup_workshop("jobs")
    bedrock = aws.client("bedrock", REGION)
    job = start_job(state)
    state.record("customization-job", job, "04")  # as if the wait timed out before the model was recorded
    deadline = time.monotonic() + 20
    while bedrock.get_model_customization_job(jobIdentifier=job)["status"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "custom-model: bedrock-ws-jobs-model" in cleanup.audit("jobs", REGION)
    outcomes = {(a.kind, a.outcome) for a in cleanup.cleanup(state, poll_s=0.05, log=lambda _: None)}
    assert ("custom-model", "deleted") in outcomes and ("customization-job", "kept (job history is not billable)") in outcomes
    assert cleanup.audit("jobs", REGION) == []
    assert json.loads(state.path.read_text())["values"]["generation"] == 1



@pytest.fixture()
def slow_sandbox_env(monkeypatch, tmp_path):
    """A sandbox whose jobs run long enough to be stopped, and stay Stopping for about 6 s."""
    with sandbox_environment(monkeypatch, tmp_path, time_scale=20) as server:
        yield server


def test_audit_waits_out_a_stopping_job_instead_of_reporting_it(slow_sandbox_env):
    state = setup_workshop("stop")
    bedrock = aws.client("bedrock", REGION)
    job = start_job(state, jobTags=[{"key": k, "value": v} for k, v in tags("stop").items()])
    bedrock.stop_model_customization_job(jobIdentifier=job)  # what cleanup does for a running job
    job_row = "customization-job (Stopping): bedrock-ws-stop-ft"
    assert job_row in cleanup.audit("stop", REGION, stopping_timeout_s=0, log=lambda _: None)  # not waited out
    messages: list[str] = []
    assert job_row not in cleanup.audit("stop", REGION, poll_s=0.1, log=messages.append)
    assert bedrock.get_model_customization_job(jobIdentifier=job)["status"] == "Stopped"
    assert messages and "bedrock-ws-stop-ft" in messages[0]
