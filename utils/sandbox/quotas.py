"""A tiny Service Quotas emulator for the sandbox (JSON 1.1 protocol).

The sandbox server routes ``servicequotas`` requests here: :func:`handle` takes a
WSGI environ and returns ``(status, headers, body)``. It answers
``GetServiceQuota``, ``GetAWSDefaultServiceQuota`` and ``ListServiceQuotas``
(paginated) for ``ServiceCode="bedrock"`` with plausible values, and
``NoSuchResourceException`` for any other service code or an unknown quota code.

Values follow https://docs.aws.amazon.com/general/latest/gr/bedrock.html#limits_bedrock where a code is known
(L-0406044C concurrent customization jobs = 2, Titan Express records = 10,000).
Codes for the other models' record quotas are stand-ins derived from the quota
name (stable, ``L-`` plus 8 hex digits); match quotas by name for those.
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
    Quota(CONCURRENT_CUSTOMIZATION_JOBS, "Concurrent model customization jobs", 2),
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


def _applied(values: dict[str, float] | None) -> tuple[Quota, ...]:
    return tuple(replace(q, value=values[q.code]) if values and q.code in values else q for q in QUOTAS)


def handle(environ: dict[str, Any], *, account: str = DEFAULT_ACCOUNT,
           applied: dict[str, float] | None = None) -> tuple[int, Headers, bytes]:
    """Answer one Service Quotas request given as a WSGI environ.

    ``applied`` overrides the applied value of quotas by code (the sandbox's knobs); the AWS
    default values (``GetAWSDefaultServiceQuota``) stay as listed.
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
        quota = next((q for q in (QUOTAS if default else _applied(applied)) if q.code == request["QuotaCode"]), None)
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
        if not isinstance(token, str) or not token.isdigit() or int(token) > len(QUOTAS):
            return _error("InvalidPaginationTokenException", "Invalid pagination token.")
        start = int(token)
        default = operation == "ListAWSDefaultServiceQuotas"
        page = (QUOTAS if default else _applied(applied))[start:start + max_results]
        payload: dict[str, Any] = {"Quotas": [_shape(q, region, account, default=default) for q in page]}
        if start + max_results < len(QUOTAS):
            payload["NextToken"] = str(start + max_results)
        return _ok(payload)

    if operation == "ListServices":
        return _ok({"Services": [{"ServiceCode": SERVICE_CODE, "ServiceName": SERVICE_NAME}]})

    return _error("UnknownOperationException", f"Operation {operation or '(none)'} is not supported by the sandbox.")
