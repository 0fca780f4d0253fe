"""A tiny Service Quotas emulator for the sandbox (JSON 1.1 protocol).

The sandbox server routes ``servicequotas`` requests here: :func:`handle` takes a
WSGI environ and returns ``(status, headers, body)``. It answers
``GetServiceQuota``, ``GetAWSDefaultServiceQuota`` and ``ListServiceQuotas``
(paginated) for ``ServiceCode="bedrock"`` with plausible values, and
``NoSuchResourceException`` for any other service code or an unknown quota code.

Values follow the published defaults (https://docs.aws.amazon.com/general/latest/gr/bedrock.html#limits_bedrock) where a code is known (L-0406044C concurrent
customization jobs = 2, Titan Express records = 10,000). Codes for the other
models' record quotas are stand-ins derived from the quota name (stable, ``L-``
plus 8 hex digits); match quotas by name for those.

Runtime rate quotas ("On-demand / Cross-region / Global cross-region model
inference tokens|requests per minute for <model>", for every model of the
sandbox's catalogs in the request's region) report the limits the fault knobs
configure (``faults.rpm`` / ``faults.tpm``, looked up with the model ID for
on-demand and the ``us.`` / ``global.`` profile ID for the cross-region scopes),
so a client that paces to its quota paces to the sandbox's buckets. An unlimited
knob reports a stand-in default (``STANDIN_RPM`` / ``STANDIN_TPM``). Codes are
the real ones where a public source lists them (aws-samples/
sample-quota-dashboard-for-amazon-bedrock, ``lib/bedrock-registries.ts``);
otherwise (e.g. Claude Sonnet 4.6) a stand-in code, so clients must fall back to
matching the name. AWS renamed these quotas once ("On-demand InvokeModel tokens
per minute for ${model}" in older pages); the sandbox uses the current wording.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any

SERVICE_CODE = "bedrock"
SERVICE_NAME = "Amazon Bedrock"
TARGET_PREFIX = "ServiceQuotasV20190624."
DEFAULT_ACCOUNT = "123456789012"  # moto's default account, which the rest of the sandbox uses
DEFAULT_REGION = "us-east-1"
CONTENT_TYPE = "application/x-amz-json-1.1"
CONCURRENT_CUSTOMIZATION_JOBS = "L-0406044C"

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Quota:
    code: str
    name: str
    value: float
    unit: str = "None"
    adjustable: bool = True
    global_quota: bool = False


def _code(name: str) -> str:
    return "L-" + hashlib.sha1(name.encode()).hexdigest()[:8].upper()


def _records(model: str, job: str, value: float, code: str | None = None) -> Quota:
    name = f"Sum of training and validation records for a {model} {job} job"
    return Quota(code or _code(name), name, value)


# Model names as the quota console spells them (provider names are dropped in most).
_FT_RECORDS: tuple[tuple[str, float, str | None], ...] = (
    ("Amazon Nova Micro", 20000, None),
    ("Amazon Nova Lite", 20000, None),
    ("Amazon Nova Pro", 20000, None),
    ("Amazon Nova 2 Lite", 20000, None),
    ("Meta Llama 3.1 8B Instruct", 10000, None),
    ("Meta Llama 3.1 70B Instruct", 10000, None),
    ("Meta Llama 3.3 70B Instruct", 10000, None),
    ("Titan Text G1 - Express v1", 10000, "L-79BA683B"),
    ("Titan Text G1 - Lite v1", 10000, "L-3B82104D"),
    ("Claude 3 Haiku", 10000, None),  # the seeds' 2024 replay
)

QUOTAS: tuple[Quota, ...] = (
    # The name Service Quotas gives L-0406044C, as public quota-code catalogs list it; that it caps
    # the jobs in progress at once, and its default of 2, are our assumption (unconfirmed).
    Quota(CONCURRENT_CUSTOMIZATION_JOBS, "(Model customization) Scheduled customization jobs", 2),
    Quota(_code("Concurrent model distillation jobs"), "Concurrent model distillation jobs", 1),
    *(_records(model, "Fine-tuning", value, code) for model, value, code in _FT_RECORDS),
    _records("Titan Text G1 - Express v1", "Continued Pre-Training", 100000, "L-CDD9DC4A"),
    _records("Amazon Nova Lite", "Distillation", 15000),
    _records("Amazon Nova Micro", "Distillation", 15000),
    Quota(
        _code("No-commitment Provisioned Throughputs across custom models"),
        "No-commitment Provisioned Throughputs across custom models", 2,
    ),
    Quota(
        _code("Model units no-commitment Provisioned Throughputs across custom models"),
        "Model units no-commitment Provisioned Throughputs across custom models", 2,
    ),
    Quota(_code("Custom model deployments"), "Custom model deployments", 5),
    Quota(_code("Batch inference jobs"), "Concurrent batch inference jobs", 20),
)


# Real codes (tokens per minute, requests per minute) by (base model ID, scope), from
# aws-samples/sample-quota-dashboard-for-amazon-bedrock lib/bedrock-registries.ts.
RATE_CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("amazon.nova-micro-v1:0", "on-demand"): ("L-CFA4FA0D", "L-E118F160"),
    ("amazon.nova-micro-v1:0", "cross-region"): ("L-DC7FF66C", "L-3F110E0F"),
    ("amazon.nova-lite-v1:0", "on-demand"): ("L-70423BF8", "L-E386A278"),
    ("amazon.nova-lite-v1:0", "cross-region"): ("L-7C42E72A", "L-89F8391A"),
    ("amazon.nova-pro-v1:0", "on-demand"): ("L-CE33604C", "L-F2717A44"),
    ("amazon.nova-pro-v1:0", "cross-region"): ("L-C0326783", "L-ED46B8C5"),
    ("amazon.nova-2-lite-v1:0", "cross-region"): ("L-C6F5908D", "L-F06F1187"),
    ("amazon.nova-2-lite-v1:0", "global"): ("L-71C69B70", "L-D5F39C2F"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "cross-region"): ("L-58BE175A", "L-CCA5DF70"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "global"): ("L-9A11C666", "L-E5084BBA"),
    ("anthropic.claude-3-haiku-20240307-v1:0", "on-demand"): ("L-8CE99163", "L-2DC80978"),
    ("anthropic.claude-3-haiku-20240307-v1:0", "cross-region"): ("L-DCADBC78", "L-616A3F5B"),
    ("anthropic.claude-3-sonnet-20240229-v1:0", "on-demand"): ("L-4C35BB2A", "L-F406804E"),
    ("anthropic.claude-3-sonnet-20240229-v1:0", "cross-region"): ("L-5DF13F64", "L-46591118"),
    ("meta.llama3-1-8b-instruct-v1:0", "on-demand"): ("L-9E79C230", "L-19A2ED6C"),
    ("meta.llama3-1-8b-instruct-v1:0", "cross-region"): ("L-9782749C", "L-396C5302"),
    ("meta.llama3-1-70b-instruct-v1:0", "on-demand"): ("L-48E55E59", "L-ECA5B974"),
    ("meta.llama3-1-70b-instruct-v1:0", "cross-region"): ("L-92E68994", "L-29644EB3"),
    ("meta.llama3-3-70b-instruct-v1:0", "cross-region"): ("L-0E7AA8B7", "L-DEDE703C"),
    ("meta.llama3-8b-instruct-v1:0", "on-demand"): ("L-03A9B835", "L-320BEFEB"),
    ("meta.llama3-70b-instruct-v1:0", "on-demand"): ("L-609E24B0", "L-46D383AF"),
    ("amazon.titan-text-express-v1", "on-demand"): ("L-44992E63", "L-9EAB0D12"),
}
# What an unlimited fault knob reports: stand-ins of the order of the published defaults
# (our assumption; real defaults vary by model, Region and account age).
STANDIN_RPM = 2_000
STANDIN_TPM = 4_000_000
BATCH_MIN_RECORDS = 100  # "Minimum number of records per batch inference job for ${model}": 100 for most models
_SCOPES = {"on-demand": "On-demand", "cross-region": "Cross-region", "global": "Global cross-region"}


def _scopes(model: Any) -> list[tuple[str, str]]:
    """``(scope, invocation ID)`` pairs a catalog model can be invoked through."""
    out = [("on-demand", model.model_id)] if model.on_demand else []
    geo = next((p for p in model.profile_prefixes if p != "global"), None)
    if geo:
        out.append(("cross-region", f"{geo}.{model.model_id}"))
    if "global" in model.profile_prefixes:
        out.append(("global", f"global.{model.model_id}"))
    return out


def rate_quotas(region: str, faults: Any = None) -> list[Quota]:
    """The runtime rate quotas (and batch minimums) of every catalog model offered in ``region``.

    ``faults`` is the sandbox's :class:`~utils.sandbox.faults.Faults` (default: the latest one).
    """
    from utils.sandbox import catalog
    from utils.sandbox import faults as faults_module

    faults = faults if faults is not None else faults_module.latest()
    seen: set[str] = set()
    out: list[Quota] = []
    for name in catalog.CATALOGS:
        for model in catalog.Catalog(name).models(region):
            if model.base_id or model.model_id in seen:
                continue
            seen.add(model.model_id)
            display = f"{model.provider} {model.name}"
            for scope, invocation_id in _scopes(model):
                rpm, tpm = faults.limits(invocation_id) if faults is not None else (None, None)
                token_code, request_code = RATE_CODES.get((model.model_id, scope), (None, None))
                token_name = f"{_SCOPES[scope]} model inference tokens per minute for {display}"
                request_name = f"{_SCOPES[scope]} model inference requests per minute for {display}"
                out.append(Quota(token_code or _code(token_name), token_name, tpm or STANDIN_TPM))
                out.append(Quota(request_code or _code(request_name), request_name, rpm or STANDIN_RPM))
            batch = f"Minimum number of records per batch inference job for {model.name}"
            out.append(Quota(_code(batch), batch, BATCH_MIN_RECORDS, adjustable=False))
    return out


def all_quotas(region: str = DEFAULT_REGION, faults: Any = None) -> list[Quota]:
    """Every quota the sandbox lists in ``region``: the fixed ones, then the rate quotas."""
    return [*QUOTAS, *rate_quotas(region, faults)]


def _region(environ: dict[str, Any]) -> str:
    """The region from the SigV4 credential scope (``Credential=AKID/date/REGION/service/...``)."""
    match = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else DEFAULT_REGION


def _shape(quota: Quota, region: str, account: str, *, default: bool = False) -> dict[str, Any]:
    arn_account = "" if default else account
    return {
        "ServiceCode": SERVICE_CODE,
        "ServiceName": SERVICE_NAME,
        "QuotaArn": f"arn:aws:servicequotas:{region}:{arn_account}:{SERVICE_CODE}/{quota.code}",
        "QuotaCode": quota.code,
        "QuotaName": quota.name,
        "Value": float(quota.value),
        "Unit": quota.unit,
        "Adjustable": quota.adjustable,
        "GlobalQuota": quota.global_quota,
        "QuotaAppliedAtLevel": "ACCOUNT",
    }


def _error(code: str, message: str, status: int = 400) -> tuple[int, Headers, bytes]:
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return status, [("Content-Type", CONTENT_TYPE), ("x-amzn-ErrorType", code)], body


def _ok(payload: dict[str, Any]) -> tuple[int, Headers, bytes]:
    return 200, [("Content-Type", CONTENT_TYPE)], json.dumps(payload).encode()


def _read_body(environ: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length and "wsgi.input" in environ else b""
    return json.loads(raw or b"{}")


def _no_such_service(code: str) -> tuple[int, Headers, bytes]:
    return _error("NoSuchResourceException", f"The request failed because the specified service {code} does not exist.")


def _applied(quotas: list[Quota], values: dict[str, float] | None) -> list[Quota]:
    return [replace(q, value=values[q.code]) if values and q.code in values else q for q in quotas]


def handle(environ: dict[str, Any], *, account: str = DEFAULT_ACCOUNT,
           faults: Any = None, applied: dict[str, float] | None = None) -> tuple[int, Headers, bytes]:
    """Answer one Service Quotas request given as a WSGI environ.

    ``faults``: the sandbox's fault knobs, whose rpm/tpm the rate quotas report (default:
    the latest :class:`~utils.sandbox.faults.Faults` of this process).
    ``applied`` overrides the applied value of quotas by code (the sandbox's knobs, e.g. the
    concurrent job quota); the AWS default values (``GetAWSDefaultServiceQuota``) stay as listed.
    """
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    operation = target.removeprefix(TARGET_PREFIX)
    try:
        request = _read_body(environ)
    except (ValueError, UnicodeDecodeError):
        return _error("IllegalArgumentException", "The request body is not valid JSON.")
    region = _region(environ)
    service = request.get("ServiceCode", "")

    if operation in {"GetServiceQuota", "GetAWSDefaultServiceQuota"}:
        if not service or not request.get("QuotaCode"):
            return _error("IllegalArgumentException", "ServiceCode and QuotaCode are required.")
        if service != SERVICE_CODE:
            return _no_such_service(service)
        default = operation == "GetAWSDefaultServiceQuota"
        listed = all_quotas(region, faults)
        quota = next((q for q in (listed if default else _applied(listed, applied)) if q.code == request["QuotaCode"]), None)
        if quota is None:
            return _error(
                "NoSuchResourceException",
                f"The request failed because the specified quota {request['QuotaCode']} does not exist.",
            )
        return _ok({"Quota": _shape(quota, region, account, default=default)})

    if operation in {"ListServiceQuotas", "ListAWSDefaultServiceQuotas"}:
        if not service:
            return _error("IllegalArgumentException", "ServiceCode is required.")
        if service != SERVICE_CODE:
            return _no_such_service(service)
        try:
            max_results = int(request.get("MaxResults") or 100)
        except (TypeError, ValueError):
            return _error("IllegalArgumentException", "MaxResults must be an integer between 1 and 100.")
        max_results = max(1, min(max_results, 100))
        token = request.get("NextToken") or "0"
        listed = all_quotas(region, faults)
        if not isinstance(token, str) or not token.isdigit() or int(token) > len(listed):
            return _error("InvalidPaginationTokenException", "Invalid pagination token.")
        start = int(token)
        default = operation == "ListAWSDefaultServiceQuotas"
        page = (listed if default else _applied(listed, applied))[start:start + max_results]
        payload: dict[str, Any] = {"Quotas": [_shape(q, region, account, default=default) for q in page]}
        if start + max_results < len(listed):
            payload["NextToken"] = str(start + max_results)
        return _ok(payload)

    if operation == "ListServices":
        return _ok({"Services": [{"ServiceCode": SERVICE_CODE, "ServiceName": SERVICE_NAME}]})

    return _error("UnknownOperationException", f"Operation {operation or '(none)'} is not supported by the sandbox.")
