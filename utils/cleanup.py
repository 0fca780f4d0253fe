"""Leave nothing billable, and prove it.

:func:`discover` finds this workshop's resources from two sources and merges them: the
ledger in the state file, and the account itself (each service's list call, narrowed by
the workshop's deterministic name prefix, confirmed by the ``workshop-id`` tag). Either
source is enough: a lost or corrupt state file still leaves the tags. :func:`plan_markdown`
renders the dry run (what, found by which source, what it costs while it exists);
:func:`cleanup` acts on it in dependency order, with retries; :func:`audit` lists the
account again, read-only, and :func:`fail_if_remaining` names each leftover with its
manual fix.

Listing is narrowed by name prefix (``bedrock-ws-<id>-`` for Bedrock and S3,
``AmazonBedrockWorkshop-<id>-`` for IAM) because accounts hold many roles, buckets and
job records; every name the series creates carries that prefix (utils/state.py). Our
assumption: a resource of this workshop renamed by hand is found only through the ledger.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from utils import aws
from utils.deployment import wait_gone
from utils.state import WorkshopState, name, role_name, tags

Log = Callable[[str], None]

# Deletion order: stop what runs, then what bills by the hour, then what the rest depends on.
ORDER = (
    "customization-job", "batch-job", "evaluation-job",
    "custom-model-deployment", "provisioned-throughput",
    "custom-model", "imported-model",
    "iam-role", "iam-policy", "iam-boundary",
    "s3-bucket",
    "model-import-job",
)
RUNNING_JOB = ("InProgress", "Stopping")
STOPPABLE_BATCH = ("Submitted", "Validating", "Scheduled", "InProgress")
RUNNING_BATCH = (*STOPPABLE_BATCH, "Stopping")
RUNNING_IMPORT = ("InProgress",)
# How long the audit waits for a job that cleanup asked to stop (our assumption: AWS
# documents no bound for the Stopping state).
STOPPING_TIMEOUT_S = 1800
# State values that point at resources cleanup deletes; later notebooks must not reuse them.
INVALIDATED = ("job_arn", "custom_model_arn", "endpoint_arn", "serving", "serving_billing")
# Errors that mean "not yet, try again": a dependent resource is still being deleted
# (ConflictException, IAM DeleteConflict, S3 BucketNotEmpty while a stopped job flushes),
# throttling, and IAM's eventual consistency (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html).
RETRYABLE = {
    "ConflictException", "DeleteConflict", "BucketNotEmpty", "OperationAborted",
    "ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailableException",
}
RETRIES = 6
# Names of job records end with the generation suffix utils/arms.py adds after a cleanup.
_GENERATION = re.compile(r"-g(\d+)$")

KEEP_RECORD = "keep (job record: the API cannot delete it; bills nothing)"


@dataclass
class Resource:
    """One resource of this workshop, as the dry run shows it."""

    kind: str
    name: str
    identifier: str  # what the delete/stop call takes (ARN, or name for buckets)
    region: str
    sources: set[str] = field(default_factory=set)  # {"ledger", "tags"}
    status: str = ""
    action: str = "delete"  # delete | stop | keep (...)
    cost: str = ""  # what it costs while it exists ("" = nothing)
    billable: bool = False
    users: int = 0  # iam-boundary: roles (outside this cleanup) that still use it
    details: dict[str, Any] = field(default_factory=dict, repr=False)  # the list or get answer
    ledger_ids: set[str] = field(default_factory=set, repr=False)  # ledger identifiers it stands for

    @property
    def source(self) -> str:
        return "both" if len(self.sources) > 1 else next(iter(self.sources), "")

    @property
    def line(self) -> str:
        status = f" ({self.status})" if self.kind.endswith("-job") and self.status else ""
        return f"{self.kind}{status}: {self.name}"

    @property
    def fix(self) -> str:
        return manual_fix(self)


@dataclass
class Action:
    kind: str
    identifier: str
    outcome: str  # deleted | stopped | already gone | keep ... | error: ...


@dataclass
class Result:
    """What :func:`cleanup` did."""

    actions: list[Action]
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Action]:
        return [a for a in self.actions if a.outcome.startswith("error")]

    @property
    def status(self) -> str:
        """``nothing to delete`` (a clean no-op), ``done``, or ``errors``."""
        if self.errors:
            return "errors"
        if any(a.outcome in ("deleted", "stopped") for a in self.actions):
            return "done"
        return "nothing to delete"


# ---- listing ------------------------------------------------------------------------------------

_CLIENTS: dict[tuple[Any, ...], Any] = {}


def _client(service: str, region: str | None = None) -> Any:
    """``aws.client``, reused while the backend, endpoint and credentials stay the same
    (a discovery makes dozens of calls; building a client costs far more than a call)."""
    key = (service, region, aws.backend(), tuple(sorted(aws.endpoint_variables().items())),
           *(os.environ.get(v) for v in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_DEFAULT_REGION")))
    if key not in _CLIENTS:
        _CLIENTS[key] = aws.client(service, region)
    return _CLIENTS[key]


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    if client.can_paginate(operation):
        for page in client.get_paginator(operation).paginate(**kwargs):
            yield from page.get(key, [])
        return
    token = None
    while True:
        page = getattr(client, operation)(**kwargs, **({"nextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return


def _tag_dict(tag_pairs: Any) -> dict[str, str]:
    if isinstance(tag_pairs, dict):
        return tag_pairs
    return {(t.get("Key") or t.get("key")): (t.get("Value") or t.get("value")) for t in tag_pairs or []}


def _is_ours(tag_pairs: Any, workshop_id: str) -> bool:
    """True when the resource carries this workshop's ``workshop-id`` tag."""
    return _tag_dict(tag_pairs).get("workshop-id") == tags(workshop_id)["workshop-id"]


def _safe_tags(fetch: Callable[[], Any]) -> Any:
    """Tags of a resource, or ``{}`` when it has none (S3 raises NoSuchTagSet) or just vanished."""
    try:
        return fetch()
    except ClientError as err:
        if aws.is_not_found(err) or aws.error_code(err) == "NoSuchTagSet":
            return {}
        raise


def _unsupported(err: ClientError) -> bool:
    """The endpoint does not offer this operation (the offline sandbox answers ValidationException
    naming it; an older or partitioned endpoint may answer UnknownOperation or 404)."""
    code, message = aws.error(err)
    return code in ("UnknownOperationException", "UnrecognizedClientException", "NotImplemented") or (
        code == "ValidationException" and ("not emulate" in message.lower() or "not supported" in message.lower()
                                           or "unknown operation" in message.lower()))


# (kind, list operation, result key, name field, arn field, status field, list filters)
_BEDROCK_LISTS = (
    ("custom-model-deployment", "list_custom_model_deployments", "modelDeploymentSummaries",
     "customModelDeploymentName", "customModelDeploymentArn", "status"),
    ("provisioned-throughput", "list_provisioned_model_throughputs", "provisionedModelSummaries",
     "provisionedModelName", "provisionedModelArn", "status"),
    ("custom-model", "list_custom_models", "modelSummaries", "modelName", "modelArn", "modelStatus"),
    ("imported-model", "list_imported_models", "modelSummaries", "modelName", "modelArn", ""),
    ("customization-job", "list_model_customization_jobs", "modelCustomizationJobSummaries",
     "jobName", "jobArn", "status"),
    ("batch-job", "list_model_invocation_jobs", "invocationJobSummaries", "jobName", "jobArn", "status"),
    ("evaluation-job", "list_evaluation_jobs", "jobSummaries", "jobName", "jobArn", "status"),
    ("model-import-job", "list_model_import_jobs", "modelImportJobSummaries", "jobName", "jobArn", "status"),
)


def _list_bedrock(workshop_id: str, region: str, notes: list[str]) -> list[Resource]:
    prefix = name(workshop_id, "") + "-"
    bedrock = _client("bedrock", region)
    found: list[Resource] = []
    for kind, operation, key, name_field, arn_field, status_field in _BEDROCK_LISTS:
        try:
            # nameContains without the trailing hyphen: ListEvaluationJobs' pattern
            # ``[a-z0-9](-*[a-z0-9]){0,62}`` (botocore) refuses a value ending in "-"; the prefix
            # itself is checked below.
            items = list(_pages(bedrock, operation, key, nameContains=prefix.rstrip("-")))
        except ClientError as err:
            action = "bedrock:" + "".join(part.capitalize() for part in operation.split("_"))
            if aws.error_code(err) in ("AccessDenied", "AccessDeniedException"):
                # The workshop's caller policy (iam-policies/notebook-caller.json) grants the list
                # calls for what the series creates; the series creates no imported models.
                notes.append(f"{kind}s not checked: the caller may not call {action}; check them in the console.")
                continue
            if not _unsupported(err):
                raise
            notes.append(f"{kind}s not checked: this endpoint does not offer {action} "
                         f"({aws.error(err)[1][:120]}).")
            continue
        for item in items:
            if not item[name_field].startswith(prefix):
                continue
            arn = item[arn_field]
            if not _is_ours(_safe_tags(lambda a=arn: bedrock.list_tags_for_resource(resourceARN=a)["tags"]),
                            workshop_id):
                continue
            found.append(Resource(kind, item[name_field], arn, region, {"tags"},
                                  item.get(status_field, "") if status_field else "Active", details=item))
    return found


def _list_iam(workshop_id: str, region: str) -> list[Resource]:
    iam = _client("iam", region)
    prefix = role_name(workshop_id, "")
    found: list[Resource] = []
    for role in _pages_iam(iam, "list_roles", "Roles"):
        if role["RoleName"].startswith(prefix) and _is_ours(
                _safe_tags(lambda r=role: iam.list_role_tags(RoleName=r["RoleName"])["Tags"]), workshop_id):
            found.append(Resource("iam-role", role["RoleName"], role["Arn"], region, {"tags"}))
    for policy in _pages_iam(iam, "list_policies", "Policies", Scope="Local"):
        if policy["PolicyName"].startswith(prefix) and _is_ours(
                _safe_tags(lambda p=policy: iam.list_policy_tags(PolicyArn=p["Arn"])["Tags"]), workshop_id):
            found.append(Resource("iam-policy", policy["PolicyName"], policy["Arn"], region, {"tags"}))
    return found


def _pages_iam(iam: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in iam.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _boundary(region: str, ours: list[Resource]) -> Resource | None:
    """The account-wide permissions boundary of the workshop's roles, when it exists.

    One boundary serves every workshop id of the account (utils/iam.py), so it is deleted
    only when no role outside this cleanup still uses it.
    """
    from utils import iam as iam_utils

    iam = _client("iam", region)
    arn = iam_utils.permissions_boundary_arn(aws.account_id(region), partition=iam_utils.partition_for(region))
    try:
        iam.get_policy(PolicyArn=arn)
        users = {r["RoleName"] for page in iam.get_paginator("list_entities_for_policy").paginate(
            PolicyArn=arn, PolicyUsageFilter="PermissionsBoundary") for r in page.get("PolicyRoles", [])}
        # ListRoles omits PermissionsBoundary, and not every IAM implementation filters by boundary
        # usage: the workshop's own roles are checked one by one as well.
        for role in _pages_iam(iam, "list_roles", "Roles"):
            if role["RoleName"].startswith(iam_utils.ROLE_NAME_PREFIX) and role["RoleName"] not in users:
                described = _safe_tags(lambda r=role: iam.get_role(RoleName=r["RoleName"])["Role"]) or {}
                if (described.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn") == arn:
                    users.add(role["RoleName"])
    except ClientError as err:
        if aws.is_not_found(err):
            return None
        raise
    leaving = {r.name for r in ours if r.kind == "iam-role"}
    others = [u for u in users if u not in leaving]
    resource = Resource("iam-boundary", arn.rsplit("/", 1)[-1], arn, region, {"tags"}, users=len(others))
    if others:
        resource.action = f"keep (shared: still the boundary of {len(others)} other role(s))"
    return resource


def _list_buckets(workshop_id: str, region: str) -> list[Resource]:
    s3 = _client("s3", region)
    prefix = name(workshop_id, "") + "-"
    found = []
    for page in s3.get_paginator("list_buckets").paginate(Prefix=prefix):
        for bucket in page.get("Buckets", []):
            bucket_tags = _safe_tags(lambda b=bucket: s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"])
            if bucket["Name"].startswith(prefix) and _is_ours(bucket_tags, workshop_id):
                found.append(Resource("s3-bucket", bucket["Name"], bucket["Name"], region, {"tags"}))
    return found


def _describe_ledger_entry(kind: str, identifier: str, region: str) -> Resource | None:
    """A ledger entry that listing did not find: does it still exist? ``None`` when gone."""
    try:
        if kind == "s3-bucket":
            _client("s3", region).head_bucket(Bucket=identifier)
            return Resource(kind, identifier, identifier, region, {"ledger"})
        if kind in ("iam-role", "iam-policy"):
            iam = _client("iam", region)
            if kind == "iam-role":
                iam.get_role(RoleName=identifier.rsplit("/", 1)[-1])
            else:
                iam.get_policy(PolicyArn=identifier)
            return Resource(kind, identifier.rsplit("/", 1)[-1], identifier, region, {"ledger"})
        bedrock = _client("bedrock", region)
        describe = {
            "custom-model-deployment": lambda: bedrock.get_custom_model_deployment(
                customModelDeploymentIdentifier=identifier),
            "provisioned-throughput": lambda: bedrock.get_provisioned_model_throughput(provisionedModelId=identifier),
            "custom-model": lambda: bedrock.get_custom_model(modelIdentifier=identifier),
            "imported-model": lambda: bedrock.get_imported_model(modelIdentifier=identifier),
            "customization-job": lambda: bedrock.get_model_customization_job(jobIdentifier=identifier),
            "batch-job": lambda: bedrock.get_model_invocation_job(jobIdentifier=identifier),
            "evaluation-job": lambda: bedrock.get_evaluation_job(jobIdentifier=identifier),
        }.get(kind)
        if describe is None:
            return None
        item = describe()
    except ClientError as err:
        if aws.is_not_found(err) or aws.error_code(err) in ("404", "NoSuchBucket", "NoSuchEntity"):
            return None
        raise
    label = identifier.rsplit("/", 1)[-1]
    for key in ("customModelDeploymentName", "provisionedModelName", "modelName", "jobName"):
        label = item.get(key) or label
    return Resource(kind, label, identifier, region, {"ledger"}, item.get("status") or item.get("modelStatus", ""),
                    details=item)


# ---- discovery, actions and costs -----------------------------------------------------------------

def discover(
    workshop_id: str, region: str, *, state: WorkshopState | None = None, keep_data: bool = False,
    price_overrides: dict[str, float] | None = None, notes: list[str] | None = None,
) -> list[Resource]:
    """Everything of this workshop, from the ledger and the tags, merged, in deletion order."""
    notes = [] if notes is None else notes
    found = _list_bedrock(workshop_id, region, notes) + _list_iam(workshop_id, region) + _list_buckets(
        workshop_id, region)
    for entry in (state.ledger if state else []):
        short = entry.identifier.rsplit("/", 1)[-1]
        match = next((r for r in found if r.kind == entry.kind and entry.identifier in (r.identifier, r.name)), None)
        match = match or next((r for r in found if r.kind == entry.kind and r.name == short), None)
        if match is None:
            match = _describe_ledger_entry(entry.kind, entry.identifier, entry.region or region)
            if match is None:
                continue  # already gone: cleanup forgets the entry
            found.append(match)
        match.sources.add("ledger")
        match.ledger_ids.add(entry.identifier)
    boundary = _boundary(region, found)
    if boundary is not None:
        found.append(boundary)
    for resource in found:
        _decide(resource, keep_data)
        _price(resource, price_overrides)
    return sorted(found, key=lambda r: (ORDER.index(r.kind), r.name))


def _decide(resource: Resource, keep_data: bool) -> None:
    kind, status = resource.kind, resource.status
    if kind == "customization-job":
        resource.action = "stop" if status == "InProgress" else KEEP_RECORD
    elif kind == "batch-job":
        resource.action = "stop" if status in STOPPABLE_BATCH else KEEP_RECORD
    elif kind == "evaluation-job":
        # Evaluation jobs can be deleted once Completed, Failed or Stopped (BatchDeleteEvaluationJob).
        resource.action = "stop, then delete" if status == "InProgress" else "delete"
    elif kind == "model-import-job":
        resource.action = KEEP_RECORD  # no Stop or Delete operation exists for import jobs
    elif kind == "s3-bucket" and keep_data:
        resource.action = "keep (keep_data=True)"
    resource.billable = kind in ("custom-model-deployment", "provisioned-throughput", "custom-model",
                                 "imported-model", "s3-bucket") or resource.action.startswith("stop")


def _base_key(details: dict[str, Any]) -> str:
    """The registry key of a resource's base model, from its foundation-model ARN, or ''."""
    from utils import models

    arn = details.get("foundationModelArn") or details.get("baseModelArn") or ""
    model_id = arn.rsplit("/", 1)[-1]
    for candidate in (model_id, model_id.rsplit(":", 1)[0]):
        try:
            return models.get(candidate).key
        except KeyError:
            continue
    return model_id


def _price(resource: Resource, overrides: dict[str, float] | None) -> None:
    """What the resource costs while it exists, from utils/costs.py; gaps stay gaps."""
    from utils import costs

    details = resource.details
    kind = resource.kind
    if kind == "provisioned-throughput":
        estimate = costs.estimate_provisioned_throughput(
            _base_key(details) or "unknown", hours=1, model_units=max(1, int(details.get("modelUnits") or 1)),
            price_overrides=overrides, region=resource.region)
        resource.cost = (f"{costs.GAP_MESSAGE} ({', '.join(estimate.gaps)}); billed per hour" if estimate.total is None
                         else f"${estimate.total:,.2f}/hour" + _unbilled_label(estimate.items))
        if details.get("commitmentDuration"):
            resource.cost += f"; {details['commitmentDuration']} commitment billed to its end"
    elif kind == "custom-model":
        pricer = costs._Pricer(resource.region, overrides)
        item = costs._storage(pricer, costs.price_model(_base_key(details) or "unknown"), 1)
        resource.cost = (f"{costs.GAP_MESSAGE} ({item.price_key}); billed per month" if item.unit_price is None
                         else f"${item.unit_price:,.2f}/month storage" + _unbilled_label([item]))
    elif kind == "imported-model":
        row = costs.find_row("cmi_storage_month", "*", resource.region)
        resource.cost = f"${row.value:,.2f}/month per model unit" if row and row.value is not None else costs.GAP_MESSAGE
    elif kind == "custom-model-deployment":
        resource.cost = "per token used (no hourly charge)"
    elif kind == "s3-bucket":
        resource.cost = "S3 storage per GB-month (not in utils/costs.py)"
    elif resource.action.startswith("stop") and kind == "customization-job":
        resource.cost = "training tokens processed until it stops"
    elif resource.action.startswith("stop"):
        resource.cost = "tokens processed until it stops"


def _unbilled_label(items: list[Any]) -> str:
    """Says so when a price gap counted as $0 because the endpoint bills nothing (utils/costs.py)."""
    from utils import costs

    return " (no sourced price; $0 on this unbilled endpoint)" if any(
        costs.UNBILLED_ENV in (item.source or "") for item in items) else ""


def plan_rows(resources: list[Resource]) -> list[dict[str, str]]:
    return [{"resource": r.kind, "name": r.name, "found by": r.source, "status": r.status or "-",
             "action": r.action, "costs while it exists": r.cost or "nothing"} for r in resources]


def plan_markdown(resources: list[Resource], notes: list[str] = ()) -> str:
    """The dry run as a Markdown table (what, found by which source, action, running cost)."""
    acting = [r for r in resources if not r.action.startswith("keep")]
    head = (f"**Dry run: {len(acting)} resource(s) to delete or stop**" if acting
            else "**Dry run: nothing to delete**")
    lines = [head, ""]
    if resources:
        rows = plan_rows(resources)
        columns = list(rows[0])
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_md(row[c]) for c in columns) + " |" for row in rows]
    if any(r.action == KEEP_RECORD for r in resources):
        lines += ["", "Job records stay listed in the console: the Bedrock API cannot delete customization, "
                  "batch or import job records, and they bill nothing."]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


# ---- acting ---------------------------------------------------------------------------------------

def _retry(call: Callable[[], Any], *, poll_s: float, log: Log, what: str) -> Any:
    """``call()``, retried while a dependency is still going away or IAM/S3 has not caught up."""
    from utils import iam as iam_utils

    for attempt in range(RETRIES + 1):
        try:
            return call()
        except ClientError as err:
            code = aws.error_code(err)
            retryable = code in RETRYABLE or (
                code != "NoSuchEntity" and iam_utils.is_eventual_consistency_error(err))
            if attempt == RETRIES or not retryable:
                raise
            delay = poll_s * (2 ** attempt)
            log(f"  {what}: {code}, retrying in {delay:g} s")
            time.sleep(delay)
    raise AssertionError("unreachable")


# Kind -> (operation, parameter, outcome) of a stop or delete that takes effect at once.
_ONE_CALL = {
    "customization-job": ("stop_model_customization_job", "jobIdentifier", "stopped"),
    "batch-job": ("stop_model_invocation_job", "jobIdentifier", "stopped"),
    "custom-model": ("delete_custom_model", "modelIdentifier", "deleted"),
    "imported-model": ("delete_imported_model", "modelIdentifier", "deleted"),
}
# Kind -> (delete, describe, parameter) of an asynchronous delete, waited out until describe says not found.
_ASYNC_DELETE = {
    "custom-model-deployment": ("delete_custom_model_deployment", "get_custom_model_deployment",
                                "customModelDeploymentIdentifier"),
    "provisioned-throughput": ("delete_provisioned_model_throughput", "get_provisioned_model_throughput",
                               "provisionedModelId"),
}


def _act(resource: Resource, poll_s: float, wait_s: float, log: Log) -> str:
    from utils import iam as iam_utils
    from utils import s3 as s3_utils

    ident, region = resource.identifier, resource.region
    bedrock = _client("bedrock", region)
    kind = resource.kind

    def retry(call: Callable[[], Any]) -> Any:
        return _retry(call, poll_s=poll_s, log=log, what=f"{kind} {resource.name}")

    if kind in _ONE_CALL:
        operation, parameter, outcome = _ONE_CALL[kind]
        retry(lambda: getattr(bedrock, operation)(**{parameter: ident}))
        return outcome
    if kind in _ASYNC_DELETE:
        operation, describe, parameter = _ASYNC_DELETE[kind]
        retry(lambda: getattr(bedrock, operation)(**{parameter: ident}))
        wait_gone(lambda: getattr(bedrock, describe)(**{parameter: ident}), poll_s=poll_s, timeout_s=wait_s)
        return "deleted"
    if kind == "evaluation-job":
        if resource.action.startswith("stop"):
            retry(lambda: bedrock.stop_evaluation_job(jobIdentifier=ident))
        # A job still Stopping cannot be deleted yet (BatchDeleteEvaluationJob answers it in
        # ``errors``): ask again until it has stopped.
        deadline = time.monotonic() + wait_s
        while True:
            errors = bedrock.batch_delete_evaluation_job(jobIdentifiers=[ident]).get("errors") or []
            if not errors:
                return "deleted"
            if time.monotonic() > deadline:
                return f"error: {errors[0].get('code')}: {errors[0].get('message')}"
            time.sleep(poll_s)
    if kind == "iam-role":
        gone = not retry(lambda: iam_utils.delete_role(ident.rsplit("/", 1)[-1], region=region))
        return "already gone" if gone else "deleted"
    if kind in ("iam-policy", "iam-boundary"):
        try:
            gone = not retry(lambda: iam_utils.delete_managed_policy(ident, region=region))
        except ClientError as err:
            if kind == "iam-boundary" and aws.error_code(err) in ("AccessDenied", "AccessDeniedException"):
                return ("keep (the caller policy protects the boundary; it bills nothing; an administrator "
                        f"can run: aws iam delete-policy --policy-arn {ident})")
            raise
        return "already gone" if gone else "deleted"
    if kind == "s3-bucket":
        gone = not retry(lambda: s3_utils.delete_bucket(ident, region=region))
        return "already gone" if gone else "deleted"
    raise ValueError(f"unknown resource kind {kind!r}")


def next_generation(resources: list[Resource], current: int = 0) -> int:
    """A generation above every customization job record of this workshop (job names cannot be reused)."""
    seen = [int(m.group(1)) if (m := _GENERATION.search(r.name)) else 0
            for r in resources if r.kind == "customization-job"]
    return max([current, *(g + 1 for g in seen)]) if seen else current


def cleanup(
    state: WorkshopState, *, region: str | None = None, keep_data: bool = False, poll_s: float = 5,
    wait_s: float = 900, plan: list[Resource] | None = None, price_overrides: dict[str, float] | None = None,
    log: Log = print,
) -> Result:
    """Delete or stop everything :func:`discover` finds (or the given ``plan``).

    Idempotent: a second run finds nothing to act on and says ``nothing to delete``.
    """
    region = region or state.region
    notes: list[str] = []
    resources = plan if plan is not None else discover(
        state.workshop_id, region, state=state, keep_data=keep_data, price_overrides=price_overrides, notes=notes)
    actions: list[Action] = []
    for resource in resources:
        if resource.action.startswith("keep"):
            outcome = resource.action
        else:
            if resource.kind == "iam-boundary":  # roles of other workshops may have appeared since the plan
                fresh = _boundary(region, [r for r in resources if r.kind == "iam-role"])
                if fresh is None or fresh.users:
                    outcome = "already gone" if fresh is None else fresh.action
                    actions.append(Action(resource.kind, resource.identifier, outcome))
                    log(f"{resource.kind:<24} {outcome[:60]:<60} {resource.name}")
                    continue
            try:
                outcome = _act(resource, poll_s, wait_s, log)
            except ClientError as err:
                code, message = aws.error(err)
                outcome = "already gone" if aws.is_not_found(err) else f"error: {code}: {message}"
            except TimeoutError as err:
                outcome = f"error: {err}"
        actions.append(Action(resource.kind, resource.identifier, outcome))
        log(f"{resource.kind:<24} {outcome[:60]:<60} {resource.name}")
    # Forget ledger entries whose resource is gone now, and those no listing or lookup found.
    kept = {(r.kind, i) for r, a in zip(resources, actions, strict=True)
            if a.outcome not in ("deleted", "already gone") for i in r.ledger_ids}
    state.ledger = [e for e in state.ledger if (e.kind, e.identifier) in kept]
    result = Result(actions, notes)
    if not result.errors:
        for key in INVALIDATED:
            state.values.pop(key, None)
        if not keep_data:
            state.datasets = {}  # the objects went with the bucket
        # Job records cannot be deleted, so a rerun after cleanup trains under a new name.
        generation = int(state.values.get("generation", 0))
        state.values["generation"] = next_generation(resources, generation + 1 if result.status == "done"
                                                     else generation)
    state.save()
    return result


# ---- audit ------------------------------------------------------------------------------------

def wait_out_stopping(
    bedrock: Any, prefix: str, *, timeout_s: float = STOPPING_TIMEOUT_S, poll_s: float = 10,
    log: Log = print, workshop_id: str | None = None,
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
            for page in bedrock.get_paginator(operation).paginate(nameContains=prefix.rstrip("-"), statusEquals="Stopping")
            for item in page.get(key, [])
            if item["jobName"].startswith(prefix) and (workshop_id is None or _is_ours(
                _safe_tags(lambda a=item["jobArn"]: bedrock.list_tags_for_resource(resourceARN=a)["tags"]),
                workshop_id))  # another workshop's id may extend this one's ("team", "team-a")
        ]
        if not stopping or time.monotonic() >= deadline:
            return
        if not announced:
            log(f"waiting for {len(stopping)} stopping job(s) to stop: {', '.join(stopping)}")
            announced = True
        time.sleep(poll_s)


def audit_resources(
    workshop_id: str, region: str, *, stopping_timeout_s: float = STOPPING_TIMEOUT_S, poll_s: float = 10,
    log: Log = print, notes: list[str] | None = None,
) -> list[Resource]:
    """Everything of this workshop that still exists and is not history, found by listing (read-only).

    Finished job records (they cannot be deleted and bill nothing) and the account-wide
    permissions boundary (free, shared by every workshop id) are not listed. Jobs that are ``Stopping``
    are waited out first (up to ``stopping_timeout_s``), see :func:`wait_out_stopping`.
    """
    bedrock = _client("bedrock", region)
    wait_out_stopping(bedrock, name(workshop_id, "") + "-", timeout_s=stopping_timeout_s, poll_s=poll_s, log=log,
                      workshop_id=workshop_id)
    found = discover(workshop_id, region, notes=notes)
    remaining = []
    running = {"customization-job": RUNNING_JOB, "batch-job": RUNNING_BATCH, "model-import-job": RUNNING_IMPORT}
    for resource in found:
        if resource.kind == "iam-boundary":
            continue  # shared by every workshop id of the account, and free
        if resource.kind in running:
            if resource.status in running[resource.kind]:
                resource.billable = True
                remaining.append(resource)
            continue
        remaining.append(resource)
    return remaining


def audit(
    workshop_id: str, region: str, *, stopping_timeout_s: float = STOPPING_TIMEOUT_S, poll_s: float = 10,
    log: Log = print,
) -> list[str]:
    """:func:`audit_resources` as sorted ``"<kind>: <name>"`` lines; ``[]`` proves the cleanup."""
    return sorted(r.line for r in audit_resources(
        workshop_id, region, stopping_timeout_s=stopping_timeout_s, poll_s=poll_s, log=log))


def manual_fix(resource: Resource) -> str:
    """The console page or CLI line that removes a leftover by hand."""
    ident, region = resource.identifier, resource.region
    bedrock = f"aws bedrock --region {region}"
    return {
        "custom-model-deployment": f"{bedrock} delete-custom-model-deployment "
                                   f"--custom-model-deployment-identifier {ident}",
        "provisioned-throughput": f"{bedrock} delete-provisioned-model-throughput --provisioned-model-id {ident}",
        "custom-model": f"{bedrock} delete-custom-model --model-identifier {ident}",
        "imported-model": f"{bedrock} delete-imported-model --model-identifier {ident}",
        "customization-job": f"{bedrock} stop-model-customization-job --job-identifier {ident}",
        "batch-job": f"{bedrock} stop-model-invocation-job --job-identifier {ident}",
        "evaluation-job": f"{bedrock} stop-evaluation-job --job-identifier {ident}; then "
                          f"{bedrock} batch-delete-evaluation-job --job-identifiers {ident}",
        "iam-role": f"https://console.aws.amazon.com/iam/home#/roles/details/{resource.name} "
                    "(Delete removes its policies too)",
        "iam-policy": f"https://console.aws.amazon.com/iam/home#/policies/details/"
                      f"{ident.replace(':', '%3A').replace('/', '%2F')} (Delete detaches it first)",
        "iam-boundary": f"aws iam delete-policy --policy-arn {ident}",
        "s3-bucket": f"empty it at https://s3.console.aws.amazon.com/s3/bucket/{ident}/empty, then "
                     f"aws s3api delete-bucket --bucket {ident} --region {region}",
    }.get(resource.kind, "rerun 07_cleanup")


class ResourcesRemain(RuntimeError):
    """The audit found resources of this workshop after cleanup."""


def fail_if_remaining(remaining: list[Resource], *, expected: tuple[str, ...] = ()) -> None:
    """Raise, naming each leftover (billable ones first) with its manual fix; ``expected`` lines are allowed."""
    left = [r for r in remaining if r.line not in expected]
    if not left:
        return
    left.sort(key=lambda r: not r.billable)
    lines = [f"- {r.line}{' (BILLABLE: ' + r.cost + ')' if r.billable else ''}\n    fix: {r.fix}" for r in left]
    raise ResourcesRemain(
        f"{len(left)} resource(s) of this workshop remain after cleanup, "
        f"{sum(r.billable for r in left)} of them billable. Rerun 07_cleanup, or remove each by hand:\n"
        + "\n".join(lines))


def audit_markdown(remaining: list[Resource], expected: tuple[str, ...] = (), notes: list[str] = ()) -> str:
    """The audit as Markdown: one row per leftover with its manual fix, or the all-clear (and what was not checked)."""
    unchecked = "".join(f"\n- {note}" for note in notes)
    if not remaining:
        return "**Audit: nothing of this workshop remains.**" + unchecked
    rows = ["| resource | billable | manual fix |", "|---|---|---|"]
    rows += [f"| {_md(r.line)}{' (kept on purpose)' if r.line in expected else ''} | "
             f"{_md(r.cost) if r.billable else 'no'} | `{_md(r.fix)}` |" for r in remaining]
    return f"**Audit: {len(remaining)} resource(s) of this workshop still exist**\n\n" + "\n".join(rows) + unchecked
