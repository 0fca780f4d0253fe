"""Provisioned Throughput: create, get, list, update, delete, and its lifecycle.

A PT serves a custom model or a ``PROVISIONED`` foundation model: ``Creating -> InService``
(``lifecycle.PT_CREATE``); an update that swaps the model goes ``Updating -> InService``
(``lifecycle.PT_UPDATE``) and serves the new model from then on.
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
from utils.sandbox.catalog import INVALID_MODEL_IDENTIFIER, FoundationModel

COMMITMENT_DAYS = {"OneMonth": 30, "SixMonths": 182}


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
    status: str = lifecycle.PT_CREATE.source
    modified: float = 0.0
    desired_model_arn: str = ""
    desired_target: CustomModel | FoundationModel | None = None
    update_ready_at: float | None = None
    commitment_expires: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """GetProvisionedModelThroughput (and each list summary)."""
        out: dict[str, Any] = {
            "modelUnits": self.model_units, "desiredModelUnits": self.model_units,
            "provisionedModelName": self.name, "provisionedModelArn": self.arn,
            "modelArn": self.model_arn, "desiredModelArn": self.desired_model_arn,
            "foundationModelArn": self.foundation_model_arn, "status": self.status,
            "creationTime": iso(self.created), "lastModifiedTime": iso(self.modified),
        }
        if self.commitment:
            out["commitmentDuration"] = self.commitment
            out["commitmentExpirationTime"] = iso(self.commitment_expires)
        return out

    def advance(self, now: float) -> None:
        if self.status == lifecycle.PT_CREATE.source and now >= self.ready_at:
            self.status, self.modified = lifecycle.PT_CREATE.target, self.ready_at
        if self.status == lifecycle.PT_UPDATE.source and self.update_ready_at is not None and now >= self.update_ready_at:
            self.status, self.modified = lifecycle.PT_UPDATE.target, self.update_ready_at
            if self.desired_target is not None:
                self.target, self.model_arn = self.desired_target, self.desired_model_arn
                self.desired_target = None


class ProvisionedThroughputs(Family):
    def _pt_target(self, region: str, identifier: str) -> tuple[CustomModel | FoundationModel, str, str]:
        """(target, modelArn, foundationModelArn) for a PT's modelId."""
        custom = self.store.models.maybe(region, identifier)
        if custom is not None:
            return custom, custom.arn, custom.base.arn(region)
        model = self.catalog.model(region, identifier)
        if model is None:
            raise validation(INVALID_MODEL_IDENTIFIER)
        if not model.provisioned:
            raise validation(f"The model {model.model_id} doesn't support Provisioned Throughput.")
        return model, model.arn(region), model.arn(region)

    @idempotent("provisionedModelArn")
    def create_provisioned_model_throughput(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
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
        if self.store.throughputs.named(region, p["provisionedModelName"]):
            raise validation(f"A provisioned model with name {p['provisionedModelName']} already exists.")
        now = time.time()
        pt = self.store.throughputs.add(ProvisionedThroughput(
            arn=self.arn(region, f"provisioned-model/{new_id()}"), name=p["provisionedModelName"],
            region=region, model_arn=model_arn, foundation_model_arn=fm_arn,
            model_units=int(p["modelUnits"]), commitment=commitment, created=now,
            ready_at=lifecycle.PT_CREATE.due(now, self.config.time_scale), target=target, modified=now,
            desired_model_arn=model_arn,
        ))
        if commitment:
            pt.commitment_expires = now + COMMITMENT_DAYS.get(commitment, 182) * 86400
        if p.get("tags"):
            self.store.tags[pt.arn] = tag_dict(p["tags"])
        return {"provisionedModelArn": pt.arn}

    def get_provisioned_model_throughput(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            return self.store.throughputs.find(region, p["provisionedModelId"]).to_dict()

    def list_provisioned_model_throughputs(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            items = matching(self.store.throughputs.in_region(region), p,
                             equals={"modelArnEquals": lambda pt: pt.model_arn})
            return listing("provisionedModelSummaries", items, p, ProvisionedThroughput.to_dict)

    def update_provisioned_model_throughput(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            pt = self.store.throughputs.find(region, p["provisionedModelId"])
            new_name = p.get("desiredProvisionedModelName")
            if new_name and new_name != pt.name:
                if self.store.throughputs.named(region, new_name):
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
                pt.status = lifecycle.PT_UPDATE.source
                pt.update_ready_at = lifecycle.PT_UPDATE.due(time.time(), self.config.time_scale)
            pt.modified = time.time()
            return {}

    def delete_provisioned_model_throughput(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            pt = self.store.throughputs.find(region, p["provisionedModelId"])
            if pt.commitment and pt.commitment_expires and time.time() < pt.commitment_expires:
                raise validation(
                    f"The provisioned model {pt.name} has a {pt.commitment} commitment that ends "
                    f"{iso(pt.commitment_expires)}; it can't be deleted before the commitment term ends."
                )
            self.delete(self.store.throughputs, pt)
            return {}
