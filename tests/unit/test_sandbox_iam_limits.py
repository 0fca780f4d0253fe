"""The sandbox enforces IAM's policy-size quotas, which moto does not (a real account would refuse)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_sandbox_support import TRUST, Env, sandbox_fixture, unique
from utils import iam
from utils.sandbox import iam_limits

_sandbox = sandbox_fixture()

ACCOUNT = "123456789012"


def _policy(chars: int) -> str:
    """A policy document of about ``chars`` characters (no whitespace counted)."""
    base = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": []}]}
    resources = base["Statement"][0]["Resource"]
    while iam_limits.size(json.dumps(base)) < chars:
        resources.append(f"arn:aws:s3:::bucket-{len(resources):05d}/*")
    return json.dumps(base, indent=2)


def _limit_error(exc: pytest.ExceptionInfo) -> str:
    error = exc.value.response["Error"]
    assert error["Code"] == "LimitExceeded"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    return error["Message"]


def test_size_counts_characters_without_whitespace():
    assert iam_limits.size('{ "a" : [ 1, 2 ] }\n') == len('{"a":[1,2]}')
    assert iam_limits.size(_policy(1000)) == iam.policy_size(json.loads(_policy(1000)))


def test_managed_policy_over_6144_characters_is_refused(sandbox: Env):
    client = sandbox.client("iam")
    with pytest.raises(ClientError) as exc:
        client.create_policy(PolicyName=unique("big"), PolicyDocument=_policy(6_200))
    assert _limit_error(exc) == "Cannot exceed quota for PolicySize: 6144"
    arn = client.create_policy(PolicyName=unique("fits"), PolicyDocument=_policy(6_000))["Policy"]["Arn"]
    with pytest.raises(ClientError) as exc:
        client.create_policy_version(PolicyArn=arn, PolicyDocument=_policy(6_200), SetAsDefault=True)
    assert "6144" in _limit_error(exc)


def test_a_roles_inline_policies_share_10240_characters(sandbox: Env):
    client = sandbox.client("iam")
    role = unique("role")
    client.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))
    client.put_role_policy(RoleName=role, PolicyName="one", PolicyDocument=_policy(6_000))
    client.put_role_policy(RoleName=role, PolicyName="one", PolicyDocument=_policy(6_100))  # replacing itself
    with pytest.raises(ClientError) as exc:
        client.put_role_policy(RoleName=role, PolicyName="two", PolicyDocument=_policy(4_500))
    assert _limit_error(exc) == f"Maximum policy size of 10240 bytes exceeded for role {role}"
    client.put_role_policy(RoleName=role, PolicyName="two", PolicyDocument=_policy(4_000))


def test_the_whole_caller_policy_is_refused_and_its_parts_attach(sandbox: Env):
    client = sandbox.client("iam")
    role = unique("caller")
    arn = client.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    with pytest.raises(ClientError) as exc:
        client.put_role_policy(RoleName=role, PolicyName="caller",
                               PolicyDocument=json.dumps(iam.caller_policy("us-east-1", ACCOUNT, arn)))
    assert "10240" in _limit_error(exc)
    for index, part in enumerate(iam.caller_policies("us-east-1", ACCOUNT, arn), start=1):
        policy = client.create_policy(PolicyName=f"{role}-{index}", PolicyDocument=json.dumps(part))
        client.attach_role_policy(RoleName=role, PolicyArn=policy["Policy"]["Arn"])


@pytest.mark.parametrize("template", [t for t in iam.template_names() if not t.startswith("notebook-caller")])
def test_every_policy_the_series_creates_fits_a_managed_policy(template):
    values = {name: "x" * 40 for name in iam.placeholders(template)}  # long values: a conservative size
    assert iam.policy_size(iam.render_policy(template, **values)) <= iam_limits.MANAGED_POLICY_MAX
