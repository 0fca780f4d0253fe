"""Leave nothing billable, and prove it.

:func:`cleanup` deletes what the ledger recorded, in dependency order (deployments
and Provisioned Throughput before the custom model, waiting for those asynchronous
deletes; policies before the role; objects before the bucket). :func:`audit` then
looks for anything left by *listing the account*, not by trusting the ledger, so a
resource created outside the notebooks with the workshop's names and tags is found.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from utils import aws
from utils.deployment import wait_gone
from utils.state import LedgerEntry, WorkshopState, name, role_name, tags

# Deletion order: first what bills by the hour, last what other resources depend on.
ORDER = (
    "custom-model-deployment",
    "provisioned-throughput",
    "imported-model",
    "batch-job",
    "customization-job",
    "custom-model",
    "iam-role",
    "iam-policy",
    "s3-bucket",
)
RUNNING_JOB = ("InProgress", "Stopping")
STOPPABLE_BATCH = ("Submitted", "Validating", "Scheduled", "InProgress")
RUNNING_BATCH = (*STOPPABLE_BATCH, "Stopping")
# How long the audit waits for a job that cleanup asked to stop (our assumption: AWS
# documents no bound for the Stopping state).
STOPPING_TIMEOUT_S = 1800
# State values that point at resources cleanup deletes; later notebooks must not reuse them.
INVALIDATED = ("job_arn", "custom_model_arn", "endpoint_arn", "serving", "serving_billing")


@dataclass
class Action:
    kind: str
    identifier: str
    outcome: str  # deleted | stopped | already gone | kept ... | error: ...


def _bedrock_delete(entry: LedgerEntry, bedrock: Any, poll_s: float) -> str:
    ident = entry.identifier
    if entry.kind == "custom-model-deployment":
        bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=ident)
        wait_gone(lambda: bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=ident), poll_s=poll_s)
    elif entry.kind == "provisioned-throughput":
        bedrock.delete_provisioned_model_throughput(provisionedModelId=ident)
        wait_gone(lambda: bedrock.get_provisioned_model_throughput(provisionedModelId=ident), poll_s=poll_s)
    elif entry.kind == "imported-model":  # DeleteImportedModel; import jobs themselves cannot be deleted
        bedrock.delete_imported_model(modelIdentifier=ident)
    elif entry.kind == "custom-model":
        bedrock.delete_custom_model(modelIdentifier=ident)
    elif entry.kind == "customization-job":
        if bedrock.get_model_customization_job(jobIdentifier=ident)["status"] != "InProgress":
            return "kept (job history is not billable)"
        bedrock.stop_model_customization_job(jobIdentifier=ident)
        return "stopped"
    elif entry.kind == "batch-job":
        if bedrock.get_model_invocation_job(jobIdentifier=ident)["status"] not in STOPPABLE_BATCH:
            return "kept (job history is not billable)"
        bedrock.stop_model_invocation_job(jobIdentifier=ident)
        return "stopped"
    else:
        raise ValueError(f"unknown ledger kind {entry.kind!r}")
    return "deleted"


def _with_job_models(state: WorkshopState) -> list[LedgerEntry]:
    """The ledger plus the output model of every recorded job (a wait may have timed out
    before 04 recorded the model, but the model still exists and bills storage)."""
    entries = list(state.ledger)
    known = {e.identifier for e in entries if e.kind == "custom-model"}
    for entry in [e for e in entries if e.kind == "customization-job"]:
        try:
            job = aws.client("bedrock", entry.region).get_model_customization_job(jobIdentifier=entry.identifier)
        except ClientError as err:
            if aws.is_not_found(err):
                continue
            raise
        model = job.get("outputModelArn")
        if model and model not in known:
            entries.append(LedgerEntry("custom-model", model, entry.region, entry.notebook, billable=True))
    return sorted(entries, key=lambda e: ORDER.index(e.kind) if e.kind in ORDER else len(ORDER))


def cleanup(
    state: WorkshopState, *, keep_data: bool = False, poll_s: float = 5, log: Callable[[str], None] = print
) -> list[Action]:
    """Delete everything in the ledger. Idempotent: resources already gone count as done."""
    from utils import iam as iam_utils
    from utils import s3 as s3_utils

    actions: list[Action] = []
    for entry in _with_job_models(state):
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
                outcome = _bedrock_delete(entry, aws.client("bedrock", entry.region), poll_s)
        except ClientError as err:
            code, message = aws.error(err)
            outcome = "already gone" if aws.is_not_found(err) else f"error: {code}: {message}"
        actions.append(Action(entry.kind, entry.identifier, outcome))
        log(f"{entry.kind:<24} {outcome:<36} {entry.identifier}")
        if outcome in ("deleted", "already gone"):
            state.forget(entry.kind, entry.identifier)
    if not any(a.outcome.startswith("error") for a in actions):
        for key in INVALIDATED:
            state.values.pop(key, None)
        if not keep_data:
            state.datasets = {}  # the objects went with the bucket
        # Job records cannot be deleted, so a rerun after cleanup trains under a new name.
        state.values["generation"] = int(state.values.get("generation", 0)) + 1
        state.save()
    return actions


# ---- audit ------------------------------------------------------------------------------------

def _is_ours(tag_pairs: list[dict[str, str]] | dict[str, str], workshop_id: str) -> bool:
    """True when the resource carries this workshop's ``workshop-id`` tag."""
    found = tag_pairs if isinstance(tag_pairs, dict) else {
        (t.get("Key") or t.get("key")): (t.get("Value") or t.get("value")) for t in tag_pairs
    }
    return found.get("workshop-id") == tags(workshop_id)["workshop-id"]


def _safe_tags(fetch: Callable[[], Any]) -> Any:
    """Tags of a resource, or ``{}`` when it has none (S3 raises NoSuchTagSet) or just vanished."""
    try:
        return fetch()
    except ClientError as err:
        if aws.is_not_found(err) or aws.error_code(err) == "NoSuchTagSet":
            return {}
        raise


def wait_out_stopping(
    bedrock: Any, prefix: str, *, timeout_s: float = STOPPING_TIMEOUT_S, poll_s: float = 10,
    log: Callable[[str], None] = print,
) -> None:
    """Wait while a job of this workshop is ``Stopping`` (a stop just requested by :func:`cleanup`).

    A stopped customization or batch job passes through ``Stopping`` on its way to
    ``Stopped`` (botocore shapes ``ModelCustomizationJobStatus``, ``ModelInvocationJobStatus``),
    and bills nothing new once stopping. Waiting here keeps the audit from failing on a job
    that is already on its way out. A job still ``Stopping`` after ``timeout_s`` stays listed.
    """
    kinds = (
        ("list_model_customization_jobs", "modelCustomizationJobSummaries"),
        ("list_model_invocation_jobs", "invocationJobSummaries"),
    )
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        stopping = [
            item["jobName"]
            for operation, key in kinds
            for page in bedrock.get_paginator(operation).paginate(nameContains=prefix, statusEquals="Stopping")
            for item in page.get(key, [])
            if item["jobName"].startswith(prefix)
        ]
        if not stopping or time.monotonic() >= deadline:
            return
        if not announced:
            log(f"waiting for {len(stopping)} stopping job(s) to stop: {', '.join(stopping)}")
            announced = True
        time.sleep(poll_s)


def audit(
    workshop_id: str, region: str, *, stopping_timeout_s: float = STOPPING_TIMEOUT_S, poll_s: float = 10,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Everything of this workshop that still exists, found by listing the account.

    Candidates are listed by name prefix and then confirmed by their ``workshop-id``
    tag, so workshop ``demo`` never reports ``demo-2``'s resources. Returns
    ``"<kind>: <name>"`` strings; an empty list proves the cleanup. Finished job
    records are history, not billable resources, and are not listed. Jobs that are
    ``Stopping`` are waited out first (up to ``stopping_timeout_s``), see :func:`wait_out_stopping`.
    """
    prefix = name(workshop_id, "") + "-"
    bedrock = aws.client("bedrock", region)
    wait_out_stopping(bedrock, prefix, timeout_s=stopping_timeout_s, poll_s=poll_s, log=log)

    def bedrock_items(operation: str, key: str, name_field: str, arn_field: str, **filters: Any) -> list[str]:
        found = []
        for page in bedrock.get_paginator(operation).paginate(**filters):
            for item in page.get(key, []):
                if not item[name_field].startswith(prefix):
                    continue
                tag_list = _safe_tags(lambda i=item: bedrock.list_tags_for_resource(resourceARN=i[arn_field])["tags"])
                if _is_ours(tag_list, workshop_id):
                    found.append(item[name_field])
        return found

    remaining = [f"custom-model-deployment: {n}" for n in bedrock_items(
        "list_custom_model_deployments", "modelDeploymentSummaries", "customModelDeploymentName",
        "customModelDeploymentArn", nameContains=prefix)]
    remaining += [f"provisioned-throughput: {n}" for n in bedrock_items(
        "list_provisioned_model_throughputs", "provisionedModelSummaries", "provisionedModelName",
        "provisionedModelArn", nameContains=prefix)]
    remaining += [f"imported-model: {n}" for n in bedrock_items(
        "list_imported_models", "modelSummaries", "modelName", "modelArn", nameContains=prefix)]
    remaining += [f"custom-model: {n}" for n in bedrock_items(
        "list_custom_models", "modelSummaries", "modelName", "modelArn", nameContains=prefix)]
    for status in RUNNING_JOB:
        remaining += [f"customization-job ({status}): {n}" for n in bedrock_items(
            "list_model_customization_jobs", "modelCustomizationJobSummaries", "jobName", "jobArn",
            nameContains=prefix, statusEquals=status)]
    for status in RUNNING_BATCH:
        remaining += [f"batch-job ({status}): {n}" for n in bedrock_items(
            "list_model_invocation_jobs", "invocationJobSummaries", "jobName", "jobArn",
            nameContains=prefix, statusEquals=status)]

    iam = aws.client("iam", region)
    role_prefix = role_name(workshop_id, "")
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if role["RoleName"].startswith(role_prefix) and _is_ours(
                    _safe_tags(lambda r=role: iam.list_role_tags(RoleName=r["RoleName"])["Tags"]), workshop_id):
                remaining.append(f"iam-role: {role['RoleName']}")
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            if policy["PolicyName"].startswith(role_prefix) and _is_ours(
                    _safe_tags(lambda p=policy: iam.list_policy_tags(PolicyArn=p["Arn"])["Tags"]), workshop_id):
                remaining.append(f"iam-policy: {policy['PolicyName']}")

    s3 = aws.client("s3", region)
    for page in s3.get_paginator("list_buckets").paginate(Prefix=prefix):
        for bucket in page.get("Buckets", []):
            bucket_tags = _safe_tags(lambda b=bucket: s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"])
            if _is_ours(bucket_tags, workshop_id):
                remaining.append(f"s3-bucket: {bucket['Name']}")
    return sorted(remaining)
