"""Service-role trust and S3 access with IAM conditions (utils/sandbox/bedrock/access.py, conditions.py)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_support import Env, conversation, sandbox_fixture, unique, wait_for
from utils import iam as workshop_iam
from utils.sandbox import conditions

ACCOUNT = "123456789012"
NOVA = "amazon.nova-lite-v1:0:300k"
JOB_ARNS = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-customization-job/*"

_sandbox = sandbox_fixture()


# ---- the condition operators ------------------------------------------------------------------


def test_arn_operators_take_wildcards_and_string_equals_does_not() -> None:
    arn = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-customization-job/amazon.nova-lite-v1:0:300k/abc123def456"
    ctx = conditions.context({"aws:SourceArn": arn})
    assert conditions.matches({"ArnEquals": {"aws:SourceArn": JOB_ARNS}}, ctx)
    assert conditions.matches({"ArnLike": {"aws:SourceArn": JOB_ARNS}}, ctx)
    assert conditions.matches({"StringLike": {"aws:SourceArn": JOB_ARNS}}, ctx)
    assert not conditions.matches({"StringEquals": {"aws:SourceArn": JOB_ARNS}}, ctx)
    assert conditions.matches({"StringEquals": {"aws:SourceArn": arn}}, ctx)
    assert not conditions.matches({"ArnLike": {"aws:SourceArn": JOB_ARNS.replace("us-east-1", "us-west-2")}}, ctx)
    assert not conditions.matches({"ArnLike": {"aws:SourceArn": "arn:aws:bedrock:*"}}, ctx)  # six parts
    assert conditions.matches({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}}, ctx)


def test_absent_keys_ifexists_null_and_set_operators() -> None:
    ctx = conditions.context({"aws:TagKeys": ["workshop-id", "purpose"], "aws:SourceAccount": ACCOUNT})
    assert not conditions.matches({"StringEquals": {"aws:ResourceTag/workshop-id": "ci"}}, ctx)
    assert conditions.matches({"StringNotEquals": {"aws:ResourceTag/workshop-id": "ci"}}, ctx)
    assert conditions.matches({"StringEqualsIfExists": {"aws:ResourceTag/workshop-id": "ci"}}, ctx)
    assert conditions.matches({"Null": {"aws:ResourceTag/workshop-id": "true"}}, ctx)
    assert not conditions.matches({"Null": {"aws:SourceAccount": "true"}}, ctx)
    assert conditions.matches({"ForAllValues:StringEquals": {"aws:TagKeys": ["workshop-id", "purpose", "x"]}}, ctx)
    assert not conditions.matches({"ForAllValues:StringEquals": {"aws:TagKeys": ["workshop-id"]}}, ctx)
    assert conditions.matches({"ForAnyValue:StringEquals": {"aws:TagKeys": ["purpose"]}}, ctx)
    assert not conditions.matches({"ForAnyValue:StringEquals": {"aws:RequestTag/x": ["y"]}}, ctx)
    # Key names are case-insensitive; every key and every operator must hold (AND).
    assert conditions.matches({"StringEquals": {"AWS:sourceaccount": ACCOUNT}}, ctx)
    assert not conditions.matches({"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                   "StringLike": {"aws:SourceArn": "*"}}, ctx)
    assert not conditions.matches({"NoSuchOperator": {"aws:SourceAccount": ACCOUNT}}, ctx)


# ---- trust: refused at create time ------------------------------------------------------------


def _role(env: Env, trust_condition: dict | None, *, s3_statements: list | None = None) -> str:
    statement: dict = {"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"}
    if trust_condition is not None:
        statement["Condition"] = trust_condition
    iam = env.client("iam")
    name = unique("AmazonBedrockCond")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [statement]}))["Role"]["Arn"]
    statements = s3_statements or [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
                                    "Resource": "arn:aws:s3:::*"}]
    iam.put_role_policy(RoleName=name, PolicyName="data", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": statements}))
    return arn


def _kwargs(env: Env, role: str, bucket: str | None = None) -> dict:
    bucket = bucket or env.bucket()
    records = [conversation(i) for i in range(40)]
    return {
        "jobName": unique("job"), "customModelName": unique("model"), "roleArn": role,
        "baseModelIdentifier": NOVA, "hyperParameters": {"epochCount": "1"},
        "trainingDataConfig": {"s3Uri": env.put_jsonl(bucket, "data/train.jsonl", records)},
        "outputDataConfig": {"s3Uri": f"s3://{bucket}/out/"},
    }


ACCEPTED = [
    None,
    {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnEquals": {"aws:SourceArn": JOB_ARNS}},
    {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": JOB_ARNS}},
    {"StringLike": {"aws:SourceArn": JOB_ARNS}},
]
REFUSED = [
    {"StringEquals": {"aws:SourceAccount": "210987654321"}},
    {"ArnEquals": {"aws:SourceArn": JOB_ARNS.replace(ACCOUNT, "210987654321")}},
    {"ArnLike": {"aws:SourceArn": JOB_ARNS.replace("us-east-1", "eu-west-1")}},
    {"ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-invocation-job/*"}},
    {"StringEquals": {"aws:SourceArn": JOB_ARNS}},  # a wildcard is literal text for StringEquals
]


@pytest.mark.parametrize("condition", ACCEPTED, ids=lambda c: json.dumps(c)[:60])
def test_trust_conditions_bedrock_meets_are_accepted(sandbox: Env, condition: dict | None) -> None:
    br = sandbox.client("bedrock")
    assert br.create_model_customization_job(**_kwargs(sandbox, _role(sandbox, condition)))["jobArn"]


@pytest.mark.parametrize("condition", REFUSED, ids=lambda c: json.dumps(c)[:60])
def test_role_bedrock_cannot_assume_is_refused_at_create(sandbox: Env, condition: dict) -> None:
    br = sandbox.client("bedrock")
    with pytest.raises(ClientError) as exc:
        br.create_model_customization_job(**_kwargs(sandbox, _role(sandbox, condition)))
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert exc.value.response["Error"]["Message"] == "Could not assume provided IAM role."


def test_explicit_deny_in_trust_wins(sandbox: Env) -> None:
    role = _role(sandbox, None)
    name = role.rsplit("/", 1)[-1]
    sandbox.client("iam").update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole",
             "Condition": {"StringNotEquals": {"aws:SourceAccount": "210987654321"}}}]}))
    with pytest.raises(ClientError):
        sandbox.client("bedrock").create_model_customization_job(**_kwargs(sandbox, role))


def test_batch_job_trust_is_checked_at_create(sandbox: Env) -> None:
    batch_arns = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-invocation-job/*"
    bucket = sandbox.bucket()
    uri = sandbox.put_jsonl(bucket, "batch-input/in.jsonl", [
        {"recordId": str(i), "modelInput": {"messages": [{"role": "user", "content": [{"text": "Hi?"}]}]}}
        for i in range(3)])
    br = sandbox.client("bedrock")

    def create(role: str) -> dict:
        return br.create_model_invocation_job(
            jobName=unique("batch"), roleArn=role, modelId="amazon.nova-lite-v1:0",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": uri}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/batch-output/"}})

    assert create(_role(sandbox, {"ArnEquals": {"aws:SourceArn": batch_arns}}))["jobArn"]
    with pytest.raises(ClientError) as exc:
        create(_role(sandbox, {"ArnEquals": {"aws:SourceArn": JOB_ARNS}}))  # customization jobs only
    assert exc.value.response["Error"]["Message"] == "Could not assume provided IAM role."


# ---- S3 access with s3:prefix -----------------------------------------------------------------


def _finish(env: Env, kwargs: dict) -> dict:
    br = env.client("bedrock")
    arn = br.create_model_customization_job(**kwargs)["jobArn"]
    return wait_for(lambda: br.get_model_customization_job(jobIdentifier=arn), "status", ("Completed", "Failed"))


def _s3_role(env: Env, bucket: str, list_condition: dict | None) -> str:
    listing: dict = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}
    if list_condition is not None:
        listing["Condition"] = list_condition
    return _role(env, None, s3_statements=[
        listing, {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{bucket}/*"}])


def test_list_bucket_prefix_condition_is_evaluated(sandbox: Env) -> None:
    bucket = sandbox.bucket()
    job = _finish(sandbox, _kwargs(sandbox, _s3_role(sandbox, bucket, {"StringLike": {"s3:prefix": "elsewhere/*"}}), bucket))
    assert job["status"] == "Failed"
    assert job["failureMessage"] == (
        f"Could not validate GetObject permissions to access Amazon S3 bucket: {bucket} at key data/train.jsonl")
    for condition in (None, {"StringLike": {"s3:prefix": ["data/*", "out/*"]}}):
        bucket = sandbox.bucket()
        job = _finish(sandbox, _kwargs(sandbox, _s3_role(sandbox, bucket, condition), bucket))
        assert job["status"] == "Completed", job.get("failureMessage")
    assert sandbox.read(bucket, "out/.write_access_check_file.tmp") == b""


def test_the_projects_rendered_role_policies_complete_a_job(sandbox: Env) -> None:
    bucket = sandbox.bucket()
    iam = sandbox.client("iam")
    name = unique("AmazonBedrockWorkshop-rendered")
    trust = workshop_iam.render_policy("customization-role-trust", AccountId=ACCOUNT, Region="us-east-1")
    s3 = workshop_iam.render_policy("customization-role-s3", Bucket=bucket, Region="us-east-1",
                                    TrainingPrefix="data/", ValidationPrefix="data/", OutputPrefix="out/")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=json.dumps(s3))
    job = _finish(sandbox, _kwargs(sandbox, arn, bucket))
    assert job["status"] == "Completed", job.get("failureMessage")
    # The same policy with the training data outside its prefixes: the read check fails.
    s3 = workshop_iam.render_policy("customization-role-s3", Bucket=bucket, Region="us-east-1",
                                    TrainingPrefix="other/", ValidationPrefix="other/", OutputPrefix="out/")
    iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=json.dumps(s3))
    job = _finish(sandbox, _kwargs(sandbox, arn, bucket))
    assert job["status"] == "Failed" and "at key data/train.jsonl" in job["failureMessage"]


def test_simulate_evaluates_context_entries(sandbox: Env) -> None:
    iam = sandbox.client("iam")
    name = unique("Caller")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
         "Condition": {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}}]}))
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"

    def simulate(value: str | None) -> dict:
        kwargs: dict = {"PolicySourceArn": arn, "ActionNames": ["iam:PassRole"]}
        if value:
            kwargs["ContextEntries"] = [{"ContextKeyName": "iam:PassedToService", "ContextKeyValues": [value],
                                         "ContextKeyType": "string"}]
        return iam.simulate_principal_policy(**kwargs)["EvaluationResults"][0]

    assert simulate("bedrock.amazonaws.com")["EvalDecision"] == "allowed"
    assert simulate("ec2.amazonaws.com")["EvalDecision"] == "implicitDeny"
    missing = simulate(None)
    assert missing["EvalDecision"] == "implicitDeny" and missing["MissingContextValues"] == ["iam:PassedToService"]


def test_the_projects_rendered_batch_role_completes_a_job(sandbox: Env) -> None:
    bucket = sandbox.bucket()
    iam = sandbox.client("iam")
    name = unique("AmazonBedrockWorkshop-batch")
    trust = workshop_iam.render_policy("batch-role-trust", AccountId=ACCOUNT, Region="us-east-1")
    permissions = workshop_iam.render_policy(
        "batch-role-permissions", Bucket=bucket, Region="us-east-1", AccountId=ACCOUNT,
        InputPrefix="batch-input/", OutputPrefix="batch-output/")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(permissions))
    uri = sandbox.put_jsonl(bucket, "batch-input/in.jsonl", [
        {"recordId": str(i), "modelInput": {"messages": [{"role": "user", "content": [{"text": "Hi?"}]}]}}
        for i in range(3)])
    br = sandbox.client("bedrock")
    job = br.create_model_invocation_job(
        jobName=unique("batch"), roleArn=arn, modelId="amazon.nova-lite-v1:0",
        inputDataConfig={"s3InputDataConfig": {"s3Uri": uri}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/batch-output/"}})["jobArn"]
    done = wait_for(lambda: br.get_model_invocation_job(jobIdentifier=job), "status",
                    ("Completed", "PartiallyCompleted", "Failed"))
    assert done["status"] == "Completed", done.get("message")


def test_simulate_honours_the_permissions_boundary(sandbox: Env) -> None:
    iam = sandbox.client("iam")
    name = unique("Bounded")
    boundary = iam.create_policy(PolicyName=unique("Boundary"), PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.create_role(RoleName=name, PermissionsBoundary=boundary, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": []}))
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "bedrock:InvokeModel"], "Resource": "*"}]}))
    results = iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
                                            ActionNames=["s3:GetObject", "bedrock:InvokeModel"])["EvaluationResults"]
    assert {r["EvalActionName"]: r["EvalDecision"] for r in results} == {
        "s3:GetObject": "allowed", "bedrock:InvokeModel": "implicitDeny"}
