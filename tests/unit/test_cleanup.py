"""cleanup() and audit() against the sandbox: tag-confirmed audit, job models, generations."""

from __future__ import annotations

import json
import time

import pytest

from tests.unit.conftest import sandbox_environment
from tests.unit.test_deployment import _wait_model as wait_for_model
from utils import aws, cleanup, costs, formats, iam, models, s3
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
    result = cleanup.cleanup(demo, log=lambda _: None)
    outcomes = {a.kind: a.outcome for a in result.actions}
    assert outcomes.pop("iam-boundary").startswith("keep (shared")  # demo-2's role still uses it
    assert set(outcomes.values()) <= {"deleted", "already gone"} and result.status == "done"
    assert cleanup.audit("demo", REGION) == []
    assert len(cleanup.audit("demo-2", REGION)) == 3  # the other workshop is untouched
    assert demo.ledger == [] and demo.get("generation") == 1
    again = cleanup.cleanup(demo, log=lambda _: None)  # idempotent: a clean no-op that says so
    assert again.status == "nothing to delete" and not again.errors
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
    outcomes = {(a.kind, a.outcome) for a in cleanup.cleanup(state, poll_s=0.05, log=lambda _: None).actions}
    assert ("custom-model", "deleted") in outcomes and ("customization-job", cleanup.KEEP_RECORD) in outcomes
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
    WorkshopState(workshop_id="stop").save()  # the state file is lost: the job is found by its tags
    plan = cleanup.discover("stop", REGION, state=WorkshopState.load("stop"))
    assert [(r.kind, r.action, r.source) for r in plan if r.kind == "customization-job"] == [
        ("customization-job", "stop", "tags")]
    result = cleanup.cleanup(WorkshopState.load("stop"), region=REGION, plan=plan, poll_s=0.05, log=lambda _: None)
    assert ("customization-job", job, "stopped") in {(a.kind, a.identifier, a.outcome) for a in result.actions}
    job_row = "customization-job (Stopping): bedrock-ws-stop-ft"
    assert job_row in cleanup.audit("stop", REGION, stopping_timeout_s=0, log=lambda _: None)  # not waited out
    messages: list[str] = []
    assert job_row not in cleanup.audit("stop", REGION, poll_s=0.1, log=messages.append)
    assert bedrock.get_model_customization_job(jobIdentifier=job)["status"] == "Stopped"
    assert messages and "bedrock-ws-stop-ft" in messages[0]


def ours_in_sandbox(workshop_id: str) -> list[str]:
    """Every resource named for this workshop that the sandbox still holds (job records excepted)."""
    bedrock, s3_client, iam_client = (aws.client(s, REGION) for s in ("bedrock", "s3", "iam"))
    prefix = name(workshop_id, "") + "-"
    found = [m["modelName"] for m in bedrock.list_custom_models()["modelSummaries"]]
    found += [d["customModelDeploymentName"] for d in
              bedrock.list_custom_model_deployments()["modelDeploymentSummaries"]]
    found += [p["provisionedModelName"] for p in
              bedrock.list_provisioned_model_throughputs()["provisionedModelSummaries"]]
    found += [b["Name"] for b in s3_client.list_buckets()["Buckets"]]
    found = [f for f in found if f.startswith(prefix)]
    found += [r["RoleName"] for r in iam_client.list_roles()["Roles"] if r["RoleName"].startswith(
        f"AmazonBedrockWorkshop-{workshop_id}-")]
    found += [p["PolicyName"] for p in iam_client.list_policies(Scope="Local")["Policies"] if p["PolicyName"].startswith(
        f"AmazonBedrockWorkshop-{workshop_id}-")]
    return found


@pytest.mark.parametrize("state_file", ["deleted", "truncated"])
def test_tags_alone_clean_everything_billable(sandbox_env, state_file, monkeypatch):
    """With the state file lost or broken, discovery by tag finds the model, the deployment, the
    Provisioned Throughput, the role, its policy, the boundary and the versioned bucket, and
    cleanup deletes them all; a second run is a clean no-op."""
    state = setup_workshop("lost")
    s3_client, bedrock = aws.client("s3", REGION), aws.client("bedrock", REGION)
    s3_client.put_bucket_versioning(Bucket=state.bucket, VersioningConfiguration={"Status": "Enabled"})
    for _ in range(3):  # several versions and a delete marker
        s3_client.put_object(Bucket=state.bucket, Key="notes.txt", Body=b"x")
    s3_client.delete_object(Bucket=state.bucket, Key="notes.txt")
    model = wait_for_model(start_job(state, jobTags=[{"key": k, "value": v} for k, v in tags("lost").items()]))
    bedrock.create_custom_model_deployment(modelDeploymentName=name("lost", "endpoint"), modelArn=model,
                                           tags=[{"key": k, "value": v} for k, v in tags("lost").items()])
    bedrock.create_provisioned_model_throughput(provisionedModelName=name("lost", "pt"), modelId=model, modelUnits=1,
                                                tags=[{"key": k, "value": v} for k, v in tags("lost").items()])
    if state_file == "deleted":
        state.path.unlink()
    else:
        state.path.write_text(state.path.read_text()[:40])
    fresh = WorkshopState.load("lost", start_over=True, log=lambda _: None)
    notes: list[str] = []
    plan = cleanup.discover("lost", REGION, state=fresh, notes=notes)
    kinds = {r.kind: r for r in plan}
    assert {"custom-model", "custom-model-deployment", "provisioned-throughput", "iam-role", "iam-policy",
            "iam-boundary", "s3-bucket", "customization-job"} <= kinds.keys()
    assert {r.source for r in plan} == {"tags"}
    assert kinds["custom-model"].cost == "$1.95/month storage"
    throughput = kinds["provisioned-throughput"]
    assert throughput.cost == "$0.00/hour (no sourced price; $0 on this unbilled endpoint)"  # the sandbox bills nothing
    monkeypatch.delenv(costs.UNBILLED_ENV)
    cleanup._price(throughput, None)
    assert throughput.cost.endswith("(pt_hour_nocommit:nova-lite); billed per hour")  # on AWS a gap stays a gap
    cleanup._price(throughput, {"pt_hour_nocommit:nova-lite": 20.5})
    assert throughput.cost == "$20.50/hour"
    assert kinds["customization-job"].action == cleanup.KEEP_RECORD
    assert not any("evaluation-jobs not checked" in n for n in notes)  # the sandbox lists evaluation jobs
    table = cleanup.plan_markdown(plan, notes)
    assert "| found by |" in table.replace("| name | found by", "| found by") and "cannot delete" in table
    result = cleanup.cleanup(fresh, region=REGION, plan=plan, poll_s=0.05, log=lambda _: None)
    assert result.status == "done" and not result.errors, result.actions
    assert ours_in_sandbox("lost") == []
    assert cleanup.audit("lost", REGION) == []
    assert fresh.get("generation") == 1  # above the job record found by tag, so 04 can train again
    again = cleanup.cleanup(WorkshopState.load("lost"), region=REGION, poll_s=0.05, log=lambda _: None)
    assert again.status == "nothing to delete"
    assert "Dry run: nothing to delete" in cleanup.plan_markdown(
        [r for r in cleanup.discover("lost", REGION) if not r.action.startswith("keep")])


def test_ledger_alone_finds_an_untagged_bucket_and_keep_data_keeps_it(sandbox_env):
    state = setup_workshop("ledger")
    untagged = name("ledger", "scratch")
    s3.ensure_bucket(untagged, REGION)
    state.record("s3-bucket", untagged, "02")
    plan = cleanup.discover("ledger", REGION, state=state, keep_data=True)
    sources = {r.name: (r.source, r.action) for r in plan if r.kind == "s3-bucket"}
    assert sources == {state.bucket: ("both", "keep (keep_data=True)"), untagged: ("ledger", "keep (keep_data=True)")}
    leftovers = cleanup.audit_resources("ledger", REGION)
    with pytest.raises(cleanup.ResourcesRemain) as failure:
        cleanup.fail_if_remaining(leftovers)
    message = str(failure.value)
    assert "iam-role: AmazonBedrockWorkshop-ledger-Customization" in message
    assert f"s3-bucket: {state.bucket} (BILLABLE" in message and f"aws s3api delete-bucket --bucket {state.bucket}" in message
    result = cleanup.cleanup(state, keep_data=False, poll_s=0.05, log=lambda _: None)
    assert {a.identifier for a in result.actions if a.kind == "s3-bucket" and a.outcome == "deleted"} == {
        state.bucket, untagged}
    assert ours_in_sandbox("ledger") == [] and state.ledger == []


def test_conflicts_are_retried_then_reported(monkeypatch):
    from botocore.exceptions import ClientError

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ClientError({"Error": {"Code": "ConflictException", "Message": "still deleting"}}, "DeleteCustomModel")
        return "ok"

    assert cleanup._retry(flaky, poll_s=0, log=lambda _: None, what="x") == "ok" and len(calls) == 3

    def denied():
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteCustomModel")

    with pytest.raises(ClientError):
        cleanup._retry(denied, poll_s=0, log=lambda _: None, what="x")


def test_audit_waits_only_for_its_own_stopping_jobs(slow_sandbox_env):
    """Workshop ids may share a prefix ("team", "team-a"): the audit of "team" does not wait for team-a's job."""
    other = setup_workshop("team-a")
    job = start_job(other, jobTags=[{"key": k, "value": v} for k, v in tags("team-a").items()])
    bedrock = aws.client("bedrock", REGION)
    bedrock.stop_model_customization_job(jobIdentifier=job)
    assert bedrock.get_model_customization_job(jobIdentifier=job)["status"] == "Stopping"
    messages: list[str] = []
    assert cleanup.audit("team", REGION, poll_s=0.1, log=messages.append) == []
    assert messages == []
