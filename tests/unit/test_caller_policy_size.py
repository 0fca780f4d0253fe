"""The caller policy an administrator attaches must fit IAM's policy-size quotas.

IAM counts a policy's characters without whitespace: a customer managed policy holds at most
6,144, and all inline policies of one role together at most 10,240
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html). The whole caller
policy is larger than both, so README section 4 renders it as several managed policies.
"""

from __future__ import annotations

import json

import pytest

from utils import iam

ACCOUNT = "123456789012"
REGION = "us-east-1"
# A SageMaker execution role ARN as the console creates it (long names make the policy larger).
ROLE = f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMaker-ExecutionRole-20261206T120000"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_policy_size_counts_characters_without_whitespace():
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    compact = json.dumps(doc, separators=(",", ":"))
    assert iam.policy_size(doc) == len(compact)
    assert iam.policy_size(json.dumps(doc, indent=4)) == len(compact)


def test_the_whole_caller_policy_exceeds_both_quotas():
    assert iam.policy_size(iam.caller_policy(REGION, ACCOUNT, ROLE)) > iam.INLINE_ROLE_POLICIES_MAX_CHARS


@pytest.mark.parametrize("kms_key_arn", [None, KEY])
def test_caller_policies_each_fit_a_managed_policy_and_keep_every_statement_in_order(kms_key_arn):
    whole = iam.caller_policy(REGION, ACCOUNT, ROLE, kms_key_arn=kms_key_arn)
    parts = iam.caller_policies(REGION, ACCOUNT, ROLE, kms_key_arn=kms_key_arn)
    assert len(parts) >= 2
    assert all(iam.policy_size(part) <= iam.MANAGED_POLICY_MAX_CHARS for part in parts)
    assert all(part["Version"] == whole["Version"] for part in parts)
    assert [s for part in parts for s in part["Statement"]] == whole["Statement"]


def test_split_policy_refuses_a_statement_larger_than_the_limit():
    doc = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Big", "Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::b{i}/*" for i in range(400)]}]}
    with pytest.raises(ValueError, match="Big"):
        iam.split_policy(doc)


def test_the_command_line_writes_one_file_per_managed_policy(tmp_path, capsys):
    assert iam.main(["--account", ACCOUNT, "--role-arn", ROLE, "--out-dir", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("caller-*.json"))
    parts = iam.caller_policies(REGION, ACCOUNT, ROLE)
    assert [json.loads(f.read_text()) for f in files] == parts
    out = capsys.readouterr().out
    assert all(f.name in out for f in files) and "aws iam create-policy" in out
    # Never a name the caller may rewrite or delete (its ManageOwnManagedPolicies prefix).
    assert iam.CALLER_POLICY_NAME in out and f"policy/{iam.ROLE_NAME_PREFIX}" not in out


@pytest.mark.parametrize("argv", [
    ["--account", "<account id>", "--role-arn", "<notebook execution role ARN>"],  # the README's placeholders
    ["--account", ACCOUNT, "--role-arn", ROLE, "--kms-key-arn", "alias/mykey"],
])
def test_the_command_line_answers_bad_input_with_one_line(tmp_path, capsys, argv):
    assert iam.main([*argv, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("region", "role", "expected"), [
    (REGION, "arn:aws:iam::210987654321:role/Other", "is in account 210987654321, not 123456789012"),
    ("us-gov-west-1", ROLE, "is in partition aws, but us-gov-west-1 is in aws-us-gov"),
    (REGION, f"arn:aws-us-gov:iam::{ACCOUNT}:role/R", "is in partition aws-us-gov, but us-east-1 is in aws"),
])
def test_a_role_of_another_account_or_partition_is_refused(region, role, expected):
    with pytest.raises(ValueError, match=expected):
        iam.caller_policy(region, ACCOUNT, role)
