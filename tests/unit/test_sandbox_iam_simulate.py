"""The sandbox answers iam:SimulatePrincipalPolicy (moto's server does not) for preflight."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from utils import sandbox

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture(scope="module")
def iam():
    with sandbox.start() as server:
        yield boto3.client("iam", region_name="us-east-1", endpoint_url=server.url,
                           aws_access_key_id="sandbox", aws_secret_access_key="sandbox")


def test_decisions_follow_inline_and_managed_policies(iam):
    iam.create_role(RoleName="NotebookRole", AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.put_role_policy(RoleName="NotebookRole", PolicyName="inline", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "bedrock:CreateProvisionedModelThroughput", "Resource": "*"}]}))
    arn = iam.create_policy(PolicyName="ReadData", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="NotebookRole", PolicyArn=arn)
    result = iam.simulate_principal_policy(
        PolicySourceArn="arn:aws:iam::123456789012:role/NotebookRole",
        ActionNames=["bedrock:InvokeModel", "bedrock:CreateProvisionedModelThroughput", "s3:GetObject", "s3:PutObject"],
        ResourceArns=["arn:aws:s3:::data/train.jsonl"],
    )["EvaluationResults"]
    assert {(r["EvalActionName"], r["EvalDecision"]) for r in result} == {
        ("bedrock:InvokeModel", "allowed"), ("bedrock:CreateProvisionedModelThroughput", "explicitDeny"),
        ("s3:GetObject", "allowed"), ("s3:PutObject", "implicitDeny")}


def test_unknown_principal_and_other_iam_calls(iam):
    with pytest.raises(ClientError) as error:
        iam.simulate_principal_policy(PolicySourceArn="arn:aws:iam::123456789012:role/Nope", ActionNames=["s3:*"])
    assert error.value.response["Error"]["Code"] == "NoSuchEntity"
    iam.create_role(RoleName="Other", AssumeRolePolicyDocument=json.dumps(TRUST))  # still moto's
    assert iam.get_role(RoleName="Other")["Role"]["RoleName"] == "Other"


def test_decide_uses_iam_wildcards_and_not_elements():
    """Item 11: only ``*``/``?`` are wildcards, actions ignore case, NotAction/NotResource count."""
    from utils.sandbox.iam_simulate import decide

    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "S3:getobject", "Resource": "arn:aws:s3:::b/[ab]?.txt"},
        {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "bedrock:*", "NotResource": "arn:aws:bedrock:*:*:custom-model/*"}]})
    assert decide([policy], "s3:GetObject", "arn:aws:s3:::b/[ab]1.txt") == "allowed"
    assert decide([policy], "s3:GetObject", "arn:aws:s3:::b/a1.txt") == "implicitDeny"
    assert decide([policy], "s3:GetObject", "arn:aws:s3:::b/[ab]1xtxt") == "implicitDeny"
    assert decide([policy], "s3:PutObject", "arn:aws:s3:::b/x") == "implicitDeny"
    assert decide([policy], "sts:GetCallerIdentity", "*") == "allowed"
    assert decide([policy], "bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/x") == "explicitDeny"
    assert decide([policy], "bedrock:GetCustomModel",
                  "arn:aws:bedrock:us-east-1:123456789012:custom-model/m/abc") == "allowed"
