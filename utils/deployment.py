"""Serving a custom model: on-demand deployments (per token) or Provisioned Throughput (hourly).

Both cost money on AWS; notebooks call :func:`utils.costs.guard` first. Every
``ensure_*`` finds an existing resource by its deterministic name before creating, and:

* deploys only an ``Active`` custom model (it waits while the model is ``Creating`` and
  says why when it ``Failed``);
* sends a ``clientRequestToken`` that changes with the workshop's generation, the model and
  the resource it replaces. Bedrock ignores a create whose token it has seen before and
  returns the earlier result, so a token reused after ``07_cleanup`` deleted that resource
  would hand back a deleted ARN
  (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_CreateCustomModelDeployment.html,
  "If this token matches a previous request, Amazon Bedrock ignores the request");
* deletes a ``Failed`` deployment or throughput and creates it anew (a failed one never serves);
* swaps a newer model in behind the same name with the update operation; the caller then
  waits with :func:`wait_for_deployment` / :func:`wait_for_provisioned_throughput` and
  ``model_arn``, which return only once the new model serves
  (``updateDetails.updateStatus`` is ``UpdateCompleted`` for a deployment, botocore shape
  ``CustomModelDeploymentUpdateDetails``; ``InService`` with the new ``modelArn`` for a throughput).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from utils import aws
from utils.state import tag_list


class DeploymentError(RuntimeError):
    """A model, deployment or throughput ended in a state that cannot serve; the message says what to do."""


def _get_or_none(call, **kwargs) -> dict[str, Any] | None:
    try:
        return call(**kwargs)
    except ClientError as err:
        if aws.is_not_found(err):
            return None
        raise


def request_token(name: str, model_arn: str, generation: int = 0, replaces: str = "") -> str:
    """The idempotency token of one create: stable for a retry, new for anything that differs.

    ``generation`` moves on after each ``07_cleanup`` (utils.state / utils.cleanup), and
    ``replaces`` names a failed resource this create replaces, so neither case reuses a token.
    """
    digest = hashlib.sha256(f"{model_arn}\0{replaces}".encode()).hexdigest()[:12]
    return f"{name}-g{int(generation)}-{digest}"


def wait_gone(describe: Callable[[], Any], *, timeout_s: float = 600, poll_s: float = 5) -> None:
    """Poll until ``describe()`` raises not-found (Bedrock deletes deployments and PTs asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            describe()
        except ClientError as err:
            if aws.is_not_found(err):
                return
            raise
        time.sleep(poll_s)
    raise TimeoutError("still deleting; rerun this cell (or 07_cleanup) to continue")


def wait_for_model_active(
    model_arn: str, *, region: str | None = None, client: Any = None, poll_s: float = 30, timeout_s: float = 3600,
) -> dict[str, Any]:
    """Return the custom model once ``modelStatus`` is ``Active``; a ``Failed`` model raises.

    Only an Active model can be deployed (CreateCustomModelDeployment: "The custom model
    must be in the Active state"). A model without ``modelStatus`` is treated as Active.
    """
    bedrock = client or aws.client("bedrock", region)

    def describe() -> dict[str, Any]:
        model = bedrock.get_custom_model(modelIdentifier=model_arn)
        return {**model, "modelStatus": model.get("modelStatus") or "Active"}

    try:
        return aws.poll_until(describe, "Active", failed=("Failed",), status_key="modelStatus",
                              poll_s=poll_s, timeout_s=timeout_s)
    except RuntimeError as err:  # TimeoutError is not a RuntimeError: it passes through
        raise DeploymentError(
            f"Custom model {model_arn} cannot be deployed: {err}. Fix the cause, then rerun 04_fine_tuning "
            "(a new model) before deploying."
        ) from err


def _existing_unless_failed(
    get: Callable[..., Any], delete: Callable[..., Any], arn_key: str, poll_s: float, **identifier: str,
) -> tuple[dict[str, Any] | None, str]:
    """``(the live resource or None, ARN of a Failed one deleted now or "")``.

    A Failed resource never serves: it is deleted (and waited out) so a new one can be
    created, and its ARN goes into the new request token.
    """
    existing = _get_or_none(get, **identifier)
    if not existing or existing["status"] != "Failed":
        return existing, ""
    delete(**identifier)
    wait_gone(lambda: get(**identifier), poll_s=poll_s)
    return None, existing[arn_key]


def ensure_on_demand_deployment(
    name: str, model_arn: str, workshop_id: str, *, generation: int = 0, region: str | None = None,
    client: Any = None, poll_s: float = 30,
) -> tuple[str, bool]:
    """Create (or find, or update) a custom model deployment. Returns (deployment ARN, created).

    Afterwards call :func:`wait_for_deployment` with ``model_arn``: it waits for the
    creation or the model swap to finish.
    """
    bedrock = client or aws.client("bedrock", region)
    wait_for_model_active(model_arn, client=bedrock, poll_s=poll_s)
    existing, replaces = _existing_unless_failed(
        bedrock.get_custom_model_deployment, bedrock.delete_custom_model_deployment, "customModelDeploymentArn",
        poll_s, customModelDeploymentIdentifier=name,
    )
    if existing:
        arn = existing["customModelDeploymentArn"]
        if existing["modelArn"] != model_arn and not _update_under_way(existing, model_arn):
            if existing["status"] != "Active":  # an update is accepted only on an Active deployment
                wait_for_deployment(arn, client=bedrock, poll_s=poll_s)
            bedrock.update_custom_model_deployment(customModelDeploymentIdentifier=arn, modelArn=model_arn)
        return arn, False
    response = bedrock.create_custom_model_deployment(
        modelDeploymentName=name,
        modelArn=model_arn,
        description=f"Bedrock fine-tuning workshop {workshop_id}",
        tags=tag_list(workshop_id, key="key", value="value"),
        clientRequestToken=request_token(name, model_arn, generation, replaces),
    )
    return response["customModelDeploymentArn"], True


def _update_under_way(deployment: dict[str, Any], model_arn: str) -> bool:
    details = deployment.get("updateDetails") or {}
    return details.get("modelArn") == model_arn and details.get("updateStatus") == "Updating"


def ensure_provisioned_throughput(
    name: str, model_arn: str, workshop_id: str, *, model_units: int = 1, commitment: str | None = None,
    generation: int = 0, region: str | None = None, client: Any = None, poll_s: float = 30,
) -> tuple[str, bool]:
    """Create (or find, or update) a Provisioned Throughput. Billed hourly until deleted."""
    bedrock = client or aws.client("bedrock", region)
    wait_for_model_active(model_arn, client=bedrock, poll_s=poll_s)
    existing, replaces = _existing_unless_failed(
        bedrock.get_provisioned_model_throughput, bedrock.delete_provisioned_model_throughput, "provisionedModelArn",
        poll_s, provisionedModelId=name,
    )
    if existing:
        arn = existing["provisionedModelArn"]
        if existing["modelArn"] != model_arn and existing.get("desiredModelArn") != model_arn:
            if existing["status"] != "InService":
                wait_for_provisioned_throughput(arn, client=bedrock, poll_s=poll_s)
            bedrock.update_provisioned_model_throughput(provisionedModelId=arn, desiredModelId=model_arn)
        return arn, False
    request: dict[str, Any] = {
        "provisionedModelName": name,
        "modelId": model_arn,
        "modelUnits": model_units,
        "tags": tag_list(workshop_id, key="key", value="value"),
        "clientRequestToken": request_token(name, model_arn, generation, replaces),
    }
    if commitment:
        request["commitmentDuration"] = commitment
    return bedrock.create_provisioned_model_throughput(**request)["provisionedModelArn"], True


UPDATE_GRACE_POLLS = 3


def _deployment_phase(description: dict[str, Any], model_arn: str | None) -> str:
    """One status for the poll: the deployment's, then (when serving another model) its update's."""
    status = description["status"]
    if status != "Active" or not model_arn or description.get("modelArn") == model_arn:
        return status
    details = description.get("updateDetails") or {}
    if details.get("modelArn") != model_arn:
        return "UpdateNotRequested"
    update = details.get("updateStatus") or "Updating"
    return "Active" if update == "UpdateCompleted" else update


def wait_for_deployment(
    arn: str, *, model_arn: str | None = None, region: str | None = None, client: Any = None, **kwargs: Any,
) -> dict[str, Any]:
    """Poll until the deployment is ``Active`` and, given ``model_arn``, serves that model.

    Raises :class:`DeploymentError` on ``Failed``, ``UpdateFailed`` or when no update to
    ``model_arn`` was requested; ``TimeoutError`` after ``timeout_s``.
    """
    bedrock = client or aws.client("bedrock", region)

    lagging = [0]  # polls in a row that showed no update to model_arn

    def describe() -> dict[str, Any]:
        description = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
        phase = _deployment_phase(description, model_arn)
        # A read right after UpdateCustomModelDeployment may not show updateDetails yet (the API is
        # eventually consistent); only a few polls in a row without it mean no update was requested.
        lagging[0] = lagging[0] + 1 if phase == "UpdateNotRequested" else 0
        if phase == "UpdateNotRequested" and lagging[0] < UPDATE_GRACE_POLLS:
            phase = "Updating"
        return {**description, "phase": phase}

    try:
        return aws.poll_until(describe, "Active", failed=("Failed", "UpdateFailed", "UpdateNotRequested"),
                              status_key="phase", **kwargs)
    except RuntimeError as err:
        raise DeploymentError(
            f"Deployment {arn}: {err}. A Failed deployment is deleted and created anew by rerunning this cell; "
            "after UpdateFailed the deployment still serves its previous model: rerun to try the update again."
        ) from err


def wait_for_provisioned_throughput(
    arn: str, *, model_arn: str | None = None, region: str | None = None, client: Any = None, **kwargs: Any,
) -> dict[str, Any]:
    """Poll until the throughput is ``InService`` and, given ``model_arn``, serves that model."""
    bedrock = client or aws.client("bedrock", region)

    def describe() -> dict[str, Any]:
        description = bedrock.get_provisioned_model_throughput(provisionedModelId=arn)
        status = description["status"]
        if status == "InService" and model_arn and description.get("modelArn") != model_arn:
            status = "Updating" if description.get("desiredModelArn") == model_arn else "UpdateNotRequested"
        return {**description, "phase": status}

    try:
        return aws.poll_until(describe, "InService", failed=("Failed", "UpdateNotRequested"),
                              status_key="phase", **kwargs)
    except RuntimeError as err:
        raise DeploymentError(
            f"Provisioned Throughput {arn}: {err}. Rerun this cell: a Failed throughput is deleted and created anew."
        ) from err
