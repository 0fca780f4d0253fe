"""Custom model deployments (on-demand serving of Nova v1 custom models) and their lifecycle.

``Creating -> Active`` (``lifecycle.DEPLOYMENT_CREATE``). An update reports
``updateDetails.updateStatus`` ``Updating`` and then ``UpdateCompleted``
(``lifecycle.DEPLOYMENT_UPDATE``); the deployment keeps serving the old model until the update
completes. When traffic switches is undocumented; switching at completion is our assumption.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from utils.sandbox.bedrock import lifecycle
from utils.sandbox.bedrock.custom_models import CustomModel
from utils.sandbox.bedrock.errors import validation
from utils.sandbox.bedrock.family import Family
from utils.sandbox.bedrock.store import idempotent, iso, listing, matching, new_id, tag_dict

NOVA_V1_BASES = ("amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0")


@dataclass
class Deployment:
    arn: str
    name: str
    region: str
    model: CustomModel
    created: float
    ready_at: float
    description: str | None = None
    status: str = lifecycle.DEPLOYMENT_CREATE.source
    updated: float | None = None
    update_model: CustomModel | None = None
    update_status: str | None = None
    update_ready_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """GetCustomModelDeployment."""
        out: dict[str, Any] = {
            "customModelDeploymentArn": self.arn, "modelDeploymentName": self.name,
            "modelArn": self.model.arn, "createdAt": iso(self.created), "status": self.status,
            "lastUpdatedAt": iso(self.updated),
        }
        if self.description:
            out["description"] = self.description
        if self.update_status and self.update_model is not None:
            out["updateDetails"] = {"modelArn": self.update_model.arn, "updateStatus": self.update_status}
        return out

    def summary(self) -> dict[str, Any]:
        """ListCustomModelDeployments."""
        return {
            "customModelDeploymentArn": self.arn, "customModelDeploymentName": self.name,
            "modelArn": self.model.arn, "createdAt": iso(self.created), "status": self.status,
            "lastUpdatedAt": iso(self.updated),
        }

    def advance(self, now: float) -> None:
        if self.status == lifecycle.DEPLOYMENT_CREATE.source and now >= self.ready_at:
            self.status, self.updated = lifecycle.DEPLOYMENT_CREATE.target, self.ready_at
        update = lifecycle.DEPLOYMENT_UPDATE
        if self.update_status == update.source and self.update_ready_at is not None and now >= self.update_ready_at:
            self.model = self.update_model or self.model
            self.update_status, self.updated = update.target, self.update_ready_at


class Deployments(Family):
    def _deployable(self, region: str, model_arn: str) -> CustomModel:
        model = self.store.models.find(region, model_arn)
        bare = model.base.model_id.rsplit(":", 1)[0]
        if bare not in NOVA_V1_BASES:
            raise validation(
                f"On-demand deployment isn't supported for custom model {model.arn}. Custom models "
                "of Amazon Nova Micro, Lite and Pro can be deployed on demand; use Provisioned "
                "Throughput for other base models."
            )
        return model

    @idempotent("customModelDeploymentArn")
    def create_custom_model_deployment(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        model = self._deployable(region, p["modelArn"])
        if self.store.deployments.named(region, p["modelDeploymentName"]):
            raise validation(f"A custom model deployment named {p['modelDeploymentName']} already exists.")
        now = time.time()
        dep = self.store.deployments.add(Deployment(
            arn=self.arn(region, f"custom-model-deployment/{new_id()}"),
            name=p["modelDeploymentName"], region=region, model=model, created=now,
            ready_at=lifecycle.DEPLOYMENT_CREATE.due(now, self.config.time_scale),
            description=p.get("description"), updated=now,
        ))
        if p.get("tags"):
            self.store.tags[dep.arn] = tag_dict(p["tags"])
        return {"customModelDeploymentArn": dep.arn}

    def get_custom_model_deployment(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            return self.store.deployments.find(region, p["customModelDeploymentIdentifier"]).to_dict()

    def list_custom_model_deployments(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            items = matching(self.store.deployments.in_region(region), p, after="createdAfter",
                             before="createdBefore", equals={"modelArnEquals": lambda d: d.model.arn})
            return listing("modelDeploymentSummaries", items, p, Deployment.summary)

    def update_custom_model_deployment(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            d = self.store.deployments.find(region, p["customModelDeploymentIdentifier"])
            model = self._deployable(region, p["modelArn"])
            if d.status != "Active":
                raise validation(f"The custom model deployment {d.name} is {d.status}; wait until it is Active.")
            if d.update_status == lifecycle.DEPLOYMENT_UPDATE.source:
                # One update at a time (our choice: AWS does not document a second update while one
                # is in progress; refusing it keeps updateDetails truthful).
                raise validation(
                    f"The custom model deployment {d.name} is already being updated; wait until "
                    "updateDetails.updateStatus is UpdateCompleted."
                )
            if model.base.model_id != d.model.base.model_id:
                raise validation("The new custom model must have the same base model as the deployed one.")
            now = time.time()
            d.update_model, d.update_status = model, lifecycle.DEPLOYMENT_UPDATE.source
            d.update_ready_at, d.updated = lifecycle.DEPLOYMENT_UPDATE.due(now, self.config.time_scale), now
            return {"customModelDeploymentArn": d.arn}

    def delete_custom_model_deployment(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            d = self.store.deployments.find(region, p["customModelDeploymentIdentifier"])
            self.delete(self.store.deployments, d)
            return {}
