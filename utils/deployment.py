"""Serving a custom model: on-demand deployments (per token) or Provisioned Throughput (hourly).

Both cost money on AWS; notebooks call :func:`utils.costs.guard` first. Every
``ensure_*`` finds an existing resource by its deterministic name before creating.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from utils import aws
from utils.state import tag_list


def _get_or_none(call, **kwargs) -> dict[str, Any] | None:
    try:
        return call(**kwargs)
    except ClientError as err:
        if aws.is_not_found(err):
            return None
        raise


def ensure_on_demand_deployment(
    name: str, model_arn: str, workshop_id: str, *, region: str | None = None, client: Any = None
) -> tuple[str, bool]:
    """Create (or find) a custom model deployment. Returns (deployment ARN, created)."""
    bedrock = client or aws.client("bedrock", region)
    existing = _get_or_none(bedrock.get_custom_model_deployment, customModelDeploymentIdentifier=name)
    if existing:
        if existing["modelArn"] != model_arn:  # a newer model: swap it in behind the same deployment
            bedrock.update_custom_model_deployment(customModelDeploymentIdentifier=name, modelArn=model_arn)
        return existing["customModelDeploymentArn"], False
    response = bedrock.create_custom_model_deployment(
        modelDeploymentName=name,
        modelArn=model_arn,
        description=f"Bedrock fine-tuning workshop {workshop_id}",
        tags=tag_list(workshop_id, key="key", value="value"),
        # No explicit clientRequestToken: a deployment name is reused after a delete, and Bedrock
        # ignores a create whose token it has seen (the deleted deployment's ARN would come back).
        # botocore fills in a fresh token per call and reuses it across its own retries.
    )
    return response["customModelDeploymentArn"], True


def ensure_provisioned_throughput(
    name: str, model_arn: str, workshop_id: str, *, model_units: int = 1,
    commitment: str | None = None, region: str | None = None, client: Any = None,
) -> tuple[str, bool]:
    """Create (or find) a Provisioned Throughput. Billed hourly until deleted."""
    bedrock = client or aws.client("bedrock", region)
    existing = _get_or_none(bedrock.get_provisioned_model_throughput, provisionedModelId=name)
    if existing:
        if existing["modelArn"] != model_arn:  # a newer custom model of the same base
            bedrock.update_provisioned_model_throughput(provisionedModelId=name, desiredModelId=model_arn)
        return existing["provisionedModelArn"], False
    request: dict[str, Any] = {
        "provisionedModelName": name,
        "modelId": model_arn,
        "modelUnits": model_units,
        "tags": tag_list(workshop_id, key="key", value="value"),
        # No explicit clientRequestToken, as for deployments: the name is reused after a delete.
    }
    if commitment:
        request["commitmentDuration"] = commitment
    return bedrock.create_provisioned_model_throughput(**request)["provisionedModelArn"], True


def wait_for_deployment(arn: str, *, region: str | None = None, client: Any = None, **kwargs: Any) -> dict[str, Any]:
    bedrock = client or aws.client("bedrock", region)
    return aws.poll_until(
        lambda: bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn), "Active", **kwargs
    )


def wait_for_provisioned_throughput(
    arn: str, *, region: str | None = None, client: Any = None, **kwargs: Any
) -> dict[str, Any]:
    bedrock = client or aws.client("bedrock", region)
    return aws.poll_until(
        lambda: bedrock.get_provisioned_model_throughput(provisionedModelId=arn), "InService", **kwargs
    )
