"""Caller-permission mode: every call of one chosen principal is evaluated against its policies.

Off by default (any credentials may call anything). With the ``caller_principal`` knob set to
an IAM role or user ARN, a request is **attributed** to that principal when it is signed with
one of the ``caller_access_keys`` (default ``["sandbox"]``: the dummy key ``utils.aws`` signs
with, so unmodified notebooks run as the principal), with a key moto's STS issued by
``AssumeRole`` into that role, or with an access key of that IAM user. Other keys (an admin
harness's, e.g. ``admin``) are not evaluated. For an attributed request:

* ``sts:GetCallerIdentity`` answers the principal (``assumed-role/<role>/sandbox-caller`` for a
  role); AWS requires no permission for it
  (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html);
* every other request is mapped to its IAM action(s), resource ARN(s) and condition keys
  (Bedrock per the Service Authorization Reference,
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrock.html;
  IAM, S3, STS and Service Quotas per theirs) and evaluated with ``iam_simulate.decide`` against
  the principal's inline and attached policies and, if it has one, its permissions boundary
  (both must allow). Supported keys: ``aws:RequestTag/<k>``, ``aws:TagKeys``,
  ``aws:ResourceTag/<k>`` (Bedrock resources and IAM roles), ``iam:PassedToService`` (a Bedrock
  create call that passes ``roleArn`` is also checked for ``iam:PassRole`` on it),
  ``iam:PermissionsBoundary``, ``iam:PolicyARN``, ``s3:prefix``, ``aws:PrincipalArn``,
  ``aws:PrincipalAccount``, ``aws:RequestedRegion``. On a fresh account (``model_access="fresh"``)
  the runtime call that starts a model's Marketplace subscription also needs
  ``aws-marketplace:Subscribe`` and ``aws-marketplace:ViewSubscriptions``; without them it gets
  Bedrock's Marketplace AccessDenied message. A resource that does not exist yet (a
  create call's new job, model, deployment or throughput) is checked under a placeholder ID
  ``000000000000`` (our choice: IAM evaluates the ARN the new resource will have).
* a denial answers as the service does: HTTP 403 ``AccessDeniedException`` (Bedrock, JSON),
  ``AccessDenied`` (IAM/STS query XML, S3 XML), with IAM's wording "User: <arn> is not
  authorized to perform: <action> on resource: <arn> because no identity-based policy allows the
  <action> action" (or "with an explicit deny in an identity-based policy", or "because no
  permissions boundary allows the <action> action").

Every evaluated request is recorded in :attr:`CallerGate.log` (action, resource and context of
each check, and whether it was allowed), so a test can re-evaluate the same run against another
policy offline (:func:`reevaluate`). SCPs, session policies and resource-based policies are not
evaluated (bucket policies are still moto's).
"""

from __future__ import annotations

import io
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from utils.sandbox import account_access, conditions
from utils.sandbox.bedrock.access import BEDROCK_SERVICE
from utils.sandbox.iam_simulate import decide, entity_policies, iam_backend

SESSION_NAME = "sandbox-caller"
NEW_ID = "000000000000"  # placeholder ID of a resource a create call is about to make
DEFAULT_KEYS = ("sandbox",)


@dataclass(frozen=True)
class Check:
    """One authorization: an action on a resource with its request context."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def ctx(self) -> conditions.Context:
        return {k: list(v) for k, v in self.context}


def check(action: str, resource: str, context: dict[str, Any] | None = None) -> Check:
    ctx = conditions.context(context or {})
    return Check(action, resource, tuple(sorted((k, tuple(v)) for k, v in ctx.items())))


@dataclass
class Request:
    """One evaluated request: its operation, its checks and the verdict."""

    service: str
    operation: str
    checks: tuple[Check, ...]
    allowed: bool
    denied: Check | None = None
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---- evaluation ---------------------------------------------------------------------------------


def _entity(principal: str) -> Any:
    kind, _, rest = principal.split(":", 5)[-1].partition("/")
    name = rest.rsplit("/", 1)[-1]
    backend = iam_backend()
    try:
        return backend.get_role(name) if kind == "role" else backend.get_user(name)
    except Exception:  # noqa: BLE001 - moto's NotFound
        return None


def _boundary(entity: Any) -> list[Any] | None:
    arn = getattr(entity, "permissions_boundary_arn", None) or getattr(entity, "permissions_boundary", None)
    if not arn:
        return None
    try:
        return [iam_backend().get_policy(arn)]
    except Exception:  # noqa: BLE001 - a missing boundary policy allows nothing
        return []


def verdict(policies: list[Any], boundary: list[Any] | None, checks: tuple[Check, ...],
            globals_: dict[str, Any]) -> tuple[Check | None, str]:
    """The first check that is not allowed and why (``""`` when all are allowed)."""
    for item in checks:
        ctx = {**conditions.context(globals_), **item.ctx()}
        decision = decide(policies, item.action, item.resource, ctx)
        if decision != "allowed":
            return item, decision
        if boundary is not None and decide(boundary, item.action, item.resource, ctx) != "allowed":
            return item, "boundary"
    return None, ""


def reevaluate(policy: dict[str, Any], log: list[Request], principal: str, *,
               boundary: dict[str, Any] | None = None) -> list[Request]:
    """The logged requests that were allowed but that ``policy`` (alone, plus ``boundary``) denies."""
    globals_ = _globals(principal, "")
    out = []
    for request in log:
        if not request.allowed:
            continue
        g = {**globals_, "aws:RequestedRegion": request.extra.get("region")}
        if verdict([policy], [boundary] if boundary else None, request.checks, g)[0] is not None:
            out.append(request)
    return out


def _globals(principal: str, region: str) -> dict[str, Any]:
    return {"aws:PrincipalArn": principal, "aws:PrincipalAccount": principal.split(":")[4],
            "aws:RequestedRegion": region or None}


def session_arn(principal: str) -> str:
    """The ARN IAM names in messages: the assumed-role session for a role, the user ARN for a user."""
    parts = principal.split(":", 5)
    kind, _, path_name = parts[5].partition("/")
    if kind != "role":
        return principal
    return f"arn:{parts[1]}:sts::{parts[4]}:assumed-role/{path_name.rsplit('/', 1)[-1]}/{SESSION_NAME}"


def denial_message(principal: str, item: Check, reason: str) -> str:
    why = {
        "explicitDeny": "with an explicit deny in an identity-based policy",
        "boundary": f"because no permissions boundary allows the {item.action} action",
    }.get(reason, f"because no identity-based policy allows the {item.action} action")
    return (f"User: {session_arn(principal)} is not authorized to perform: {item.action} on resource: "
            f"{item.resource} {why}")


# ---- the gate -----------------------------------------------------------------------------------


class CallerGate:
    """Attributes requests to the chosen principal and evaluates them (see the module docstring)."""

    def __init__(self, bedrock: Any) -> None:
        self.bedrock = bedrock
        self.log: list[Request] = []
        self._lock = threading.Lock()

    # -- attribution
    def _knob(self, name: str, default: Any = None) -> Any:
        return self.bedrock.account_access.knobs.get(name, default)

    def principal_for(self, access_key: str) -> str | None:
        principal = self._knob("caller_principal")
        if not principal or not access_key:
            return None
        if access_key in (self._knob("caller_access_keys") or DEFAULT_KEYS):
            return principal
        try:
            from moto.core import DEFAULT_ACCOUNT_ID
            from moto.sts.models import sts_backends

            assumed = sts_backends[DEFAULT_ACCOUNT_ID]["aws"].get_assumed_role_from_access_key(access_key)
        except Exception:  # noqa: BLE001 - no STS state yet
            assumed = None
        if assumed is not None and assumed.role_arn.rsplit("/", 1)[-1] == principal.rsplit("/", 1)[-1] \
                and ":role/" in principal:
            return principal
        if ":user/" in principal:
            try:
                owner = iam_backend().get_access_key_last_used(access_key)["user_name"]
            except Exception:  # noqa: BLE001
                return None
            return principal if owner == principal.rsplit("/", 1)[-1] else None
        return None

    # -- entry point
    def gate(self, environ: dict[str, Any], scope: tuple[str, str]) -> tuple[int, list, bytes] | None:
        """``None`` to let a signed request through, else the response to send instead.

        ``scope`` is the request's SigV4 (region, service)."""
        region, service = scope
        key = re.search(r"Credential=([^/,\s]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        principal = self.principal_for(key.group(1) if key else "")
        if principal is None:
            return None
        body = _body(environ)
        if service == "sts" and "Action=GetCallerIdentity" in body.decode("utf-8", "replace"):
            return _caller_identity(principal)
        try:
            operation, checks = self._map(environ, service, region, body)
        except _Skip:
            return None
        if operation.startswith("runtime:") and self._starts_subscription(checks):
            # The first call of a model on a fresh account subscribes in AWS Marketplace on the
            # caller's behalf (https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html).
            checks = checks + tuple(check(a, "*") for a in account_access.MARKETPLACE_ACTIONS)
        entity = _entity(principal)
        policies = entity_policies(entity) if entity is not None else []
        boundary = _boundary(entity) if entity is not None else None
        item, reason = verdict(policies, boundary, checks, _globals(principal, region))
        request = Request(service, operation, checks, item is None, item, reason, {"region": region})
        with self._lock:
            self.log.append(request)
        if item is None:
            return None
        if item.action.startswith("aws-marketplace:"):
            return _denied(service, account_access.MARKETPLACE_DENIED)
        return _denied(service, denial_message(principal, item, reason))

    def _starts_subscription(self, checks: tuple[Check, ...]) -> bool:
        account = self.bedrock.account_access
        with self.bedrock.lock:
            return any(account.subscribing(c.resource.rsplit("/", 1)[-1]) for c in checks
                       if ":foundation-model/" in c.resource)

    # -- request -> checks
    def _map(self, environ: dict[str, Any], service: str, region: str, body: bytes) -> tuple[str, tuple[Check, ...]]:
        if service == "bedrock":
            return self._bedrock(environ, region, body)
        if service in ("iam", "sts"):
            params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            if not params:
                params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            op = params.get("Action", "")
            if not op:
                raise _Skip
            return op, tuple(_iam_checks(op, params) if service == "iam" else _sts_checks(op, params))
        if service == "s3":
            return _s3(environ, body)
        if service == "servicequotas":
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            op = target.rsplit(".", 1)[-1]
            return op, (check(f"servicequotas:{op}", "*"),)
        raise _Skip  # other services: not evaluated

    def _bedrock(self, environ: dict[str, Any], region: str, body: bytes) -> tuple[str, tuple[Check, ...]]:
        from utils.sandbox import server

        method = environ.get("REQUEST_METHOD", "GET")
        raw_path = server._raw_path(environ)
        runtime = server.RUNTIME_PATH.match(raw_path)
        if runtime and method == "POST":
            action = {"invoke-with-response-stream": "InvokeModelWithResponseStream",
                      "converse-stream": "InvokeModelWithResponseStream",
                      "count-tokens": "CountTokens"}.get(runtime.group(2), "InvokeModel")
            model_id = unquote(runtime.group(1))
            return f"runtime:{runtime.group(2)}", tuple(
                check(f"bedrock:{action}", arn) for arn in self._model_arns(region, model_id, runtime=True))
        segments = [unquote(s) for s in raw_path.strip("/").split("/")]
        decoded = "/" + "/".join(server.quote(s, safe="") for s in segments)
        for route in server.routes():
            if route.method != method:
                continue
            match = route.regex.match(decoded)
            if match is None:
                continue
            try:
                params = server.parse_request(route, [unquote(v) for v in match.groups()],
                                              parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True), body)
            except Exception as exc:  # noqa: BLE001 - the handler reports invalid requests itself
                raise _Skip from exc
            op = route.operation.name
            return op, tuple(self._bedrock_checks(op, region, params))
        raise _Skip

    # Bedrock resources: what the store holds (an identifier the service resolves -> ARN, tags).
    def _arn(self, region: str, kind: str, identifier: str) -> str:
        if identifier.startswith("arn:"):
            return identifier
        store = self.bedrock.store
        tables = {"model-customization-job": store.jobs, "custom-model": store.models,
                  "provisioned-model": store.throughputs, "custom-model-deployment": store.deployments,
                  "model-invocation-job": store.batch_jobs, "model-import-job": store.import_jobs,
                  "imported-model": store.imported_models, "evaluation-job": store.evaluation_jobs}
        table = tables.get(kind)
        with self.bedrock.lock:
            found = table.maybe(region, identifier) if table is not None else None
        if found is not None:
            return found.arn
        return self.bedrock.arn(region, f"{kind}/{identifier}")

    def _resource_tags(self, arn: str) -> dict[str, str]:
        with self.bedrock.lock:
            tags = dict(self.bedrock.tags.get(arn, {}))
        return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}

    def _model_arns(self, region: str, model_id: str, *, runtime: bool = False) -> list[str]:
        """ARNs IAM evaluates for a model reference: a custom model's, a foundation model's, or an
        inference profile's plus the foundation model in each destination region
        (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html)."""
        if model_id.startswith("arn:"):
            if model_id.split(":", 5)[-1].split("/", 1)[0] != "inference-profile":
                return [model_id]
            model_id = model_id.split("/", 1)[1]
        profile = self.bedrock.catalog.profile(region, model_id)
        if profile is not None:
            summary = self.bedrock.catalog.profile_summary(profile, region, self.bedrock.account)
            return [summary["inferenceProfileArn"], *(m["modelArn"] for m in summary.get("models", []))]
        if not runtime:
            with self.bedrock.lock:
                model = self.bedrock.store.models.maybe(region, model_id)
            if model is not None:
                return [model.arn]
        return [f"arn:aws:bedrock:{region}::foundation-model/{model_id}"]

    def _bedrock_checks(self, op: str, region: str, p: dict[str, Any]) -> list[Check]:
        act = f"bedrock:{op}"

        def tags(*names: str) -> dict[str, Any]:
            found = {t["key"]: t["value"] for n in names for t in (p.get(n) or []) if isinstance(t, dict)}
            ctx: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in found.items()}
            if found:
                ctx["aws:TagKeys"] = sorted(found)
            return ctx

        def existing(kind: str, key: str) -> list[Check]:
            arn = self._arn(region, kind, str(p.get(key, "")))
            return [check(act, arn, self._resource_tags(arn))]

        def pass_role() -> list[Check]:
            role = p.get("roleArn")
            return [check("iam:PassRole", role, {"iam:PassedToService": BEDROCK_SERVICE})] if role else []

        if op == "GetFoundationModel":
            ident = p["modelIdentifier"]
            return [check(act, ident if ident.startswith("arn:") else
                          f"arn:aws:bedrock:{region}::foundation-model/{ident}")]
        if op == "GetInferenceProfile":
            ident = p["inferenceProfileIdentifier"]
            return [check(act, ident if ident.startswith("arn:") else
                          self.bedrock.arn(region, f"inference-profile/{ident}"))]
        if op == "CreateModelCustomizationJob":
            base = self._model_arns(region, p["baseModelIdentifier"])[0]
            base_id = base.rsplit("/", 1)[-1] if ":foundation-model/" in base else base.split("/")[1]
            ctx = tags("jobTags", "customModelTags")
            return [check(act, base, ctx),
                    check(act, self.bedrock.arn(region, f"model-customization-job/{base_id}/{NEW_ID}"), ctx),
                    check(act, self.bedrock.arn(region, f"custom-model/{base_id}/{NEW_ID}"), ctx), *pass_role()]
        if op in ("GetModelCustomizationJob", "StopModelCustomizationJob"):
            return existing("model-customization-job", "jobIdentifier")
        if op in ("GetCustomModel", "DeleteCustomModel"):
            return existing("custom-model", "modelIdentifier")
        if op == "CreateProvisionedModelThroughput":
            ctx = tags("tags")
            return [*(check(act, arn, ctx) for arn in self._model_arns(region, p["modelId"])),
                    check(act, self.bedrock.arn(region, f"provisioned-model/{NEW_ID}"), ctx)]
        if op in ("GetProvisionedModelThroughput", "UpdateProvisionedModelThroughput",
                  "DeleteProvisionedModelThroughput"):
            out = existing("provisioned-model", "provisionedModelId")
            if p.get("desiredModelId"):
                out += [check(act, arn) for arn in self._model_arns(region, p["desiredModelId"])]
            return out
        if op == "CreateCustomModelDeployment":
            ctx = tags("tags")
            return [check(act, self._arn(region, "custom-model", p["modelArn"]), ctx),
                    check(act, self.bedrock.arn(region, f"custom-model-deployment/{NEW_ID}"), ctx)]
        if op in ("GetCustomModelDeployment", "UpdateCustomModelDeployment", "DeleteCustomModelDeployment"):
            out = existing("custom-model-deployment", "customModelDeploymentIdentifier")
            if p.get("modelArn"):
                out.append(check(act, p["modelArn"]))
            return out
        if op == "CreateModelInvocationJob":
            ctx = tags("tags")
            return [*(check(act, arn, ctx) for arn in self._model_arns(region, p["modelId"])),
                    check(act, self.bedrock.arn(region, f"model-invocation-job/{NEW_ID}"), ctx), *pass_role()]
        if op in ("GetModelInvocationJob", "StopModelInvocationJob"):
            return existing("model-invocation-job", "jobIdentifier")
        if op == "CreateEvaluationJob":  # evaluation-job, tagged with jobTags (Service Authorization Reference)
            return [check(act, self.bedrock.arn(region, f"evaluation-job/{NEW_ID}"), tags("jobTags")), *pass_role()]
        if op in ("GetEvaluationJob", "StopEvaluationJob"):
            return existing("evaluation-job", "jobIdentifier")
        if op == "BatchDeleteEvaluationJob":
            return [check(act, self._arn(region, "evaluation-job", str(ident))) for ident in p.get("jobIdentifiers") or []]
        if op == "CreateModelImportJob":  # resource "*" in the Service Authorization Reference
            return [check(act, "*", tags("jobTags", "importedModelTags")), *pass_role()]
        if op == "GetModelImportJob":
            return existing("model-import-job", "jobIdentifier")
        if op in ("GetImportedModel", "DeleteImportedModel"):
            return existing("imported-model", "modelIdentifier")
        if op == "TagResource":
            arn = p["resourceARN"]
            return [check(act, arn, {**self._resource_tags(arn), **tags("tags")})]
        if op == "UntagResource":
            arn = p["resourceARN"]
            return [check(act, arn, {**self._resource_tags(arn), "aws:TagKeys": list(p.get("tagKeys") or [])})]
        if op == "ListTagsForResource":
            arn = p["resourceARN"]
            return [check(act, arn, self._resource_tags(arn))]
        return [check(act, "*", tags("tags"))]


class _Skip(Exception):
    """The request is not mapped: let it through unevaluated."""


# ---- IAM, STS, S3 -------------------------------------------------------------------------------


def _members(params: dict[str, str], prefix: str) -> list[str]:
    out, i = [], 1
    while f"{prefix}.member.{i}" in params:
        out.append(params[f"{prefix}.member.{i}"])
        i += 1
    return out


def _iam_checks(op: str, p: dict[str, str]) -> list[Check]:
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = iam_backend()
    account = DEFAULT_ACCOUNT_ID
    act = f"iam:{op}"
    ctx: dict[str, Any] = {}
    tags: dict[str, str] = {}
    i = 1
    while f"Tags.member.{i}.Key" in p:
        tags[p[f"Tags.member.{i}.Key"]] = p.get(f"Tags.member.{i}.Value", "")
        i += 1
    if tags:
        ctx.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
        ctx["aws:TagKeys"] = sorted(tags)
    if _members(p, "TagKeys"):
        ctx["aws:TagKeys"] = _members(p, "TagKeys")
    if op == "SimulatePrincipalPolicy":
        return [check(act, p.get("PolicySourceArn", "*"), ctx)]
    if "RoleName" in p:
        name = p["RoleName"]
        try:
            role = backend.get_role(name)
        except Exception:  # noqa: BLE001 - a role about to be created, or missing
            role = None
        path = role.path if role is not None else (p.get("Path") or "/")
        if role is not None:
            for tag in _tag_list(role.tags):
                ctx[f"aws:ResourceTag/{tag['Key']}"] = tag["Value"]
                ctx[f"iam:ResourceTag/{tag['Key']}"] = tag["Value"]
        boundary = p.get("PermissionsBoundary") or (role.permissions_boundary_arn if role is not None else None)
        if boundary:
            ctx["iam:PermissionsBoundary"] = boundary
        if "PolicyArn" in p:
            ctx["iam:PolicyARN"] = p["PolicyArn"]
        return [check(act, f"arn:aws:iam::{account}:role{path}{name}", ctx)]
    if "PolicyArn" in p:
        try:
            for tag in _tag_list(backend.get_policy(p["PolicyArn"]).tags):
                ctx[f"aws:ResourceTag/{tag['Key']}"] = tag["Value"]
                ctx[f"iam:ResourceTag/{tag['Key']}"] = tag["Value"]
        except Exception:  # noqa: BLE001 - a policy that does not exist (yet)
            pass
        return [check(act, p["PolicyArn"], ctx)]
    if op == "CreatePolicy":
        return [check(act, f"arn:aws:iam::{account}:policy{p.get('Path') or '/'}{p.get('PolicyName', '')}", ctx)]
    if "UserName" in p:
        return [check(act, f"arn:aws:iam::{account}:user/{p['UserName']}", ctx)]
    return [check(act, "*", ctx)]


def _tag_list(tags: Any) -> list[dict[str, str]]:
    if isinstance(tags, dict):
        return [v if isinstance(v, dict) else {"Key": k, "Value": v} for k, v in tags.items()]
    return list(tags or [])


def _sts_checks(op: str, p: dict[str, str]) -> list[Check]:
    if op == "AssumeRole":
        return [check("sts:AssumeRole", p.get("RoleArn", "*"))]
    return [check(f"sts:{op}", "*")]


_BUCKET_GET = {"policy": "GetBucketPolicy", "encryption": "GetEncryptionConfiguration",
               "publicAccessBlock": "GetBucketPublicAccessBlock", "versioning": "GetBucketVersioning",
               "tagging": "GetBucketTagging", "location": "GetBucketLocation", "versions": "ListBucketVersions",
               "uploads": "ListBucketMultipartUploads", "acl": "GetBucketAcl", "ownershipControls":
               "GetBucketOwnershipControls", "lifecycle": "GetLifecycleConfiguration", "cors": "GetBucketCORS"}
_BUCKET_PUT = {"policy": "PutBucketPolicy", "encryption": "PutEncryptionConfiguration",
               "publicAccessBlock": "PutBucketPublicAccessBlock", "versioning": "PutBucketVersioning",
               "tagging": "PutBucketTagging", "acl": "PutBucketAcl", "ownershipControls":
               "PutBucketOwnershipControls", "lifecycle": "PutLifecycleConfiguration", "cors": "PutBucketCORS"}
_BUCKET_DELETE = {"policy": "DeleteBucketPolicy", "encryption": "PutEncryptionConfiguration",
                  "publicAccessBlock": "PutBucketPublicAccessBlock", "tagging": "PutBucketTagging",
                  "lifecycle": "PutLifecycleConfiguration", "cors": "PutBucketCORS"}


def _s3(environ: dict[str, Any], body: bytes) -> tuple[str, tuple[Check, ...]]:
    """An S3 REST request (path style, as botocore sends to an IP endpoint) -> its checks."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = unquote(environ.get("PATH_INFO", "/"))
    bucket, _, key = path.lstrip("/").partition("/")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    sub = next((k for k in query if k in {**_BUCKET_GET, **_BUCKET_PUT, "delete": 1, "uploads": 1, "uploadId": 1}), "")
    if not bucket:
        return "ListBuckets", (check("s3:ListAllMyBuckets", "*"),)
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method == "POST" and "delete" in query:
            keys = re.findall(rb"<Key>(.*?)</Key>", body)
            return "DeleteObjects", tuple(check("s3:DeleteObject", f"{bucket_arn}/{unescape_xml(k)}") for k in keys)
        table = {"GET": _BUCKET_GET, "HEAD": {}, "PUT": _BUCKET_PUT, "DELETE": _BUCKET_DELETE}.get(method, {})
        if sub and sub in table:
            return table[sub], (check(f"s3:{table[sub]}", bucket_arn),)
        if method == "PUT":
            return "CreateBucket", (check("s3:CreateBucket", bucket_arn),)
        if method == "DELETE":
            return "DeleteBucket", (check("s3:DeleteBucket", bucket_arn),)
        ctx = {"s3:prefix": query["prefix"][0]} if "prefix" in query else {}
        if "max-keys" in query:
            ctx["s3:max-keys"] = query["max-keys"][0]
        return ("HeadBucket" if method == "HEAD" else "ListObjects"), (check("s3:ListBucket", bucket_arn, ctx),)
    object_arn = f"{bucket_arn}/{key}"
    versioned = "versionId" in query
    if method in ("GET", "HEAD"):
        action = "GetObjectVersion" if versioned else "GetObject"
        if "tagging" in query:
            action = "GetObjectTagging"
        return action, (check(f"s3:{action}", object_arn),)
    if method == "DELETE":
        action = "AbortMultipartUpload" if "uploadId" in query else (
            "DeleteObjectVersion" if versioned else "DeleteObject")
        return action, (check(f"s3:{action}", object_arn),)
    checks = [check("s3:PutObject", object_arn)]
    source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
    if source and method == "PUT":
        checks.append(check("s3:GetObject", "arn:aws:s3:::" + unquote(source).lstrip("/").split("?", 1)[0]))
    return "PutObject", tuple(checks)


def unescape_xml(raw: bytes) -> str:
    from xml.sax.saxutils import unescape

    return unescape(raw.decode("utf-8", "replace"))


# ---- responses ----------------------------------------------------------------------------------


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    data = stream.read(length) if stream is not None and length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(data)
    return data


def _caller_identity(principal: str) -> tuple[int, list, bytes]:
    entity = _entity(principal)
    unique_id = getattr(entity, "id", "AROA" + uuid.uuid4().hex[:17].upper())
    arn = session_arn(principal)
    user_id = f"{unique_id}:{SESSION_NAME}" if ":role/" in principal else unique_id
    xml = (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        f"<Arn>{escape(arn)}</Arn><UserId>{escape(user_id)}</UserId><Account>{principal.split(':')[4]}</Account>"
        f"</GetCallerIdentityResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    )
    return 200, [("Content-Type", "text/xml")], xml.encode()


def _denied(service: str, message: str) -> tuple[int, list, bytes]:
    request_id = str(uuid.uuid4())
    if service in ("bedrock", "servicequotas"):
        payload = {"message": message} if service == "bedrock" else {"__type": "AccessDeniedException", "Message": message}
        return 403 if service == "bedrock" else 400, [
            ("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException:"),
            ("x-amzn-RequestId", request_id)], json.dumps(payload).encode()
    if service == "s3":
        xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{escape(message)}"
               f"</Message><RequestId>{request_id}</RequestId></Error>")
        return 403, [("Content-Type", "application/xml")], xml.encode()
    ns = "https://iam.amazonaws.com/doc/2010-05-08/" if service == "iam" else "https://sts.amazonaws.com/doc/2011-06-15/"
    xml = (f'<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type><Code>AccessDenied</Code>'
           f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return 403, [("Content-Type", "text/xml")], xml.encode()
