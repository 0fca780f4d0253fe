"""The sandbox's Bedrock: control-plane state and operations, plus runtime model resolution.

:class:`Bedrock` holds every emulated resource (customization jobs, custom models,
provisioned throughputs, custom model deployments, batch inference jobs, tags) and
implements each operation as a method taking the request's parsed parameters and
returning the response dict in botocore's output shape. Errors are raised as
:class:`ApiError` with the modeled error code and HTTP status; ``server.py`` turns
them into Bedrock's JSON error responses.

Lifecycles advance from wall-clock time multiplied by the ``time_scale`` knob:
:meth:`Bedrock.advance` runs on every request and from a light background ticker,
and writes artifacts (metric CSVs, batch outputs) *before* it publishes the status
that announces them. S3 and IAM live in moto; :class:`MotoBridge` reads and writes
them through moto's backends directly (imported lazily).

Behaviour choices where AWS does not document the exact answer are listed in
``utils/sandbox/README.md``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from utils import models as registry
from utils.sandbox import access, training
from utils.sandbox.catalog import (
    END_OF_LIFE,
    INVALID_MODEL_IDENTIFIER,
    ON_DEMAND_NOT_SUPPORTED,
    Catalog,
    FoundationModel,
)

# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------

# HTTP status of each modeled error (bedrock and bedrock-runtime service models).
ERROR_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "ConflictException": 400,
    "ServiceQuotaExceededException": 400,
    "TooManyTagsException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}


class ApiError(Exception):
    """A modeled Bedrock error: ``code`` (shape name), ``message`` and HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(code, 400)
        self.extra = extra


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFoundException", message)


class S3WriteError(Exception):
    """The service could not write an output object (bucket deleted, ...)."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__(f"{bucket}/{key}")
        self.bucket = bucket
        self.key = key

    @property
    def failure_message(self) -> str:
        return (
            "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access "
            f"S3 bucket: {self.bucket} at key {self.key}"
        )


INTERNAL_FAILURE = "Encountered an unexpected error when processing the request, please try again"


def _failure_message(exc: BaseException) -> str:
    return exc.failure_message if isinstance(exc, S3WriteError) else INTERNAL_FAILURE


def _log_internal(what: str, exc: BaseException) -> None:
    import sys
    import traceback

    print(f"sandbox: internal error advancing {what}: {exc!r}", file=sys.stderr, flush=True)
    traceback.print_exception(exc, file=sys.stderr)


# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id() -> str:
    """A 12-character lowercase alphanumeric resource ID, as in Bedrock ARNs."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def iso(ts: float | None) -> str | None:
    """Epoch seconds -> ISO 8601 UTC with milliseconds (botocore parses it tz-aware)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def to_epoch(value: Any) -> float | None:
    """A query-string timestamp (ISO 8601 or epoch seconds) -> epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise validation(f"Invalid timestamp {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    rest = uri[len("s3://"):] if uri.startswith("s3://") else uri
    bucket, _, key = rest.partition("/")
    return bucket, key


def paginate(items: list[Any], max_results: int | None, token: str | None) -> tuple[list[Any], str | None]:
    """A page of ``items`` and the opaque ``nextToken`` for the rest (None at the end)."""
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise validation("The provided pagination token is invalid.") from exc
        if not 0 <= start <= len(items):  # never issued: a token points inside the list it came from
            raise validation("The provided pagination token is invalid.")
    size = max_results or 1000
    page = items[start:start + size]
    end = start + size
    nxt = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return page, nxt


def sort_by_time(items: list[Any], attr: str, order: str | None) -> list[Any]:
    """Bedrock lists newest first unless ``sortOrder=Ascending``."""
    return sorted(items, key=lambda x: getattr(x, attr), reverse=(order or "Descending") != "Ascending")


def _created_filter(ts: float, after: Any, before: Any) -> bool:
    lo, hi = to_epoch(after), to_epoch(before)
    return (lo is None or ts > lo) and (hi is None or ts < hi)


# ---------------------------------------------------------------------------------------
# moto access (S3 objects, IAM roles)
# ---------------------------------------------------------------------------------------


class MotoBridge:
    """Direct access to moto's in-process S3 and IAM backends (no HTTP, no credentials)."""

    @property
    def account(self) -> str:
        from moto.core import DEFAULT_ACCOUNT_ID

        return DEFAULT_ACCOUNT_ID

    def _s3(self) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[self.account]["aws"]

    def _iam(self) -> Any:
        from utils.sandbox.iam_simulate import iam_backend

        return iam_backend()

    def bucket_region(self, bucket: str) -> str | None:
        try:
            return self._s3().get_bucket(bucket).region_name
        except Exception:  # noqa: BLE001 - moto raises MissingBucket
            return None

    def get_object(self, bucket: str, key: str) -> bytes | None:
        try:
            obj = self._s3().get_object(bucket, key)
        except Exception:  # noqa: BLE001 - MissingBucket / MissingKey
            return None
        return None if obj is None else bytes(obj.value)

    def put_object(self, bucket: str, key: str, data: bytes) -> None:
        """Write an object; :class:`S3WriteError` if moto refuses (e.g. the bucket is gone)."""
        try:
            self._s3().put_object(bucket, key, data)
        except Exception as exc:  # noqa: BLE001 - MissingBucket and friends
            raise S3WriteError(bucket, key) from exc

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        try:
            keys = self._s3().get_bucket(bucket).keys
        except Exception:  # noqa: BLE001
            return []
        return sorted(k for k in keys.keys() if k.startswith(prefix))

    def role(self, role_arn: str) -> Any | None:
        """The moto role an ARN names, if it exists in this account."""
        match = re.match(r"arn:aws[^:]*:iam::(\d{12})?:role/(.+)$", role_arn)
        if not match or (match.group(1) and match.group(1) != self.account):
            return None
        name = match.group(2).rsplit("/", 1)[-1]
        try:
            return self._iam().get_role(name)
        except Exception:  # noqa: BLE001 - NotFoundException
            return None

    @staticmethod
    def _document(raw: Any) -> dict[str, Any]:
        if isinstance(raw, dict):
            return raw
        text = str(raw or "")
        if text.startswith("%7B") or text.startswith("%7b"):
            from urllib.parse import unquote

            text = unquote(text)
        try:
            doc = json.loads(text)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    @staticmethod
    def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
        statements = doc.get("Statement", [])
        return [s for s in (statements if isinstance(statements, list) else [statements]) if isinstance(s, dict)]

    def trusts_bedrock(self, role: Any) -> bool:
        """Whether the role's trust policy lets ``bedrock.amazonaws.com`` assume it."""
        for st in self._statements(self._document(role.assume_role_policy_document)):
            if st.get("Effect") != "Allow":
                continue
            principal = st.get("Principal", {})
            services: Any = principal.get("Service", []) if isinstance(principal, dict) else principal
            services = services if isinstance(services, list) else [services]
            actions = st.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            if ("bedrock.amazonaws.com" in services or "*" in services) and any(
                fnmatchcase("sts:assumerole", str(a).lower()) for a in actions
            ):
                return True
        return False

    def reset(self) -> None:
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()


# ---------------------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------------------

TERMINAL_JOB = ("Completed", "Failed", "Stopped")
TERMINAL_BATCH = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")
NOVA_V1_BASES = ("amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0")


@dataclass
class CustomModel:
    arn: str
    name: str
    region: str
    base: FoundationModel
    base_model_arn: str  # the FM ARN, or the custom model a job continued from
    created: float
    job: CustomizationJob | None
    customization_type: str
    hyperparameters: dict[str, str]
    training_pairs: list[tuple[str, str]] = field(default_factory=list)
    kms_key: str | None = None
    # What its job's training did (``training.TrainingResult.outcome()``); drives the stand-in's adherence.
    training: dict[str, Any] | None = None
    # The stand-in's retrieval index and learned style (``standins.TrainedIndex``), built on first use.
    index: Any = None


@dataclass
class CustomizationJob:
    arn: str
    job_id: str
    name: str
    region: str
    base: FoundationModel
    base_model_arn: str
    model_name: str
    role_arn: str
    customization_type: str
    hyperparameters: dict[str, str]
    training_config: dict[str, Any]
    validation_config: dict[str, Any]
    output_config: dict[str, Any]
    created: float
    scale: float
    client_token: str | None = None
    customization_config: dict[str, Any] | None = None
    vpc_config: dict[str, Any] | None = None
    kms_key: str | None = None
    model_tags: dict[str, str] = field(default_factory=dict)
    parent: CustomModel | None = None
    status: str = "InProgress"
    failure_message: str | None = None
    modified: float = 0.0
    end_time: float | None = None
    stop_at: float | None = None
    stop_requested: float | None = None
    prepared: bool = False
    train_end: float | None = None
    result: training.TrainingResult | None = None
    pairs: list[tuple[str, str]] = field(default_factory=list)
    model: CustomModel | None = None

    # Phase boundaries in seconds after creation (scaled).
    @property
    def validation_end(self) -> float:
        return self.created + 0.3 * self.scale

    @property
    def processing_end(self) -> float:
        return self.created + 0.6 * self.scale


@dataclass
class ProvisionedThroughput:
    arn: str
    name: str
    region: str
    model_arn: str
    foundation_model_arn: str
    model_units: int
    commitment: str | None
    created: float
    ready_at: float
    target: CustomModel | FoundationModel
    status: str = "Creating"
    modified: float = 0.0
    desired_model_arn: str = ""
    desired_target: CustomModel | FoundationModel | None = None
    update_ready_at: float | None = None
    commitment_expires: float | None = None


@dataclass
class Deployment:
    arn: str
    name: str
    region: str
    model: CustomModel
    created: float
    ready_at: float
    description: str | None = None
    status: str = "Creating"
    updated: float | None = None
    update_model: CustomModel | None = None
    update_status: str | None = None
    update_ready_at: float | None = None


@dataclass
class InvocationJob:
    arn: str
    job_id: str
    name: str
    region: str
    model_id: str
    role_arn: str
    input_config: dict[str, Any]
    output_config: dict[str, Any]
    submitted: float
    scale: float
    invocation_type: str = "InvokeModel"
    timeout_hours: int = 24
    client_token: str | None = None
    vpc_config: dict[str, Any] | None = None
    status: str = "Submitted"
    message: str | None = None
    modified: float = 0.0
    end_time: float | None = None
    stop_at: float | None = None
    validated: bool = False
    files: list[str] = field(default_factory=list)
    total: int = 0
    processed: int = 0
    success: int = 0
    errors: int = 0
    running: bool = False  # its records are being run (outside the lock)

    def phase_end(self, index: int) -> float:
        """End of Submitted (0), Validating (1), Scheduled (2), InProgress (3)."""
        fractions = (0.2, 0.4, 0.6, 1.0 + min(2.0, self.total / 1000.0))
        return self.submitted + fractions[index] * self.scale


@dataclass
class Target:
    """A resolved runtime model: how to parse its body and how its stand-in behaves."""

    body: str
    behaviour: Any  # standins.ModelBehaviour
    fault_key: str
    model_name: str


@dataclass
class Config:
    """The admin knobs (see README)."""

    catalog: str = "current"
    time_scale: float = 1.0
    batch_min_records: int = 100
    legacy_models: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "time_scale": self.time_scale,
            "batch_min_records": self.batch_min_records,
            "legacy_models": dict(self.legacy_models),
        }


# ---------------------------------------------------------------------------------------
# The emulated service
# ---------------------------------------------------------------------------------------


class Bedrock:
    """All Bedrock state of one sandbox, guarded by one re-entrant lock."""

    def __init__(self, config: Config | None = None, moto: MotoBridge | None = None) -> None:
        from utils.sandbox.faults import Faults

        self.lock = threading.RLock()
        self.config = config or Config()
        self.moto = moto or MotoBridge()
        self.faults = Faults()
        self.catalog = Catalog(self.config.catalog, self.config.legacy_models)
        self.account_access = access.AccountAccess()
        self._clear()

    def _clear(self) -> None:
        self.jobs: dict[str, CustomizationJob] = {}
        self.models: dict[str, CustomModel] = {}
        self.throughputs: dict[str, ProvisionedThroughput] = {}
        self.deployments: dict[str, Deployment] = {}
        self.batch_jobs: dict[str, InvocationJob] = {}
        self.tags: dict[str, dict[str, str]] = {}
        # Runtime calls served, per model ID: what a real account would be billed for.
        self.usage: dict[str, dict[str, int]] = {}

    @property
    def account(self) -> str:
        return self.moto.account

    # ---- admin -------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self._clear()
            self.faults.reset()
            self.moto.reset()
            self.account_access.reset()

    def configure(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """Apply admin knobs; unknown keys or bad values raise ``ValueError`` and change nothing.

        Every knob is validated before any is applied, so a rejected request never leaves
        a half-applied configuration.
        """
        from dataclasses import replace

        from utils.sandbox.faults import Faults

        with self.lock:
            config = replace(self.config, legacy_models=dict(self.config.legacy_models))
            fault_updates: list[dict[str, Any]] = []
            access_updates: dict[str, Any] = {}
            for key, value in knobs.items():
                if key == "catalog":
                    Catalog(str(value))  # ValueError for an unknown catalog
                    config.catalog = str(value)
                elif key == "time_scale":
                    scale = float(value)
                    if scale < 0:
                        raise ValueError("time_scale must be >= 0")
                    config.time_scale = scale
                elif key == "batch_min_records":
                    config.batch_min_records = max(0, int(value))
                elif key == "legacy_models":
                    config.legacy_models = _legacy_knob(value)
                elif key == "faults":
                    fault_updates.append(value if isinstance(value, dict) else {"profile": value})
                elif key == "latency":
                    fault_updates.append({"latency_ms": float(value) * 1000.0})
                elif key == "latency_ms":
                    fault_updates.append({"latency_ms": value})
                elif key in access.KNOBS:
                    access_updates[key] = access.AccountAccess.validate(key, value)
                else:
                    raise ValueError(f"unknown sandbox knob {key!r}")
            faults = None
            if fault_updates:
                faults = Faults()
                faults.configure(self.faults.settings())
                for update in fault_updates:
                    faults.configure(update)
            catalog = Catalog(config.catalog, config.legacy_models)
            # Everything is valid: apply.
            self.config, self.catalog = config, catalog
            self.account_access.update(access_updates)
            if faults is not None:
                self.faults.configure(faults.settings())
            return self.settings()

    def settings(self) -> dict[str, Any]:
        return {**self.config.as_dict(), **self.account_access.settings(), "faults": self.faults.settings()}

    def usage_snapshot(self) -> dict[str, dict[str, int]]:
        """A copy of the per-model usage counters, taken under the lock."""
        with self.lock:
            return {model: dict(counts) for model, counts in self.usage.items()}

    # ---- ARNs ----------------------------------------------------------------------------
    def arn(self, region: str, resource: str) -> str:
        return f"arn:aws:bedrock:{region}:{self.account}:{resource}"

    # ---- lifecycle -----------------------------------------------------------------------
    def advance(self, now: float | None = None) -> None:
        """Move every resource along its lifecycle up to ``now``."""
        now = time.time() if now is None else now
        with self.lock:
            for job in list(self.jobs.values()):
                self._advance_job_safely(job, now)
            for pt in list(self.throughputs.values()):
                try:
                    self._advance_throughput(pt, now)
                except Exception as exc:  # noqa: BLE001 - one resource must not break every request
                    _log_internal(f"provisioned throughput {pt.arn}", exc)
            for dep in list(self.deployments.values()):
                try:
                    self._advance_deployment(dep, now)
                except Exception as exc:  # noqa: BLE001
                    _log_internal(f"deployment {dep.arn}", exc)
            due = []
            for batch in list(self.batch_jobs.values()):
                self._advance_batch_safely(batch, now)
                if batch.status == "InProgress" and not batch.running and now >= batch.phase_end(3):
                    batch.running = True
                    due.append(batch)
        # Batch records run outside the lock (a big job must not stall other requests); the
        # results are published under it.
        for batch in due:
            self._execute_batch(batch)

    @staticmethod
    def _advance_throughput(pt: ProvisionedThroughput, now: float) -> None:
        if pt.status == "Creating" and now >= pt.ready_at:
            pt.status, pt.modified = "InService", pt.ready_at
        if pt.status == "Updating" and pt.update_ready_at is not None and now >= pt.update_ready_at:
            pt.status, pt.modified = "InService", pt.update_ready_at
            if pt.desired_target is not None:
                pt.target, pt.model_arn = pt.desired_target, pt.desired_model_arn
                pt.desired_target = None

    @staticmethod
    def _advance_deployment(dep: Deployment, now: float) -> None:
        if dep.status == "Creating" and now >= dep.ready_at:
            dep.status, dep.updated = "Active", dep.ready_at
        if dep.update_status == "Updating" and dep.update_ready_at is not None and now >= dep.update_ready_at:
            dep.model = dep.update_model or dep.model
            dep.update_status, dep.updated = "UpdateCompleted", dep.update_ready_at

    def _advance_job_safely(self, job: CustomizationJob, now: float) -> None:
        """``_advance_job``; an error (e.g. the output bucket deleted mid-job) fails only this job."""
        try:
            self._advance_job(job, now)
        except Exception as exc:  # noqa: BLE001 - never let one job's error reach other requests
            if job.status in TERMINAL_JOB:
                _log_internal(f"customization job {job.arn}", exc)
                return
            at = job.train_end if job.prepared and job.train_end is not None else min(now, job.validation_end)
            self._fail(job, _failure_message(exc), max(job.created, min(at, now)))
            if not isinstance(exc, S3WriteError):
                _log_internal(f"customization job {job.arn}", exc)

    def _advance_batch_safely(self, job: InvocationJob, now: float) -> None:
        """``_advance_batch``; an error fails only this batch job."""
        try:
            self._advance_batch(job, now)
        except Exception as exc:  # noqa: BLE001 - never let one job's error reach other requests
            if job.status in TERMINAL_BATCH:
                _log_internal(f"batch job {job.arn}", exc)
                return
            at = min(now, job.phase_end(3))
            job.status, job.message = "Failed", _failure_message(exc)
            job.end_time = job.modified = max(job.modified, at)
            if not isinstance(exc, S3WriteError):
                _log_internal(f"batch job {job.arn}", exc)

    # ====================================================================================
    # Foundation models and inference profiles
    # ====================================================================================
    def list_foundation_models(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        out = []
        for model in self.catalog.models(region):
            if p.get("byProvider") and p["byProvider"].lower() != model.provider.lower():
                continue
            if p.get("byCustomizationType") and p["byCustomizationType"] not in model.customizations:
                continue
            if p.get("byInferenceType") and p["byInferenceType"] not in model.inference_types:
                continue
            if p.get("byOutputModality") and p["byOutputModality"] not in model.output_modalities:
                continue
            out.append(self.catalog.summary(model, region))
        return {"modelSummaries": out}

    def _foundation_model(self, region: str, identifier: str) -> FoundationModel:
        model = self.catalog.model(region, identifier)
        if model is None:
            raise validation(INVALID_MODEL_IDENTIFIER)
        return model

    def get_foundation_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        model = self._foundation_model(region, p["modelIdentifier"])
        return {"modelDetails": self.catalog.summary(model, region)}

    def get_foundation_model_availability(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        model = self._foundation_model(region, p["modelId"])
        with self.lock:
            return self.account_access.availability(model.model_id, time.time())

    def list_inference_profiles(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        kind = p.get("typeEquals")
        items = [] if kind == "APPLICATION" else self.catalog.profiles(region)
        page, nxt = paginate(items, p.get("maxResults"), p.get("nextToken"))
        out: dict[str, Any] = {
            "inferenceProfileSummaries": [self.catalog.profile_summary(x, region, self.account) for x in page]
        }
        if nxt:
            out["nextToken"] = nxt
        return out

    def get_inference_profile(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        profile = self.catalog.profile(region, p["inferenceProfileIdentifier"])
        if profile is None:
            raise not_found(f"Inference profile {p['inferenceProfileIdentifier']} not found.")
        return self.catalog.profile_summary(profile, region, self.account)

    # ====================================================================================
    # Model customization jobs
    # ====================================================================================
    def _find_job(self, region: str, identifier: str) -> CustomizationJob:
        for job in self.jobs.values():
            if job.region == region and identifier in (job.arn, job.name):
                return job
        raise not_found(f"Could not find model customization job with identifier {identifier}.")

    def _resolve_base(self, region: str, identifier: str, ctype: str) -> tuple[FoundationModel, str, CustomModel | None]:
        """(foundation model variant, baseModelArn, parent custom model) for a job's base."""
        parent = self._maybe_custom_model(region, identifier)
        if parent is not None:
            return parent.base, parent.arn, parent
        model = self.catalog.model(region, identifier)
        if model is None:
            raise validation(INVALID_MODEL_IDENTIFIER)
        if ctype not in model.customizations:
            raise validation(
                f"The base model {model.model_id} does not support customization type {ctype} in "
                f"region {region}."
            )
        return model, model.arn(region), None

    def _validate_hyperparameters(self, base: FoundationModel, given: dict[str, str]) -> None:
        try:
            family = registry.family_of(base.model_id)
        except KeyError as exc:
            raise validation(INVALID_MODEL_IDENTIFIER) from exc
        table = {hp.name: hp for hp in registry.HYPERPARAMETERS.get(family, ())}
        for name, raw in given.items():
            hp = table.get(name)
            if hp is None:
                raise validation(
                    f"Hyperparameter {name} is not supported for base model {base.model_id}. "
                    f"Supported hyperparameters: {', '.join(table)}."
                )
            try:
                value: float = int(raw) if hp.kind is int else float(raw)
            except (TypeError, ValueError) as exc:
                kind = "an integer" if hp.kind is int else "a number"
                raise validation(f"Hyperparameter {name} must be {kind}, but got '{raw}'.") from exc
            if not hp.minimum <= value <= hp.maximum:
                raise validation(
                    f"Hyperparameter {name} with value {raw} is out of range. "
                    f"Valid range for {base.model_id}: [{_num(hp.minimum)}, {_num(hp.maximum)}]."
                )

    def create_model_customization_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            token = p.get("clientRequestToken")
            if token:
                for job in self.jobs.values():
                    if job.client_token == token and job.region == region:
                        return {"jobArn": job.arn}
            ctype = p.get("customizationType") or "FINE_TUNING"
            if ctype in ("REINFORCEMENT_FINE_TUNING", "IMPORTED"):
                raise validation(f"Customization type {ctype} is not supported for this base model.")
            base, base_arn, parent = self._resolve_base(region, p["baseModelIdentifier"], ctype)
            hyper = dict(p.get("hyperParameters") or {})
            self._validate_hyperparameters(base, hyper)
            training_config = p.get("trainingDataConfig") or {}
            if not training_config.get("s3Uri") and not training_config.get("invocationLogsConfig"):
                raise validation("trainingDataConfig must specify s3Uri or invocationLogsConfig.")
            if training_config.get("invocationLogsConfig"):
                raise validation("The sandbox does not emulate training from invocation logs; use s3Uri.")
            customization_config = p.get("customizationConfig")
            if ctype == "DISTILLATION":
                teacher = ((customization_config or {}).get("distillationConfig") or {}).get("teacherModelConfig")
                if not teacher:
                    raise validation("customizationConfig.distillationConfig is required for DISTILLATION jobs.")
                self.resolve_runtime(region, teacher["teacherModelIdentifier"])
            for job in self.jobs.values():
                if job.region == region and job.name == p["jobName"]:
                    raise validation("The provided job name is currently in use.")
            if any(m.region == region and m.name == p["customModelName"] for m in self.models.values()) or any(
                j.region == region and j.model_name == p["customModelName"] and j.status in ("InProgress", "Stopping")
                for j in self.jobs.values()
            ):
                raise validation("The provided custom model name is currently in use.")
            tags = _tag_dict(p.get("jobTags"))
            model_tags = _tag_dict(p.get("customModelTags"))
            job_id = new_id()
            job_arn = self.arn(region, f"model-customization-job/{base.model_id}/{job_id}")
            refusal = access.assume_refusal(self.moto.role(p["roleArn"]), self.account, job_arn)
            if refusal:
                raise validation(refusal)
            now = time.time()
            job = CustomizationJob(
                arn=job_arn,
                job_id=job_id, name=p["jobName"], region=region, base=base, base_model_arn=base_arn,
                model_name=p["customModelName"], role_arn=p["roleArn"], customization_type=ctype,
                hyperparameters=hyper, training_config=training_config,
                validation_config=p.get("validationDataConfig") or {"validators": []},
                output_config=p["outputDataConfig"], created=now, modified=now,
                scale=self.config.time_scale, client_token=token,
                customization_config=customization_config, vpc_config=p.get("vpcConfig"),
                kms_key=p.get("customModelKmsKeyId"), model_tags=model_tags, parent=parent,
            )
            self.jobs[job.arn] = job
            if tags:
                self.tags[job.arn] = tags
            return {"jobArn": job.arn}

    def get_model_customization_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = self._find_job(region, p["jobIdentifier"])
            out: dict[str, Any] = {
                "jobArn": job.arn,
                "jobName": job.name,
                "outputModelName": job.model_name,
                "roleArn": job.role_arn,
                "status": job.status,
                "statusDetails": self._status_details(job),
                "creationTime": iso(job.created),
                "lastModifiedTime": iso(job.modified),
                "baseModelArn": job.base_model_arn,
                "hyperParameters": job.hyperparameters,
                "trainingDataConfig": job.training_config,
                "validationDataConfig": job.validation_config,
                "outputDataConfig": job.output_config,
                "customizationType": job.customization_type,
            }
            if job.client_token:
                out["clientRequestToken"] = job.client_token
            if job.model is not None:
                out["outputModelArn"] = job.model.arn
            if job.failure_message:
                out["failureMessage"] = job.failure_message
            if job.end_time is not None:
                out["endTime"] = iso(job.end_time)
            if job.kms_key:
                out["outputModelKmsKeyArn"] = job.kms_key
            out.update(self._metrics(job))
            if job.vpc_config:
                out["vpcConfig"] = job.vpc_config
            if job.customization_config:
                out["customizationConfig"] = job.customization_config
            return out

    @staticmethod
    def _metrics(job: CustomizationJob) -> dict[str, Any]:
        if job.status != "Completed" or job.result is None:
            return {}
        out: dict[str, Any] = {"trainingMetrics": {"trainingLoss": job.result.final_training_loss}}
        val = job.result.final_validation_loss
        out["validationMetrics"] = [] if val is None else [
            {"validationLoss": val} for _ in job.validation_config.get("validators", [])
        ]
        return out

    def _status_details(self, job: CustomizationJob) -> dict[str, Any]:
        """Sub-statuses of the validation, data-processing and training phases.

        A stopped (or stopping) job froze at its stop request: phases that had finished are
        ``Completed``, the running one shows the job's status, later ones ``NotStarted``.
        No phase is modified after the job's ``endTime``.
        """
        phases = (
            ("validationDetails", job.created, job.validation_end),
            ("dataProcessingDetails", job.validation_end, job.processing_end),
            ("trainingDetails", job.processing_end, job.train_end),
        )
        now = time.time()
        horizon = now if job.end_time is None else min(now, job.end_time)
        stopped = job.status in ("Stopping", "Stopped")
        frozen = job.stop_requested if stopped and job.stop_requested is not None else None
        out: dict[str, Any] = {}
        for key, start, end in phases:
            if job.status == "Failed":
                status = "Failed" if key == "validationDetails" else "NotStarted"
                if job.prepared and key != "validationDetails":
                    status = "Completed" if key == "dataProcessingDetails" else "Failed"
            elif frozen is not None:
                if frozen < start:
                    status = "NotStarted"
                elif end is not None and frozen >= end:
                    status = "Completed"
                else:
                    status = job.status
            elif now < start:
                status = "NotStarted"
            elif end is not None and now >= end:
                status = "Completed"
            else:
                status = "InProgress"
            entry: dict[str, Any] = {"status": status}
            if status != "NotStarted":
                last = horizon if end is None else min(horizon, end)
                entry["creationTime"] = iso(start)
                entry["lastModifiedTime"] = iso(max(start, last))
            out[key] = entry
        return out

    def list_model_customization_jobs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            jobs = [
                j for j in self.jobs.values()
                if j.region == region
                and _created_filter(j.created, p.get("creationTimeAfter"), p.get("creationTimeBefore"))
                and (not p.get("statusEquals") or j.status == p["statusEquals"])
                and (not p.get("nameContains") or p["nameContains"] in j.name)
            ]
            page, nxt = paginate(sort_by_time(jobs, "created", p.get("sortOrder")), p.get("maxResults"), p.get("nextToken"))
            summaries = []
            for j in page:
                item: dict[str, Any] = {
                    "jobArn": j.arn, "baseModelArn": j.base_model_arn, "jobName": j.name,
                    "status": j.status, "statusDetails": self._status_details(j),
                    "lastModifiedTime": iso(j.modified), "creationTime": iso(j.created),
                    "customModelName": j.model_name, "customizationType": j.customization_type,
                }
                if j.end_time is not None:
                    item["endTime"] = iso(j.end_time)
                if j.model is not None:
                    item["customModelArn"] = j.model.arn
                summaries.append(item)
            out: dict[str, Any] = {"modelCustomizationJobSummaries": summaries}
            if nxt:
                out["nextToken"] = nxt
            return out

    def stop_model_customization_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = self._find_job(region, p["jobIdentifier"])
            self._advance_job_safely(job, time.time())
            if job.status != "InProgress":
                raise ApiError(
                    "ConflictException",
                    f"The model customization job {job.name} cannot be stopped because its status is {job.status}.",
                )
            now = time.time()
            job.status, job.modified, job.stop_requested = "Stopping", now, now
            job.stop_at = now + 0.3 * job.scale
            return {}

    # ---- job lifecycle -----------------------------------------------------------------
    def _fail(self, job: CustomizationJob, message: str, at: float) -> None:
        job.status, job.failure_message, job.end_time, job.modified = "Failed", message, at, at

    def _advance_job(self, job: CustomizationJob, now: float) -> None:
        if job.status in TERMINAL_JOB:
            return
        if job.status == "Stopping":
            if job.stop_at is not None and now >= job.stop_at:
                job.status, job.end_time, job.modified = "Stopped", job.stop_at, job.stop_at
            return
        if not job.prepared and now >= job.validation_end:
            message = self._prepare_job(job)
            if message:
                self._fail(job, message, job.validation_end)
                return
            job.modified = job.validation_end
        if job.prepared and job.train_end is not None and now >= job.train_end:
            self._complete_job(job)

    def _check_role(self, role_arn: str) -> tuple[Any | None, str | None]:
        role = self.moto.role(role_arn)
        if role is None or not self.moto.trusts_bedrock(role):
            return None, (
                f"Could not assume provided IAM role {role_arn}. Make sure the role exists and its "
                "trust policy allows bedrock.amazonaws.com to assume it (sts:AssumeRole)."
            )
        return role, None

    def _check_read(self, role: Any, region: str, uri: str) -> tuple[bytes | None, str | None]:
        bucket, key = split_s3(uri)
        denied = f"Could not validate GetObject permissions to access Amazon S3 bucket: {bucket} at key {key}"
        bucket_region = self.moto.bucket_region(bucket)
        if bucket_region is None:
            return None, denied
        if bucket_region != region:
            return None, (
                f"The Amazon S3 bucket {bucket} is in region {bucket_region}, but the job runs in "
                f"{region}. Training, validation and output data must be in a bucket in the same region."
            )
        if not access.s3_read_allowed(role, bucket, key):
            return None, denied
        data = self.moto.get_object(bucket, key)
        if data is None:
            return None, denied
        return data, None

    def _check_write(self, role: Any, region: str, uri: str, *, write_probe: bool = False) -> str | None:
        bucket, prefix = split_s3(uri)
        probe = f"{prefix.rstrip('/')}/.write_access_check_file.tmp" if prefix.strip("/") else ".write_access_check_file.tmp"
        denied = (
            "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access "
            f"S3 bucket: {bucket} at key {probe}"
        )
        bucket_region = self.moto.bucket_region(bucket)
        if bucket_region is None:
            return denied
        if bucket_region != region:
            return (
                f"The Amazon S3 bucket {bucket} is in region {bucket_region}, but the job runs in "
                f"{region}. Training, validation and output data must be in a bucket in the same region."
            )
        if not access.s3_write_allowed(role, bucket, probe):
            return denied
        if write_probe:  # the service proves the permission by writing the probe (bedrock-api.md §2.3)
            try:
                self.moto.put_object(bucket, probe, b"")
            except S3WriteError:
                return denied
        return None

    def _prepare_job(self, job: CustomizationJob) -> str | None:
        """Asynchronous checks, data parsing and the training simulation. Returns a failure message."""
        role, message = self._check_role(job.role_arn)
        if message:
            return message
        train_uri = job.training_config["s3Uri"]
        train_data, message = self._check_read(role, job.region, train_uri)
        if message:
            return message
        validation_files: list[tuple[str, bytes]] = []
        for validator in job.validation_config.get("validators", []):
            data, message = self._check_read(role, job.region, validator["s3Uri"])
            if message:
                return message
            validation_files.append((validator["s3Uri"], data or b""))
        message = self._check_write(role, job.region, job.output_config["s3Uri"], write_probe=True)
        if message:
            return message
        assert train_data is not None
        message, train_count = _validate_data(job, train_uri, train_data, "train")
        if message:
            return message
        val_count = 0
        for uri, data in validation_files:
            message, count = _validate_data(job, uri, data, "validation")
            if message:
                return message
            val_count += count
        message = _validate_combined_counts(job, train_count, val_count)
        if message:
            return message
        records = _records(train_data)
        val_records = [r for _, data in validation_files for r in _records(data)]
        pairs, texts = _pairs_and_texts(records)
        if job.customization_type == "DISTILLATION":
            pairs = self._teacher_pairs(job, pairs)
            texts = [t for pair in pairs for t in pair]
        from utils.sandbox.standins import count_tokens

        train_lengths = [count_tokens(" ".join(_pairs_and_texts([r])[1])) for r in records]
        val_lengths = [count_tokens(" ".join(_pairs_and_texts([r])[1])) for r in val_records]
        family = registry.family_of(job.base.model_id)
        seed_source = train_data + json.dumps(job.hyperparameters, sort_keys=True).encode()
        seed = int.from_bytes(hashlib.sha256(seed_source).digest()[:8], "big")
        job.result = training.simulate(training.TrainingInputs(
            family=family, train_lengths=train_lengths, validation_lengths=val_lengths,
            text="\n".join(texts), hyperparameters=job.hyperparameters, seed=seed,
        ))
        parent_pairs = job.parent.training_pairs if job.parent is not None else []
        job.pairs = parent_pairs + pairs
        planned = max(1, job.result.planned_steps)
        training_time = (1.4 + 2.0 * min(1.0, planned / 20000.0)) * job.result.steps / planned
        job.train_end = job.processing_end + training_time * job.scale
        job.prepared = True
        return None

    def _teacher_pairs(self, job: CustomizationJob, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Distillation: the teacher's stand-in answers each prompt of the data set."""
        from utils.sandbox import bodies, standins

        teacher_id = job.customization_config["distillationConfig"]["teacherModelConfig"]["teacherModelIdentifier"]
        target = self.resolve_runtime(job.region, teacher_id)
        max_tokens = int(
            job.customization_config["distillationConfig"]["teacherModelConfig"].get("maxResponseLengthForInference")
            or 1000
        )
        out = []
        for prompt_text, _ in pairs:
            prompt = bodies.Prompt(system="", messages=[("user", prompt_text)], max_tokens=max_tokens)
            out.append((prompt_text, standins.generate(prompt, target.behaviour).text))
        return out

    def _complete_job(self, job: CustomizationJob) -> None:
        """Write the metric CSVs, then create the custom model, then publish Completed."""
        assert job.result is not None and job.train_end is not None
        bucket, prefix = split_s3(job.output_config["s3Uri"])
        folder = f"{prefix.strip('/')}/model-customization-job-{job.job_id}".lstrip("/")
        self.moto.put_object(
            bucket, f"{folder}/training_artifacts/step_wise_training_metrics.csv", job.result.training_csv()
        )
        if job.result.validation_rows:
            self.moto.put_object(
                bucket,
                f"{folder}/validation_artifacts/post_fine_tuning_validation/validation/validation_metrics.csv",
                job.result.validation_csv(),
            )
        model = CustomModel(
            arn=self.arn(job.region, f"custom-model/{job.base.model_id}/{new_id()}"),
            name=job.model_name, region=job.region, base=job.base, base_model_arn=job.base_model_arn,
            created=job.train_end, job=job, customization_type=job.customization_type,
            hyperparameters=job.hyperparameters, training_pairs=job.pairs, kms_key=job.kms_key,
            training=job.result.outcome(),
        )
        self.models[model.arn] = model
        if job.model_tags:
            self.tags[model.arn] = dict(job.model_tags)
        job.model = model
        job.status, job.end_time, job.modified = "Completed", job.train_end, job.train_end

    # ====================================================================================
    # Custom models
    # ====================================================================================
    def _maybe_custom_model(self, region: str, identifier: str) -> CustomModel | None:
        for model in self.models.values():
            if model.region == region and identifier in (model.arn, model.name):
                return model
        return None

    def _custom_model(self, region: str, identifier: str) -> CustomModel:
        model = self._maybe_custom_model(region, identifier)
        if model is None:
            raise not_found(f"Could not find custom model with identifier {identifier}.")
        return model

    def get_custom_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            m = self._custom_model(region, p["modelIdentifier"])
            out: dict[str, Any] = {
                "modelArn": m.arn, "modelName": m.name, "baseModelArn": m.base_model_arn,
                "customizationType": m.customization_type, "hyperParameters": m.hyperparameters,
                "creationTime": iso(m.created), "modelStatus": "Active",
            }
            if m.job is not None:
                out.update({
                    "jobName": m.job.name, "jobArn": m.job.arn,
                    "trainingDataConfig": m.job.training_config,
                    "validationDataConfig": m.job.validation_config,
                    "outputDataConfig": m.job.output_config,
                })
                out.update(self._metrics(m.job))
                if m.job.customization_config:
                    out["customizationConfig"] = m.job.customization_config
            if m.kms_key:
                out["modelKmsKeyArn"] = m.kms_key
            return out

    def list_custom_models(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            items = [
                m for m in self.models.values()
                if m.region == region
                and _created_filter(m.created, p.get("creationTimeAfter"), p.get("creationTimeBefore"))
                and (not p.get("nameContains") or p["nameContains"] in m.name)
                and (not p.get("baseModelArnEquals") or p["baseModelArnEquals"] == m.base_model_arn)
                and (not p.get("foundationModelArnEquals") or p["foundationModelArnEquals"] == m.base.arn(region))
                and (not p.get("modelStatus") or p["modelStatus"] == "Active")
            ]
            page, nxt = paginate(sort_by_time(items, "created", p.get("sortOrder")), p.get("maxResults"), p.get("nextToken"))
            out: dict[str, Any] = {"modelSummaries": [
                {
                    "modelArn": m.arn, "modelName": m.name, "creationTime": iso(m.created),
                    "baseModelArn": m.base_model_arn, "baseModelName": m.base.name,
                    "customizationType": m.customization_type, "ownerAccountId": self.account,
                    "modelStatus": "Active",
                }
                for m in page
            ]}
            if nxt:
                out["nextToken"] = nxt
            return out

    def delete_custom_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            m = self._custom_model(region, p["modelIdentifier"])
            users = [pt.name for pt in self.throughputs.values() if pt.target is m or pt.desired_target is m]
            users += [d.name for d in self.deployments.values() if d.model is m or d.update_model is m]
            if users:
                raise ApiError(
                    "ConflictException",
                    f"The custom model {m.name} is in use by {', '.join(users)}. Delete those first.",
                )
            del self.models[m.arn]
            self.tags.pop(m.arn, None)
            return {}

    # ====================================================================================
    # Provisioned throughput
    # ====================================================================================
    def _throughput(self, region: str, identifier: str) -> ProvisionedThroughput:
        for pt in self.throughputs.values():
            if pt.region == region and identifier in (pt.arn, pt.name):
                return pt
        raise not_found(f"Could not find provisioned model with identifier {identifier}.")

    def _pt_target(self, region: str, identifier: str) -> tuple[CustomModel | FoundationModel, str, str]:
        """(target, modelArn, foundationModelArn) for a PT's modelId."""
        custom = self._maybe_custom_model(region, identifier)
        if custom is not None:
            return custom, custom.arn, custom.base.arn(region)
        model = self.catalog.model(region, identifier)
        if model is None:
            raise validation(INVALID_MODEL_IDENTIFIER)
        if not model.provisioned:
            raise validation(f"The model {model.model_id} doesn't support Provisioned Throughput.")
        return model, model.arn(region), model.arn(region)

    def create_provisioned_model_throughput(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            token = p.get("clientRequestToken")
            if token:
                for pt in self.throughputs.values():
                    if getattr(pt, "client_token", None) == token:
                        return {"provisionedModelArn": pt.arn}
            target, model_arn, fm_arn = self._pt_target(region, p["modelId"])
            base = target.base if isinstance(target, CustomModel) else target
            if self.catalog.status(base) == "LEGACY":
                raise validation(
                    f"Provisioned Throughput can't be purchased for {base.model_id} because the model "
                    "is in the Legacy lifecycle state."
                )
            commitment = p.get("commitmentDuration")
            if commitment is None and not isinstance(target, CustomModel):
                raise validation(
                    "Provisioned Throughput without a commitment is available only for custom models. "
                    "Specify commitmentDuration (OneMonth or SixMonths)."
                )
            if any(pt.region == region and pt.name == p["provisionedModelName"] for pt in self.throughputs.values()):
                raise validation(f"A provisioned model with name {p['provisionedModelName']} already exists.")
            now = time.time()
            pt = ProvisionedThroughput(
                arn=self.arn(region, f"provisioned-model/{new_id()}"), name=p["provisionedModelName"],
                region=region, model_arn=model_arn, foundation_model_arn=fm_arn,
                model_units=int(p["modelUnits"]), commitment=commitment, created=now,
                ready_at=now + 1.0 * self.config.time_scale, target=target, modified=now,
                desired_model_arn=model_arn,
            )
            if commitment:
                pt.commitment_expires = now + (30 if commitment == "OneMonth" else 182) * 86400
            pt.client_token = token  # type: ignore[attr-defined]
            self.throughputs[pt.arn] = pt
            if p.get("tags"):
                self.tags[pt.arn] = _tag_dict(p["tags"])
            return {"provisionedModelArn": pt.arn}

    def _pt_dict(self, pt: ProvisionedThroughput) -> dict[str, Any]:
        out: dict[str, Any] = {
            "modelUnits": pt.model_units, "desiredModelUnits": pt.model_units,
            "provisionedModelName": pt.name, "provisionedModelArn": pt.arn,
            "modelArn": pt.model_arn, "desiredModelArn": pt.desired_model_arn,
            "foundationModelArn": pt.foundation_model_arn, "status": pt.status,
            "creationTime": iso(pt.created), "lastModifiedTime": iso(pt.modified),
        }
        if pt.commitment:
            out["commitmentDuration"] = pt.commitment
            out["commitmentExpirationTime"] = iso(pt.commitment_expires)
        return out

    def get_provisioned_model_throughput(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self._pt_dict(self._throughput(region, p["provisionedModelId"]))

    def list_provisioned_model_throughputs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            items = [
                pt for pt in self.throughputs.values()
                if pt.region == region
                and _created_filter(pt.created, p.get("creationTimeAfter"), p.get("creationTimeBefore"))
                and (not p.get("statusEquals") or pt.status == p["statusEquals"])
                and (not p.get("modelArnEquals") or pt.model_arn == p["modelArnEquals"])
                and (not p.get("nameContains") or p["nameContains"] in pt.name)
            ]
            page, nxt = paginate(sort_by_time(items, "created", p.get("sortOrder")), p.get("maxResults"), p.get("nextToken"))
            out: dict[str, Any] = {"provisionedModelSummaries": [self._pt_dict(pt) for pt in page]}
            if nxt:
                out["nextToken"] = nxt
            return out

    def update_provisioned_model_throughput(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            pt = self._throughput(region, p["provisionedModelId"])
            new_name = p.get("desiredProvisionedModelName")
            if new_name and new_name != pt.name:
                if any(o.region == region and o.name == new_name for o in self.throughputs.values()):
                    raise validation(f"A provisioned model with name {new_name} already exists.")
                pt.name = new_name
            if p.get("desiredModelId"):
                if not isinstance(pt.target, CustomModel):
                    raise validation("desiredModelId can be changed only for a Provisioned Throughput of a custom model.")
                target, model_arn, _ = self._pt_target(region, p["desiredModelId"])
                target_base = target.base if isinstance(target, CustomModel) else target
                if target_base.model_id != pt.target.base.model_id:
                    raise validation(
                        "The desired model must be the base model of the current custom model or another "
                        "custom model customized from the same base model."
                    )
                if pt.status != "InService":
                    raise validation(f"The provisioned model {pt.name} is {pt.status}; wait until it is InService.")
                pt.desired_target, pt.desired_model_arn = target, model_arn
                pt.status = "Updating"
                pt.update_ready_at = time.time() + 1.0 * self.config.time_scale
            pt.modified = time.time()
            return {}

    def delete_provisioned_model_throughput(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            pt = self._throughput(region, p["provisionedModelId"])
            if pt.commitment and pt.commitment_expires and time.time() < pt.commitment_expires:
                raise validation(
                    f"The provisioned model {pt.name} has a {pt.commitment} commitment that ends "
                    f"{iso(pt.commitment_expires)}; it can't be deleted before the commitment term ends."
                )
            del self.throughputs[pt.arn]
            self.tags.pop(pt.arn, None)
            return {}

    # ====================================================================================
    # Custom model deployments (on-demand)
    # ====================================================================================
    def _deployment(self, region: str, identifier: str) -> Deployment:
        for dep in self.deployments.values():
            if dep.region == region and identifier in (dep.arn, dep.name):
                return dep
        raise not_found(f"Could not find custom model deployment with identifier {identifier}.")

    def _deployable(self, region: str, model_arn: str) -> CustomModel:
        model = self._custom_model(region, model_arn)
        bare = model.base.model_id.rsplit(":", 1)[0]
        if bare not in NOVA_V1_BASES:
            raise validation(
                f"On-demand deployment isn't supported for custom model {model.arn}. Custom models "
                "of Amazon Nova Micro, Lite and Pro can be deployed on demand; use Provisioned "
                "Throughput for other base models."
            )
        return model

    def create_custom_model_deployment(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            token = p.get("clientRequestToken")
            if token:
                for dep in self.deployments.values():
                    if getattr(dep, "client_token", None) == token:
                        return {"customModelDeploymentArn": dep.arn}
            model = self._deployable(region, p["modelArn"])
            if any(d.region == region and d.name == p["modelDeploymentName"] for d in self.deployments.values()):
                raise validation(f"A custom model deployment named {p['modelDeploymentName']} already exists.")
            now = time.time()
            dep = Deployment(
                arn=self.arn(region, f"custom-model-deployment/{new_id()}"),
                name=p["modelDeploymentName"], region=region, model=model, created=now,
                ready_at=now + 1.0 * self.config.time_scale, description=p.get("description"),
                updated=now,
            )
            dep.client_token = token  # type: ignore[attr-defined]
            self.deployments[dep.arn] = dep
            if p.get("tags"):
                self.tags[dep.arn] = _tag_dict(p["tags"])
            return {"customModelDeploymentArn": dep.arn}

    def get_custom_model_deployment(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            d = self._deployment(region, p["customModelDeploymentIdentifier"])
            out: dict[str, Any] = {
                "customModelDeploymentArn": d.arn, "modelDeploymentName": d.name,
                "modelArn": d.model.arn, "createdAt": iso(d.created), "status": d.status,
                "lastUpdatedAt": iso(d.updated),
            }
            if d.description:
                out["description"] = d.description
            if d.update_status and d.update_model is not None:
                out["updateDetails"] = {"modelArn": d.update_model.arn, "updateStatus": d.update_status}
            return out

    def list_custom_model_deployments(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            items = [
                d for d in self.deployments.values()
                if d.region == region
                and _created_filter(d.created, p.get("createdAfter"), p.get("createdBefore"))
                and (not p.get("statusEquals") or d.status == p["statusEquals"])
                and (not p.get("modelArnEquals") or d.model.arn == p["modelArnEquals"])
                and (not p.get("nameContains") or p["nameContains"] in d.name)
            ]
            page, nxt = paginate(sort_by_time(items, "created", p.get("sortOrder")), p.get("maxResults"), p.get("nextToken"))
            out: dict[str, Any] = {"modelDeploymentSummaries": [
                {
                    "customModelDeploymentArn": d.arn, "customModelDeploymentName": d.name,
                    "modelArn": d.model.arn, "createdAt": iso(d.created), "status": d.status,
                    "lastUpdatedAt": iso(d.updated),
                }
                for d in page
            ]}
            if nxt:
                out["nextToken"] = nxt
            return out

    def update_custom_model_deployment(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            d = self._deployment(region, p["customModelDeploymentIdentifier"])
            model = self._deployable(region, p["modelArn"])
            if d.status != "Active":
                raise validation(f"The custom model deployment {d.name} is {d.status}; wait until it is Active.")
            if model.base.model_id != d.model.base.model_id:
                raise validation("The new custom model must have the same base model as the deployed one.")
            now = time.time()
            d.update_model, d.update_status = model, "Updating"
            d.update_ready_at, d.updated = now + 1.0 * self.config.time_scale, now
            return {"customModelDeploymentArn": d.arn}

    def delete_custom_model_deployment(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            d = self._deployment(region, p["customModelDeploymentIdentifier"])
            del self.deployments[d.arn]
            self.tags.pop(d.arn, None)
            return {}

    # ====================================================================================
    # Batch inference (model invocation jobs)
    # ====================================================================================
    def _batch(self, region: str, identifier: str) -> InvocationJob:
        for job in self.batch_jobs.values():
            if job.region == region and identifier in (job.arn, job.job_id):
                return job
        raise not_found(f"Could not find model invocation job with identifier {identifier}.")

    def create_model_invocation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            token = p.get("clientRequestToken")
            if token:
                for job in self.batch_jobs.values():
                    if job.client_token == token:
                        return {"jobArn": job.arn}
            self.resolve_runtime(region, p["modelId"])
            s3_in = (p.get("inputDataConfig") or {}).get("s3InputDataConfig")
            s3_out = (p.get("outputDataConfig") or {}).get("s3OutputDataConfig")
            if not s3_in or not s3_out:
                raise validation("inputDataConfig.s3InputDataConfig and outputDataConfig.s3OutputDataConfig are required.")
            if any(j.region == region and j.name == p["jobName"] for j in self.batch_jobs.values()):
                raise ApiError("ConflictException", f"A model invocation job named {p['jobName']} already exists.")
            job_id = new_id()
            job_arn = self.arn(region, f"model-invocation-job/{job_id}")
            refusal = access.assume_refusal(self.moto.role(p["roleArn"]), self.account, job_arn)
            if refusal:
                raise validation(refusal)
            now = time.time()
            job = InvocationJob(
                arn=job_arn, job_id=job_id,
                name=p["jobName"], region=region, model_id=p["modelId"], role_arn=p["roleArn"],
                input_config=p["inputDataConfig"], output_config=p["outputDataConfig"],
                submitted=now, modified=now, scale=self.config.time_scale,
                invocation_type=p.get("modelInvocationType") or "InvokeModel",
                timeout_hours=int(p.get("timeoutDurationInHours") or 24), client_token=token,
                vpc_config=p.get("vpcConfig"),
            )
            self.batch_jobs[job.arn] = job
            if p.get("tags"):
                self.tags[job.arn] = _tag_dict(p["tags"])
            return {"jobArn": job.arn}

    def _batch_dict(self, j: InvocationJob) -> dict[str, Any]:
        out: dict[str, Any] = {
            "jobArn": j.arn, "jobName": j.name, "modelId": j.model_id, "roleArn": j.role_arn,
            "status": j.status, "submitTime": iso(j.submitted), "lastModifiedTime": iso(j.modified),
            "inputDataConfig": j.input_config, "outputDataConfig": j.output_config,
            "timeoutDurationInHours": j.timeout_hours,
            "jobExpirationTime": iso(j.submitted + j.timeout_hours * 3600),
            "modelInvocationType": j.invocation_type,
        }
        if j.client_token:
            out["clientRequestToken"] = j.client_token
        if j.message:
            out["message"] = j.message
        if j.end_time is not None:
            out["endTime"] = iso(j.end_time)
        if j.vpc_config:
            out["vpcConfig"] = j.vpc_config
        if j.validated:
            out.update({
                "totalRecordCount": j.total, "processedRecordCount": j.processed,
                "successRecordCount": j.success, "errorRecordCount": j.errors,
            })
        return out

    def get_model_invocation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self._batch_dict(self._batch(region, p["jobIdentifier"]))

    def list_model_invocation_jobs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            items = [
                j for j in self.batch_jobs.values()
                if j.region == region
                and _created_filter(j.submitted, p.get("submitTimeAfter"), p.get("submitTimeBefore"))
                and (not p.get("statusEquals") or j.status == p["statusEquals"])
                and (not p.get("nameContains") or p["nameContains"] in j.name)
            ]
            page, nxt = paginate(sort_by_time(items, "submitted", p.get("sortOrder")), p.get("maxResults"), p.get("nextToken"))
            out: dict[str, Any] = {"invocationJobSummaries": [self._batch_dict(j) for j in page]}
            if nxt:
                out["nextToken"] = nxt
            return out

    def stop_model_invocation_job(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            job = self._batch(region, p["jobIdentifier"])
            self._advance_batch_safely(job, time.time())
            if job.status in TERMINAL_BATCH or job.status == "Stopping":
                raise ApiError(
                    "ConflictException",
                    f"The model invocation job {job.name} cannot be stopped because its status is {job.status}.",
                )
            now = time.time()
            job.status, job.modified, job.stop_at = "Stopping", now, now + 0.3 * job.scale
            return {}

    def _advance_batch(self, job: InvocationJob, now: float) -> None:
        if job.status in TERMINAL_BATCH:
            return
        if job.status == "Stopping":
            if job.stop_at is not None and now >= job.stop_at:
                job.status, job.end_time, job.modified = "Stopped", job.stop_at, job.stop_at
            return
        if now >= job.phase_end(0) and job.status == "Submitted":
            job.status, job.modified = "Validating", job.phase_end(0)
        if now >= job.phase_end(1) and job.status == "Validating":
            message = self._validate_batch(job)
            if message:
                job.status, job.message = "Failed", message
                job.end_time = job.modified = job.phase_end(1)
                return
            job.status, job.modified = "Scheduled", job.phase_end(1)
        if now >= job.phase_end(2) and job.status == "Scheduled":
            job.status, job.modified = "InProgress", job.phase_end(2)
        # InProgress -> Completed | PartiallyCompleted | Failed: ``advance`` runs the records
        # (``_execute_batch``) outside the lock.

    def _batch_inputs(self, job: InvocationJob) -> list[str]:
        uri = job.input_config["s3InputDataConfig"]["s3Uri"]
        bucket, key = split_s3(uri)
        if key.endswith(".jsonl"):
            return [f"s3://{bucket}/{key}"]
        prefix = key if not key or key.endswith("/") else key + "/"
        return [f"s3://{bucket}/{k}" for k in self.moto.list_keys(bucket, prefix) if k.endswith(".jsonl")]

    def _validate_batch(self, job: InvocationJob) -> str | None:
        role, message = self._check_role(job.role_arn)
        if message:
            return message
        files = self._batch_inputs(job)
        if not files:
            return f"No .jsonl input files were found at {job.input_config['s3InputDataConfig']['s3Uri']}."
        total = 0
        for uri in files:
            data, message = self._check_read(role, job.region, uri)
            if message:
                return message
            try:
                total += len(_records(data or b""))
            except ValueError:
                return f"Unable to parse Amazon S3 file: {uri.rsplit('/', 1)[-1]}. Data files must conform to JSONL format."
        message = self._check_write(role, job.region, job.output_config["s3OutputDataConfig"]["s3Uri"])
        if message:
            return message
        if total < self.config.batch_min_records:
            return (
                f"The input contains {total} records, fewer than the minimum of "
                f"{self.config.batch_min_records} records per batch inference job for this model."
            )
        job.files, job.total, job.validated = files, total, True
        return None

    def _execute_batch(self, job: InvocationJob) -> None:
        """Run a due batch job's records (no lock held), then publish the result under the lock."""
        try:
            counts = self._run_batch(job)
        except Exception as exc:  # noqa: BLE001 - fail only this job
            with self.lock:
                job.running = False
                if job.status == "InProgress":
                    job.status, job.message = "Failed", _failure_message(exc)
                    job.end_time = job.modified = max(job.modified, job.phase_end(3))
            if not isinstance(exc, S3WriteError):
                _log_internal(f"batch job {job.arn}", exc)
            return
        with self.lock:
            job.running = False
            if job.status != "InProgress":  # stopped meanwhile: the stop lifecycle wins
                return
            job.processed, job.success, job.errors = counts
            if job.errors == 0:
                job.status = "Completed"
            elif job.success > 0:
                job.status = "PartiallyCompleted"
            else:
                job.status, job.message = "Failed", "All records failed; see the error field of each output record."
            job.end_time = job.modified = job.phase_end(3)

    def _run_batch(self, job: InvocationJob) -> tuple[int, int, int]:
        """Run every record through the runtime and write the outputs; (processed, success, errors)."""
        from utils.sandbox import bodies

        out_bucket, out_prefix = split_s3(job.output_config["s3OutputDataConfig"]["s3Uri"])
        base = f"{out_prefix.strip('/')}/{job.job_id}".lstrip("/")
        tokens_in = tokens_out = processed = success = errors = 0
        for uri in job.files:
            bucket, key = split_s3(uri)
            lines = []
            for index, record in enumerate(_records(self.moto.get_object(bucket, key) or b"")):
                record_id = str(record.get("recordId") or f"{index + 1:011d}")
                model_input = record.get("modelInput")
                line: dict[str, Any] = {"recordId": record_id, "modelInput": model_input}
                try:
                    if not isinstance(model_input, dict):
                        raise bodies.BodyError("modelInput must be a JSON object")
                    result = self.invoke(job.region, job.model_id, model_input, converse=job.invocation_type == "Converse",
                                         faults=False)
                    line["modelOutput"] = result.body
                    tokens_in += result.completion.input_tokens
                    tokens_out += result.completion.output_tokens
                    success += 1
                except ApiError as exc:
                    line["error"] = {"errorCode": exc.status, "errorMessage": exc.message}
                    errors += 1
                except bodies.BodyError as exc:
                    line["error"] = {"errorCode": 400, "errorMessage": str(exc)}
                    errors += 1
                processed += 1
                lines.append(json.dumps(line))
            name = key.rsplit("/", 1)[-1]
            self.moto.put_object(out_bucket, f"{base}/{name}.out", ("\n".join(lines) + "\n").encode())
        manifest = {
            "totalRecordCount": job.total, "processedRecordCount": processed,
            "successRecordCount": success, "errorRecordCount": errors,
            "inputTokenCount": tokens_in, "outputTokenCount": tokens_out,
        }
        self.moto.put_object(out_bucket, f"{base}/manifest.json.out", json.dumps(manifest).encode())
        return processed, success, errors

    # ====================================================================================
    # Tags
    # ====================================================================================
    def _taggable(self, region: str, arn: str) -> None:
        known = set(self.jobs) | set(self.models) | set(self.throughputs) | set(self.deployments) | set(self.batch_jobs)
        arn_region = arn.split(":")[3] if arn.count(":") >= 5 else ""
        if arn not in known or arn_region != region:  # resources are regional: another region's ARN is unknown
            raise not_found(f"Could not find a resource with ARN {arn}.")

    def tag_resource(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._taggable(region, p["resourceARN"])
            merged = {**self.tags.get(p["resourceARN"], {}), **_tag_dict(p["tags"])}
            if len(merged) > 200:
                raise ApiError(
                    "TooManyTagsException", "A resource can have at most 200 tags.", resourceName=p["resourceARN"]
                )
            self.tags[p["resourceARN"]] = merged
            return {}

    def untag_resource(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._taggable(region, p["resourceARN"])
            current = self.tags.get(p["resourceARN"], {})
            for key in p["tagKeys"]:
                current.pop(key, None)
            return {}

    def list_tags_for_resource(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._taggable(region, p["resourceARN"])
            return {"tags": [{"key": k, "value": v} for k, v in self.tags.get(p["resourceARN"], {}).items()]}

    # ====================================================================================
    # Runtime
    # ====================================================================================
    def resolve_runtime(self, region: str, model_id: str) -> Target:
        """The model a runtime ``modelId`` names, or the service's error for it."""
        with self.lock:
            if model_id.startswith("arn:"):
                parts = model_id.split(":", 5)
                resource = parts[5] if len(parts) == 6 else ""
                kind = resource.split("/", 1)[0]
                if kind == "provisioned-model":
                    pt = next((x for x in self.throughputs.values() if x.arn == model_id and x.region == region), None)
                    if pt is None:
                        raise not_found(f"Could not find provisioned model {model_id}.")
                    if pt.status not in ("InService", "Updating"):
                        raise validation(f"The provisioned model {model_id} is not in service (status {pt.status}).")
                    return self._target(pt.target, region, f"provisioned:{pt.arn}")
                if kind == "custom-model-deployment":
                    dep = next((x for x in self.deployments.values() if x.arn == model_id and x.region == region), None)
                    if dep is None:
                        raise not_found(f"Could not find custom model deployment {model_id}.")
                    if dep.status != "Active":
                        raise validation(f"The custom model deployment {model_id} is not active (status {dep.status}).")
                    return self._target(dep.model, region, f"deployment:{dep.arn}")
                if kind == "custom-model":
                    if self._maybe_custom_model(region, model_id) is None:
                        raise not_found(f"Could not find custom model {model_id}.")
                    raise validation("The provided model doesn't support on-demand throughput.")
                if kind == "inference-profile":
                    profile = self.catalog.profile(region, model_id)
                    if profile is None:
                        raise validation(INVALID_MODEL_IDENTIFIER)
                    return self._target(profile.model, region, profile.profile_id)
                if kind != "foundation-model":
                    raise validation(INVALID_MODEL_IDENTIFIER)
            profile = self.catalog.profile(region, model_id)
            if profile is not None:
                return self._target(profile.model, region, profile.profile_id)
            model = self.catalog.model(region, model_id)
            if model is None:
                if self.catalog.is_retired(model_id):
                    raise not_found(END_OF_LIFE)
                raise validation(INVALID_MODEL_IDENTIFIER)
            if model.requires_profile:
                raise validation(ON_DEMAND_NOT_SUPPORTED.format(model_id=model.model_id))
            if not model.on_demand:
                raise validation("The provided model doesn't support on-demand throughput.")
            return self._target(model, region, model.model_id)

    def _target(self, target: CustomModel | FoundationModel, region: str, fault_key: str) -> Target:
        from utils.sandbox.standins import ModelBehaviour, build_index

        if isinstance(target, CustomModel):
            if target.index is None and target.training_pairs:
                target.index = build_index(target.training_pairs)  # once per custom model
            behaviour = ModelBehaviour(
                model_id=target.base.model_id, kind="custom", training_pairs=list(target.training_pairs),
                hyperparameters=dict(target.hyperparameters), name=target.name,
                training=target.training, index=target.index,
            )
            return Target(target.base.body, behaviour, fault_key, target.base.model_id)
        behaviour = ModelBehaviour(model_id=target.model_id, kind="base", name=target.name)
        return Target(target.body, behaviour, fault_key, target.model_id)

    def invoke(self, region: str, model_id: str, request: bytes | dict[str, Any], *, converse: bool = False,
               faults: bool = True) -> InvokeResult:
        """InvokeModel / Converse through the stand-ins; raises :class:`ApiError`."""
        from utils.sandbox import bodies, standins
        from utils.sandbox.faults import Fault

        target = self.resolve_runtime(region, model_id)
        if faults and target.behaviour.kind == "base":  # a runtime call (batch records pass faults=False)
            with self.lock:
                denied = self.account_access.invoke_denied(target.model_name, time.time(), self.config.time_scale)
            if denied:
                raise ApiError("AccessDeniedException", denied, 403)
        try:
            if converse:
                payload = request if isinstance(request, dict) else json.loads(request or b"{}")
                prompt = bodies.parse_converse(payload)
            else:
                raw = request if isinstance(request, bytes) else json.dumps(request).encode()
                prompt = bodies.parse_invoke_body(target.body, raw)
                payload = json.loads(raw)
            bodies.check_model_limits(target.model_name, target.body, payload, converse=converse)
        except bodies.BodyError as exc:
            raise validation(str(exc)) from exc
        except ValueError as exc:
            raise validation("Malformed input request, please reformat your input and try again.") from exc
        estimate = standins.prompt_tokens(prompt) + int(prompt.max_tokens or 0)
        latency = 0.0
        if faults:
            try:
                self.faults.before_call(target.fault_key, estimate)
            except Fault as fault:
                raise ApiError(fault.code, fault.message, fault.status) from fault
            latency = self.faults.latency_seconds()
        started = time.monotonic()
        completion = standins.generate(prompt, target.behaviour)
        if faults and self.faults.malformed_output():
            completion = standins.malformed(completion)
        with self.lock:
            counts = self.usage.setdefault(model_id, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
            counts["calls"] += 1
            counts["input_tokens"] += completion.input_tokens
            counts["output_tokens"] += completion.output_tokens
        if latency:
            time.sleep(latency)
        latency_ms = int((time.monotonic() - started) * 1000)
        if converse:
            body = bodies.render_converse(completion, latency_ms)
        else:
            body = bodies.render_invoke_body(target.body, completion, target.model_name)
        return InvokeResult(body=body, completion=completion, latency_ms=latency_ms)


@dataclass
class InvokeResult:
    body: dict[str, Any]
    completion: Any  # standins.Completion
    latency_ms: int


# ---------------------------------------------------------------------------------------
# Data helpers
# ---------------------------------------------------------------------------------------


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _legacy_knob(value: Any) -> dict[str, dict[str, str]]:
    """The ``legacy_models`` knob: ``{model_id: {dates}}`` or a list of IDs (not a bare string)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = ((m, {}) for m in value)
    else:
        raise ValueError("legacy_models must be an object {model_id: {legacyTime: ...}} or a list of model IDs")
    out: dict[str, dict[str, str]] = {}
    for model_id, dates in items:
        if not isinstance(model_id, str) or not isinstance(dates, dict | type(None)):
            raise ValueError("legacy_models must map model IDs to objects of lifecycle dates")
        out[model_id] = {str(k): str(v) for k, v in (dates or {}).items()}
    return out


def _tag_dict(tags: Any) -> dict[str, str]:
    return {t["key"]: t["value"] for t in (tags or [])}


def _records(data: bytes) -> list[dict[str, Any]]:
    """JSON objects of a JSONL file (blank lines skipped); ValueError if a line is not JSON."""
    out = []
    for line in data.decode("utf-8-sig").splitlines():
        if line.strip():
            value = json.loads(line)
            if isinstance(value, dict):
                out.append(value)
    return out


def _text(content: Any) -> str:
    """Text of a message's content: a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b)
    return ""


def _pairs_and_texts(records: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[str]]:
    """(prompt, answer) pairs and all text of records in any supported format.

    prompt/completion; Claude ``{system, messages}``; ``bedrock-conversation-2024``;
    continued pre-training ``{input}``. Multi-turn records give one pair per
    user -> assistant exchange; a trailing user turn (distillation prompts) gives a
    pair with an empty answer.
    """
    pairs: list[tuple[str, str]] = []
    texts: list[str] = []
    for rec in records:
        if "prompt" in rec or "completion" in rec:
            prompt, answer = str(rec.get("prompt", "")), str(rec.get("completion", ""))
            pairs.append((prompt, answer))
            texts += [prompt, answer]
            continue
        if "input" in rec and "messages" not in rec:
            texts.append(str(rec["input"]))
            continue
        system = rec.get("system")
        texts.append(_text(system) if not isinstance(system, str) else system)
        pending: str | None = None
        for message in rec.get("messages", []) if isinstance(rec.get("messages"), list) else []:
            if not isinstance(message, dict):
                continue
            content = _text(message.get("content"))
            texts.append(content)
            if message.get("role") == "user":
                pending = content if pending is None else pending + "\n" + content
            elif message.get("role") == "assistant" and pending is not None:
                pairs.append((pending, content))
                pending = None
        if pending is not None:
            pairs.append((pending, ""))
    return pairs, [t for t in texts if t]


def _validate_data(job: CustomizationJob, uri: str, data: bytes, split: str) -> tuple[str | None, int]:
    """(Bedrock's failureMessage for an invalid data file or None, its record count).

    Record-count limits that apply to training + validation together are left to
    :func:`_validate_combined_counts`.
    """
    filename = uri.rsplit("/", 1)[-1]
    if job.customization_type in ("FINE_TUNING", "CONTINUED_PRE_TRAINING"):
        # The same validator as notebook 02 and the CLI (issue 5).
        from utils.validate_dataset import UsageError, validate_bytes

        hp = training.effective_hyperparameters(registry.family_of(job.base.model_id), job.hyperparameters)
        try:
            report = validate_bytes(
                data, job.base.model_id, split=split, customization_type=job.customization_type,
                filename=filename, batch_size=int(hp.get("batchSize", 1)), combined_counts=True,
            )
        except UsageError as exc:
            return str(exc), 0
        return (None if report.ok else report.failure_message()), report.records
    # Distillation prompts: JSONL with user turns (Bedrock writes the answers).
    invalid = f"Unable to parse Amazon S3 file: {filename}. Data files must conform to JSONL format."
    try:
        records = _records(data)
    except ValueError:
        return invalid, 0
    if not records:
        return invalid, 0
    for rec in records:
        if not isinstance(rec.get("messages"), list) or not rec["messages"]:
            return (
                f"Input data at {filename} must follow '{{\"schemaVersion\": \"bedrock-conversation-2024\", "
                "\"system\": [{\"text\": \"<system>\"}], \"messages\": [{\"role\": \"user\", "
                "\"content\": [{\"text\": \"<prompt>\"}]}]}' format"
            ), len(records)
    return None, len(records)


def _validate_combined_counts(job: CustomizationJob, train: int, validation: int) -> str | None:
    """failureMessage when training + validation records together break the model's limits."""
    if job.customization_type not in ("FINE_TUNING", "CONTINUED_PRE_TRAINING"):
        return None
    from utils.validate_dataset import check_combined_counts

    problems = check_combined_counts(job.base.model_id, train, validation, job.customization_type)
    return (problems[0].bedrock or problems[0].message) if problems else None
