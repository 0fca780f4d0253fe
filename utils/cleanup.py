"""Leave nothing billable, and prove it.

:func:`cleanup` deletes what the ledger recorded, in dependency order (deployments
and Provisioned Throughput before the custom model; policies before the role;
objects before the bucket). :func:`audit` then looks for anything left by
*listing the account*, not by trusting the ledger, so a resource created outside
the notebooks with the workshop's names is still found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from utils import aws
from utils.state import WorkshopState, name, role_name

# Deletion order: first what bills by the hour, last what other resources depend on.
ORDER = (
    "custom-model-deployment",
    "provisioned-throughput",
    "batch-job",
    "customization-job",
    "custom-model",
    "iam-role",
    "iam-policy",
    "s3-bucket",
)
_GONE = ("ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket", "404")


@dataclass
class Action:
    kind: str
    identifier: str
    outcome: str  # deleted | stopped | already gone | kept | error: ...


def _gone(err: ClientError) -> bool:
    return err.response["Error"]["Code"] in _GONE


def _bedrock_delete(kind: str, identifier: str, bedrock: Any) -> str:
    if kind == "custom-model-deployment":
        bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=identifier)
    elif kind == "provisioned-throughput":
        bedrock.delete_provisioned_model_throughput(provisionedModelId=identifier)
    elif kind == "custom-model":
        bedrock.delete_custom_model(modelIdentifier=identifier)
    elif kind == "customization-job":
        status = bedrock.get_model_customization_job(jobIdentifier=identifier)["status"]
        if status != "InProgress":
            return "kept (job history is not billable)"
        bedrock.stop_model_customization_job(jobIdentifier=identifier)
        return "stopped"
    elif kind == "batch-job":
        status = bedrock.get_model_invocation_job(jobIdentifier=identifier)["status"]
        if status not in ("Submitted", "Validating", "Scheduled", "InProgress"):
            return "kept (job history is not billable)"
        bedrock.stop_model_invocation_job(jobIdentifier=identifier)
        return "stopped"
    return "deleted"


def cleanup(state: WorkshopState, *, keep_data: bool = False, log: Callable[[str], None] = print) -> list[Action]:
    """Delete everything in the ledger. Idempotent: gone resources count as done."""
    from utils import iam as iam_utils
    from utils import s3 as s3_utils

    bedrock = aws.client("bedrock", state.region)
    actions: list[Action] = []
    entries = sorted(state.ledger, key=lambda e: ORDER.index(e.kind) if e.kind in ORDER else len(ORDER))
    for entry in entries:
        if keep_data and entry.kind == "s3-bucket":
            actions.append(Action(entry.kind, entry.identifier, "kept (keep_data=True)"))
            continue
        try:
            if entry.kind == "iam-role":
                iam_utils.delete_role(entry.identifier.rsplit("/", 1)[-1], region=entry.region)
                outcome = "deleted"
            elif entry.kind == "iam-policy":
                iam_utils.delete_managed_policy(entry.identifier, region=entry.region)
                outcome = "deleted"
            elif entry.kind == "s3-bucket":
                s3_utils.delete_bucket(entry.identifier, region=entry.region)
                outcome = "deleted"
            else:
                outcome = _bedrock_delete(entry.kind, entry.identifier, bedrock)
        except ClientError as err:
            if not _gone(err):
                outcome = f"error: {err.response['Error']['Code']}: {err.response['Error'].get('Message', '')}"
            else:
                outcome = "already gone"
        actions.append(Action(entry.kind, entry.identifier, outcome))
        log(f"{entry.kind:<24} {outcome:<36} {entry.identifier}")
        if outcome in ("deleted", "already gone"):
            state.forget(entry.kind, entry.identifier)
    return actions


def audit(workshop_id: str, region: str) -> list[str]:
    """Everything with this workshop's names that still exists, found by listing the account.

    Returns ``"<kind>: <identifier>"`` strings; an empty list proves the cleanup.
    Finished job records are not listed: they are history, not billable resources.
    """
    prefix = name(workshop_id, "") + "-"
    bedrock = aws.client("bedrock", region)
    remaining: list[str] = []

    def listed(operation: str, key: str, field: str, **filters: Any) -> list[str]:
        paginator = bedrock.get_paginator(operation)
        found = []
        for page in paginator.paginate(**filters):
            found += [item[field] for item in page.get(key, [])]
        return found

    remaining += [f"custom-model-deployment: {n}" for n in listed(
        "list_custom_model_deployments", "modelDeploymentSummaries", "customModelDeploymentName",
        nameContains=prefix)]
    remaining += [f"provisioned-throughput: {n}" for n in listed(
        "list_provisioned_model_throughputs", "provisionedModelSummaries", "provisionedModelName",
        nameContains=prefix)]
    remaining += [f"custom-model: {n}" for n in listed(
        "list_custom_models", "modelSummaries", "modelName", nameContains=prefix)]
    remaining += [f"customization-job (running): {n}" for n in listed(
        "list_model_customization_jobs", "modelCustomizationJobSummaries", "jobName",
        nameContains=prefix, statusEquals="InProgress")]

    iam = aws.client("iam", region)
    role_prefix = role_name(workshop_id, "")
    for page in iam.get_paginator("list_roles").paginate():
        remaining += [f"iam-role: {r['RoleName']}" for r in page["Roles"] if r["RoleName"].startswith(role_prefix)]
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        remaining += [
            f"iam-policy: {p['PolicyName']}" for p in page["Policies"] if p["PolicyName"].startswith(role_prefix)
        ]

    s3 = aws.client("s3", region)
    remaining += [
        f"s3-bucket: {b['Name']}" for b in s3.list_buckets().get("Buckets", []) if b["Name"].startswith(prefix)
    ]
    return sorted(remaining)
