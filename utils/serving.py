"""Serving every trained arm: the path per model, one estimate for all, the hourly reminder.

A custom model answers only once something serves it. The registry (``utils.models``) says how:

* ``on_demand`` -- a custom model deployment, billed per token at the base model's price, nothing
  while idle (Amazon Nova Micro/Lite/Pro customized since 2025-07-16,
  https://docs.aws.amazon.com/bedrock/latest/userguide/deploy-custom-model-on-demand.html);
* ``provisioned`` -- Provisioned Throughput, billed per model unit for every hour it exists, used
  or not (Llama, Titan, the seeds' Claude 3 Haiku,
  https://docs.aws.amazon.com/bedrock/latest/userguide/prov-throughput.html).

:func:`arms_to_serve` takes the arms 04 trained (only ``Completed`` ones have a model) or a model
handed over by a facilitator; :func:`plan` gives each its path and resource name;
:func:`estimate` prices them all before anything is created; :func:`serve` creates, waits and
records them (``state['serving']`` = ``{arm: ARN}``, the ledger for 07); :func:`running_cost`
and :func:`reminder` close the notebook.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from utils import aws, costs, deployment, invoke
from utils.models import ModelSpec
from utils.state import WorkshopState, name

TRAINED_ARMS = ("ft_n", "ft_4n", "ft_n_3n")
HANDOFF = "handoff"  # the arm name of a model a facilitator trained before the session
COMMITMENTS = ("OneMonth", "SixMonths")  # botocore CommitmentDuration
_TERMS = {None: None, "OneMonth": "1mo", "SixMonths": "6mo"}
# A Provisioned Throughput with no commitment, for a custom model, gets one model unit; more
# needs a commitment (and a quota granted through AWS Support). The "Model units
# no-commitment Provisioned Throughputs across custom models" quota and the purchase page
# (https://docs.aws.amazon.com/bedrock/latest/userguide/prov-thru-purchase.html) cover it; the
# exact per-PT limit of 1 is from the older prov-throughput page (uncertain: AWS may raise it).
NO_COMMITMENT_MAX_UNITS = 1
# PT creation takes about 20-30 minutes in AWS's samples (anecdotal; our timeout is generous).
PT_TIMEOUT_S = 3600.0
DEPLOYMENT_TIMEOUT_S = 3600.0
_HANDOFF_ARN = re.compile(
    r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:(custom-model|custom-model-deployment|provisioned-model)/\S+$")


class ServingError(ValueError):
    """A parameter or an arm that cannot be served; the message says what and how to fix it."""

    def _render_traceback_(self) -> list[str]:  # Jupyter: the message, not a traceback
        return [f"{type(self).__name__}: {self}"]


# ---- parameters ----------------------------------------------------------------------------------


def check_pt_options(model_units: int, commitment: str | None, confirm_commitment: bool) -> str | None:
    """The ``commitmentDuration`` to send (None = no commitment), or :class:`ServingError`.

    A commitment needs its own opt-in (``confirm_commitment=True``) on top of ``confirm_spend``,
    because a committed Provisioned Throughput is billed for its whole term and cannot be deleted
    before the term ends (API_DeleteProvisionedModelThroughput, prov-throughput.html).
    """
    if isinstance(model_units, bool) or not isinstance(model_units, int) or model_units < 1:
        raise ServingError(f"model_units must be a whole number >= 1, got {model_units!r} (05 parameters).")
    term = commitment or None
    if isinstance(term, str) and term.lower() in ("none", "nocommit", "no_commitment"):
        term = None
    if term is not None and term not in COMMITMENTS:
        raise ServingError(f"commitment={commitment!r}: use \"\" (no commitment, the default), \"OneMonth\" or "
                           "\"SixMonths\" (05 parameters).")
    if term and not confirm_commitment:
        raise ServingError(
            f"commitment={term!r} was refused: a committed Provisioned Throughput is billed for the whole term "
            "and cannot be deleted before it ends. If you really want it, also set confirm_commitment=True; "
            "otherwise leave commitment=\"\" (no commitment, deletable at any time)."
        )
    if term is None and model_units > NO_COMMITMENT_MAX_UNITS:
        raise ServingError(
            f"model_units={model_units}: without a commitment a custom model's Provisioned Throughput is limited "
            f"to {NO_COMMITMENT_MAX_UNITS} model unit. Use model_units=1, or a commitment (with the quota "
            "granted through AWS Support)."
        )
    return term


def commitment_warning(commitment: str | None) -> str:
    if not commitment:
        return "No commitment: the Provisioned Throughput can be deleted at any time (07_cleanup)."
    return (f"WARNING: commitment {commitment}: billed for the whole term, and it CANNOT be deleted before the "
            "term ends; 07_cleanup will not be able to remove it early.")


def serving_path(student: ModelSpec) -> str:
    """``on_demand`` or ``provisioned`` for custom models of ``student`` (provisioned when unknown)."""
    return student.deployment or "provisioned"


def explain_path(student: ModelSpec) -> str:
    if serving_path(student) == "on_demand":
        return (f"{student.name}: on-demand custom model deployment, billed per token at the base model's "
                "price; nothing while idle.")
    return (f"{student.name}: Provisioned Throughput, billed per model unit for every hour it exists, used or "
            "not. Delete it with 07_cleanup as soon as you are done.")


# ---- which arms ----------------------------------------------------------------------------------


def handoff_kind(arn: str) -> str:
    """``custom-model`` | ``custom-model-deployment`` | ``provisioned-model`` of a hand-off ARN."""
    match = _HANDOFF_ARN.match(arn.strip())
    if not match:
        raise ServingError(
            f"handoff_arn={arn!r} is not a custom model, custom model deployment or Provisioned Throughput ARN "
            "(arn:aws:bedrock:<region>:<account>:custom-model/..., :custom-model-deployment/... or "
            ":provisioned-model/...). Copy it from the Bedrock console or from the facilitator's 04 output."
        )
    return match.group(1)


def arms_to_serve(arms_state: Mapping[str, Mapping[str, Any]] | None, wanted: str = "all",
                  handoff_arn: str = "", log: Callable[[str], None] = print) -> dict[str, str]:
    """``{arm: model (or serving) ARN}`` of the arms to serve.

    ``handoff_arn`` (a facilitator's model) replaces 04's arms. Otherwise every ``Completed``
    trained arm is served; an arm that did not complete is named with its status and skipped, and
    an arm asked for by name that did not complete is refused.
    """
    if handoff_arn:
        handoff_kind(handoff_arn)
        log(f"{HANDOFF}: serving the hand-off model {handoff_arn} (04's arms are not used).")
        return {HANDOFF: handoff_arn.strip()}
    arms_state = arms_state or {}
    names = [a.strip() for a in wanted.split(",") if a.strip()] if wanted and wanted != "all" else list(TRAINED_ARMS)
    unknown = [a for a in names if a not in TRAINED_ARMS]
    if unknown:
        raise ServingError(f"serve_arms: unknown {unknown}; choose from {', '.join(TRAINED_ARMS)} or \"all\". "
                           "(The base model needs no deployment: it answers on demand.)")
    chosen: dict[str, str] = {}
    for arm in names:
        entry = arms_state.get(arm)
        if entry is None:
            if wanted != "all":
                raise ServingError(f"arm {arm} was not run by 04_fine_tuning; rerun 04 with it in `arms`.")
            continue
        status, model_arn = entry.get("status"), entry.get("model_arn")
        if status == "Completed" and model_arn:
            chosen[arm] = model_arn
            continue
        message = f"arm {arm} is not served: its job is {status} (only a Completed job has a model to serve)."
        if wanted != "all":
            raise ServingError(message + " Rerun 04_fine_tuning, or drop it from serve_arms.")
        log(message)
    return chosen


# ---- plan and estimate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServingPlan:
    arm: str
    model_arn: str  # the custom model (or, for a hand-off of a serving resource, that resource)
    path: str  # on_demand | provisioned | existing
    resource_name: str  # deterministic name of what 05 creates ("" for existing)

    @property
    def billing(self) -> str:
        return {"on_demand": "per token", "provisioned": "hourly", "existing": "already running"}[self.path]


def plan(models_by_arm: Mapping[str, str], student: ModelSpec, workshop_id: str) -> list[ServingPlan]:
    """One :class:`ServingPlan` per arm, in arm order."""
    plans = []
    for arm, arn in models_by_arm.items():
        if arm == HANDOFF and handoff_kind(arn) != "custom-model":
            plans.append(ServingPlan(arm, arn, "existing", ""))
            continue
        path = serving_path(student)
        purpose = ("deployment" if path == "on_demand" else "pt") + "-" + arm.replace("_", "-")
        plans.append(ServingPlan(arm, arn, path, name(workshop_id, purpose)))
    return plans


def plan_table(plans: Sequence[ServingPlan]) -> pd.DataFrame:
    return pd.DataFrame([{"arm": p.arm, "path": p.path, "billing": p.billing, "resource": p.resource_name or "-",
                          "model": p.model_arn} for p in plans])


def estimate(plans: Sequence[ServingPlan], student: ModelSpec, *, region: str, pt_hours: float = 1.0,
             model_units: int = 1, commitment: str | None = None, tokens_per_arm: tuple[int, int] = (2_000, 1_000),
             price_overrides: Mapping[str, float] | None = None) -> costs.Estimate:
    """One estimate for every arm (PT: the hourly rate first; on demand: the calls' tokens), plus the
    base model's calls for the side-by-side table."""
    parts: list[costs.Estimate] = []
    for p in plans:
        if p.path == "provisioned":
            part = costs.estimate_provisioned_throughput(student.key, hours=pt_hours, commitment=_TERMS[commitment],
                                                         model_units=model_units, price_overrides=price_overrides,
                                                         region=region)
        elif p.path == "on_demand":
            # The custom model's storage was already in 04's estimate (months_stored=0).
            part = costs.estimate_on_demand_deployment(student.key, input_tokens=tokens_per_arm[0],
                                                       output_tokens=tokens_per_arm[1], months_stored=0,
                                                       price_overrides=price_overrides, region=region)
        else:
            continue
        for item in part.items:
            item.description = f"{p.arm}: {item.description}"
        parts.append(part)
    parts.append(costs.estimate_inference(student.key, tokens_per_arm[0], tokens_per_arm[1],
                                          price_overrides=price_overrides, region=region,
                                          description=f"base {student.key} (side by side)"))
    return costs.combine(parts, title=f"Serving {len(plans)} model(s) of {student.name}")


def hourly_rate(student: ModelSpec, *, model_units: int = 1, commitment: str | None = None,
                price_overrides: Mapping[str, float] | None = None, region: str = costs.DEFAULT_REGION) -> float | None:
    """USD per hour of one Provisioned Throughput of ``student`` (None: no sourced price, pass an override)."""
    if commitment:
        term = costs.estimate_provisioned_throughput(student.key, hours=0, commitment=_TERMS[commitment],
                                                     model_units=model_units, price_overrides=price_overrides,
                                                     region=region)
        hours = term.items[0].quantity / model_units
        return None if term.total is None else term.total / hours
    return costs.estimate_provisioned_throughput(student.key, hours=1, commitment=None, model_units=model_units,
                                                 price_overrides=price_overrides, region=region).total


# ---- create, wait, record -----------------------------------------------------------------------


def _since(description: Mapping[str, Any], key: str) -> str:
    value = description.get(key)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return str(value or datetime.now(timezone.utc).isoformat())


def serve_one(p: ServingPlan, state: WorkshopState, workshop_id: str, *, model_units: int = 1,
              commitment: str | None = None, poll_s: float = 30, timeout_s: float | None = None,
              client: Any = None) -> str:
    """Create (or find) what serves one arm, record it in the ledger first, then wait until it serves."""
    bedrock = client or aws.client("bedrock", state.region)
    generation = state.get("generation", 0)
    if p.path == "on_demand":
        arn, _ = deployment.ensure_on_demand_deployment(p.resource_name, p.model_arn, workshop_id,
                                                        generation=generation, client=bedrock, poll_s=poll_s)
        state.record("custom-model-deployment", arn, "05_deployment", billable=True)
        served = deployment.wait_for_deployment(arn, model_arn=p.model_arn, client=bedrock, poll_s=poll_s,
                                                timeout_s=timeout_s or DEPLOYMENT_TIMEOUT_S)
        since = _since(served, "createdAt")
    elif p.path == "provisioned":
        arn, _ = deployment.ensure_provisioned_throughput(
            p.resource_name, p.model_arn, workshop_id, model_units=model_units, commitment=commitment,
            generation=generation, client=bedrock, poll_s=poll_s)
        state.record("provisioned-throughput", arn, "05_deployment", billable=True)
        served = deployment.wait_for_provisioned_throughput(arn, model_arn=p.model_arn, client=bedrock, poll_s=poll_s,
                                                            timeout_s=timeout_s or PT_TIMEOUT_S)
        since = _since(served, "creationTime")
    else:  # a facilitator's deployment or throughput: wait until it serves, create nothing
        arn = p.model_arn
        if handoff_kind(arn) == "custom-model-deployment":
            deployment.wait_for_deployment(arn, client=bedrock, poll_s=poll_s, timeout_s=timeout_s or 600)
        else:
            deployment.wait_for_provisioned_throughput(arn, client=bedrock, poll_s=poll_s, timeout_s=timeout_s or 600)
        return arn
    billing = dict(state.get("serving_billing", {}))
    billing[arn] = {"since": since, "path": p.path, "model_units": model_units if p.path == "provisioned" else 0,
                    "commitment": commitment if p.path == "provisioned" else None}
    state.set("serving_billing", billing)
    return arn


def serve(plans: Sequence[ServingPlan], state: WorkshopState, workshop_id: str, *,
          log: Callable[[str], None] = print, **options: Any) -> dict[str, str]:
    """Serve every planned arm; ``state['serving']`` = ``{arm: ARN}`` of those that serve.

    One arm that fails (Failed status, timeout, an AWS error) is reported with the fix and the
    others still run; the failed arm is left out of ``serving``.
    """
    serving: dict[str, str] = {}  # this run's arms only: an arm served earlier and not planned now is not kept
    for p in plans:
        try:
            arn = serve_one(p, state, workshop_id, **options)
        except (deployment.DeploymentError, TimeoutError, ClientError) as err:
            detail = aws.error(err)[1] if isinstance(err, ClientError) else str(err)
            log(f"{p.arm}: NOT serving ({type(err).__name__}): {detail}")
            continue
        serving[p.arm] = arn
        log(f"{p.arm}: serving at {arn} ({p.billing})")
    state.set("serving", serving)
    return serving


# ---- cost so far, and the reminder ---------------------------------------------------------------


def running_cost(state: WorkshopState, student: ModelSpec, *, price_overrides: Mapping[str, float] | None = None,
                 now: datetime | None = None) -> tuple[list[str], float | None]:
    """(one line per hourly resource, USD so far or None when a rate is unknown): hours × rate."""
    now = now or datetime.now(timezone.utc)
    lines: list[str] = []
    total: float | None = 0.0
    billing = state.get("serving_billing", {})
    for arn in hourly_resources(state):
        info = billing.get(arn)
        if info is None:  # created, but the wait failed before 05 recorded when it started serving
            total = None
            lines.append(f"{arn}: billing since its creation (see the Bedrock console); rate × hours unknown here")
            continue
        since = datetime.fromisoformat(str(info["since"]).replace("Z", "+00:00"))
        hours = max(0.0, (now - since).total_seconds() / 3600)
        rate = hourly_rate(student, model_units=info.get("model_units") or 1, commitment=info.get("commitment"),
                           price_overrides=price_overrides, region=state.region or costs.DEFAULT_REGION)
        if rate is None:
            total = None
            lines.append(f"{arn}: {hours:.2f} h so far × unknown rate (pass price_overrides)")
        else:
            total = None if total is None else total + hours * rate
            lines.append(f"{arn}: {hours:.2f} h so far × ${rate:,.2f}/h = ${hours * rate:,.2f}")
    return lines, total


def hourly_resources(state: WorkshopState) -> list[str]:
    return [e.identifier for e in state.resources("provisioned-throughput")]


def reminder(state: WorkshopState) -> str:
    """What is still billing and the one thing to do about it."""
    hourly = hourly_resources(state)
    if hourly:
        return (f"REMINDER: {len(hourly)} Provisioned Throughput(s) bill every hour until deleted: "
                f"{', '.join(hourly)}. Run 07_cleanup with workshop_id={state.workshop_id!r} as soon as you are done.")
    if state.resources("custom-model-deployment") or state.resources("imported-model"):
        return ("On-demand deployments and imported models cost nothing while idle (per token / per active "
                "5-minute window); custom models bill monthly storage. Run 07_cleanup when the workshop is over.")
    return "Nothing billed by the hour was created. Run 07_cleanup when the workshop is over."


# ---- side by side --------------------------------------------------------------------------------


def side_by_side(rows: Sequence[Mapping[str, Any]], targets: Mapping[str, str], prompt_for: Callable[[Mapping[str, Any]], str],
                 *, system: str | None = None, max_tokens: int = 400, sampling: Mapping[str, float] | None = None,
                 client: Any = None, region: str | None = None) -> pd.DataFrame:
    """One row per question: the question, the reference and each target's answer (Converse), with its
    token counts and latency under the answer. A target that errors shows the error in its cell."""
    runtime = client or aws.client("bedrock-runtime", region)
    sampling = dict(sampling or {"temperature": 0.0})
    table = []
    for row in rows:
        line: dict[str, Any] = {"question": row["question"], "reference": row.get("answer", "")}
        for label, model_id in targets.items():
            try:
                reply = invoke.converse(model_id, prompt_for(row), system=system, max_tokens=max_tokens,
                                        client=runtime, **sampling)
            except ClientError as err:
                code, message = aws.error(err)
                line[label] = f"[error {code}: {message}]"
                continue
            line[label] = (f"{reply.text}\n— {reply.input_tokens} in / {reply.output_tokens} out tokens, "
                           f"{reply.latency_ms} ms")
        table.append(line)
    return pd.DataFrame(table)


def styled(frame: pd.DataFrame) -> Any:
    """A pandas Styler that wraps text and never truncates a cell."""
    return (frame.style.hide(axis="index")
            .set_properties(**{"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top",
                               "min-width": "14em", "max-width": "32em"})
            .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))
