"""Independent lint of iam-policies/ with parliament, and the trust-policy conditions."""

from __future__ import annotations

import json

import pytest

from utils import iam

parliament = pytest.importorskip("parliament")

SEVERITIES = ["MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
VALUES = {
    "AccountId": "123456789012",
    "Region": "us-east-1",
    "Bucket": "bedrock-ws-demo-data",
    "TrainingPrefix": "datasets/",
    "ValidationPrefix": "datasets/",
    "OutputPrefix": "customization-output/",
    "InputPrefix": "batch-input/",
    "RoleNamePrefix": iam.ROLE_NAME_PREFIX,
    "BucketPrefix": iam.BUCKET_PREFIX,
    "CallerRoleArn": "arn:aws:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-20261121",
    "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}
TRUST_POLICIES = {"customization-role-trust": "model-customization-job", "batch-role-trust": "model-invocation-job",
                  "evaluation-role-trust": "evaluation-job"}
RESOURCE_POLICIES = {"bucket-tls-only"}
IDENTITY_POLICIES = sorted(set(iam.template_names()) - set(TRUST_POLICIES) - RESOURCE_POLICIES)

# parliament 1.6.4's action list predates Amazon Bedrock's on-demand custom model deployments
# (CreateCustomModelDeployment & co., 2025), so it reports them as LOW UNKNOWN_ACTION although the
# actions exist (botocore 1.44.5 `bedrock` has these operations). Exactly these are allowed.
KNOWN_NEWER_ACTIONS = {
    "bedrock:CreateCustomModelDeployment",
    "bedrock:GetCustomModelDeployment",
    "bedrock:ListCustomModelDeployments",
    "bedrock:UpdateCustomModelDeployment",
    "bedrock:DeleteCustomModelDeployment",
}


def render(name: str) -> dict:
    return iam.render_policy(name, **{k: v for k, v in VALUES.items() if k in iam.placeholders(name) | {"Region"}})


def findings(name: str) -> list:
    policy = parliament.analyze_policy_string(json.dumps(render(name)))
    return [parliament.enhance_finding(f) for f in policy.findings]


def test_every_template_is_classified_and_renders():
    assert {"customization-role-s3", "notebook-caller", "batch-role-permissions", "service-role-kms"} <= set(
        IDENTITY_POLICIES)
    for name in iam.template_names():
        assert "${" not in json.dumps(render(name)).replace("${aws:", "")


@pytest.mark.parametrize("name", IDENTITY_POLICIES)
def test_identity_policy_has_no_medium_or_higher_findings(name):
    serious = [
        (f.issue, f.severity, f.detail) for f in findings(name)
        if SEVERITIES.index(f.severity) >= SEVERITIES.index("MEDIUM")
    ]
    assert serious == []


@pytest.mark.parametrize("name", IDENTITY_POLICIES)
def test_only_the_known_newer_actions_are_unknown(name):
    unknown = {str(f.detail).removeprefix("Unknown action ") for f in findings(name) if f.issue == "UNKNOWN_ACTION"}
    assert unknown <= KNOWN_NEWER_ACTIONS
    if name == "notebook-caller":
        assert unknown == KNOWN_NEWER_ACTIONS  # when parliament learns them, drop them from the list
    others = [f.issue for f in findings(name) if f.issue != "UNKNOWN_ACTION"]
    assert all(SEVERITIES.index(parliament.config[i]["severity"]) < SEVERITIES.index("MEDIUM") for i in others)


@pytest.mark.parametrize(("name", "job_type"), sorted(TRUST_POLICIES.items()))
def test_trust_policy_carries_source_account_and_source_arn(name, job_type):
    doc = render(name)
    (statement,) = doc["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    condition = statement["Condition"]
    assert condition["StringEquals"]["aws:SourceAccount"] == VALUES["AccountId"]
    assert condition["ArnLike"]["aws:SourceArn"] == f"arn:aws:bedrock:us-east-1:123456789012:{job_type}/*"


def test_customization_s3_policy_is_prefix_scoped():
    doc = render("customization-role-s3")
    resources = json.dumps([st["Resource"] for st in doc["Statement"]])
    assert "arn:aws:s3:::bedrock-ws-demo-data/*" not in resources  # never the whole bucket
    listing = next(st for st in doc["Statement"] if st["Action"] == "s3:ListBucket")
    assert set(listing["Condition"]["StringLike"]["s3:prefix"]) == {"datasets/*", "customization-output/*"}
    writes = [st for st in doc["Statement"] if "s3:PutObject" in iam._as_list(st["Action"])]
    assert [st["Resource"] for st in writes] == ["arn:aws:s3:::bedrock-ws-demo-data/customization-output/*"]


def test_caller_policy_pass_role_is_scoped_to_bedrock():
    doc = render("notebook-caller")
    (pass_role,) = [st for st in doc["Statement"] if "iam:PassRole" in iam._as_list(st["Action"])]
    assert pass_role["Resource"] == "arn:aws:iam::123456789012:role/AmazonBedrockWorkshop-*"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    assert "AmazonBedrock" in iam.ROLE_NAME_PREFIX


def test_caller_policy_lists_exactly_the_series_bedrock_actions():
    bedrock = {a for a in iam.policy_actions(render("notebook-caller")) if a.startswith("bedrock:")}
    assert bedrock == {
        "bedrock:ListFoundationModels", "bedrock:GetFoundationModel", "bedrock:GetFoundationModelAvailability",
        "bedrock:ListInferenceProfiles", "bedrock:GetInferenceProfile",
        "bedrock:CreateModelCustomizationJob", "bedrock:GetModelCustomizationJob",
        "bedrock:ListModelCustomizationJobs", "bedrock:StopModelCustomizationJob",
        "bedrock:GetCustomModel", "bedrock:ListCustomModels", "bedrock:DeleteCustomModel",
        "bedrock:CreateProvisionedModelThroughput", "bedrock:GetProvisionedModelThroughput",
        "bedrock:ListProvisionedModelThroughputs", "bedrock:UpdateProvisionedModelThroughput",
        "bedrock:DeleteProvisionedModelThroughput",
        *KNOWN_NEWER_ACTIONS,
        "bedrock:CreateModelInvocationJob", "bedrock:GetModelInvocationJob", "bedrock:ListModelInvocationJobs",
        "bedrock:StopModelInvocationJob",
        "bedrock:CreateEvaluationJob", "bedrock:GetEvaluationJob", "bedrock:ListEvaluationJobs",
        "bedrock:StopEvaluationJob", "bedrock:BatchDeleteEvaluationJob",
        "bedrock:ListImportedModels", "bedrock:GetImportedModel", "bedrock:DeleteImportedModel",
        "bedrock:ListModelImportJobs", "bedrock:CreateModelImportJob", "bedrock:GetModelImportJob",
        "bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:TagResource",
        "bedrock:UntagResource", "bedrock:ListTagsForResource",
    }
    assert not any("*" in a for a in iam.policy_actions(render("notebook-caller")))


def test_caller_policy_actions_exist_in_botocore():
    """Every bedrock action the caller policy grants is a real operation of the installed botocore."""
    import botocore.session

    ops = set(botocore.session.get_session().get_service_model("bedrock").operation_names)
    ops |= set(botocore.session.get_session().get_service_model("bedrock-runtime").operation_names)
    for action in iam.policy_actions(render("notebook-caller")):
        if action.startswith("bedrock:"):
            assert action.split(":", 1)[1] in ops, action
