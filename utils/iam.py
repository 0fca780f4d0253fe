"""Least-privilege IAM for the series: policy templates and idempotent role setup.

The JSON templates live in ``iam-policies/`` (one line each in its README) and
are rendered here with :func:`render_policy`; notebooks never edit policy
strings. Every ``ensure_*`` function is get-or-create: a rerun finds what the
first run made and changes nothing unless a document really differs.

IAM is eventually consistent: a role or policy that was just created may still
be reported missing (``NoSuchEntity``) or, as a trust principal, as
``MalformedPolicyDocument: Invalid principal``. Creation waits with botocore's
``role_exists``/``policy_exists`` waiters, and the calls that follow a creation
go through :func:`retry_eventual`.

Nothing here runs at import time; every client comes from :func:`utils.aws.client`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from utils import aws
from utils import state as ws

log = logging.getLogger(__name__)

T = TypeVar("T")

POLICY_DIR = ws.REPO_ROOT / "iam-policies"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")  # IAM's own ${aws:...} has a colon

# Name prefixes the caller policy is scoped to (see iam-policies/notebook-caller.json).
ROLE_NAME_PREFIX = "AmazonBedrockWorkshop-"  # utils.state.role_name: contains "AmazonBedrock"
BUCKET_PREFIX = "bedrock-ws-"  # utils.state.name
# Where the customization role may read and write inside the workshop bucket.
TRAINING_PREFIX = "datasets/"
VALIDATION_PREFIX = "datasets/"
OUTPUT_PREFIX = "customization-output/"
BATCH_INPUT_PREFIX = "batch-input/"
BATCH_OUTPUT_PREFIX = "batch-output/"
EVALUATION_INPUT_PREFIX = "evaluation-input/"
EVALUATION_OUTPUT_PREFIX = "evaluation-output/"
BEDROCK_SERVICE = "bedrock.amazonaws.com"
MAX_POLICY_VERSIONS = 5  # IAM keeps at most five versions of a managed policy

# Delays between attempts for eventual consistency (seconds); tests patch _sleep.
RETRY_DELAYS: tuple[float, ...] = (1, 2, 3, 5, 8, 10)
_sleep: Callable[[float], None] = time.sleep


# ---- templates --------------------------------------------------------------------------


def template_names() -> list[str]:
    """Names of every template in ``iam-policies/`` (without ``.json``)."""
    return sorted(p.stem for p in POLICY_DIR.glob("*.json"))


def _template_path(template_name: str) -> Path:
    stem = template_name.removesuffix(".json")
    path = POLICY_DIR / f"{stem}.json"
    if not path.exists():
        raise KeyError(f"No IAM policy template {stem!r}; known: {', '.join(template_names())}")
    return path


def placeholders(template_name: str) -> set[str]:
    """The ``${Name}`` placeholders a template needs."""
    return set(PLACEHOLDER.findall(_template_path(template_name).read_text()))


def partition_for(region: str) -> str:
    """The ARN partition of a region: ``aws``, ``aws-cn`` or ``aws-us-gov``."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def render_policy(template_name: str, **values: str) -> dict[str, Any]:
    """Render ``iam-policies/<template_name>.json`` into a policy document.

    Placeholders are substituted inside JSON string values only (the template is
    parsed first), so a value can never change the document's structure.
    ``Partition`` defaults to the partition of ``Region`` (``Region`` may be given
    for that alone, even where the template has no ``${Region}``). Raises ``ValueError``
    on a missing placeholder value, an unknown value name, or an empty value.
    """
    path = _template_path(template_name)
    document = json.loads(path.read_text())
    needed = set(PLACEHOLDER.findall(path.read_text()))
    values = {k: str(v) for k, v in values.items()}
    if "Partition" in needed and "Partition" not in values and "Region" in values:
        values["Partition"] = partition_for(values["Region"])
    missing = sorted(needed - values.keys())
    unknown = sorted(values.keys() - needed - {"Partition", "Region"})  # Region may only set Partition
    empty = sorted(k for k in needed if k in values and not values[k])
    if missing or unknown or empty:
        raise ValueError(
            f"Template {path.stem}: missing values {missing}, unknown values {unknown}, "
            f"empty values {empty}. It needs exactly {sorted(needed)}."
        )

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return PLACEHOLDER.sub(lambda m: values[m.group(1)], node)
        if isinstance(node, list):
            return [fill(item) for item in node]
        if isinstance(node, dict):
            return {fill(k): fill(v) for k, v in node.items()}
        return node

    rendered = fill(document)
    left = PLACEHOLDER.findall(json.dumps(rendered))
    if left:  # cannot happen after the checks above; kept as a guard
        raise ValueError(f"Template {path.stem}: unfilled placeholders {left}")
    return rendered


def caller_policy(
    region: str, account: str, caller_role_arn: str, *, role_name_prefix: str = ROLE_NAME_PREFIX,
    bucket_prefix: str = BUCKET_PREFIX, kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """The notebook execution role's policy (``notebook-caller.json``), rendered.

    With ``kms_key_arn`` (01's ``kms_key_arn`` parameter) the statements of
    ``notebook-caller-kms.json`` are appended: the caller uses that key through S3 and
    Bedrock only, and may let Bedrock create grants on it for the custom model
    (https://docs.aws.amazon.com/bedrock/latest/userguide/encryption-custom-job.html).
    """
    if not re.fullmatch(r"\d{12}", account or ""):
        raise ValueError(f"account={account!r} is not an AWS account ID: use the 12 digits of "
                         "`aws sts get-caller-identity --query Account`.")
    if not re.fullmatch(r"arn:aws(-cn|-us-gov)?:iam::\d{12}:role/\S+", caller_role_arn or ""):
        raise ValueError(f"caller_role_arn={caller_role_arn!r} is not an IAM role ARN: use the notebook "
                         "execution role's ARN (SageMaker console → the notebook instance → IAM role ARN).")
    _, role_partition, _, _, role_account = caller_role_arn.split(":")[:5]
    if role_account != account:
        raise ValueError(f"caller_role_arn={caller_role_arn!r} is in account {role_account}, not {account}: use "
                         "the execution role of the account the workshop runs in.")
    partition = partition_for(region)
    if role_partition != partition:
        raise ValueError(f"caller_role_arn={caller_role_arn!r} is in partition {role_partition}, but {region} is in "
                         f"{partition}: pass the Region the workshop runs in (--region) or that partition's role ARN.")
    document = render_policy(
        "notebook-caller", Region=region, AccountId=account, CallerRoleArn=caller_role_arn,
        RoleNamePrefix=role_name_prefix, BucketPrefix=bucket_prefix,
    )
    if kms_key_arn:
        validate_kms_key_arn(kms_key_arn, region, account)
        kms = render_policy("notebook-caller-kms", KmsKeyArn=kms_key_arn, Region=region)
        document["Statement"] = _statements(document) + _statements(kms)
    return document


# IAM counts a policy's characters without whitespace: a customer managed policy holds at most 6,144,
# and all inline policies of one role together at most 10,240
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
MANAGED_POLICY_MAX_CHARS = 6144
# The caller's own managed policies are named outside ROLE_NAME_PREFIX: the caller may rewrite and
# delete policies under that prefix, and must never rewrite the policies that grant it its rights.
CALLER_POLICY_NAME = "BedrockWorkshopNotebookCaller"
INLINE_ROLE_POLICIES_MAX_CHARS = 10240


def policy_size(document: Mapping[str, Any] | str) -> int:
    """The characters of ``document`` that count against IAM's policy-size quotas (no whitespace)."""
    text = document if isinstance(document, str) else json.dumps(document, separators=(",", ":"))
    return len(re.sub(r"\s", "", text))


def split_policy(document: Mapping[str, Any], max_chars: int = MANAGED_POLICY_MAX_CHARS) -> list[dict[str, Any]]:
    """``document`` as consecutive documents of whole statements, each within ``max_chars``.

    A policy's statements are evaluated independently (explicit deny wins whichever policy holds it:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), so the
    parts attached together grant exactly what the whole document grants.
    """
    version = document.get("Version", "2012-10-17")
    parts: list[dict[str, Any]] = []
    for statement in _statements(document):
        single = {"Version": version, "Statement": [statement]}
        if policy_size(single) > max_chars:
            raise ValueError(f"Statement {statement.get('Sid', '?')} alone is over {max_chars} characters.")
        if parts and policy_size({"Version": version, "Statement": [*parts[-1]["Statement"], statement]}) <= max_chars:
            parts[-1]["Statement"].append(statement)
        else:
            parts.append(single)
    return parts


def caller_policies(region: str, account: str, caller_role_arn: str, **options: Any) -> list[dict[str, Any]]:
    """:func:`caller_policy` split into customer managed policies that each fit IAM's size quota.

    The whole document is larger than a managed policy (6,144 characters) and than a role's inline
    policies together (10,240), so an administrator attaches these parts to the execution role.
    """
    return split_policy(caller_policy(region, account, caller_role_arn, **options))


_KMS_KEY_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):kms:([a-z0-9-]+):(\d{12}):key/([A-Za-z0-9-]+)$")


def validate_kms_key_arn(kms_key_arn: str, region: str, account: str | None = None) -> str:
    """A customer managed key ARN in the workshop's region (and account); ``ValueError`` otherwise.

    A key ARN rather than an alias or ID, because IAM policies (the caller's, the service
    role's) name the key by ARN, and the bucket, the job and the key must share a region.
    """
    match = _KMS_KEY_ARN.match(kms_key_arn.strip())
    if not match:
        raise ValueError(
            f"kms_key_arn={kms_key_arn!r} is not a KMS key ARN. Use the key's ARN "
            "(arn:aws:kms:<region>:<account>:key/<key id>, KMS console → the key → ARN), not an alias or ID, "
            "or leave it empty for SSE-S3 and AWS-managed encryption."
        )
    if match.group(2) != region:
        raise ValueError(f"kms_key_arn is in {match.group(2)}, but the workshop runs in {region}: "
                         "use a key in the same region as the bucket and the jobs.")
    if account and match.group(3) != account:
        raise ValueError(f"kms_key_arn belongs to account {match.group(3)}, not {account}: "
                         "use a key of this account (the templates grant this account's keys only).")
    return kms_key_arn.strip()


# ---- the permissions boundary of the roles the caller creates --------------------------


BOUNDARY_SUFFIX = "PermissionsBoundary"


def permissions_boundary_arn(account: str, *, partition: str = "aws", role_name_prefix: str = ROLE_NAME_PREFIX) -> str:
    """The boundary the caller policy requires on every role it creates (``iam:PermissionsBoundary``)."""
    return managed_policy_arn(f"{role_name_prefix}{BOUNDARY_SUFFIX}", account, partition=partition)


def ensure_permissions_boundary(
    region: str, account: str, *, role_name_prefix: str = ROLE_NAME_PREFIX, bucket_prefix: str = BUCKET_PREFIX,
) -> str:
    """Create the service roles' permissions boundary (``service-role-boundary.json``) once; return its ARN.

    The boundary caps what any workshop service role can do (workshop buckets, model
    invocation, this account's keys through S3/Bedrock) whatever policies are put on it
    later (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
    IAM is global, so it names no region: one boundary serves every workshop id and region
    of the account. It costs nothing; cleanup deletes it only once no role uses it (where the caller may).
    The caller policy denies rewriting or deleting it; if it exists with other content, an
    administrator must update it (the error says so) rather than the notebook.
    """
    partition = partition_for(region)
    name = f"{role_name_prefix}{BOUNDARY_SUFFIX}"
    document = render_policy("service-role-boundary", Partition=partition, AccountId=account, BucketPrefix=bucket_prefix)
    arn = permissions_boundary_arn(account, partition=partition, role_name_prefix=role_name_prefix)
    iam = aws.client("iam", region)
    try:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
    except ClientError as exc:
        if _error(exc)[0] != "NoSuchEntity":
            raise
        try:
            iam.create_policy(
                PolicyName=name, PolicyDocument=_dumps(document), Description=(
                    "Permissions boundary of the Bedrock fine-tuning workshop's service roles"),
                Tags=_tag_list({"workshop": ws.WORKSHOP_TAG}),
            )
        except ClientError as exc2:
            if _error(exc2)[0] != "EntityAlreadyExists":
                raise
        iam.get_waiter("policy_exists").wait(PolicyArn=arn, WaiterConfig=_waiter_config())
        log.info("created permissions boundary %s", name)
        return arn
    current = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    if not same_document(current, document):
        raise RuntimeError(
            f"The permissions boundary {arn} exists with other content than iam-policies/service-role-boundary.json. "
            "The caller policy forbids the notebooks to rewrite it: ask your administrator to set its default "
            "version to the rendered template (utils.iam.render_policy('service-role-boundary', ...))."
        )
    return arn


def policy_actions(document: Mapping[str, Any]) -> list[str]:
    """Every action an Allow statement of ``document`` names, in order, without duplicates."""
    actions: list[str] = []
    for statement in _statements(document):
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action", [])):
            if action not in actions:
                actions.append(action)
    return actions


# ---- document comparison ----------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _as_list(document.get("Statement", []))


def _canonical(node: Any) -> Any:
    """Normalise a policy for comparison: sorted keys, one-element lists as scalars."""
    if isinstance(node, str):
        try:  # IAM may hand back documents as (URL-decoded) JSON strings
            parsed = json.loads(node)
        except ValueError:
            return node
        return _canonical(parsed) if isinstance(parsed, dict) else node
    if isinstance(node, dict):
        return {k: _canonical(v) for k, v in sorted(node.items())}
    if isinstance(node, list):
        items = [_canonical(v) for v in node]
        return items[0] if len(items) == 1 else items
    return node


def same_document(a: Any, b: Any) -> bool:
    """True if two policy documents are equivalent for IAM (ignores formatting)."""
    return _canonical(a) == _canonical(b)


def _dumps(document: Mapping[str, Any] | str) -> str:
    return document if isinstance(document, str) else json.dumps(document, separators=(",", ":"))


# ---- eventual consistency ---------------------------------------------------------------


_error = aws.error


def is_eventual_consistency_error(exc: BaseException) -> bool:
    """Errors IAM returns for a role or policy that exists but has not propagated yet."""
    if not isinstance(exc, ClientError):
        return False
    code, message = _error(exc)
    if code == "NoSuchEntity":
        return True
    if code == "MalformedPolicyDocument" and "invalid principal" in message.lower():
        return True
    # Bedrock and STS, right after a role is created or changed.
    return code in {"AccessDeniedException", "ValidationException"} and "assume" in message.lower()


def retry_eventual(
    func: Callable[..., T], *args: Any, delays: tuple[float, ...] | None = None, **kwargs: Any
) -> T:
    """Call ``func`` and retry while IAM has not caught up (see :func:`is_eventual_consistency_error`)."""
    delays = RETRY_DELAYS if delays is None else delays
    for delay in (*delays, None):
        try:
            return func(*args, **kwargs)
        except ClientError as exc:
            if delay is None or not is_eventual_consistency_error(exc):
                raise
            log.info("IAM not consistent yet (%s); retrying in %ss", _error(exc)[0], delay)
            _sleep(delay)
    raise AssertionError("unreachable")


def _waiter_config() -> dict[str, int]:
    return {"Delay": 1, "MaxAttempts": 30}


# ---- roles and policies -----------------------------------------------------------------


def _tag_dict(tags: Mapping[str, str] | list[dict[str, str]] | None) -> dict[str, str]:
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {t.get("Key", t.get("key")): t.get("Value", t.get("value")) for t in tags}


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def ensure_role(
    name: str, trust_policy: Mapping[str, Any], description: str = "",
    tags: Mapping[str, str] | list[dict[str, str]] | None = None, *, region: str | None = None,
    permissions_boundary: str | None = None,
) -> str:
    """Get or create role ``name``; return its ARN.

    On rerun the trust policy is updated only if it differs, the description only
    if it differs, and missing or changed tags are added (other tags are kept).
    ``permissions_boundary`` (a managed policy ARN) is set at creation, and put on an
    existing role that lacks it, before anything else is written to the role.
    """
    iam = aws.client("iam", region)
    wanted_tags = _tag_dict(tags)
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if _error(exc)[0] != "NoSuchEntity":
            raise
        kwargs: dict[str, Any] = {
            "RoleName": name, "AssumeRolePolicyDocument": _dumps(trust_policy),
            "Description": description,
        }
        if wanted_tags:
            kwargs["Tags"] = _tag_list(wanted_tags)
        if permissions_boundary:
            kwargs["PermissionsBoundary"] = permissions_boundary
        try:
            arn = retry_eventual(iam.create_role, **kwargs)["Role"]["Arn"]
        except ClientError as exc2:  # a parallel run created it first
            if _error(exc2)[0] != "EntityAlreadyExists":
                raise
            return ensure_role(name, trust_policy, description, tags, region=region,
                               permissions_boundary=permissions_boundary)
        iam.get_waiter("role_exists").wait(RoleName=name, WaiterConfig=_waiter_config())
        log.info("created role %s", name)
        return arn

    current_boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if permissions_boundary and current_boundary != permissions_boundary:
        retry_eventual(iam.put_role_permissions_boundary, RoleName=name, PermissionsBoundary=permissions_boundary)
        log.info("set permissions boundary of role %s", name)
    if not same_document(role.get("AssumeRolePolicyDocument", {}), trust_policy):
        retry_eventual(iam.update_assume_role_policy, RoleName=name, PolicyDocument=_dumps(trust_policy))
        log.info("updated trust policy of role %s", name)
    if description and role.get("Description", "") != description:
        iam.update_role(RoleName=name, Description=description)
    current = _tag_dict(iam.list_role_tags(RoleName=name).get("Tags", []))
    changed = {k: v for k, v in wanted_tags.items() if current.get(k) != v}
    if changed:
        iam.tag_role(RoleName=name, Tags=_tag_list(changed))
    return role["Arn"]


def ensure_inline_policy(
    role_name: str, policy_name: str, document: Mapping[str, Any], *, region: str | None = None,
) -> bool:
    """Put an inline policy on a role unless an identical one is there. True if written."""
    iam = aws.client("iam", region)
    try:
        current = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        if same_document(current, document):
            return False
    except ClientError as exc:
        if _error(exc)[0] != "NoSuchEntity":
            raise
    retry_eventual(
        iam.put_role_policy, RoleName=role_name, PolicyName=policy_name, PolicyDocument=_dumps(document)
    )
    log.info("put inline policy %s on role %s", policy_name, role_name)
    return True


def managed_policy_arn(name: str, account: str, *, partition: str = "aws", path: str = "/") -> str:
    return f"arn:{partition}:iam::{account}:policy{path}{name}"


def ensure_managed_policy(
    name: str, document: Mapping[str, Any], *, description: str = "",
    tags: Mapping[str, str] | list[dict[str, str]] | None = None, account: str | None = None,
    partition: str | None = None, region: str | None = None,
) -> str:
    """Get or create customer-managed policy ``name``; return its ARN.

    If the document differs from the default version, a new version is created
    and made the default; at IAM's limit of five versions the oldest
    non-default version is deleted first.
    """
    iam = aws.client("iam", region)
    account = account or aws.account_id(region)
    partition = partition or partition_for(aws.region_of(region))
    arn = managed_policy_arn(name, account, partition=partition)
    try:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
    except ClientError as exc:
        if _error(exc)[0] != "NoSuchEntity":
            raise
        kwargs: dict[str, Any] = {"PolicyName": name, "PolicyDocument": _dumps(document)}
        if description:
            kwargs["Description"] = description
        if tags:
            kwargs["Tags"] = _tag_list(_tag_dict(tags))
        try:
            arn = iam.create_policy(**kwargs)["Policy"]["Arn"]
        except ClientError as exc2:
            if _error(exc2)[0] != "EntityAlreadyExists":
                raise
            return ensure_managed_policy(
                name, document, description=description, tags=tags, account=account,
                partition=partition, region=region,
            )
        iam.get_waiter("policy_exists").wait(PolicyArn=arn, WaiterConfig=_waiter_config())
        log.info("created managed policy %s", name)
        return arn

    default = policy["DefaultVersionId"]
    current = iam.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"]
    if same_document(current, document):
        return arn
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
        log.info("pruned version %s of %s", oldest["VersionId"], name)
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=_dumps(document), SetAsDefault=True)
    log.info("new default version of managed policy %s", name)
    return arn


def attach(role_name: str, policy_arn: str, *, region: str | None = None) -> bool:
    """Attach a managed policy to a role unless it is attached already. True if attached now."""
    iam = aws.client("iam", region)
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        if any(p["PolicyArn"] == policy_arn for p in page["AttachedPolicies"]):
            return False
    retry_eventual(iam.attach_role_policy, RoleName=role_name, PolicyArn=policy_arn)
    log.info("attached %s to %s", policy_arn, role_name)
    return True


def role_exists(name: str, *, region: str | None = None) -> bool:
    try:
        aws.client("iam", region).get_role(RoleName=name)
    except ClientError as exc:
        if _error(exc)[0] == "NoSuchEntity":
            return False
        raise
    return True


def delete_managed_policy(policy_arn: str, *, region: str | None = None) -> bool:
    """Detach a customer-managed policy everywhere, delete its versions, then it. False if absent."""
    iam = aws.client("iam", region)
    try:
        for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=policy_arn):
            for role in page.get("PolicyRoles", []):
                iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=policy_arn)
            for user in page.get("PolicyUsers", []):
                iam.detach_user_policy(UserName=user["UserName"], PolicyArn=policy_arn)
            for group in page.get("PolicyGroups", []):
                iam.detach_group_policy(GroupName=group["GroupName"], PolicyArn=policy_arn)
        for version in iam.list_policy_versions(PolicyArn=policy_arn)["Versions"]:
            if not version["IsDefaultVersion"]:
                iam.delete_policy_version(PolicyArn=policy_arn, VersionId=version["VersionId"])
        iam.delete_policy(PolicyArn=policy_arn)
    except ClientError as exc:
        if _error(exc)[0] == "NoSuchEntity":
            return False
        raise
    log.info("deleted managed policy %s", policy_arn)
    return True


def delete_role(
    name: str, *, delete_own_policies: bool = True, own_prefix: str = ROLE_NAME_PREFIX,
    region: str | None = None,
) -> bool:
    """Delete a role after removing what blocks it (avoids ``DeleteConflict``).

    Inline policies are deleted, managed policies detached, and instance
    profiles removed. Customer-managed policies whose name starts with
    ``own_prefix`` (the series' own) are deleted too when no other entity uses
    them. Returns False if the role did not exist.
    """
    iam = aws.client("iam", region)
    try:
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            for policy_name in page["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        attached: list[str] = []
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            for policy in page["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
                attached.append(policy["PolicyArn"])
        try:
            profiles = iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]
        except ClientError as exc:  # the caller policy does not grant this; our roles have none
            if _error(exc)[0] not in {"AccessDenied", "AccessDeniedException"}:
                raise
            profiles = []
        for profile in profiles:
            iam.remove_role_from_instance_profile(
                InstanceProfileName=profile["InstanceProfileName"], RoleName=name
            )
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if _error(exc)[0] == "NoSuchEntity":
            return False
        raise
    log.info("deleted role %s", name)
    if delete_own_policies:
        for arn in attached:
            policy_name = arn.rsplit("/", 1)[-1]
            if ":iam::aws:policy/" in arn or not policy_name.startswith(own_prefix):
                continue
            users = iam.list_entities_for_policy(PolicyArn=arn)
            if not any(users.get(k) for k in ("PolicyRoles", "PolicyUsers", "PolicyGroups")):
                delete_managed_policy(arn, region=region)
    return True


# ---- the series' service roles ------------------------------------------------------------


def _normalise_prefix(prefix: str) -> str:
    """S3 key prefixes as the templates expect them: no leading slash, never empty."""
    prefix = prefix.lstrip("/")
    if not prefix:
        raise ValueError("An S3 prefix must not be empty (that would grant the whole bucket)")
    return prefix


def _ensure_service_role(
    name: str, trust: dict[str, Any], description: str, tags: dict[str, str], *,
    policy: tuple[str, dict[str, Any], str], account: str, region: str, kms_key_arn: str | None,
) -> str:
    """A Bedrock service role, bounded by the workshop boundary, with its managed policy (and optional KMS)."""
    boundary = ensure_permissions_boundary(region, account)
    arn = ensure_role(name, trust, description, tags, region=region, permissions_boundary=boundary)
    policy_name, document, policy_description = policy
    policy_arn = ensure_managed_policy(
        policy_name[:128], document, description=policy_description, tags=tags,
        account=account, partition=partition_for(region), region=region,
    )
    attach(name, policy_arn, region=region)
    if kms_key_arn:
        validate_kms_key_arn(kms_key_arn, region, account)
        ensure_inline_policy(
            name, "kms", render_policy("service-role-kms", KmsKeyArn=kms_key_arn, Region=region),
            region=region,
        )
    return arn


def ensure_customization_role(
    workshop_id: str, bucket: str, region: str, account: str, *,
    training_prefix: str = TRAINING_PREFIX, validation_prefix: str = VALIDATION_PREFIX,
    output_prefix: str = OUTPUT_PREFIX, kms_key_arn: str | None = None,
) -> str:
    """The model-customization service role for ``workshop_id``; returns its ARN.

    Trust: ``bedrock.amazonaws.com`` for this account's customization jobs in
    ``region`` only. Permissions: a managed policy (``<role>-S3``) reading the
    training/validation prefixes and writing the output prefix of ``bucket``,
    plus an inline KMS policy when ``kms_key_arn`` is given.
    """
    name = ws.role_name(workshop_id, "customization")
    tags = ws.tags(workshop_id, purpose="model-customization")
    trust = render_policy("customization-role-trust", AccountId=account, Region=region)
    s3_policy = render_policy(
        "customization-role-s3", Bucket=bucket, Region=region,
        TrainingPrefix=_normalise_prefix(training_prefix),
        ValidationPrefix=_normalise_prefix(validation_prefix),
        OutputPrefix=_normalise_prefix(output_prefix),
    )
    return _ensure_service_role(
        name, trust, f"Bedrock model customization jobs of workshop {workshop_id}", tags,
        policy=(f"{name}-S3", s3_policy, f"S3 access for {name}"),
        account=account, region=region, kms_key_arn=kms_key_arn,
    )


def _ensure_io_role(
    workshop_id: str, purpose: str, template: str, description: str, bucket: str, region: str, account: str, *,
    input_prefix: str, output_prefix: str, kms_key_arn: str | None,
) -> str:
    """A job role that reads an input prefix and writes an output prefix (``<template>-trust`` and
    ``<template>-permissions``): the batch-inference and the model-evaluation roles."""
    name = ws.role_name(workshop_id, purpose)
    tags = ws.tags(workshop_id, purpose=purpose if purpose != "evaluation" else "model-evaluation")
    trust = render_policy(f"{template}-trust", AccountId=account, Region=region)
    permissions = render_policy(
        f"{template}-permissions", Bucket=bucket, Region=region, AccountId=account,
        InputPrefix=_normalise_prefix(input_prefix), OutputPrefix=_normalise_prefix(output_prefix),
    )
    return _ensure_service_role(
        name, trust, f"{description} of workshop {workshop_id}", tags,
        policy=(f"{name}-Permissions", permissions, f"S3 and InvokeModel for {name}"),
        account=account, region=region, kms_key_arn=kms_key_arn,
    )


def ensure_batch_role(
    workshop_id: str, bucket: str, region: str, account: str, *,
    input_prefix: str = BATCH_INPUT_PREFIX, output_prefix: str = BATCH_OUTPUT_PREFIX,
    kms_key_arn: str | None = None,
) -> str:
    """The batch-inference (model-invocation-job) service role; returns its ARN."""
    return _ensure_io_role(workshop_id, "batch-inference", "batch-role", "Bedrock batch inference", bucket, region,
                           account, input_prefix=input_prefix, output_prefix=output_prefix, kms_key_arn=kms_key_arn)


def ensure_evaluation_role(
    workshop_id: str, bucket: str, region: str, account: str, *,
    input_prefix: str = EVALUATION_INPUT_PREFIX, output_prefix: str = EVALUATION_OUTPUT_PREFIX,
    kms_key_arn: str | None = None,
) -> str:
    """The model-evaluation (evaluation-job) service role; returns its ARN.

    Trust: ``bedrock.amazonaws.com`` for this account's evaluation jobs in ``region`` only.
    Permissions: read the data-set prefix, write the results prefix, InvokeModel on the judge
    (https://docs.aws.amazon.com/bedrock/latest/userguide/judge-service-roles.html; whether a
    judge-based job needs more actions than these is uncertain).
    """
    return _ensure_io_role(workshop_id, "evaluation", "evaluation-role", "Bedrock model evaluation jobs", bucket,
                           region, account, input_prefix=input_prefix, output_prefix=output_prefix,
                           kms_key_arn=kms_key_arn)


# ---- command line: render the caller policy for an administrator --------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.iam --account ID --role-arn ARN``: write ``caller-<n>.json`` per managed policy."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m utils.iam",
        description="Render the notebook execution role's caller policy as customer managed policies "
                    f"(each within IAM's {MANAGED_POLICY_MAX_CHARS:,}-character quota) and print the commands "
                    "that attach them.")
    parser.add_argument("--region", default="us-east-1", help="the workshop's Region (default us-east-1)")
    parser.add_argument("--account", required=True, help="the 12-digit AWS account ID")
    parser.add_argument("--role-arn", required=True, help="the notebook execution role's ARN")
    parser.add_argument("--kms-key-arn", default="", help="01's kms_key_arn, if you use a customer managed key")
    parser.add_argument("--out-dir", default=".", help="where to write caller-<n>.json (default: here)")
    args = parser.parse_args(argv)
    try:
        parts = caller_policies(args.region, args.account, args.role_arn, kms_key_arn=args.kms_key_arn or None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    role_name = args.role_arn.rsplit("/", 1)[-1]
    partition = partition_for(args.region)
    for number, part in enumerate(parts, 1):
        path = out_dir / f"caller-{number}.json"
        path.write_text(json.dumps(part, indent=2) + "\n", encoding="utf-8")
        name = f"{CALLER_POLICY_NAME}-{number}"
        print(f"# {path} ({policy_size(part):,} characters)")
        print(f"aws iam create-policy --policy-name {name} --policy-document file://{path}")
        print(f"aws iam attach-role-policy --role-name {role_name} "
              f"--policy-arn arn:{partition}:iam::{args.account}:policy/{name}")
    print("# Already created (EntityAlreadyExists)? Update each instead: aws iam create-policy-version "
          "--policy-arn <its ARN> --policy-document file://<its file> --set-as-default "
          "(IAM keeps at most five versions: delete the oldest with aws iam delete-policy-version).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
