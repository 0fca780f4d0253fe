"""Custom models: the output of a completed customization job (get, list, delete)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from utils.sandbox.bedrock.errors import conflict
from utils.sandbox.bedrock.family import Family
from utils.sandbox.bedrock.store import iso, listing, matching
from utils.sandbox.catalog import FoundationModel

if TYPE_CHECKING:
    from utils.sandbox.bedrock.customization import CustomizationJob


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
    owner: str = ""  # account ID
    training_pairs: list[tuple[str, str]] = field(default_factory=list)
    kms_key: str | None = None
    # What its job's training did (``training.TrainingResult.outcome()``); drives the stand-in's adherence.
    training: dict[str, Any] | None = None
    # The stand-in's retrieval index and learned style (``standins.TrainedIndex``), built on first use.
    index: Any = None

    def to_dict(self) -> dict[str, Any]:
        """GetCustomModel."""
        out: dict[str, Any] = {
            "modelArn": self.arn, "modelName": self.name, "baseModelArn": self.base_model_arn,
            "customizationType": self.customization_type, "hyperParameters": self.hyperparameters,
            "creationTime": iso(self.created), "modelStatus": "Active",
        }
        if self.job is not None:
            out.update({
                "jobName": self.job.name, "jobArn": self.job.arn,
                "trainingDataConfig": self.job.training_config,
                "validationDataConfig": self.job.validation_config,
                "outputDataConfig": self.job.output_config,
            })
            out.update(self.job.metrics())
            if self.job.customization_config:
                out["customizationConfig"] = self.job.customization_config
        if self.kms_key:
            out["modelKmsKeyArn"] = self.kms_key
        return out

    def summary(self) -> dict[str, Any]:
        """ListCustomModels."""
        return {
            "modelArn": self.arn, "modelName": self.name, "creationTime": iso(self.created),
            "baseModelArn": self.base_model_arn, "baseModelName": self.base.name,
            "customizationType": self.customization_type, "ownerAccountId": self.owner,
            "modelStatus": "Active",
        }


class CustomModels(Family):
    def maybe(self, region: str, identifier: str) -> CustomModel | None:
        return self.store.models.maybe(region, identifier)

    def find(self, region: str, identifier: str) -> CustomModel:
        return self.store.models.find(region, identifier)

    def get_custom_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            return self.find(region, p["modelIdentifier"]).to_dict()

    def list_custom_models(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            # isOwned: "Return custom models depending on if the current account owns them (true)
            # or if they were shared with the current account (false)" (botocore's
            # ListCustomModelsRequest). Every sandbox model is this account's, so false lists none.
            # A custom model exists here only once its job completed, hence modelStatus "Active".
            items = matching(self.store.models.in_region(region), p, status_attr=None, equals={
                "baseModelArnEquals": lambda m: m.base_model_arn,
                "foundationModelArnEquals": lambda m: m.base.arn(region),
                "modelStatus": lambda m: "Active",
                "isOwned": lambda m: m.owner == self.moto.account,
            })
            return listing("modelSummaries", items, p, CustomModel.summary)

    def delete_custom_model(self, region: str, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.lock:
            m = self.find(region, p["modelIdentifier"])
            users = [pt.name for pt in self.store.throughputs.values() if pt.target is m or pt.desired_target is m]
            users += [d.name for d in self.store.deployments.values() if d.model is m or d.update_model is m]
            if users:
                raise conflict(f"The custom model {m.name} is in use by {', '.join(users)}. Delete those first.")
            self.delete(self.store.models, m)
            return {}
