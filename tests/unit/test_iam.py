"""utils.iam against in-process moto: templates, idempotent roles and policies, deletion."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.unit.conftest import use_in_process_moto
from utils import iam
from utils import state as ws

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch):
    """In-process moto with the utils.aws 'aws' backend (default chain inside the mock)."""
    import moto

    use_in_process_moto(monkeypatch, REGION)
    monkeypatch.setattr(iam, "_sleep", lambda _s: None)
    with moto.mock_aws():
        yield boto3.client("iam", region_name=REGION)


def _values(**extra: str) -> dict[str, str]:
    return {"AccountId": ACCOUNT, "Region": REGION, **extra}


# ---- templates ---------------------------------------------------------------------------


def test_render_fills_every_placeholder_and_defaults_partition():
    doc = iam.render_policy("customization-role-trust", **_values())
    text = json.dumps(doc)
    assert "${" not in text
    assert "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/*" in text
    gov = iam.render_policy("customization-role-trust", AccountId=ACCOUNT, Region="us-gov-west-1")
    assert "arn:aws-us-gov:bedrock:" in json.dumps(gov)


def test_render_raises_on_missing_unknown_or_empty_values():
    with pytest.raises(ValueError, match="missing values"):
        iam.render_policy("customization-role-trust", Region=REGION)
    with pytest.raises(ValueError, match="unknown values"):
        iam.render_policy("customization-role-trust", **_values(Bukket="x"))
    with pytest.raises(ValueError, match="empty values"):
        iam.render_policy("customization-role-trust", AccountId="", Region=REGION)
    with pytest.raises(KeyError):
        iam.render_policy("no-such-template")


def test_render_cannot_inject_json():
    doc = iam.render_policy("bucket-tls-only", Bucket='evil"}],"x":"', Region=REGION)
    assert doc["Statement"][0]["Resource"][0] == 'arn:aws:s3:::evil"}],"x":"'


def test_iam_policy_variables_are_not_placeholders():
    assert iam.PLACEHOLDER.findall("${aws:username} ${Bucket}") == ["Bucket"]


def test_same_document_ignores_formatting_and_single_item_lists():
    a = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}
    b = {"Statement": {"Resource": ["*"], "Action": "s3:GetObject", "Effect": "Allow"}, "Version": "2012-10-17"}
    assert iam.same_document(a, b)
    assert iam.same_document(json.dumps(a), b)
    assert not iam.same_document(a, {**a, "Version": "2008-10-17"})


# ---- retries -----------------------------------------------------------------------------


def _client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")


def test_retry_eventual_retries_no_such_entity_and_invalid_principal(monkeypatch):
    monkeypatch.setattr(iam, "_sleep", lambda _s: None)
    errors = [_client_error("NoSuchEntity"), _client_error("MalformedPolicyDocument", "Invalid principal in policy")]

    def flaky():
        if errors:
            raise errors.pop(0)
        return "ok"

    assert iam.retry_eventual(flaky) == "ok"


def test_retry_eventual_gives_up_and_does_not_retry_other_errors(monkeypatch):
    monkeypatch.setattr(iam, "_sleep", lambda _s: None)
    calls = []

    def denied():
        calls.append(1)
        raise _client_error("AccessDenied", "not authorized")

    with pytest.raises(ClientError):
        iam.retry_eventual(denied)
    assert len(calls) == 1

    def missing():
        calls.append(1)
        raise _client_error("NoSuchEntity")

    with pytest.raises(ClientError):
        iam.retry_eventual(missing, delays=(0, 0))
    assert len(calls) == 1 + 3


# ---- roles and policies ------------------------------------------------------------------


def test_customization_role_created_once_and_rerun_creates_nothing(aws_env):
    arn = iam.ensure_customization_role("demo", "bedrock-ws-demo-data", REGION, ACCOUNT)
    name = ws.role_name("demo", "customization")
    assert arn.endswith(f":role/{name}") and "AmazonBedrock" in name

    role = aws_env.get_role(RoleName=name)["Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":model-customization-job/*")
    attached = aws_env.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == [f"{name}-S3"]
    tags = {t["Key"]: t["Value"] for t in aws_env.list_role_tags(RoleName=name)["Tags"]}
    assert tags["workshop-id"] == "demo"

    versions_before = aws_env.list_policy_versions(PolicyArn=attached[0]["PolicyArn"])["Versions"]
    assert iam.ensure_customization_role("demo", "bedrock-ws-demo-data", REGION, ACCOUNT) == arn
    assert len(aws_env.list_roles()["Roles"]) == 1
    assert sorted(p["PolicyName"] for p in aws_env.list_policies(Scope="Local")["Policies"]) == [
        "AmazonBedrockWorkshop-PermissionsBoundary", f"{name}-S3"]
    versions_after = aws_env.list_policy_versions(PolicyArn=attached[0]["PolicyArn"])["Versions"]
    assert len(versions_after) == len(versions_before) == 1
    assert len(aws_env.list_attached_role_policies(RoleName=name)["AttachedPolicies"]) == 1


def test_ensure_role_updates_a_changed_trust_policy(aws_env):
    trust = iam.render_policy("customization-role-trust", **_values())
    iam.ensure_role("AmazonBedrockWorkshop-t-X", trust, "d", {"a": "1"})
    other = iam.render_policy("batch-role-trust", **_values())
    iam.ensure_role("AmazonBedrockWorkshop-t-X", other, "d", {"a": "2"})
    role = aws_env.get_role(RoleName="AmazonBedrockWorkshop-t-X")["Role"]
    assert iam.same_document(role["AssumeRolePolicyDocument"], other)
    tags = aws_env.list_role_tags(RoleName="AmazonBedrockWorkshop-t-X")["Tags"]
    assert tags == [{"Key": "a", "Value": "2"}]


def test_managed_policy_versions_and_pruning(aws_env):
    def doc(i: int) -> dict:
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::b/p{i}/*"}]}

    arn = iam.ensure_managed_policy("AmazonBedrockWorkshop-t-P", doc(0), account=ACCOUNT)
    assert iam.ensure_managed_policy("AmazonBedrockWorkshop-t-P", doc(0), account=ACCOUNT) == arn
    assert len(aws_env.list_policy_versions(PolicyArn=arn)["Versions"]) == 1
    for i in range(1, 8):
        iam.ensure_managed_policy("AmazonBedrockWorkshop-t-P", doc(i), account=ACCOUNT)
    versions = aws_env.list_policy_versions(PolicyArn=arn)["Versions"]
    assert len(versions) == iam.MAX_POLICY_VERSIONS
    default = next(v for v in versions if v["IsDefaultVersion"])
    current = aws_env.get_policy_version(PolicyArn=arn, VersionId=default["VersionId"])["PolicyVersion"]
    assert iam.same_document(current["Document"], doc(7))


def test_inline_policy_written_only_when_different(aws_env):
    iam.ensure_role("AmazonBedrockWorkshop-t-I", iam.render_policy("customization-role-trust", **_values()))
    kms = iam.render_policy("service-role-kms", KmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/k", Region=REGION)
    assert iam.ensure_inline_policy("AmazonBedrockWorkshop-t-I", "kms", kms) is True
    assert iam.ensure_inline_policy("AmazonBedrockWorkshop-t-I", "kms", kms) is False


def test_attach_is_idempotent(aws_env):
    iam.ensure_role("AmazonBedrockWorkshop-t-A", iam.render_policy("customization-role-trust", **_values()))
    arn = iam.ensure_managed_policy(
        "AmazonBedrockWorkshop-t-AP", {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}]}, account=ACCOUNT)
    assert iam.attach("AmazonBedrockWorkshop-t-A", arn) is True
    assert iam.attach("AmazonBedrockWorkshop-t-A", arn) is False


def test_delete_role_removes_policies_first(aws_env):
    iam.ensure_customization_role(
        "demo", "bedrock-ws-demo-data", REGION, ACCOUNT, kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k")
    name = ws.role_name("demo", "customization")
    with pytest.raises(ClientError, match="DeleteConflict|must"):
        aws_env.delete_role(RoleName=name)  # what a naive cleanup hits
    assert iam.delete_role(name) is True
    assert not iam.role_exists(name)
    assert [p["PolicyName"] for p in aws_env.list_policies(Scope="Local")["Policies"]] == [
        "AmazonBedrockWorkshop-PermissionsBoundary"]  # shared by every workshop id, free, kept
    assert iam.delete_role(name) is False


def test_batch_role(aws_env):
    arn = iam.ensure_batch_role("demo", "bedrock-ws-demo-data", REGION, ACCOUNT)
    role = aws_env.get_role(RoleName=arn.rsplit("/", 1)[-1])["Role"]
    cond = role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert cond["ArnLike"]["aws:SourceArn"].endswith(":model-invocation-job/*")


def test_empty_prefix_is_refused(aws_env):
    with pytest.raises(ValueError, match="whole bucket"):
        iam.ensure_customization_role("demo", "b", REGION, ACCOUNT, output_prefix="")


# ---- permissions boundary and the KMS option --------------------------------------------------


def test_service_roles_carry_the_boundary_and_existing_roles_adopt_it(aws_env):
    boundary = iam.permissions_boundary_arn(ACCOUNT)
    arn = iam.ensure_customization_role("demo", "bedrock-ws-demo-data", REGION, ACCOUNT)
    role = aws_env.get_role(RoleName=arn.rsplit("/", 1)[-1])["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    document = aws_env.get_policy_version(PolicyArn=boundary, VersionId="v1")["PolicyVersion"]["Document"]
    assert iam.same_document(document, iam.render_policy(
        "service-role-boundary", Region=REGION, AccountId=ACCOUNT, BucketPrefix=iam.BUCKET_PREFIX))
    # One boundary per account: a workshop in another region reuses it unchanged.
    assert iam.ensure_permissions_boundary("us-west-2", ACCOUNT) == boundary
    # A role made before the boundary existed gets it on the next run.
    iam.ensure_role("AmazonBedrockWorkshop-old-Customization", iam.render_policy("customization-role-trust", **_values()))
    assert "PermissionsBoundary" not in aws_env.get_role(RoleName="AmazonBedrockWorkshop-old-Customization")["Role"]
    iam.ensure_customization_role("old", "bedrock-ws-old-data", REGION, ACCOUNT)
    adopted = aws_env.get_role(RoleName="AmazonBedrockWorkshop-old-Customization")["Role"]
    assert adopted["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary


def test_a_changed_boundary_is_never_rewritten_by_the_notebooks(aws_env):
    boundary = iam.ensure_permissions_boundary(REGION, ACCOUNT)
    aws_env.create_policy_version(PolicyArn=boundary, SetAsDefault=True, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    with pytest.raises(RuntimeError, match="administrator"):
        iam.ensure_permissions_boundary(REGION, ACCOUNT)


def test_caller_policy_requires_the_boundary_on_role_writes():
    doc = iam.caller_policy(REGION, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/Caller")
    boundary = iam.permissions_boundary_arn(ACCOUNT)
    statements = {s["Sid"]: s for s in doc["Statement"]}
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"):
        granting = [s for s in doc["Statement"] if s["Effect"] == "Allow" and action in iam._as_list(s["Action"])]
        assert granting and all(s["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == boundary
                                for s in granting), action
    denied = statements["NeverRewriteOrRemoveTheBoundary"]
    assert denied["Effect"] == "Deny" and denied["Resource"] == boundary
    assert statements["NeverLiftTheBoundaryFromOwnRoles"]["Action"] == "iam:DeleteRolePermissionsBoundary"


def test_caller_policy_conditions_deletes_on_the_workshop_tag_where_supported():
    doc = iam.caller_policy(REGION, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/Caller")
    tagged = {"bedrock:StopModelCustomizationJob", "bedrock:DeleteCustomModel",
              "bedrock:DeleteProvisionedModelThroughput", "bedrock:StopModelInvocationJob", "bedrock:UntagResource"}
    for action in tagged:
        granting = [s for s in doc["Statement"] if s["Effect"] == "Allow" and action in iam._as_list(s["Action"])]
        assert granting and all(s["Condition"]["StringLike"]["aws:ResourceTag/workshop-id"] == "?*"
                                for s in granting), action
    assert {"aws-marketplace:Subscribe", "aws-marketplace:ViewSubscriptions",
            "aws-marketplace:Unsubscribe"} <= set(iam.policy_actions(doc))


def test_kms_option_in_caller_policy_and_arn_checks():
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    plain = iam.caller_policy(REGION, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/Caller")
    with_key = iam.caller_policy(REGION, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/Caller", kms_key_arn=key)
    assert not any(a.startswith("kms:") for a in iam.policy_actions(plain))
    assert {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"} <= set(iam.policy_actions(with_key))
    assert all(s["Resource"] == key for s in with_key["Statement"] if s["Sid"].startswith(("Use", "Let")))
    for bad, why in (("alias/mykey", "not a KMS key ARN"), (key.replace(REGION, "eu-west-1"), "eu-west-1"),
                     (key.replace(ACCOUNT, "999999999999"), "999999999999")):
        with pytest.raises(ValueError, match=why):
            iam.validate_kms_key_arn(bad, REGION, ACCOUNT)


def _allowed(document: dict, action: str, resource: str) -> bool:
    """IAM's allow/deny on actions and resources (conditions left out): explicit deny wins."""
    from fnmatch import fnmatchcase

    def matches(statement: dict) -> bool:
        actions = [a.lower() for a in iam._as_list(statement["Action"])]
        return any(fnmatchcase(action.lower(), a) for a in actions) and any(
            fnmatchcase(resource, r) for r in iam._as_list(statement["Resource"]))

    statements = iam._statements(document)
    if any(s["Effect"] == "Deny" and matches(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and matches(s) for s in statements)


def test_caller_policy_allows_every_call_the_series_makes_and_not_the_boundary_rewrite():
    from utils import preflight

    doc = iam.caller_policy(REGION, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/Caller")
    calls = set()
    for plan in (preflight.plan_run("current", use_judges=True, use_comparison=True),
                 preflight.plan_run("current", student="llama3-1-8b")):
        calls |= set(preflight.series_action_probes(REGION, ACCOUNT, plan.student, plan))
    role = f"arn:aws:iam::{ACCOUNT}:role/AmazonBedrockWorkshop-demo-Customization"
    boundary = iam.permissions_boundary_arn(ACCOUNT)
    bedrock = f"arn:aws:bedrock:{REGION}:{ACCOUNT}"
    calls |= {
        ("iam:CreatePolicy", boundary), ("iam:GetPolicy", boundary), ("iam:GetPolicyVersion", boundary),
        ("iam:PutRolePermissionsBoundary", role), ("iam:PutRolePolicy", role), ("iam:AttachRolePolicy", role),
        ("iam:DetachRolePolicy", role), ("iam:DeleteRolePolicy", role), ("iam:GetRole", role),
        ("bedrock:UpdateCustomModelDeployment", f"{bedrock}:custom-model-deployment/x"),
        ("bedrock:UpdateProvisionedModelThroughput", f"{bedrock}:provisioned-model/x"),
        ("bedrock:GetCustomModel", f"{bedrock}:custom-model/x"),
        ("bedrock:ListModelCustomizationJobs", "*"), ("bedrock:ListModelInvocationJobs", "*"),
        ("bedrock:ListCustomModelDeployments", "*"), ("bedrock:ListTagsForResource", f"{bedrock}:custom-model/x"),
        ("bedrock:TagResource", f"{bedrock}:custom-model-deployment/x"),
    }
    refused = sorted(c for c in calls if not _allowed(doc, *c))
    assert refused == []
    for action in ("iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:SetDefaultPolicyVersion"):
        assert not _allowed(doc, action, boundary)
    assert not _allowed(doc, "iam:DeleteRolePermissionsBoundary", role)


@pytest.mark.parametrize(("account", "role"), [
    ("<account id>", "<notebook execution role ARN>"),  # the README's placeholders, left unsubstituted
    (ACCOUNT, "<notebook execution role ARN>"),
    ("12345", f"arn:aws:iam::{ACCOUNT}:role/Caller"),
    (ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/Caller/session"),
])
def test_caller_policy_refuses_placeholders_and_non_role_arns(account, role):
    with pytest.raises(ValueError, match="is not an"):
        iam.caller_policy(REGION, account, role)
