"""Preflight: catch the usual workshop failures in minute one, each with its exact fix.

:func:`plan_run` decides, from the notebooks' parameters, which models and features
this run will use (the student always; the teacher only when synthetic data is
generated; judges and comparison models only when enabled; Provisioned Throughput
only when the student is served that way). :func:`run_preflight` then checks, for
that plan only: the SDK versions, where the notebook runs (SageMaker or elsewhere,
kernel), who the caller is, the lifecycle of every model in use, that the student
can be customized in the region, inference-profile IDs, model access (AWS
Marketplace subscription for models sold there, and Anthropic's use-case form), the
caller's permissions (``iam:SimulatePrincipalPolicy``) and Bedrock quotas. A fresh
account is not blocked by a model that no notebook of this run calls.

It returns a :class:`Checklist`: ✓ / ✗ / ⚠ rows, every ✗ carrying the concrete
fix, plus the resolved invocation IDs by role. It is usable on its own::

    from utils.preflight import run_preflight
    plan = plan_run("current", use_synthetic=True)
    checklist = run_preflight("current", plan=plan)
    checklist            # renders as a table in Jupyter
    checklist.require()  # raises with every fix if anything failed

Sources: model access and its prerequisites,
https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html; model
lifecycle, https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html;
availability fields, botocore shape ``GetFoundationModelAvailabilityResponse``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from utils import aws, iam, models
from utils import state as ws

PASS, FAIL, WARN = "✓", "✗", "⚠"

# conda_python3 on SageMaker notebook instances is Python 3.10 on every current platform
# (https://docs.aws.amazon.com/sagemaker/latest/dg/nbi-al2023.html,
# https://docs.aws.amazon.com/sagemaker/latest/dg/nbi-al2.html); pyproject.toml states the same minimum.
MIN_PYTHON = (3, 10)

# The series needs custom model deployments, Converse and CountTokens (requirements.txt).
MIN_VERSIONS = {"boto3": "1.44.0", "botocore": "1.44.0"}
PIP_FIX = (
    '%pip install --upgrade "boto3>=1.44,<2" "botocore>=1.44,<2"  '
    "then restart the kernel (Kernel → Restart Kernel) and run the notebook again from the top."
)
LEGACY_REFUSE_DAYS = 90  # refuse a LEGACY model whose end of life is this close, always
WORKSHOP_WINDOW_DAYS = 14  # and refuse any model whose end of life falls inside the workshop
GEO_PREFIXES = (("us-gov-", "us-gov"), ("us-", "us"), ("ca-", "us"), ("eu-", "eu"), ("ap-northeast-1", "jp"),
                ("ap-", "apac"))
CONCURRENT_JOBS_QUOTA = "L-0406044C"
DEFAULT_RECORD_LIMIT = 10_000  # used when no quota can be read (our assumption: the smallest published default)
CALLER_POLICY = "iam-policies/notebook-caller.json"

NO_MODEL_ACCESS = "You don't have access to the model with the specified model ID."
MODEL_ACCESS_DOC = "https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html"
MARKETPLACE_ACTIONS = ("aws-marketplace:Subscribe", "aws-marketplace:ViewSubscriptions", "aws-marketplace:Unsubscribe")
# Serverless models are enabled by default; for a model sold through Marketplace (not Amazon or Meta) the first call starts an
# AWS Marketplace subscription in the background, which needs the caller's Marketplace
# permissions and a payment method, takes up to 15 minutes, and may keep answering
# AccessDenied for about 2 minutes after the permissions are fixed (MODEL_ACCESS_DOC).
MARKETPLACE_FIX = (
    f"Grant the notebook's execution role {', '.join(MARKETPLACE_ACTIONS)} (the caller policy "
    f"{CALLER_POLICY} includes them), and make sure the account has a valid payment method for AWS Marketplace. "
    "The first call to the model then starts the account's Marketplace subscription: call it once (or rerun "
    "01 with access_probe=True), wait a few minutes (the subscription takes up to 15 minutes, and "
    f"AccessDenied can persist about 2 minutes after a permission fix), then rerun. See {MODEL_ACCESS_DOC}"
)
ANTHROPIC_FORM_FIX = (
    "Anthropic models also need the one-time use-case form (first-time use, once per account or once in the "
    "organization's management account): Bedrock console → Model catalog → an Anthropic model → submit the "
    "use-case details, or the PutUseCaseForModelAccess API. Then wait up to 15 minutes and rerun."
)
ACCESS_FIX = (
    "Model access is not in place for this account and model. Models not sold through AWS Marketplace "
    "(Amazon, Meta, Mistral AI, DeepSeek, Qwen, OpenAI) need no subscription. For Marketplace models "
    f"(Anthropic, Cohere, AI21, ...): {MARKETPLACE_FIX} {ANTHROPIC_FORM_FIX}"
)
IAM_FIX = (
    f"Your IAM identity lacks the Bedrock permission. Attach {CALLER_POLICY} to the notebook's execution role "
    "as the managed policies `python -m utils.iam --account <id> --role-arn <role ARN>` renders (README section 4)."
)
SCP_FIX = (
    "An explicit deny blocks it (a service control policy, permissions boundary or session policy). "
    "Your policy cannot override it: ask your AWS administrator to allow it for this account/region."
)


# ---- the checklist ----------------------------------------------------------------------


@dataclass
class Check:
    """One row of the checklist: ``status`` is ✓, ✗ or ⚠; a ✗ always has a ``fix``."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status == FAIL and not self.fix:
            raise ValueError(f"Check {self.name!r} failed without a fix")


class PreflightError(RuntimeError):
    """Raised by :meth:`Checklist.require` when a check failed."""


@dataclass
class Checklist:
    """The result of :func:`run_preflight`."""

    profile: str
    region: str
    checks: list[Check] = field(default_factory=list)
    resolved_ids: dict[str, str] = field(default_factory=dict)  # role -> invocation ID
    models: dict[str, str] = field(default_factory=dict)  # role -> registry key
    facts: dict[str, Any] = field(default_factory=dict)  # account, caller, quotas, environment

    def add(self, name: str, status: str, detail: str, fix: str = "") -> Check:
        check = Check(name, status, detail, fix)
        self.checks.append(check)
        return check

    @property
    def ok(self) -> bool:
        """True when nothing failed (warnings allowed)."""
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    def frame(self):
        """The checklist as a pandas DataFrame (columns: status, check, detail, fix)."""
        import pandas as pd

        return pd.DataFrame(
            [{"status": c.status, "check": c.name, "detail": c.detail, "fix": c.fix} for c in self.checks],
            columns=["status", "check", "detail", "fix"],
        )

    def render(self, fmt: str = "text") -> str:
        """The checklist as plain text (``fmt="text"``) or a Markdown table (``fmt="markdown"``)."""
        title = (
            f"Preflight: profile {self.profile!r} in {self.region}: "
            f"{len(self.failures)} failed, {len(self.warnings)} warnings, "
            f"{len(self.checks) - len(self.failures) - len(self.warnings)} passed"
        )
        if fmt == "markdown":
            def cell(text: str) -> str:
                return text.replace("|", "\\|").replace("\n", "<br>")

            lines = [f"**{title}**", "", "| | Check | Result | Fix |", "|---|---|---|---|"]
            lines += [f"| {c.status} | {cell(c.name)} | {cell(c.detail)} | {cell(c.fix)} |" for c in self.checks]
            return "\n".join(lines)
        if fmt != "text":
            raise ValueError("fmt must be 'text' or 'markdown'")
        lines = [title, ""]
        for c in self.checks:
            lines.append(f"{c.status} {c.name}: {c.detail}")
            if c.fix:
                lines.append(f"    fix: {c.fix}")
        if self.resolved_ids:
            lines += ["", "Invocation IDs:"] + [f"    {role}: {mid}" for role, mid in self.resolved_ids.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render("text")

    def _repr_markdown_(self) -> str:
        return self.render("markdown")

    def require(self) -> Checklist:
        """Raise :class:`PreflightError` listing every failure and its fix; else return self."""
        if self.failures:
            raise PreflightError(
                "Preflight failed:\n" + "\n".join(f"✗ {c.name}: {c.detail}\n    fix: {c.fix}" for c in self.failures)
            )
        return self


# ---- what this run will use ------------------------------------------------------------


@dataclass(frozen=True)
class RunPlan:
    """The models and features one run of the series uses, decided from the notebooks' parameters.

    ``roles`` maps each role this run calls (student, teacher, judge_1, ...) to a registry
    key; ``skipped`` maps each role of the profile that it does not call to the reason.
    ``deployment`` is how the student's custom model is served (``on_demand`` or
    ``provisioned``). The preflight checks models, access and permissions for this plan only.
    """

    profile: str
    roles: dict[str, str]
    skipped: dict[str, str]
    deployment: str
    customization_type: str = "FINE_TUNING"

    @property
    def student(self) -> models.ModelSpec:
        return models.get(self.roles["student"])

    @property
    def marketplace(self) -> bool:
        """True when a model in use is sold through AWS Marketplace (its first call needs the
        caller's aws-marketplace actions); Amazon and Meta models are not."""
        return any(models.get(key).on_marketplace for key in self.roles.values())

    @property
    def marketplace_required(self) -> bool:
        """True when a model that 01–05 need (not only 06's judges or comparison) is sold through Marketplace."""
        return any(models.get(key).on_marketplace for role, key in self.roles.items() if not _only_06(role))

    def rows(self) -> list[dict[str, str]]:
        """One row per role of the profile: checked or skipped, and why."""
        rows = [{"role": role, "model": models.get(key).name, "checked": "yes",
                 "why": _ROLE_USE.get(role.split("_")[0], "used by this run")}
                for role, key in self.roles.items()]
        rows += [{"role": role, "model": model, "checked": "no", "why": why}
                 for role, (model, why) in self.skipped.items()]
        rows.append({"role": "serving", "model": "Provisioned Throughput" if self.deployment == "provisioned"
                     else "on-demand custom model deployment", "checked": "yes",
                     "why": f"how {self.student.name} is served after fine-tuning (05)"})
        return rows

    def render(self, fmt: str = "markdown") -> str:
        """The decision as a Markdown table (``fmt="markdown"``) or plain text."""
        rows = self.rows()
        if fmt == "markdown":
            lines = ["| Role | Model | Checked | Why |", "|---|---|---|---|"]
            lines += [f"| {r['role']} | {r['model']} | {r['checked']} | {r['why']} |" for r in rows]
            return "\n".join(lines)
        return "\n".join(f"{r['checked']:>3}  {r['role']:<13} {r['model']:<34} {r['why']}" for r in rows)

    def _repr_markdown_(self) -> str:
        return self.render("markdown")


# Roles only 06 calls: a problem with their model is a warning in 01 (01–05 can go ahead), with the
# fix to apply before 06. Everything else the run needs from 01 on is a failure.
# Each such role, with the 06 parameter that turns it off.
ONLY_06_ROLES = {"judge": "use_judges=False", "comparison": "use_comparison=False"}


def _only_06(role: str) -> bool:
    return role.split("_")[0] in ONLY_06_ROLES


def _severity(roles: list[str]) -> str:
    """✗ for a model 01–05 need; ⚠ for a model only 06 calls (judges, comparison models)."""
    return WARN if roles and all(_only_06(r) for r in roles) else FAIL


def _later_fix(roles: list[str], fix: str) -> str:
    """The fix, plus what a ⚠ for a model only 06 calls means for the run."""
    if _severity(roles) == FAIL:
        return fix
    switches = sorted({ONLY_06_ROLES[r.split("_")[0]] for r in roles})
    return (f"{fix} Only 06 calls it ({', '.join(roles)}): 01–05 can go ahead; fix this before 06, or run 06 "
            f"with {' and '.join(switches)}.")


_ROLE_USE = {
    "student": "fine-tuned in 04, served in 05, its base model answered in 06",
    "teacher": "writes synthetic Q&A pairs in 03 (use_synthetic=True)",
    "judge": "LLM-as-a-judge in 06 (use_judges=True)",
    "comparison": "comparison model in 06 (use_comparison=True)",
}


def plan_run(
    profile_name: str = models.DEFAULT_PROFILE, *, student: str = "", teacher: str = "",
    use_synthetic: bool = True, use_judges: bool = False, use_comparison: bool = False,
    customization_type: str = "FINE_TUNING",
) -> RunPlan:
    """Which models and features this run uses, from the notebooks' parameters.

    ``student`` and ``teacher`` override the profile's models (registry keys or IDs, "" keeps
    the profile's). ``use_synthetic`` is whether 03 generates data with the teacher (04's
    parameter of the same name), ``use_judges`` and ``use_comparison`` whether 06 calls the
    judges and comparison models. Parameters of the same name reach every notebook that
    declares them (``make workshop PARAMS=...``), so 01 and the later notebooks agree.
    """
    prof = models.profile(profile_name)
    student_key = models.get(student).key if student else prof.student
    roles: dict[str, str] = {"student": student_key}
    skipped: dict[str, tuple[str, str]] = {}
    teacher_key = models.get(teacher).key if teacher else prof.teacher
    if use_synthetic:
        roles["teacher"] = teacher_key
    else:
        skipped["teacher"] = (models.get(teacher_key).name, "use_synthetic=False: 03 does not call the teacher")
    for i, key in enumerate(prof.judges):
        if use_judges:
            roles[f"judge_{i + 1}"] = key
        else:
            skipped[f"judge_{i + 1}"] = (models.get(key).name, "use_judges=False: 06 calls no judge")
    for i, key in enumerate(prof.comparison):
        if use_comparison:
            roles[f"comparison_{i + 1}"] = key
        else:
            skipped[f"comparison_{i + 1}"] = (models.get(key).name, "use_comparison=False: 06 compares no other model")
    deployment = models.get(student_key).deployment or "provisioned"
    return RunPlan(prof.name, roles, skipped, deployment, customization_type)  # type: ignore[arg-type]


# ---- helpers ------------------------------------------------------------------------------


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


_error = aws.error


def _denied(code: str) -> bool:
    return code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def explain_access_denied(message: str, provider: str = "") -> str:
    """The fix for a Bedrock ``AccessDeniedException``, from its message (and the model's provider)."""
    lowered = message.lower()
    if "explicit deny" in lowered or "service control policy" in lowered:
        return SCP_FIX
    anthropic = provider.lower() == "anthropic"
    if "use case" in lowered or "use-case" in lowered:
        return ANTHROPIC_FORM_FIX
    if "aws-marketplace" in lowered or "marketplace subscription" in lowered:
        return MARKETPLACE_FIX + (f" {ANTHROPIC_FORM_FIX}" if anthropic else "")
    if "don't have access to the model" in lowered or "do not have access to the model" in lowered \
            or "model access is denied" in lowered:
        if provider.lower() in models.NOT_ON_MARKETPLACE:
            return _not_on_marketplace_fix(provider)
        return (MARKETPLACE_FIX + f" {ANTHROPIC_FORM_FIX}") if anthropic else ACCESS_FIX
    if "not authorized to perform" in lowered or "bedrock:" in lowered:
        return IAM_FIX
    return f"{IAM_FIX} If it is attached, check for an SCP: {SCP_FIX}"


def _fix_for_client_error(exc: BaseException, action: str) -> str:
    code, message = _error(exc)
    if _denied(code):
        return explain_access_denied(message) + f" (needed: {action})"
    if isinstance(exc, NoCredentialsError):
        return _CREDENTIALS_FIX
    return f"{action} failed with {code}: {message}. Rerun; if it persists, check the region and the AWS Health Dashboard."


_CREDENTIALS_FIX = (
    "No AWS credentials. On SageMaker the execution role provides them; elsewhere run `aws configure` "
    "(or set AWS_PROFILE), or use the offline sandbox: unset WORKSHOP_BACKEND (the default is sandbox)."
)


def geo_prefix(region: str) -> str:
    """The geographic inference-profile prefix for a region (``us``, ``eu``, ``apac``, ...)."""
    for start, prefix in GEO_PREFIXES:
        if region.startswith(start):
            return prefix
    return "us"


def _to_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _replacement_text(spec: models.ModelSpec) -> str:
    new = models.replacement(spec.key)
    if new is None:
        return "Choose a current model from utils/models.py (the series' registry) for this role."
    regions = f" (customizable in {', '.join(new.customization_regions)})" if new.customization_regions else ""
    return (
        f"Use the registry's replacement: {new.name} ('{new.key}', {new.model_id}){regions}, e.g. "
        "run_preflight(profile_name='current'), or set that key for this role."
    )


def kernel_name() -> str:
    """A best-effort kernel/environment name (never raises)."""
    conda = os.environ.get("CONDA_DEFAULT_ENV")
    if conda:
        return f"conda_{conda}" if os.path.exists("/opt/ml/metadata/resource-metadata.json") else conda
    for key in ("JPY_KERNEL_NAME", "KERNEL_NAME"):
        if os.environ.get(key):
            return os.environ[key]
    if "ipykernel_launcher" in " ".join(sys.argv) or "ipykernel" in sys.modules:
        prefix = os.path.basename(sys.prefix.rstrip("/")) or "python3"
        return f"ipykernel ({prefix})"
    return "not a Jupyter kernel (script or test)"


# ---- individual checks --------------------------------------------------------------------


def check_versions(checklist: Checklist, installed: dict[str, str] | None = None) -> None:
    """boto3/botocore at least :data:`MIN_VERSIONS`."""
    if installed is None:
        import boto3
        import botocore

        installed = {"boto3": boto3.__version__, "botocore": botocore.__version__}
    for package, minimum in MIN_VERSIONS.items():
        have = installed.get(package, "0")
        if _version_tuple(have) >= _version_tuple(minimum):
            checklist.add(f"{package} version", PASS, f"{package} {have} (needs ≥ {minimum})")
        else:
            checklist.add(
                f"{package} version", FAIL,
                f"{package} {have} is older than {minimum}: it lacks Bedrock operations the series calls "
                "(old SDKs fail with \"Unknown service: 'bedrock-runtime'\").",
                PIP_FIX,
            )


def check_environment(checklist: Checklist) -> None:
    """SageMaker or elsewhere, and the kernel (warnings only)."""
    backend = aws.backend()
    kernel = kernel_name()
    python = ".".join(map(str, sys.version_info[:3]))
    checklist.facts.update(backend=backend, kernel=kernel, python=python, on_sagemaker=aws.on_sagemaker())
    if aws.on_sagemaker():
        checklist.add("environment", PASS, f"SageMaker notebook instance; kernel {kernel}, Python {python}")
    else:
        checklist.add(
            "environment", WARN,
            f"not on a SageMaker notebook instance (backend {backend}, kernel {kernel}, Python {python}); "
            f"credentials come from the environment. On AWS, attach {CALLER_POLICY} to that identity.",
        )
    if sys.version_info < MIN_PYTHON:  # a learner's kernel may be older than ours
        checklist.add("python version", WARN, f"Python {python}; the series needs Python "
                      f"{'.'.join(map(str, MIN_PYTHON))}+ (conda_python3 on a notebook instance has it)")


def caller_identity(region: str) -> dict[str, Any]:
    """``sts:GetCallerIdentity``, or :class:`PreflightError` with the one-line fix (e.g. no credentials).

    01 needs the account before its preflight runs (the bucket's name); a failure here gets the same
    fix the preflight's "AWS identity" check gives.
    """
    try:
        return aws.client("sts", region).get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise PreflightError(f"Cannot call sts:GetCallerIdentity ({_error(exc)[0]}): "
                             f"{_fix_for_client_error(exc, 'sts:GetCallerIdentity')}") from None


def check_identity(checklist: Checklist, region: str) -> bool:
    """sts:GetCallerIdentity; False means no usable credentials (later AWS checks are skipped)."""
    try:
        identity = aws.client("sts", region).get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        checklist.add("AWS identity", FAIL, f"cannot call sts:GetCallerIdentity ({_error(exc)[0]})",
                      _fix_for_client_error(exc, "sts:GetCallerIdentity"))
        return False
    checklist.facts.update(account=identity["Account"], caller_arn=identity["Arn"])
    checklist.add("AWS identity", PASS, f"account {identity['Account']}, caller {identity['Arn']}")
    return True


@dataclass
class _ModelState:
    spec: models.ModelSpec
    roles: list[str]
    found: bool = False
    usable: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def _lifecycle_row(
    checklist: Checklist, bedrock: Any, state: _ModelState, *, allow_legacy: bool, today: date,
    window_days: int,
) -> None:
    spec, roles = state.spec, ", ".join(state.roles)
    label = f"lifecycle: {spec.name} ({roles})"
    try:
        details = bedrock.get_foundation_model(modelIdentifier=spec.model_id)["modelDetails"]
    except ClientError as exc:
        code, message = _error(exc)
        if code in {"ResourceNotFoundException", "ValidationException"}:
            eol = f" (registry: end of life {spec.end_of_life})" if spec.end_of_life else ""
            reason = "retired" if spec.retired or models.REPLACEMENTS.get(spec.key) else "not offered here"
            checklist.add(
                label, _severity(state.roles),
                f"{spec.model_id} not found in {checklist.region}: {reason}{eol}. Its ID no longer works.",
                _later_fix(state.roles, _replacement_text(spec) if reason == "retired" else
                           f"Pick a region that offers it, or another model: {_replacement_text(spec)}"),
            )
            return
        checklist.add(label, _severity(state.roles), f"get_foundation_model failed: {code}: {message}",
                      _later_fix(state.roles, _fix_for_client_error(exc, "bedrock:GetFoundationModel")))
        return
    state.found, state.details = True, details
    lifecycle = details.get("modelLifecycle", {}) or {}
    status = lifecycle.get("status", "ACTIVE")
    eol = _to_date(lifecycle.get("endOfLifeTime"))
    dates = ", ".join(
        f"{k}={_to_date(lifecycle.get(k))}" for k in ("legacyTime", "publicExtendedAccessTime", "endOfLifeTime")
        if lifecycle.get(k)
    )
    limit = today + timedelta(days=max(LEGACY_REFUSE_DAYS, window_days))
    if eol and eol <= today + timedelta(days=window_days):
        checklist.add(label, _severity(state.roles), f"{status}; end of life {eol} falls inside the workshop window",
                      _later_fix(state.roles, _replacement_text(spec)))
    elif status == "LEGACY":
        if eol and eol <= limit:
            checklist.add(label, _severity(state.roles),
                          f"LEGACY, end of life {eol} is within {LEGACY_REFUSE_DAYS} days ({dates})",
                          _later_fix(state.roles, _replacement_text(spec)))
        elif not allow_legacy:
            checklist.add(
                label, _severity(state.roles), f"LEGACY ({dates or 'no dates published'}); refused by default",
                _later_fix(state.roles, f"{_replacement_text(spec)} Or accept it knowingly with "
                           "run_preflight(..., allow_legacy=True); never buy Provisioned Throughput for a LEGACY model."),
            )
        else:
            state.usable = True
            checklist.add(label, WARN, f"LEGACY, allowed ({dates}); do not buy Provisioned Throughput for it")
    else:
        state.usable = True
        checklist.add(label, PASS, f"{status}" + (f" ({dates})" if dates else ""))


def _needs_profile(state: _ModelState) -> bool:
    types = state.details.get("inferenceTypesSupported", []) or []
    return state.spec.requires_profile or ("ON_DEMAND" not in types and "INFERENCE_PROFILE" in types)


def _system_profiles(bedrock: Any) -> set[str]:
    ids: set[str] = set()
    for page in bedrock.get_paginator("list_inference_profiles").paginate(typeEquals="SYSTEM_DEFINED"):
        ids.update(p["inferenceProfileId"] for p in page.get("inferenceProfileSummaries", []))
    return ids


def _resolve_profiles(checklist: Checklist, bedrock: Any, states: list[_ModelState]) -> None:
    needing = [s for s in states if s.usable and _needs_profile(s)]
    for state in states:
        if state.usable and not _needs_profile(state):
            for role in state.roles:
                checklist.resolved_ids[role] = state.spec.model_id
    if not needing:
        return
    try:
        available = _system_profiles(bedrock)
    except ClientError as exc:
        for state in needing:
            guess = state.spec.profile_id()
            for role in state.roles:
                checklist.resolved_ids[role] = guess
            checklist.add(f"inference profile: {state.spec.name}", WARN,
                          f"could not list inference profiles ({_error(exc)[0]}); assuming {guess}")
        return
    preference = [geo_prefix(checklist.region), "global"]
    for state in needing:
        candidates = [f"{p}.{state.spec.model_id}" for p in preference]
        chosen = next((c for c in candidates if c in available), None)
        if chosen is None and "INFERENCE_PROFILE" not in (state.details.get("inferenceTypesSupported") or []):
            chosen = state.spec.model_id  # in-region ID still works on demand
        name = f"inference profile: {state.spec.name} ({', '.join(state.roles)})"
        if chosen is None:
            checklist.add(
                name, _severity(state.roles),
                f"needs an inference profile, and none of {candidates} is offered in {checklist.region}",
                _later_fix(state.roles, f"Run in a region with a system-defined profile for {state.spec.model_id} (e.g. "
                           f"{state.spec.customization_regions[0] if state.spec.customization_regions else 'us-east-1'}), "
                           "or choose another model for this role."),
            )
            state.usable = False
            continue
        for role in state.roles:
            checklist.resolved_ids[role] = chosen
        checklist.add(name, PASS, f"invoke as {chosen}")


def _region_row(
    checklist: Checklist, bedrock: Any, student: models.ModelSpec, customization_type: str,
) -> None:
    target = student.customization_id or student.model_id
    label = f"region: {customization_type} of {student.name}"
    try:
        summaries = bedrock.list_foundation_models(byCustomizationType=customization_type)["modelSummaries"]
    except ClientError as exc:
        checklist.add(label, FAIL, f"list_foundation_models failed ({_error(exc)[0]})",
                      _fix_for_client_error(exc, "bedrock:ListFoundationModels"))
        return
    listed = {m["modelId"] for m in summaries}
    if target in listed or student.model_id in listed:
        checklist.add(label, PASS, f"{target} supports {customization_type} in {checklist.region}")
        return
    elsewhere = [r for r in student.customization_regions if r != checklist.region]
    if student.retired or models.REPLACEMENTS.get(student.key):
        fix = _replacement_text(student)
    elif elsewhere:
        fix = (
            f"Use {elsewhere[0]}: set WORKSHOP_REGION={elsewhere[0]} before running the notebooks (or "
            f"run_preflight(..., region='{elsewhere[0]}')); the bucket must be in that region too."
        )
    else:
        here = sorted(m["modelId"] for m in summaries)[:6]
        fix = f"Choose a student that supports {customization_type} here, e.g. {', '.join(here) or 'none listed'}."
    checklist.add(label, FAIL, f"{target} cannot be customized ({customization_type}) in {checklist.region}", fix)


def _access_row(checklist: Checklist, bedrock: Any, state: _ModelState, *, probe: bool) -> None:
    spec = state.spec
    label = f"access: {spec.name}"
    try:
        availability = bedrock.get_foundation_model_availability(modelId=spec.model_id)
    except ClientError as exc:
        code, message = _error(exc)
        if not probe:
            checklist.add(label, WARN, f"could not check (get_foundation_model_availability: {code})")
            return
        _invoke_probe(checklist, state, label, f"{code}: {message}")
        return
    problems: list[tuple[str, str]] = []
    agreement = (availability.get("agreementAvailability") or {}).get("status", "AVAILABLE")
    if availability.get("authorizationStatus") == "NOT_AUTHORIZED":
        problems.append(("not authorized by IAM/SCP", IAM_FIX + " " + SCP_FIX))
    access_fix = _access_fix(spec)
    if availability.get("entitlementAvailability") == "NOT_AVAILABLE":
        problems.append(("model access not enabled (entitlement)", access_fix))
    if agreement not in {"AVAILABLE"}:
        problems.append((f"Marketplace agreement {agreement}", access_fix))
    if availability.get("regionAvailability") == "NOT_AVAILABLE":
        problems.append((f"not available in {checklist.region}", _replacement_text(spec)))
    if problems:
        checklist.add(label, _severity(state.roles), "; ".join(p for p, _ in problems),
                      _later_fix(state.roles, " ".join(dict.fromkeys(f for _, f in problems))))
        state.usable = False
    else:
        checklist.add(label, PASS, "authorized, entitled, agreement available")


def _not_on_marketplace_fix(provider: str) -> str:
    return (f"{IAM_FIX} {provider} models are not sold through AWS Marketplace, so no subscription is "
            f"needed; if access still fails, check for an SCP ({SCP_FIX}) and see {MODEL_ACCESS_DOC}")


def _access_fix(spec: models.ModelSpec) -> str:
    """Models not sold through Marketplace (Amazon, Meta, ...) need no subscription: their access
    problems are IAM or SCPs. Marketplace models need the Marketplace steps (+ Anthropic's form)."""
    if not spec.on_marketplace:
        return _not_on_marketplace_fix(spec.provider)
    return MARKETPLACE_FIX + (f" {ANTHROPIC_FORM_FIX}" if spec.provider.lower() == "anthropic" else "")


def _invoke_probe(checklist: Checklist, state: _ModelState, label: str, why: str) -> None:
    """A one-token Converse call; maps the two AccessDenied messages to their fixes."""
    model_id = next((checklist.resolved_ids[r] for r in state.roles if r in checklist.resolved_ids),
                    state.spec.invocation_id())
    try:
        aws.client("bedrock-runtime", checklist.region).converse(
            modelId=model_id, messages=[{"role": "user", "content": [{"text": "ping"}]}],
            inferenceConfig={"maxTokens": 1},
        )
    except ClientError as exc:
        code, message = _error(exc)
        if _denied(code):
            checklist.add(label, _severity(state.roles), f"one-token invoke denied: {message}",
                          _later_fix(state.roles, explain_access_denied(message, state.spec.provider)))
            state.usable = False
        else:
            checklist.add(label, WARN, f"could not check ({why}; one-token invoke: {code})")
        return
    checklist.add(label, PASS, f"one-token invoke of {model_id} succeeded (availability API: {why})")


def caller_principal_arn(caller_arn: str, region: str | None = None) -> str:
    """The IAM ARN to simulate for an STS caller ARN (assumed-role → role ARN, path included if readable)."""
    match = re.match(r"arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/", caller_arn)
    if not match:
        return caller_arn
    partition, account, role = match.groups()
    try:
        return aws.client("iam", region).get_role(RoleName=role)["Role"]["Arn"]
    except (ClientError, BotoCoreError):
        return f"arn:{partition}:iam::{account}:role/{role}"


def series_action_probes(
    region: str, account: str, student: models.ModelSpec, plan: RunPlan | None = None,
) -> list[tuple[str, str]]:
    """(action, representative resource ARN) pairs this run needs, for the permission simulation.

    Serving checks Provisioned Throughput only when the plan serves the student that way
    (else on-demand deployments); invoking inference profiles only when a model in use needs
    one; the Marketplace actions only when a model sold through Marketplace is in use.
    """
    part = iam.partition_for(region)
    bedrock = f"arn:{part}:bedrock:{region}:{account}"
    fm = f"arn:{part}:bedrock:{region}::foundation-model/{student.customization_id or student.model_id}"
    role = f"arn:{part}:iam::{account}:role/{iam.ROLE_NAME_PREFIX}preflight-Customization"
    bucket = f"arn:{part}:s3:::{iam.BUCKET_PREFIX}preflight-data"
    deployment = plan.deployment if plan else (student.deployment or "provisioned")
    probes = [
        ("bedrock:ListFoundationModels", "*"),
        ("bedrock:GetFoundationModel", fm),
        ("bedrock:CreateModelCustomizationJob", fm),
        ("bedrock:GetModelCustomizationJob", f"{bedrock}:model-customization-job/preflight"),
        ("bedrock:StopModelCustomizationJob", f"{bedrock}:model-customization-job/preflight"),
        ("bedrock:GetCustomModel", f"{bedrock}:custom-model/preflight"),
        ("bedrock:DeleteCustomModel", f"{bedrock}:custom-model/preflight"),
    ]
    if deployment == "provisioned":
        probes += [
            ("bedrock:CreateProvisionedModelThroughput", f"{bedrock}:custom-model/preflight"),
            ("bedrock:GetProvisionedModelThroughput", f"{bedrock}:provisioned-model/preflight"),
            ("bedrock:DeleteProvisionedModelThroughput", f"{bedrock}:provisioned-model/preflight"),
            ("bedrock:InvokeModel", f"{bedrock}:provisioned-model/preflight"),
        ]
    else:
        probes += [
            ("bedrock:CreateCustomModelDeployment", f"{bedrock}:custom-model/preflight"),
            ("bedrock:GetCustomModelDeployment", f"{bedrock}:custom-model-deployment/preflight"),
            ("bedrock:DeleteCustomModelDeployment", f"{bedrock}:custom-model-deployment/preflight"),
            ("bedrock:InvokeModel", f"{bedrock}:custom-model-deployment/preflight"),
            # 05 streams one answer from the deployment (InvokeModelWithResponseStream)
            ("bedrock:InvokeModelWithResponseStream", f"{bedrock}:custom-model-deployment/preflight"),
        ]
    probes.append(("bedrock:InvokeModel", f"arn:{part}:bedrock:{region}::foundation-model/{student.model_id}"))
    in_use = [models.get(key) for key in plan.roles.values()] if plan else [student]
    if any(spec.requires_profile for spec in in_use):
        probes.append(("bedrock:InvokeModel", f"{bedrock}:inference-profile/{geo_prefix(region)}.preflight"))
    probes += [
        ("iam:PassRole", role),
        ("iam:CreateRole", role),
        ("iam:DeleteRole", role),
        ("s3:CreateBucket", bucket),
        ("s3:PutObject", f"{bucket}/datasets/train.jsonl"),
        ("s3:DeleteBucket", bucket),
        ("servicequotas:ListServiceQuotas", "*"),
    ]
    if plan is not None and plan.marketplace:
        probes += [(action, "*") for action in MARKETPLACE_ACTIONS]
    return probes


def probe_context(action: str, account: str, region: str) -> dict[str, str]:
    """The condition keys the series' real call of ``action`` carries, for the simulation.

    The caller policy conditions some actions on them (``iam-policies/notebook-caller.json``), and
    SimulatePrincipalPolicy evaluates a condition key the request does not supply as absent
    (reported in ``MissingContextValues``), which would deny a call the series makes
    (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html):
    roles are passed to Bedrock only, created with the workshop's permissions boundary, and the
    resources the series stops or deletes carry its tags (``utils.state.tags``; the workshop id is
    a placeholder).
    """
    if action == "iam:PassRole":
        return {"iam:PassedToService": "bedrock.amazonaws.com"}
    if action == "iam:CreateRole":
        return {"iam:PermissionsBoundary": iam.permissions_boundary_arn(account, partition=iam.partition_for(region))}
    if action.startswith(("bedrock:Stop", "bedrock:Delete")):
        return {f"aws:ResourceTag/{key}": value for key, value in ws.tags("preflight").items()}
    return {}


def _permissions_row(checklist: Checklist, student: models.ModelSpec, plan: RunPlan | None = None) -> None:
    label = "caller permissions"
    caller = checklist.facts.get("caller_arn")
    account = checklist.facts.get("account")
    if not caller or not account:
        checklist.add(label, WARN, "could not check (no caller identity)")
        return
    principal = caller_principal_arn(caller, checklist.region)
    client = aws.client("iam", checklist.region)
    denied: list[str] = []
    explicit: list[str] = []
    # One simulation per resource and request context (context entries apply to every action of a call).
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    probes = series_action_probes(checklist.region, account, student, plan)
    for action, resource in probes:
        context = tuple(sorted(probe_context(action, account, checklist.region).items()))
        groups.setdefault((resource, context), []).append(action)
    try:
        for (resource, context), actions in groups.items():
            kwargs: dict[str, Any] = {"PolicySourceArn": principal, "ActionNames": actions}
            if resource != "*":
                kwargs["ResourceArns"] = [resource]
            if context:
                kwargs["ContextEntries"] = [
                    {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
                    for key, value in context
                ]
            for page in client.get_paginator("simulate_principal_policy").paginate(**kwargs):
                for result in page["EvaluationResults"]:
                    if result["EvalDecision"] == "allowed":
                        continue
                    name = result["EvalActionName"]
                    org = (result.get("OrganizationsDecisionDetail") or {}).get("AllowedByOrganizations", True)
                    (explicit if result["EvalDecision"] == "explicitDeny" or not org else denied).append(name)
    except (ClientError, BotoCoreError) as exc:
        code = _error(exc)[0]
        checklist.add(
            label, WARN,
            f"could not check: iam:SimulatePrincipalPolicy on {principal} returned {code} (the caller policy "
            f"{CALLER_POLICY} grants it on the notebook role itself)",
        )
        return
    checklist.facts["simulated_principal"] = principal
    if not denied and not explicit:
        checklist.add(label, PASS, f"{len(probes)} actions this run needs are allowed for {principal}")
        return
    fixes = []
    if denied:
        fixes.append(f"Allow {', '.join(sorted(set(denied)))}: {IAM_FIX}")
    if set(denied) & set(MARKETPLACE_ACTIONS):
        fixes.append(MARKETPLACE_FIX)
    if explicit:
        fixes.append(f"{', '.join(sorted(set(explicit)))}: {SCP_FIX}")
    blocked = set(denied + explicit)
    only_06 = plan is not None and blocked <= set(MARKETPLACE_ACTIONS) and not plan.marketplace_required
    roles = [r for r, k in (plan.roles.items() if plan else ()) if _only_06(r) and models.get(k).on_marketplace]
    checklist.add(label, WARN if only_06 else FAIL, f"denied: {', '.join(sorted(blocked))}",
                  _later_fix(roles, " ".join(fixes)) if only_06 else " ".join(fixes))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9.]+", text.lower()))


_PROVIDERS = {"amazon", "meta", "anthropic", "cohere", "mistral"}
_TYPE_WORDS = {
    "FINE_TUNING": ("fine-tuning", "fine tuning", "finetuning"),
    "CONTINUED_PRE_TRAINING": ("continued pre-training", "continued pretraining"),
    "DISTILLATION": ("distillation",),
}


def find_records_quota(quotas: Iterable[dict[str, Any]], spec: models.ModelSpec,
                       customization_type: str = "FINE_TUNING") -> dict[str, Any] | None:
    """The 'sum of training and validation records' quota for a model, matched by name."""
    wanted = _words(spec.name) - _PROVIDERS - {"instruct", "-"}
    for quota in quotas:
        name = quota.get("QuotaName", "")
        lowered = name.lower()
        if "record" not in lowered or not any(w in lowered for w in _TYPE_WORDS.get(customization_type, ())):
            continue
        if wanted <= _words(name):
            return quota
    return None


def _quota_rows(checklist: Checklist, student: models.ModelSpec, customization_type: str) -> None:
    try:
        client = aws.client("service-quotas", checklist.region)
        quotas = [q for page in client.get_paginator("list_service_quotas").paginate(ServiceCode="bedrock")
                  for q in page.get("Quotas", [])]
    except (ClientError, BotoCoreError) as exc:
        code = _error(exc)[0]
        checklist.add(
            "quotas", WARN,
            f"could not read Service Quotas ({code}); assuming the published defaults: 2 concurrent "
            f"customization jobs, {DEFAULT_RECORD_LIMIT:,} training+validation records",
        )
        checklist.facts.update(concurrent_jobs=None, record_limit=DEFAULT_RECORD_LIMIT)
        return
    jobs = next((q for q in quotas if q.get("QuotaCode") == CONCURRENT_JOBS_QUOTA), None)
    if jobs is None:
        checklist.add("quota: concurrent customization jobs", WARN, f"{CONCURRENT_JOBS_QUOTA} not found; assuming 2")
        checklist.facts["concurrent_jobs"] = None
    else:
        value = int(jobs.get("Value", 0))
        checklist.facts["concurrent_jobs"] = value
        if value < 1:
            checklist.add(
                "quota: concurrent customization jobs", FAIL, f"{value} in {checklist.region}",
                f"Request an increase of '{jobs.get('QuotaName')}' ({CONCURRENT_JOBS_QUOTA}) in the Service Quotas "
                "console; event accounts often have 0.",
            )
        else:
            checklist.add("quota: concurrent customization jobs", PASS, f"{value} ({CONCURRENT_JOBS_QUOTA})")
    records = find_records_quota(quotas, student, customization_type)
    if records is None:
        checklist.facts["record_limit"] = DEFAULT_RECORD_LIMIT
        checklist.add(f"quota: records for {student.name}", WARN,
                      f"no records quota found by name; assuming {DEFAULT_RECORD_LIMIT:,}")
    else:
        checklist.facts["record_limit"] = int(records["Value"])
        checklist.add(f"quota: records for {student.name}", PASS,
                      f"{int(records['Value']):,} training+validation records ({records.get('QuotaCode')})")


# ---- the whole preflight ------------------------------------------------------------------


def run_preflight(
    profile_name: str = models.DEFAULT_PROFILE,
    region: str | None = None,
    student: str | None = None,
    customization_type: str = "FINE_TUNING",
    allow_legacy: bool = False,
    workshop_window_days: int = WORKSHOP_WINDOW_DAYS,
    *,
    plan: RunPlan | None = None,
    today: date | None = None,
    invoke_probe: bool = False,
    check_permissions: bool = True,
    installed_versions: dict[str, str] | None = None,
    progress: Callable[[Check], None] | None = None,
) -> Checklist:
    """Run every check for the models and features of ``plan`` and return the :class:`Checklist`.

    ``plan`` comes from :func:`plan_run` (the notebooks' parameters); without one, the
    student and teacher only are checked (no judges or comparison models; 01 passes its own).
    ``region`` defaults to ``$WORKSHOP_REGION``, then the profile's region.
    ``student`` overrides the profile's student (a registry key or ID).
    ``allow_legacy`` accepts LEGACY models whose end of life is more than
    ``LEGACY_REFUSE_DAYS`` away and outside ``workshop_window_days``.
    ``invoke_probe`` allows a one-token Converse call when the availability API
    cannot be read. ``today`` and ``installed_versions`` exist for tests.
    """
    prof = models.profile(profile_name)
    plan = plan or plan_run(prof.name, student=student or "", customization_type=customization_type)
    if student and models.get(student).key != plan.roles["student"]:
        raise ValueError(f"student={student!r} differs from the plan's student {plan.roles['student']!r}")
    customization_type = plan.customization_type
    region = region or os.environ.get(aws.REGION_ENV) or prof.region
    today = today or datetime.now(timezone.utc).date()
    roles = dict(plan.roles)
    checklist = Checklist(profile=prof.name, region=region, models=dict(roles))
    checklist.facts.update(customization_type=customization_type, today=today.isoformat(),
                           skipped_roles=dict(plan.skipped), deployment=plan.deployment)
    if progress:
        def add_with_progress(*args: Any, **kwargs: Any) -> Check:
            check = Checklist.add(checklist, *args, **kwargs)
            progress(check)
            return check

        checklist.add = add_with_progress  # type: ignore[method-assign]

    check_versions(checklist, installed_versions)
    check_environment(checklist)
    if not check_identity(checklist, region):
        checklist.add("Bedrock checks", WARN, "skipped: no usable AWS identity (see above)")
        return checklist

    bedrock = aws.client("bedrock", region)
    student_spec = models.get(roles["student"])
    states: dict[str, _ModelState] = {}
    for role, key in roles.items():
        spec = models.get(key)
        states.setdefault(spec.key, _ModelState(spec, [])).roles.append(role)
    for state in states.values():
        _lifecycle_row(checklist, bedrock, state, allow_legacy=allow_legacy, today=today,
                       window_days=workshop_window_days)
    _region_row(checklist, bedrock, student_spec, customization_type)
    _resolve_profiles(checklist, bedrock, list(states.values()))
    for state in states.values():
        if state.usable:
            _access_row(checklist, bedrock, state, probe=invoke_probe)
    if check_permissions:
        _permissions_row(checklist, student_spec, plan)
    _quota_rows(checklist, student_spec, customization_type)
    return checklist
