"""What Bedrock's service roles may do: trust (with its conditions) and S3 access.

Bedrock assumes the job's service role as the service principal ``bedrock.amazonaws.com``
with the confused-deputy context AWS documents for its trust policies
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-iam-role.html,
https://docs.aws.amazon.com/bedrock/latest/userguide/batch-iam-sr.html):
``aws:SourceAccount`` is the account and ``aws:SourceArn`` the ARN of the job being created.
The trust policy is evaluated with those keys (``conditions``), so a trust limited to another
account, region or resource type does not let Bedrock in.

A role Bedrock cannot assume is refused by the create call itself with
``ValidationException: Could not assume provided IAM role.`` (the wording reported in
https://github.com/aws-samples/amazon-bedrock-workshop/issues/367). That a batch job's create
call refuses it the same way is our assumption (uncertain: no public source shows it).

S3 checks (messages from
https://docs.aws.amazon.com/bedrock/latest/userguide/fine-tuning-troubleshooting.html):
reading an object needs ``s3:GetObject`` on it and ``s3:ListBucket`` on its bucket. The
request context of that ListBucket is **our assumption** (the docs name the two actions but
not the request Bedrock sends): a listing with ``s3:prefix`` equal to the object's key, the
narrowest listing that tells a missing object from a forbidden one. So a ListBucket allowed
with no condition works, and one conditioned on ``s3:prefix`` works when the pattern covers
the data's key (``datasets/*`` covers ``datasets/train.jsonl``). The only documented write
probe is a PutObject of ``<output prefix>/.write_access_check_file.tmp``. Whether missing S3
access is reported at create time or as a ``Failed`` job is undocumented; the sandbox fails
the job (our choice), with the troubleshooting page's messages.
"""

from __future__ import annotations

from typing import Any

from utils.sandbox import conditions
from utils.sandbox.iam_simulate import decide, entity_policies, statements

BEDROCK_SERVICE = "bedrock.amazonaws.com"
CANNOT_ASSUME = "Could not assume provided IAM role."


def _principal_matches(principal: Any, service: str) -> bool:
    """Whether a trust statement's ``Principal`` names ``service`` (or everyone)."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    services = principal.get("Service", [])
    services = services if isinstance(services, list) else [services]
    everyone = principal.get("AWS", [])
    everyone = everyone if isinstance(everyone, list) else [everyone]
    return service in services or "*" in everyone


def trust_allows(role: Any, account: str, source_arn: str, *, service: str = BEDROCK_SERVICE) -> bool:
    """Whether ``service`` may ``sts:AssumeRole`` into ``role`` for the resource ``source_arn``."""
    if role is None:
        return False
    ctx = conditions.context({
        "aws:SourceAccount": account, "aws:SourceArn": source_arn, "aws:PrincipalServiceName": service,
    })
    allowed = False
    for st in statements(_trust_document(role)):
        if not _principal_matches(st.get("Principal"), service) or "NotPrincipal" in st:
            continue
        decision = decide([{"Statement": [st]}], "sts:AssumeRole", role.arn, ctx)
        if decision == "explicitDeny":
            return False
        allowed = allowed or decision == "allowed"
    return allowed


def _trust_document(role: Any) -> Any:
    doc = role.assume_role_policy_document
    if isinstance(doc, str) and doc[:3].upper() == "%7B":
        from urllib.parse import unquote

        doc = unquote(doc)
    return doc


def assume_refusal(role: Any, account: str, source_arn: str) -> str | None:
    """The create call's ``ValidationException`` message when Bedrock cannot assume ``role``."""
    return None if trust_allows(role, account, source_arn) else CANNOT_ASSUME


def role_allows(role: Any, action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
    """The role's inline and attached policies allow ``action`` on ``resource`` in ``context``
    (condition keys evaluated; a key the context lacks is absent, as in IAM)."""
    return decide(entity_policies(role), action, resource, conditions.context(context or {})) == "allowed"


def s3_read_allowed(role: Any, bucket: str, key: str, *, partition: str = "aws") -> bool:
    """GetObject on the object and ListBucket on its bucket with ``s3:prefix`` = the key (our
    assumption, see the module docstring)."""
    return role_allows(role, "s3:GetObject", f"arn:{partition}:s3:::{bucket}/{key}") and role_allows(
        role, "s3:ListBucket", f"arn:{partition}:s3:::{bucket}", {"s3:prefix": key})


def s3_list_allowed(role: Any, bucket: str, prefix: str, *, partition: str = "aws") -> bool:
    """ListBucket with ``s3:prefix`` = ``prefix`` (a batch job listing its input folder)."""
    return role_allows(role, "s3:ListBucket", f"arn:{partition}:s3:::{bucket}", {"s3:prefix": prefix})


def s3_write_allowed(role: Any, bucket: str, key: str, *, partition: str = "aws") -> bool:
    """PutObject of ``key`` (the documented probe ``<prefix>/.write_access_check_file.tmp``)."""
    return role_allows(role, "s3:PutObject", f"arn:{partition}:s3:::{bucket}/{key}")
