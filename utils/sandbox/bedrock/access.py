"""The service role checks that customization and batch jobs run before they touch data.

Bedrock assumes the job's service role as the service principal ``bedrock.amazonaws.com``
with the confused-deputy context AWS documents for its trust policies
(https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-iam-role.html,
https://docs.aws.amazon.com/bedrock/latest/userguide/batch-iam-sr.html):
``aws:SourceAccount`` is the account and ``aws:SourceArn`` the ARN of the job. The trust
policy is evaluated with those keys (``utils.sandbox.conditions``), so a trust limited to
another account, region or resource type does not let Bedrock in.

A role Bedrock cannot assume is refused by the create call itself with
``ValidationException: Could not assume provided IAM role.`` (the wording reported in
https://github.com/aws-samples/amazon-bedrock-workshop/issues/367; :func:`assume_refusal`).
That a batch job's create call refuses it the same way is our assumption (uncertain: no
public source shows it). The asynchronous :meth:`Access.check_role` repeats the check when
the job starts, for a role deleted or changed after the create call.

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

Policies are evaluated by ``iam_simulate.decide`` (the same evaluator ``SimulatePrincipalPolicy``
and the caller-permission mode use), over the role's inline and attached policies.
"""

from __future__ import annotations

from typing import Any

from utils.sandbox import conditions
from utils.sandbox.bedrock.errors import S3WriteError
from utils.sandbox.bedrock.moto_bridge import MotoBridge
from utils.sandbox.bedrock.store import split_s3
from utils.sandbox.iam_simulate import decide, entity_policies, statements

BEDROCK_SERVICE = "bedrock.amazonaws.com"
CANNOT_ASSUME = "Could not assume provided IAM role."

# The object Bedrock writes to prove it may write the output location (left in place).
WRITE_PROBE = ".write_access_check_file.tmp"


# ---- policy decisions ---------------------------------------------------------------------------


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


def _trust_document(role: Any) -> Any:
    doc = role.assume_role_policy_document
    if isinstance(doc, str) and doc[:3].upper() == "%7B":
        from urllib.parse import unquote

        doc = unquote(doc)
    return doc


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


def s3_write_allowed(role: Any, bucket: str, key: str, *, partition: str = "aws") -> bool:
    """PutObject of ``key`` (the documented probe ``<prefix>/.write_access_check_file.tmp``)."""
    return role_allows(role, "s3:PutObject", f"arn:{partition}:s3:::{bucket}/{key}")


# ---- the checks a job runs ----------------------------------------------------------------------


def _other_region(bucket: str, bucket_region: str, region: str) -> str:
    return (
        f"The Amazon S3 bucket {bucket} is in region {bucket_region}, but the job runs in "
        f"{region}. Training, validation and output data must be in a bucket in the same region."
    )


class Access:
    """Role and S3 checks of one job, through :class:`MotoBridge`. Each returns a failure message."""

    def __init__(self, moto: MotoBridge) -> None:
        self.moto = moto

    def refusal(self, role_arn: str, job_arn: str) -> str | None:
        """The create call's refusal (:func:`assume_refusal`) for a job about to get ``job_arn``."""
        return assume_refusal(self.moto.role(role_arn), self.moto.account, job_arn)

    def check_role(self, role_arn: str, job_arn: str) -> tuple[Any | None, str | None]:
        """(the role, None), or (None, the failure message) when Bedrock cannot assume it for the job."""
        role = self.moto.role(role_arn)
        if not trust_allows(role, self.moto.account, job_arn):
            return None, (
                f"Could not assume provided IAM role {role_arn}. Make sure the role exists and its "
                "trust policy allows bedrock.amazonaws.com to assume it (sts:AssumeRole)."
            )
        return role, None

    def check_read(self, role: Any, region: str, uri: str) -> tuple[bytes | None, str | None]:
        """(the object's bytes, None), or (None, the failure message)."""
        bucket, key = split_s3(uri)
        denied = f"Could not validate GetObject permissions to access Amazon S3 bucket: {bucket} at key {key}"
        bucket_region = self.moto.bucket_region(bucket)
        if bucket_region is None:
            return None, denied
        if bucket_region != region:
            return None, _other_region(bucket, bucket_region, region)
        if not s3_read_allowed(role, bucket, key):
            return None, denied
        data = self.moto.get_object(bucket, key)
        if data is None:
            return None, denied
        return data, None

    def check_write(self, role: Any, region: str, uri: str, *, write_probe: bool = False) -> str | None:
        """None when the role may write under ``uri``, else the failure message.

        With ``write_probe`` the (empty) probe object is written and left in place, as the
        customization service does; batch jobs check the permission without writing it.
        """
        bucket, prefix = split_s3(uri)
        probe = f"{prefix.rstrip('/')}/{WRITE_PROBE}" if prefix.strip("/") else WRITE_PROBE
        denied = (
            "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access "
            f"S3 bucket: {bucket} at key {probe}"
        )
        bucket_region = self.moto.bucket_region(bucket)
        if bucket_region is None:
            return denied
        if bucket_region != region:
            return _other_region(bucket, bucket_region, region)
        if not s3_write_allowed(role, bucket, probe):
            return denied
        if write_probe:
            try:
                self.moto.put_object(bucket, probe, b"")
            except S3WriteError:
                return denied
        return None
