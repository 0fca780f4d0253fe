"""Caller-permission mode (knob ``caller_principal``, utils/sandbox/caller.py) through boto3."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_support import Env, conversation, sandbox_fixture, unique
from utils.sandbox import caller

ACCOUNT = "123456789012"
ROLE = "NotebookCaller"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/WorkshopBoundary"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/sandbox-caller"

_sandbox = sandbox_fixture()

POLICY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "List", "Effect": "Allow", "Action": "bedrock:ListFoundationModels", "Resource": "*"},
    {"Sid": "ReadTaggedJobs", "Effect": "Allow", "Action": "bedrock:GetModelCustomizationJob",
     "Resource": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-customization-job/*",
     "Condition": {"StringEquals": {"aws:ResourceTag/workshop-id": "ci"}}},
    {"Sid": "CreateBoundedRoles", "Effect": "Allow", "Action": "iam:CreateRole",
     "Resource": f"arn:aws:iam::{ACCOUNT}:role/AmazonBedrockWorkshop-*",
     "Condition": {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}}},
    {"Sid": "TagOnlyWorkshopIds", "Effect": "Allow", "Action": "iam:TagRole",
     "Resource": f"arn:aws:iam::{ACCOUNT}:role/AmazonBedrockWorkshop-*",
     "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["workshop-id"]}}},
    {"Sid": "ListDataPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::*",
     "Condition": {"StringLike": {"s3:prefix": "data/*"}}},
    {"Sid": "Buckets", "Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:DeleteBucket"], "Resource": "*"},
    {"Sid": "NeverDeleteBuckets", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
]}


@pytest.fixture(scope="module")
def env(sandbox: Env):
    iam = sandbox.client("iam")  # the harness's key ("sandbox") is not attributed: the caller signs with "caller"
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName=ROLE, PolicyName="caller", PolicyDocument=json.dumps(POLICY))
    iam.create_policy(PolicyName="WorkshopBoundary", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    sandbox.configure(caller_principal=ROLE_ARN, caller_access_keys=["caller"])
    yield sandbox
    sandbox.configure(caller_principal=None)


def as_caller(env: Env, service: str, key: str = "caller", token: str | None = None):
    return boto3.client(service, region_name="us-east-1", endpoint_url=env.url, aws_access_key_id=key,
                        aws_secret_access_key="x", aws_session_token=token,
                        config=Config(retries={"mode": "standard", "max_attempts": 1}))


def denied(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    assert exc.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return exc.value.response["Error"]["Message"]


def test_identity_and_bedrock_denial_wording(env: Env) -> None:
    assert as_caller(env, "sts").get_caller_identity()["Arn"] == SESSION
    bedrock = as_caller(env, "bedrock")
    assert bedrock.list_foundation_models()["modelSummaries"]
    assert denied(bedrock.list_custom_models) == (
        f"User: {SESSION} is not authorized to perform: bedrock:ListCustomModels on resource: * because no "
        "identity-based policy allows the bedrock:ListCustomModels action")
    runtime = as_caller(env, "bedrock-runtime")
    message = denied(runtime.converse, modelId="amazon.nova-lite-v1:0",
                     messages=[{"role": "user", "content": [{"text": "Hi"}]}])
    assert "bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0" in message
    assert env.client("bedrock").list_custom_models()  # other keys are not evaluated


def test_resource_tags_of_bedrock_resources(env: Env) -> None:
    br = env.client("bedrock")
    bucket = env.bucket()
    train = env.put_jsonl(bucket, "data/train.jsonl", [conversation(i) for i in range(20)])

    def job(tag: str) -> str:
        return br.create_model_customization_job(
            jobName=unique("job"), customModelName=unique("m"), roleArn=env.role(),
            baseModelIdentifier="amazon.nova-lite-v1:0:300k", trainingDataConfig={"s3Uri": train},
            outputDataConfig={"s3Uri": f"s3://{bucket}/out/"}, jobTags=[{"key": "workshop-id", "value": tag}])["jobArn"]

    mine, theirs = job("ci"), job("someone-else")
    bedrock = as_caller(env, "bedrock")
    assert bedrock.get_model_customization_job(jobIdentifier=mine)["jobArn"] == mine
    assert "bedrock:GetModelCustomizationJob" in denied(bedrock.get_model_customization_job, jobIdentifier=theirs)


def test_iam_boundary_and_tag_keys_conditions(env: Env) -> None:
    iam = as_caller(env, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    name = unique("AmazonBedrockWorkshop-x")
    message = denied(iam.create_role, RoleName=name, AssumeRolePolicyDocument=trust)
    assert message.startswith(f"User: {SESSION} is not authorized to perform: iam:CreateRole on resource: "
                              f"arn:aws:iam::{ACCOUNT}:role/{name}")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, PermissionsBoundary=BOUNDARY)
    iam.tag_role(RoleName=name, Tags=[{"Key": "workshop-id", "Value": "ci"}])
    denied(iam.tag_role, RoleName=name, Tags=[{"Key": "owner", "Value": "me"}])


def test_s3_prefix_and_explicit_deny(env: Env) -> None:
    bucket = env.bucket()
    s3 = as_caller(env, "s3")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="data/")["KeyCount"] == 0
    assert "s3:ListBucket" in denied(s3.list_objects_v2, Bucket=bucket, Prefix="other/")
    denied(s3.list_objects_v2, Bucket=bucket)  # no prefix: the s3:prefix condition cannot hold
    assert "with an explicit deny" in denied(s3.delete_bucket, Bucket=bucket)
    assert bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_assumed_role_keys_are_attributed_and_the_log_replays(env: Env) -> None:
    creds = env.client("sts").assume_role(RoleArn=ROLE_ARN, RoleSessionName="notebook")["Credentials"]
    bedrock = as_caller(env, "bedrock", creds["AccessKeyId"], creds["SessionToken"])
    denied(bedrock.list_custom_models)
    bedrock.list_foundation_models()
    log = env.server.app.caller.log
    assert log[-1].allowed and log[-1].checks[0].action == "bedrock:ListFoundationModels"
    without_list = {**POLICY, "Statement": [s for s in POLICY["Statement"] if s["Sid"] != "List"]}
    assert log[-1] in caller.reevaluate(without_list, log, ROLE_ARN)
    assert not caller.reevaluate(POLICY, log, ROLE_ARN)


def test_permissions_boundary_of_the_caller_limits_it(env: Env) -> None:
    env.client("iam").put_role_permissions_boundary(RoleName=ROLE, PermissionsBoundary=BOUNDARY)
    try:
        message = denied(as_caller(env, "bedrock").list_foundation_models)
        assert message.endswith("because no permissions boundary allows the bedrock:ListFoundationModels action")
    finally:
        env.client("iam").delete_role_permissions_boundary(RoleName=ROLE)


def test_import_operations_are_evaluated_on_their_own_resources(env: Env) -> None:
    bedrock = as_caller(env, "bedrock")
    model = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:imported-model/abcdefghijkl"
    assert f"bedrock:GetImportedModel on resource: {model}" in denied(bedrock.get_imported_model, modelIdentifier=model)
    assert f"bedrock:DeleteImportedModel on resource: {model}" in denied(bedrock.delete_imported_model,
                                                                           modelIdentifier=model)
    job = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:model-import-job/abcdefghijkl"
    assert f"on resource: {job}" in denied(bedrock.get_model_import_job, jobIdentifier=job)
    assert "bedrock:CreateModelImportJob on resource: *" in denied(
        bedrock.create_model_import_job, jobName="imp-job", importedModelName="imp-model",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/imp-role", modelDataSource={"s3DataSource": {"s3Uri": "s3://weights-bucket/model/"}})
